/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The numa mover: carries out plan moves on machines whose memory locations are NUMA nodes
 * (MI300A HBM, CXL, any CPU-less node) with move_pages(2) on the job's pid, from the daemon's
 * own process: no agent needed. Moves are queued, then worked off in batches of pages paced by
 * a byte budget per run; each finished move yields one result with the per-page statuses
 * aggregated, ready for spm_engine_move_result().
 *
 * Permissions (mm/migrate.c): moving another process's pages needs
 * ptrace_may_access(PTRACE_MODE_READ_REALCREDS) on it (same uid, or CAP_SYS_PTRACE), and
 * move_all (MPOL_MF_MOVE_ALL) needs CAP_SYS_NICE. Not permitted: the move fails with -EPERM.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spmtier/machine.h"
#include "spmtier/policy.h"

#define SPM_NUMA_MAX_NODES 64

struct spm_numa_mover;

struct spm_numa_mover_config {
        unsigned n_locs;
        int loc_node[SPM_MAX_LOCS];   /* NUMA node id of each engine location */
        size_t batch_pages;           /* pages per move_pages call; 0 = 1024 */
        size_t page_size;             /* 0 = sysconf(_SC_PAGESIZE) */
        bool move_all;                /* MPOL_MF_MOVE_ALL: also pages mapped by other
                                       * processes (needs CAP_SYS_NICE) */
};

/* One finished move. status and moved_bytes follow spm_engine_move_result(): status 0 with
 * moved_bytes == length is a full move, 0 with less is partial (the rest stayed), < 0 is a
 * failure (no page reached the target). Pages not present (never touched, or swapped out:
 * -ENOENT) have no placement to change and count as moved. */
struct spm_numa_move_result {
        struct spm_move move;
        int status;
        uint64_t moved_bytes;
        uint64_t pages;           /* pages in the move */
        uint64_t pages_moved;     /* at the target node afterwards (incl. already there) */
        uint64_t pages_absent;    /* -ENOENT */
        uint64_t pages_busy;      /* -EBUSY: pinned or under I/O; worth a retry */
        uint64_t pages_nomem;     /* -ENOMEM: the target node is full */
        uint64_t pages_acces;     /* -EACCES: shared with another process, no move_all */
        uint64_t pages_fault;     /* -EFAULT: zero page or not in a mapping */
        uint64_t pages_other;     /* any other per-page error, or a failed call */
        int call_error;           /* first error of a whole call (-ESRCH, -EPERM, -ENODEV,
                                   * -EACCES for a node outside the task's cpuset), or 0 */
        unsigned calls;           /* move_pages calls made */
        uint64_t usec;            /* time spent in them */
};

typedef void (*spm_numa_result_fn)(const struct spm_numa_move_result *r, void *userdata);

/* Creates a mover. Returns 0, -EINVAL (no locations, a negative node id, a page size that is
 * not a power of two), -ENOMEM. */
int spm_numa_mover_new(const struct spm_numa_mover_config *c, struct spm_numa_mover **ret);
struct spm_numa_mover *spm_numa_mover_free(struct spm_numa_mover *m);
static inline void spm_numa_mover_freep(struct spm_numa_mover **m) {
        if (*m)
                *m = spm_numa_mover_free(*m);
}

/* Queues copies of n moves behind the ones already queued. Returns 0, -EINVAL (a location
 * without a node, an unaligned or empty span; nothing is queued then), -ENOMEM. */
int spm_numa_mover_submit(struct spm_numa_mover *m, const struct spm_move *moves, size_t n);

/* Moves queued and not finished, and their bytes not yet attempted. */
size_t spm_numa_mover_pending(const struct spm_numa_mover *m, uint64_t *ret_bytes);

/* Drops the queued moves of pid (the process exited); each gets a -ESRCH result through cb
 * (may be NULL). Returns how many were dropped. */
size_t spm_numa_mover_cancel_pid(struct spm_numa_mover *m, uint32_t pid, spm_numa_result_fn cb,
                                 void *userdata);

/* Works off the queue in order until budget_bytes are attempted (0 = no limit). A move larger
 * than what is left of the budget is split: its first part now, the rest on the next run. Calls
 * cb for every move that finished. Returns the bytes attempted (>= 0). */
int64_t spm_numa_mover_run(struct spm_numa_mover *m, uint64_t budget_bytes, spm_numa_result_fn cb,
                           void *userdata);

/* Where the pages of [start, start+len) of pid are now: move_pages with nodes = NULL. */
struct spm_numa_placement {
        uint64_t pages;
        uint64_t absent;                        /* -ENOENT: not present */
        uint64_t errors;                        /* other negative statuses */
        uint64_t on_node[SPM_NUMA_MAX_NODES];
};

/* Fills *ret. page_size 0 = the system's. Returns 0, -ESRCH (no such process), -EPERM,
 * -EINVAL (unaligned), -ENOMEM. */
int spm_numa_query(pid_t pid, uint64_t start, uint64_t len, size_t page_size,
                   struct spm_numa_placement *ret);

/* As spm_numa_query(), but looks at no more than max_pages pages spread evenly over the span
 * (all of them when it has no more): a placement estimate for spans of any size. */
int spm_numa_query_sample(pid_t pid, uint64_t start, uint64_t len, size_t page_size,
                          size_t max_pages, struct spm_numa_placement *ret);

/* The node holding most present pages of the placement, or -ENOENT when none is present. */
int spm_numa_placement_majority(const struct spm_numa_placement *p);
