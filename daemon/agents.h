/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The daemon side of io.spmtier.agent (agent/io.spmtier.agent.varlink, docs/agent.md): the
 * agents inside job processes attach their pid, announce their GPUs and migratable ranges,
 * and hold a streamed Connect call open through which the kfd-svm mover sends commands.
 * Reports and range changes arrive on a second connection.
 *
 * A process names its Slurm job (SLURM_JOB_ID) or gets an implicit job of its own, which
 * ends when the agent's stream closes (the process exited or the agent died). The stream
 * closing also fails the process's queued and running commands, so nothing waits for a dead
 * agent.
 */

#include <stdint.h>

#include "mover.h"
#include "varlink.h"

struct manager;

/* Implicit jobs: AGENT_JOB_BASE + pid, above any Slurm job id (32-bit) and below the replay
 * job. */
#define AGENT_JOB_BASE (UINT64_C(1) << 40)

struct agent_range {
        uint64_t start, length;
};

/* Where a command set PREFERRED_LOC (what GET reported after it), for ListRanges. */
struct agent_pref {
        uint64_t start, length;
        uint32_t gpu_id;     /* 0 = system memory */
};

#define AGENT_MAX_PREFS 256

struct agent {
        uint32_t pid;
        uint64_t job;
        bool implicit_job;
        struct varlink_call *stream;
        uint32_t gpu_ids[8];
        unsigned n_gpus;
        struct agent_range *ranges;
        size_t n_ranges;
        uint64_t commands, reports;
        struct spm_agent_command last;     /* the command sent last (one runs at a time) */
        struct agent_pref prefs[AGENT_MAX_PREFS];
        size_t n_prefs;
};

extern const struct varlink_interface agents_interface;
extern const char agent_idl[];

/* The link the kfd-svm mover sends commands through (userdata: the manager). */
int agents_send(void *userdata, const struct spm_agent_command *c);

/* Drops every agent without ending jobs (daemon shutdown: the agents reconnect to the next
 * daemon). */
void agents_free_all(struct manager *m);

struct agent *agents_find(const struct manager *m, uint32_t pid);

/* The gpu_id pid's agent last set as PREFERRED_LOC on a span overlapping [start, start+len)
 * (0 = system memory), or -1 when none is known. */
int64_t agents_preferred(const struct manager *m, uint32_t pid, uint64_t start, uint64_t len);
