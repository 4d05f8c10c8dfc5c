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

/* How a move is carried out where the mover can tell (kfd-svm: PREFERRED_LOC). */
enum spm_move_mode {
        SPM_MOVE_PLACE, /* move and pin there: driver faults neither pull it back nor away */
        SPM_MOVE_HOME,  /* move to RAM, pin nothing: the driver's faults decide again (a reset) */
        SPM_MOVE_PIN,   /* move nothing: pin where it is (a quarantined range, from == to) */
        _SPM_MOVE_MODE_MAX,
};

/* kfd-svm: one migration command for the agent in process pid (io.spmtier.agent Command).
 * GPUs are KFD gpu_ids, 0 = system memory. */
struct spm_agent_command {
        uint64_t id;
        uint32_t pid;
        uint64_t start, length;
        uint32_t to_gpu_id, access_gpu_id;
        enum spm_move_mode mode;
};

/* kfd-svm: what the agent reported for a command (io.spmtier.agent Report). */
struct spm_agent_report {
        uint32_t pid;
        uint64_t id;
        int status;              /* 0 or a negative errno */
        uint64_t moved_bytes;    /* from page_in/page_out: an upper bound */
        int64_t preferred, prefetch; /* gpu_ids after the move, 0 = RAM, -1 = undefined */
};

/* How kfd-svm reaches the agents (the manager owns their connections). send returns 0, or
 * -ESRCH when pid has no agent. */
struct spm_agent_link {
        void *userdata;
        int (*send)(void *userdata, const struct spm_agent_command *c);
};

struct spm_mover_args {
        const struct spm_machine *machine;
        unsigned fail_every;       /* sim: fail every Nth move with -EBUSY; 0 = never */
        const char *proc_root;
        const char *sys_root;      /* kfd-svm: gpu_ids from class/kfd/kfd/topology/nodes */
        const struct spm_agent_link *agents; /* kfd-svm */
        uint64_t budget_bytes;     /* kfd-svm: bytes sent per epoch_usec (pacing); 0 = unpaced */
        uint64_t epoch_usec;
        uint64_t timeout_usec;     /* kfd-svm: a command without a report fails -ETIMEDOUT */
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
        /* Optional: submit with a mode other than SPM_MOVE_PLACE (what submit does). A mover
         * without it has nothing to pin: the manager then submits HOME moves plainly and
         * skips PIN ones. */
        int (*submit_mode)(void *state, const struct spm_move *moves, size_t n,
                           enum spm_move_mode mode, spm_move_done_fn done, void *userdata);
        void (*describe)(void *state, char *buf, size_t size);
        /* Optional, for movers that work through agents (kfd-svm): */
        /* An agent reported a command's outcome (unknown ids are ignored: a restart). */
        void (*report)(void *state, const struct spm_agent_report *r);
        /* pid's agent went away: its queued and running moves fail with -ESRCH. */
        void (*process_gone)(void *state, uint32_t pid);
        /* Called every epoch: sends what the budget allows, fails commands past the timeout. */
        void (*tick)(void *state);
        /* The gpu_id of engine GPU g, 0 when unknown. */
        uint32_t (*gpu_id)(void *state, unsigned gpu);
};

extern const struct spm_mover_ops spm_mover_sim;
extern const struct spm_mover_ops spm_mover_numa;
extern const struct spm_mover_ops spm_mover_kfd_svm;

const struct spm_mover_ops *spm_mover_find(const char *name);
