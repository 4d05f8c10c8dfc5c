/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the VM test's two modes share: spm-vmtest's modules run (vm-driver.c) and the run of the
 * real spmtierd (vm-daemon.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "numa-mover.h"
#include "spmtier/macro.h"

#define PAGE UINT64_C(4096)
#define MiB (UINT64_C(1) << 20)
#define CONVERGED 0.95
/* A cold part next to a hot one may lose one engine granule (2 MiB of 16) to the fast node:
 * DAMON's region edges are approximate (regions of a few MiB here) and the engine spreads a
 * region's heat over the granules it covers. */
#define COLD_KEPT (1.0 - 2.0 / 16.0)

/* Prints "CHECK <name> PASS|FAIL <details>" and counts it. */
_printf_(3, 4) void check(const char *name, bool ok, const char *fmt, ...);
/* Prints "<tag> pass=N fail=M"; returns 1 when a check failed, else 0. */
int verdict(const char *tag);
double now_s(void);

/* Starts /bin/spm-vm-workload with its buffer on node `slow`; returns its pid and the buffer,
 * or a negative errno. */
pid_t start_workload(int slow, uint64_t *addr, uint64_t *len, uint64_t *part);
/* Fraction of the present pages of [start, start+len) of pid on node (move_pages query), -1
 * when the query fails; the whole placement in *ret (may be NULL). */
double share_of(pid_t pid, uint64_t start, uint64_t len, int node, struct spm_numa_placement *ret);
/* N0= and N1= of the mapping at addr in /proc/PID/numa_maps. Returns 0 or a negative errno. */
int numa_maps(pid_t pid, uint64_t addr, long *n0, long *n1);

/* spm-vmtest --daemon (vm-daemon.c). */
int main_daemon(void);
