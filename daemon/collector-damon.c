/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The damon collector as spmtierd sees it ([Collect] Collectors=damon): CPU accesses of the
 * processes attached to jobs, from DAMON (damon.c), on a NUMA machine (Profile=numa-sysfs or
 * mi300a-node). A process seen for the first time gets its anonymous private writable
 * mappings declared as ranges, each at the node most of its pages are on (move_pages query);
 * then every epoch DAMON's regions become observations.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "damon.h"
#include "numa-mover.h"
#include "spmtier/macro.h"
#include "topology.h"

/* Mappings above this are address-space reservations (sanitizer shadows, runtimes that
 * reserve terabytes up front), not data worth placing: not declared. */
#define MAX_RANGE_BYTES (UINT64_C(1) << 40)
/* Pages looked at to find where a new range lies. */
#define LOCATE_SAMPLE_PAGES 256

struct damon_collector {
        struct spm_damon *damon;
        char *proc_root;
        int loc_node[SPM_MAX_LOCS];
        unsigned n_locs;
        uint32_t *pids;         /* tracked, sorted */
        size_t n_pids;
        uint32_t *fresh;        /* tracked, ranges not declared yet */
        size_t n_fresh;
        uint64_t epochs, observations, ranges;
        char last[160];
};

static int dc_init(const struct spm_collector_args *args, void **ret, char *msg, size_t size) {
        _cleanup_free_ struct damon_collector *c = NULL;
        struct spm_damon_config conf;
        char admin[4096], state[4096];
        const char *rt = getenv("RUNTIME_DIRECTORY");
        unsigned bad;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if (!args->machine || spm_machine_loc_nodes(args->machine, c->loc_node, &bad) < 0) {
                snprintf(msg, size, "the damon collector needs a NUMA machine (Profile=numa-sysfs "
                         "or mi300a-node)");
                return -EINVAL;
        }
        c->n_locs = args->machine->n_locs;
        snprintf(admin, sizeof(admin), "%s/kernel/mm/damon/admin",
                 args->sys_root ? args->sys_root : "/sys");
        r = spm_damon_probe(admin, msg, size);
        if (r < 0)
                return r;
        spm_damon_config_defaults(&conf);
        conf.admin_root = admin;
        /* DAMON never merges a region beyond 1/min_regions of what it monitors, mostly the gap
         * below the stack: with its default 10, one region spans tens of MiB, hot and cold
         * data mixed after a phase change, and the engine moves all of it (tests/vm). 200
         * keeps regions within a few MiB on a small process. */
        conf.min_regions = 200;
        conf.max_regions = 2000;
        /* Where a crashed daemon's kdamond is found again ($RUNTIME_DIRECTORY under systemd). */
        if (rt) {
                snprintf(state, sizeof(state), "%s/damon.kdamond", rt);
                conf.state_file = state;
        }
        r = spm_damon_new(&conf, &c->damon);
        if (r < 0)
                return r;
        c->proc_root = strdup(args->proc_root ? args->proc_root : "/proc");
        if (!c->proc_root) {
                spm_damon_free(c->damon);
                return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static void dc_free(void *state) {
        struct damon_collector *c = state;

        if (!c)
                return;
        spm_damon_free(c->damon);
        free(c->proc_root);
        free(c->pids);
        free(c->fresh);
        free(c);
}

static bool has_pid(const uint32_t *v, size_t n, uint32_t pid) {
        for (size_t i = 0; i < n; i++)
                if (v[i] == pid)
                        return true;
        return false;
}

static int dc_track(void *state, const uint32_t *pids, size_t n, char *msg, size_t size) {
        struct damon_collector *c = state;
        _cleanup_free_ uint32_t *copy = NULL, *fresh = NULL;
        size_t n_fresh = 0;
        int r;

        if (n == c->n_pids && (n == 0 || memcmp(pids, c->pids, n * sizeof(*pids)) == 0))
                return 0;
        copy = calloc(MAX(n, (size_t) 1), sizeof(*copy));
        fresh = calloc(MAX(n + c->n_fresh, (size_t) 1), sizeof(*fresh));
        if (!copy || !fresh)
                return -ENOMEM;
        if (n > 0)
                memcpy(copy, pids, n * sizeof(*pids));
        for (size_t i = 0; i < n; i++)
                if (!has_pid(c->pids, c->n_pids, pids[i]) || has_pid(c->fresh, c->n_fresh, pids[i]))
                        fresh[n_fresh++] = pids[i];
        r = spm_damon_set_targets(c->damon, pids, n);
        if (r < 0) {
                snprintf(msg, size, "%s", spm_damon_error(c->damon));
                return r;
        }
        free(c->pids);
        c->pids = TAKE_PTR(copy);
        c->n_pids = n;
        free(c->fresh);
        c->fresh = TAKE_PTR(fresh);
        c->n_fresh = n_fresh;
        return 0;
}

/* Declares pid's anonymous private writable mappings, each where most of its pages are. */
static int declare_ranges(struct damon_collector *c, const struct spm_collector_sink *sink,
                          uint32_t pid) {
        char path[4096], line[4096];
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof(path), "%s/%" PRIu32 "/maps", c->proc_root, pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long lo, hi, inode;
                char perms[8], name[256] = "";
                struct spm_numa_placement pl;
                int node, r;

                if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %255s", &lo, &hi, perms, &inode,
                           name) < 4)
                        continue;
                /* Anonymous (no file), private, writable; [heap] yes, [stack] and the
                 * kernel's special mappings no. */
                if (inode != 0 || perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p' ||
                    (name[0] == '[' && strcmp(name, "[heap]") != 0) || hi <= lo ||
                    hi - lo > MAX_RANGE_BYTES)
                        continue;
                r = sink->range(sink->userdata, pid, lo, hi - lo);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        continue;
                c->ranges++;
                if (!sink->locate ||
                    spm_numa_query_sample((pid_t) pid, lo, hi - lo, 0, LOCATE_SAMPLE_PAGES,
                                          &pl) < 0)
                        continue;
                node = spm_numa_placement_majority(&pl);
                for (unsigned l = 0; node >= 0 && l < c->n_locs; l++)
                        if (c->loc_node[l] == node) {
                                (void) sink->locate(sink->userdata, pid, lo, hi - lo, l);
                                break;
                        }
        }
        return 0;
}

