/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The manager: spmtierd's one sd-event loop and everything it owns — settings, the job
 * registry and its persisted state, the policy engine, collectors, the mover, Monitor
 * subscribers, timers, sd_notify. IPC handlers (methods.c) decode and authorise, then call
 * one manager_*() function; those return negative errnos the handlers map to typed errors.
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "agents.h"
#include "auth.h"
#include "collector.h"
#include "jobs.h"
#include "mover.h"
#include "settings.h"
#include "spmtier/machine.h"
#include "spmtier/policy.h"
#include "varlink.h"

#define SPMTIERD_DEFAULT_SOCKET "/run/spmtierd/io.spmtier.daemon"
#define SPMTIERD_DEFAULT_STATE_DIR "/var/lib/spmtierd"
#define SPMTIERD_INTERFACE "io.spmtier.daemon"

struct node_counters {
        uint64_t migrations;
        uint64_t failures;
        uint64_t bytes_to_gpu;
        uint64_t bytes_to_ram;
        uint64_t observations;
        uint64_t observations_ignored;
        double benefit_usec;
        uint64_t bytes_in[SPM_MAX_GPUS];
        uint64_t bytes_out[SPM_MAX_GPUS];
};

/* What the kfd-sysfs collector saw of one GPU (all zero without it). */
struct kfd_gpu_view {
        bool seen;               /* mem_info_vram_* read at least once */
        uint64_t driver_used;    /* mem_info_vram_used: every BO on the GPU */
        uint64_t driver_total;   /* mem_info_vram_total */
        uint64_t fill_limit;     /* what the engine was last told it may fill */
        uint64_t faults, pages_in, pages_out; /* sums of the tracked processes' deltas */
};

struct collector_instance {
        const struct spm_collector_ops *ops;
        void *state;
        bool ended;
};

struct monitor {
        struct varlink_call *call;
        uint64_t job;          /* UINT64_MAX = every job the subscriber may see */
        struct auth_peer peer;
};

struct manager_args {
        const char *config_path;   /* NULL = the default locations */
        const char *state_dir;
        const char *socket_path;
        bool socket_activation;    /* adopt LISTEN_FDS when present */
};

struct manager {
        sd_event *event;
        struct varlink_server *varlink;
        sd_event_source *epoch_timer, *housekeeping_timer, *metrics_timer;

        char *config_path;
        char *state_dir;
        char *socket_path;
        struct spmtierd_settings settings;
        char **config_files;
        char last_reload[640];
        char state_error[256];
        int64_t admin_gid;

        struct spm_machine machine;
        bool has_gpu;
        char no_gpu_reason[128];
        struct spm_engine *engine;     /* NULL when the node has no GPU */
        struct spm_plan plan;

        struct registry registry;
        struct json_object *finished;  /* JobSummary objects of ended jobs, oldest first */
        bool state_dirty;              /* counters changed since the last save */
        bool state_unsynced;           /* saved but not fsync'd yet */
        int journal_fd;                /* hints since the last snapshot (state.c) */
        unsigned journal_entries;

        struct collector_instance *collectors;
        size_t n_collectors;
        const struct spm_mover_ops *mover_ops;
        void *mover;

        struct monitor *monitors;
        size_t n_monitors;

        struct agent **agents;         /* io.spmtier.agent connections (agents.c) */
        size_t n_agents;
        struct spm_agent_link agent_link;
        bool stopping;                 /* tearing down: disconnects end nothing */

        uint64_t epoch;
        uint64_t start_usec;           /* CLOCK_MONOTONIC */
        struct node_counters counters;
        struct kfd_gpu_view kfd[SPM_MAX_GPUS];
        uint64_t gpu_fill[SPM_MAX_GPUS]; /* engine capacity per GPU before kfd-sysfs */
        char status[256];
        char last_status[256];         /* last STATUS= sent */
        bool loaded;                   /* state restored; saves allowed */
};

int manager_new(const struct manager_args *args, struct manager **ret);
struct manager *manager_free(struct manager *m);
static inline void manager_freep(struct manager **m) {
        if (*m)
                *m = manager_free(*m);
}
/* Binds or adopts the socket, starts timers, notifies READY. */
int manager_start(struct manager *m);
/* Runs the loop until SIGTERM/SIGINT; returns the exit code. */
int manager_run(struct manager *m);

/* ---- operations the IPC handlers call ---- */

uint64_t manager_now_realtime(void);
uint64_t manager_uptime_usec(const struct manager *m);
/* Renews a job's lease on any call naming it (STYLE: leases renewed by calls). */
void manager_touch_job(struct manager *m, struct job *j);

int manager_register_job(struct manager *m, const struct job_spec *spec, struct job **ret,
                         bool *ret_created);
/* Ends a job (UnregisterJob, or its lease ran out: reason "expired"); fills *ret_summary
 * (may be NULL) with a JobSummary object. Returns 0 or -ENOENT. */
int manager_end_job(struct manager *m, uint64_t id, const char *reason,
                    struct json_object **ret_summary);
int manager_attach(struct manager *m, struct job *j, uint32_t pid, struct job **ret_other);
int manager_detach(struct manager *m, uint32_t pid);
int manager_add_range(struct manager *m, uint32_t pid, uint64_t start, uint64_t length,
                      unsigned loc);
int manager_remove_range(struct manager *m, uint32_t pid, uint64_t start, uint64_t length);
int manager_hint(struct manager *m, const struct job_hint *h, uint64_t ttl_usec);
int manager_set_job_policy(struct manager *m, struct job *j, const char *name);
int manager_set_policy_overrides(struct manager *m, const struct policy_overrides *o);
int manager_freeze(struct manager *m, struct job *j, bool freeze);
int manager_drain(struct manager *m, unsigned gpu, uint64_t job_id, unsigned *ret_moves,
                  uint64_t *ret_bytes, unsigned *ret_failures);
/* Logs, publishes and hands moves to the mover (the epoch's path, for moves planned
 * elsewhere: an agent's reset after a restart, mode SPM_MOVE_HOME). */
void manager_submit_moves(struct manager *m, const struct spm_plan *plan, enum spm_move_mode mode,
                          const char *why);
/* Whether migrations of job_id (or all) are frozen: spmctl freeze, or policy none. */
bool manager_job_frozen(const struct manager *m, uint64_t job_id);
/* Re-reads the config. On failure the old config stays, *err says why. */
int manager_reload(struct manager *m, struct config_error *err);
/* Adds a Monitor subscriber (the call is referenced). Returns 0, -EUSERS over MaxMonitors. */
int manager_add_monitor(struct manager *m, struct varlink_call *call, uint64_t job,
                        const struct auth_peer *peer);
/* Sends an Event to every subscriber that may see `job` (UINT64_MAX: admins only). */
void manager_emit(struct manager *m, struct json_object *event, uint64_t job);

/* The effective engine config (settings + SetPolicy overrides). */
void manager_engine_config(const struct manager *m, struct spm_engine_config *ret);
/* Saves the registry now, before the reply that depends on it: a kill -9 after the reply
 * loses nothing. The fsync that makes it survive a power cut follows within a second
 * (housekeeping), so a burst of Hints costs one fsync, not one each. Records (and logs) a
 * failure in m->state_error. */
int manager_save_state(struct manager *m);
int manager_sync_state(struct manager *m);
const char *manager_status_line(struct manager *m);
