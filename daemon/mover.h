/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Movers: where a plan becomes migrations (DESIGN.md "Movers"), ops tables selected by name
 * ([Move] Mover=). The manager submits each epoch's moves; the mover reports every move's
 * result through a callback, now (sim) or later from the event loop (kfd-svm waits for the
 * job's agent). Results are what the engine learns from (spm_engine_move_result()), what
 * Monitor streams and what the job counters add up.
 */

#include <stddef.h>
#include <stdint.h>

#include "spmtier/machine.h"
#include "spmtier/policy.h"

/* status 0 = done (moved_bytes may be < length: partial), < 0 = failed (-ENOMEM no room,
 * -EBUSY, -ESRCH pid gone). */
typedef void (*spm_move_done_fn)(void *userdata, const struct spm_move *m, int status,
                                 uint64_t moved_bytes);

struct spm_mover_args {
        const struct spm_machine *machine;
        unsigned fail_every;       /* sim: fail every Nth move with -EBUSY; 0 = never */
        const char *proc_root;
};

struct spm_mover_ops {
        const char *name;
        int (*init)(const struct spm_mover_args *args, void **ret_state, char *msg,
                    size_t msg_size);
        void (*free)(void *state);
        /* Sets where bytes are at start (the engine's view after a restart). */
        void (*set_used)(void *state, const uint64_t used[SPM_MAX_LOCS]);
        /* Carries out n moves in order, calling done once per move (possibly later).
         * Returns how many were accepted, or a negative errno (nothing was accepted). */
        int (*submit)(void *state, const struct spm_move *moves, size_t n, spm_move_done_fn done,
                      void *userdata);
        void (*describe)(void *state, char *buf, size_t size);
};

extern const struct spm_mover_ops spm_mover_sim;
extern const struct spm_mover_ops spm_mover_numa;

const struct spm_mover_ops *spm_mover_find(const char *name);
