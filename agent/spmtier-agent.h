/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * libspmtier-agent.so: runs inside a GPU process and carries out spmtierd's migrations with
 * hsaKmtSVMSetAttr (io.spmtier.agent.varlink). Loaded by LD_PRELOAD it starts by itself; a
 * program that links it may call spmtier_agent_init() instead (SPMTIER_AGENT=0 in the
 * environment stops the automatic start).
 *
 * Environment: SPMTIER_SOCKET (daemon address, default /run/spmtierd/io.spmtier.daemon),
 * SPMTIER_SYSFS_ROOT (default $FAKEKFD_ROOT, else /), SLURM_JOB_ID, SPMTIER_AGENT_RESCAN_MS
 * (how often /proc/self/maps is re-read, default 5000).
 *
 * The agent stays idle until the application has opened KFD itself (it never creates a KFD
 * process of its own). It never blocks, stops or kills the application: all work happens on one thread of
 * its own with every signal blocked; without a daemon it retries with exponential backoff (up
 * to 30 s); after fork the child starts its own agent.
 */

/* Starts the agent thread once per process. Returns 0 (also when already running) or a negative
 * errno when the thread cannot be created. */
int spmtier_agent_init(void);
