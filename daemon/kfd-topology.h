/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * KFD GPU naming for the daemon: the engine numbers GPUs 0..n-1 in topology node order
 * (node 0 is the CPU); the driver, SMI and the agents name them by gpu_id.
 */

#include <stdint.h>

#include "spmtier/machine.h"

/* Reads <sys_root>/class/kfd/kfd/topology/nodes/N/gpu_id for N = 0, 1, ... and keeps the
 * non-zero ones in node order (at most SPM_MAX_GPUS). Returns the count (0 without a topology),
 * -EINVAL for a malformed gpu_id file, or another negative errno. */
int kfd_topology_gpu_ids(const char *sys_root, uint32_t ret_ids[SPM_MAX_GPUS]);

/* The engine GPU index of gpu_id among ids[0..n), or -ENODEV. */
int kfd_topology_gpu_index(const uint32_t *ids, unsigned n, uint32_t gpu_id);
