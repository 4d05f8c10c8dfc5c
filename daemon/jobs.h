/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The job registry: what the daemon promised its clients and persists (state.c) — job
 * leases, attached processes, hints, per-job settings and counters. Pure bookkeeping: no
 * syscalls, no clock (every function that cares takes `now`, CLOCK_REALTIME usec, because
 * leases outlive the process and the boot), no logging. The policy engine's view is derived
 * from it by the manager.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/machine.h"
#include "spmtier/policy.h"

#define JOB_POLICY_MAX 32
#define JOB_QUOTA_UNLIMITED UINT64_MAX
#define JOB_TTL_INFINITE 0 /* internal jobs (the replay job) never expire */

struct job_hint {
        uint32_t pid;
        uint64_t start;
        uint64_t length;
        enum spm_hint_kind kind;
        int gpu;                       /* -1 = none */
        uint64_t expires_usec;         /* realtime; 0 = until cleared */
};

struct job_counters {
        uint64_t migrations;
        uint64_t failures;
        uint64_t bytes_to_gpu;
        uint64_t bytes_to_ram;
        uint64_t hints;
        double benefit_usec;
};

struct job {
        uint64_t id;
        uint32_t uid;
        uint32_t gpu_mask;
        uint64_t vram_quota;           /* bytes per GPU; JOB_QUOTA_UNLIMITED = none */
        char policy[JOB_POLICY_MAX];
        bool frozen;
        bool internal;                 /* made by the daemon (replay); never persisted */
        uint64_t ttl_usec;             /* JOB_TTL_INFINITE = never expires */
        uint64_t expires_usec;         /* realtime */
        uint64_t registered_usec;      /* realtime */
        uint32_t *pids;
        size_t n_pids;
        struct job_hint *hints;
        size_t n_hints;
        struct job_counters counters;
};

struct job_limits {
        unsigned max_jobs;
        unsigned max_pids_per_job;
        unsigned max_hints_per_job;
};

/* Node-wide policy settings changed at run time (SetPolicy); they override the config's and
 * persist. A bit in `set` per field. */
enum {
        POLICY_SET_EPOCH = 1U << 0,
        POLICY_SET_HALF_LIFE = 1U << 1,
        POLICY_SET_HYSTERESIS = 1U << 2,
        POLICY_SET_MIN_RESIDENCY = 1U << 3,
        POLICY_SET_PINGPONG_TRIPS = 1U << 4,
        POLICY_SET_PINGPONG_WINDOW = 1U << 5,
        POLICY_SET_QUARANTINE = 1U << 6,
        POLICY_SET_BUDGET = 1U << 7,
};

struct policy_overrides {
        unsigned set;
        uint64_t epoch_usec;
        uint64_t half_life_usec;
        double hysteresis;
        unsigned min_residency_epochs;
        unsigned pingpong_trips;
        unsigned pingpong_window_epochs;
        unsigned quarantine_epochs;
        uint64_t migrate_budget;
};

struct registry {
        struct job **jobs;             /* sorted by id */
        size_t n_jobs;
        struct job_limits limits;
        bool frozen;                   /* node-wide freeze */
        struct policy_overrides policy;
};

/* What RegisterJob asks for. */
struct job_spec {
        uint64_t id;
        uint32_t uid;
        uint32_t gpu_mask;
        uint64_t vram_quota;
        const char *policy;
        uint64_t ttl_usec;
        bool internal;
};

void registry_init(struct registry *r, const struct job_limits *limits);
void registry_done(struct registry *r);
struct job *job_free(struct job *j);
static inline void job_freep(struct job **j) {
        if (*j)
                *j = job_free(*j);
}

/* Registers a job, or updates and renews it when the id exists (*ret_created says which).
 * Returns 0, -ENOSPC (MaxJobs), -EINVAL (empty policy name or one too long), -ENOMEM. */
int registry_register(struct registry *r, const struct job_spec *spec, uint64_t now,
                      struct job **ret, bool *ret_created);
struct job *registry_find(const struct registry *r, uint64_t id);
/* Renews a lease: expires = now + ttl (ttl 0 keeps the job's TTL). */
void registry_renew(struct job *j, uint64_t ttl_usec, uint64_t now);
/* Takes a job out of the registry and hands it to the caller (*ret), or -ENOENT. */
int registry_remove(struct registry *r, uint64_t id, struct job **ret);
/* The first job whose lease ended by `now`, or NULL (end it, then ask again). */
struct job *registry_first_expired(const struct registry *r, uint64_t now);

/* The job a pid is attached to, or NULL. */
struct job *registry_find_pid(const struct registry *r, uint32_t pid);
/* Returns 0 (attached), 1 (already attached to this job), -EEXIST (attached to another
 * job: *ret_other gets it if not NULL), -ENOSPC, -ENOMEM. */
int registry_attach(struct registry *r, struct job *j, uint32_t pid, struct job **ret_other);
/* Detaches pid and drops its hints. Returns 0 or -ENOENT. */
int registry_detach(struct registry *r, uint32_t pid);

/* Records a hint for an attached pid. A hint on the same span replaces it; kind NONE
 * removes every hint overlapping the span (returns how many). Returns >= 0, -ENOSPC
 * (MaxHintsPerJob), -ENOENT (pid not attached), -EINVAL, -ENOMEM. */
int registry_hint(struct registry *r, const struct job_hint *h);
/* Drops hints whose TTL ended by now; returns how many. */
size_t registry_expire_hints(struct registry *r, uint64_t now);
size_t registry_n_hints(const struct registry *r);
size_t registry_n_pids(const struct registry *r);

/* Hint kinds as the varlink interface spells them (hot, cold, pin_gpu, pin_ram, streaming,
 * none); from_string also takes the trace format's "pin-gpu"/"pin-ram". Returns NULL or
 * _SPM_HINT_KIND_INVALID for unknown values. */
const char *job_hint_kind_to_string(enum spm_hint_kind k);
enum spm_hint_kind job_hint_kind_from_string(const char *s);

/* gpu_mask from GPU indices; -EINVAL for an index >= SPM_MAX_GPUS. */
int job_gpu_mask(const int64_t *gpus, size_t n, uint32_t *ret);
