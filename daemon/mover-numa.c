/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The numa mover as spmtierd sees it ([Move] Mover=numa): the ops table over numa-mover.c.
 * Locations must be NUMA nodes named "nodeN" (profile mi300a-node, or the machine built from
 * sysfs by topology.c). Moves run at once, in the event loop: move_pages copies at memory
 * speed and the engine already keeps each epoch's plan within the migration budget, so one
 * epoch's moves take a fraction of the epoch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mover.h"
#include "numa-mover.h"
#include "spmtier/macro.h"
#include "topology.h"

struct numa {
        struct spm_numa_mover *mover;
        spm_move_done_fn done;
        void *userdata;
        uint64_t moves, moved_bytes, failed, partial;
        int last_error;
};

static int numa_init(const struct spm_mover_args *args, void **ret, char *msg, size_t size) {
        _cleanup_free_ struct numa *s = NULL;
        struct spm_numa_mover_config c = {};
        const struct spm_machine *m = args->machine;
        unsigned bad;
        int r;

        if (!m || m->kind != SPM_MEM_NUMA) {
                snprintf(msg, size, "the numa mover needs a NUMA machine (profile mi300a-node or "
                         "numa-sysfs), not %s", m ? m->name : "none");
                return -EINVAL;
        }
        if (spm_machine_loc_nodes(m, c.loc_node, &bad) < 0) {
                snprintf(msg, size, "location %u (%s) is not a NUMA node \"nodeN\"", bad,
                         m->loc_name[bad]);
                return -EINVAL;
        }
        c.n_locs = m->n_locs;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = spm_numa_mover_new(&c, &s->mover);
        if (r < 0) {
                snprintf(msg, size, "cannot set up the numa mover: %s", strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static void numa_free(void *state) {
        struct numa *s = state;

        if (!s)
                return;
        spm_numa_mover_free(s->mover);
        free(s);
}

static void numa_result(const struct spm_numa_move_result *r, void *userdata) {
        struct numa *s = userdata;

        s->moves++;
        s->moved_bytes += r->moved_bytes;
        if (r->status < 0) {
                s->failed++;
                s->last_error = r->status;
        } else if (r->moved_bytes < r->move.length)
                s->partial++;
        s->done(s->userdata, &r->move, r->status, r->moved_bytes);
}

static int numa_submit(void *state, const struct spm_move *moves, size_t n, spm_move_done_fn done,
                       void *userdata) {
        struct numa *s = state;
        int r;

        r = spm_numa_mover_submit(s->mover, moves, n);
        if (r < 0)
                return r;
        s->done = done;
        s->userdata = userdata;
        (void) spm_numa_mover_run(s->mover, /* budget_bytes= */ 0, numa_result, s);
        return (int) n;
}

static void numa_describe(void *state, char *buf, size_t size) {
        struct numa *s = state;

        snprintf(buf, size, "numa: %" PRIu64 " moves, %" PRIu64 " MiB moved, %" PRIu64
                 " partial, %" PRIu64 " failed%s%s", s->moves, s->moved_bytes >> 20, s->partial,
                 s->failed, s->last_error ? ", last error: " : "",
                 s->last_error ? strerror(-s->last_error) : "");
}

const struct spm_mover_ops spm_mover_numa = {
        .name = "numa",
        .init = numa_init,
        .free = numa_free,
        .set_used = NULL, /* the kernel knows where pages are; nothing to mirror */
        .submit = numa_submit,
        .describe = numa_describe,
};