static int dc_collect(void *state, const struct spm_collector_sink *sink, char *msg,
                      size_t size) {
        struct damon_collector *c = state;
        _cleanup_free_ struct spm_damon_region *v = NULL;
        _cleanup_free_ struct spm_access *a = NULL;
        size_t n = 0;
        int r, fed = 0;

        for (size_t i = 0; i < c->n_fresh; i++) {
                r = declare_ranges(c, sink, c->fresh[i]);
                if (r == -ENOMEM)
                        return r;
        }
        c->n_fresh = 0;
        if (!spm_damon_running(c->damon))
                return 0;
        r = spm_damon_collect(c->damon, &v, &n);
        if (r == -EAGAIN || r == -ESRCH)
                return 0; /* warming up, or every target has exited */
        if (r < 0) {
                snprintf(msg, size, "%s", spm_damon_error(c->damon));
                return r;
        }
        r = spm_damon_to_accesses(c->damon, v, n, &a);
        if (r < 0)
                return r;
        for (int i = 0; i < r; i++)
                if (sink->observe(sink->userdata, &a[i]) > 0)
                        fed++;
        c->epochs++;
        c->observations += (uint64_t) fed;
        snprintf(c->last, sizeof(c->last), "%zu regions, %d observations", n, fed);
        return fed;
}

static void dc_describe(void *state, char *buf, size_t size) {
        struct damon_collector *c = state;

        snprintf(buf, size, "damon: %zu processes (kdamond %d), %" PRIu64 " ranges, %" PRIu64
                 " observations over %" PRIu64 " epochs%s%s", c->n_pids,
                 spm_damon_kdamond_pid(c->damon), c->ranges, c->observations, c->epochs,
                 c->last[0] ? "; last: " : "", c->last);
}

const struct spm_collector_ops spm_collector_damon = {
        .name = "damon",
        .init = dc_init,
        .free = dc_free,
        .collect = dc_collect,
        .track = dc_track,
        .describe = dc_describe,
};
