/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim mover: carries out moves on the machine model's residency view at once. It keeps
 * the bytes resident at every location and refuses what does not fit, so the daemon behaves
 * as on a node whose VRAM fills up: a move into a full GPU moves what fits (whole granules)
 * and reports a partial result, or fails with -ENOMEM. Every Nth move can be made to fail
 * with -EBUSY ([Move] SimFailEvery=) to exercise failure handling end to end.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "mover.h"
#include "spmtier/macro.h"

struct sim {
        struct spm_machine machine;
        uint64_t used[SPM_MAX_LOCS];
        unsigned fail_every;
        uint64_t submitted, moved_bytes, failed, partial;
};

static int sim_init(const struct spm_mover_args *args, void **ret, char *msg, size_t size) {
        struct sim *s;

        if (!args->machine || args->machine->n_locs == 0 ||
            args->machine->n_locs > SPM_MAX_LOCS) {
                snprintf(msg, size, "the sim mover needs a machine model");
                return -EINVAL;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->machine = *args->machine;
        s->fail_every = args->fail_every;
        *ret = s;
        return 0;
}

static void sim_free(void *state) {
        free(state);
}

static void sim_set_used(void *state, const uint64_t used[SPM_MAX_LOCS]) {
        struct sim *s = state;

        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                s->used[l] = used[l];
}

/* Moves what fits of m; returns the status and sets *ret_moved. */
static int sim_move(struct sim *s, const struct spm_move *m, uint64_t *ret_moved) {
        uint64_t len = m->length, room;

        *ret_moved = 0;
        if (m->from >= s->machine.n_locs || m->to >= s->machine.n_locs || m->from == m->to)
                return -EINVAL;
        if (s->fail_every && s->submitted % s->fail_every == 0)
                return -EBUSY;
        room = s->machine.capacity[m->to] > s->used[m->to]
                       ? s->machine.capacity[m->to] - s->used[m->to]
                       : 0;
        if (len > room) {
                /* KFD migrates whole granules; what does not fit stays. */
                len = s->machine.granule ? ALIGN_DOWN(room, s->machine.granule) : room;
                if (len == 0)
                        return -ENOMEM;
                s->partial++;
        }
        s->used[m->from] -= MIN(s->used[m->from], len);
        s->used[m->to] += len;
        s->moved_bytes += len;
        *ret_moved = len;
        return 0;
}

static int sim_submit(void *state, const struct spm_move *moves, size_t n, spm_move_done_fn done,
                      void *userdata) {
        struct sim *s = state;

        for (size_t i = 0; i < n; i++) {
                uint64_t moved;
                int status;

                s->submitted++;
                status = sim_move(s, &moves[i], &moved);
                if (status < 0)
                        s->failed++;
                done(userdata, &moves[i], status, moved);
        }
        return (int) MIN(n, (size_t) INT32_MAX);
}

static void sim_describe(void *state, char *buf, size_t size) {
        struct sim *s = state;

        snprintf(buf, size, "sim on %s: %" PRIu64 " moves, %" PRIu64 " bytes, %" PRIu64
                 " failed, %" PRIu64 " partial", s->machine.name, s->submitted, s->moved_bytes,
                 s->failed, s->partial);
}

const struct spm_mover_ops spm_mover_sim = {
        .name = "sim",
        .init = sim_init,
        .free = sim_free,
        .set_used = sim_set_used,
        .submit = sim_submit,
        .describe = sim_describe,
};
