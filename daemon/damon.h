/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The damon collector: CPU-side access frequency per region of the tracked processes, from
 * the kernel's DAMON through its sysfs interface (Documentation/admin-guide/mm/damon/usage.rst).
 *
 * Setup: one kdamond with one context, `vaddr` operations, one target per tracked pid, and per
 * target one `stat` scheme (it does nothing to the memory) whose access pattern is wide open
 * and whose `target` filter keeps only that target's regions, so every scheme's tried_regions
 * are one process's regions (tried_regions do not name their target). A collection writes
 * `update_schemes_tried_regions` to the kdamond's state (the kernel refills the directories
 * within an aggregation interval or two) and reads start, end and nr_accesses per region.
 *
 * DAMON sysfs is a single-owner interface: `nr_kdamonds` cannot change while any kdamond runs.
 * The collector turns off a kdamond it started in an earlier life (its pid is kept in
 * state_file), and refuses with -EBUSY to touch one it did not start.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/policy.h"

#define SPM_DAMON_ADMIN_ROOT "/sys/kernel/mm/damon/admin"

struct spm_damon;

struct spm_damon_config {
        const char *admin_root;  /* NULL = SPM_DAMON_ADMIN_ROOT */
        const char *state_file;  /* where the running kdamond's pid is kept for crash
                                  * recovery; NULL = none (then any running kdamond is
                                  * foreign) */
        uint64_t sample_usec;    /* access check interval; default 5000 (5 ms) */
        uint64_t aggr_usec;      /* nr_accesses counts samples over this; default 100000 */
        uint64_t update_usec;    /* re-read of the targets' mappings; default 1000000 */
        uint32_t min_regions;    /* per target; default 10 */
        uint32_t max_regions;    /* per target; default 1000 */
        uint64_t page_size;      /* default 4096 */
        uint32_t lines_per_page; /* 64-byte accesses a positive sample stands for per page of
                                  * the region; default 64 (a whole 4 KiB page) */
        uint64_t warmup_usec;    /* after a (re)start, collections wait this long: DAMON
                                  * starts from a few coarse regions per target and needs some
                                  * aggregation intervals to split them along the real hot and
                                  * cold edges; earlier figures smear heat over whole mappings.
                                  * Default 1000000 (10 aggregation intervals) */
};

/* Fills *c with the defaults above (admin_root and state_file NULL). */
void spm_damon_config_defaults(struct spm_damon_config *c);

/* One monitored region as DAMON reported it. */
struct spm_damon_region {
        uint32_t pid;
        uint64_t start;
        uint64_t end;
        uint32_t nr_accesses;    /* positive samples in the last aggregation interval,
                                  * 0 .. aggr_usec / sample_usec */
        uint32_t age;            /* aggregation intervals the pattern has held */
};

/* Is DAMON sysfs usable under admin_root (NULL = the real one)? Returns 0; -ENOENT when the
 * kernel has no DAMON sysfs (Debian 12's 6.1 kernel: CONFIG_DAMON is not set); -EOPNOTSUPP
 * when an existing context lists no vaddr in avail_operations; -EACCES when not permitted.
 * why (may be NULL) receives a sentence for the log either way. */
int spm_damon_probe(const char *admin_root, char *why, size_t why_size);

/* Creates a collector (nothing is written yet). Returns 0, -EINVAL (zero or inconsistent
 * intervals, min_regions < 3 or > max_regions), -ENOMEM. */
int spm_damon_new(const struct spm_damon_config *c, struct spm_damon **ret);
/* Stops a running kdamond (spm_damon_stop) and frees. */
struct spm_damon *spm_damon_free(struct spm_damon *d);
static inline void spm_damon_freep(struct spm_damon **d) {
        if (*d)
                *d = spm_damon_free(*d);
}

/* Sets up and turns on monitoring of pids (n >= 1, as spm_damon_set_targets). Recovers a
 * leftover kdamond of ours (state_file), then configures from scratch. Returns 0; -EBUSY
 * (a kdamond not ours is running); -ENOENT (no DAMON sysfs); -EOPNOTSUPP (no vaddr, or no
 * target filters and n > 1); -ESRCH (a pid does not exist); -EACCES; another -errno of a
 * rejected write. spm_damon_error() says what happened in a sentence. */
int spm_damon_start(struct spm_damon *d, const uint32_t *pids, size_t n);

/* Replaces the tracked pids (a process came or went). Restarts monitoring, which loses
 * DAMON's adaptive regions (they re-form within a few aggregation intervals). n = 0 stops.
 * Returns as spm_damon_start(). */
int spm_damon_set_targets(struct spm_damon *d, const uint32_t *pids, size_t n);

/* Turns our kdamond off, removes the kdamond directories (nr_kdamonds = 0) and the state
 * file. Idempotent. Returns 0 or the first -errno. */
int spm_damon_stop(struct spm_damon *d);

bool spm_damon_running(const struct spm_damon *d);

/* The pid of our kdamond kernel thread, or -1. */
int spm_damon_kdamond_pid(const struct spm_damon *d);

/* Asks the kernel to refresh the schemes' tried regions and reads them: *ret (malloc'd, sorted
 * by pid, then start) and *ret_n. Returns 0; -EAGAIN during the warm-up after a (re)start (no
 * figures yet: skip this epoch's CPU observations rather than reporting "no accesses");
 * -ENOTCONN when not running; -ESRCH when the kdamond has stopped by itself (every target
 * exited); -EBADMSG for a region that does not parse; -errno. */
int spm_damon_collect(struct spm_damon *d, struct spm_damon_region **ret, size_t *ret_n);

/* Turns regions into CPU observations, one per region with nr_accesses > 0:
 * reads = nr_accesses x pages x lines_per_page (an estimate of 64-byte accesses in one
 * aggregation interval; DAMON does not tell reads from writes, so writes = 0). *ret is
 * malloc'd. Returns the number of observations or -ENOMEM. */
int spm_damon_to_accesses(const struct spm_damon *d, const struct spm_damon_region *r, size_t n,
                          struct spm_access **ret);

/* Keeps only the parts of a[0..n) of pid inside [lo, hi), scaling reads and writes by the part
 * kept (DAMON regions do not follow mappings exactly: a region can reach past a declared range,
 * and the engine ignores a span that starts outside every range). Accesses of other pids are
 * kept as they are. Compacts a[] in place and returns the new count. */
size_t spm_damon_clip(struct spm_access *a, size_t n, uint32_t pid, uint64_t lo, uint64_t hi);

/* The last error in a sentence ("" when none). */
const char *spm_damon_error(const struct spm_damon *d);
