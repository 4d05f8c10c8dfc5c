/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * spmtierd's settings: the struct, its declarative table (one row per key of
 * spmtierd.conf(5); config/spmtierd.conf documents the same rows) and loading with the
 * default file locations. Times are usec, sizes bytes (STYLE R13).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "topology.h"

#define SPMTIERD_CONFIG_FILE "/etc/spmtierd.conf"

/* The replay collector's processes belong to this job: an id no Slurm job has (Slurm ids are
 * 32-bit) and varlink's int64 can carry. Job id 0 is the engine's "every job". */
#define SPMTIERD_REPLAY_JOB INT64_MAX

struct spmtierd_settings {
        /* [Daemon] */
        int log_level;
        char *admin_group;          /* group name or gid; NULL = root only */
        char *proc_root;
        char *sys_root;
        char *kfd_device;           /* kfd-smi on hardware */
        char *fake_kfd_root;        /* NULL = real hardware */
        uint64_t lease_usec;        /* default lease TTL */
        /* [Machine] */
        char *profile;              /* "auto", "none" or a machine profile name */
        unsigned gpus;              /* 0 = what the profile or detection says */
        int fast_node;              /* numa-sysfs: -1 = by HMAT/tiers */
        uint64_t node_capacity[SPM_TOPO_MAX_NODES]; /* numa-sysfs: 0 = MemTotal */
        /* [Policy] */
        char *default_policy;
        uint64_t epoch_usec;
        uint64_t half_life_usec;    /* 0 = 4 epochs */
        double hysteresis;
        unsigned min_residency_epochs;
        unsigned pingpong_trips;
        unsigned pingpong_window_epochs;
        unsigned quarantine_epochs;
        uint64_t migrate_budget;    /* bytes per link and direction per epoch; 0 = machine's */
        uint64_t granule;           /* 0 = machine's */
        unsigned max_regions_per_range;
        /* [Collect] */
        char **collectors;
        /* [Replay] */
        char *replay_trace;
        bool replay_loop;
        /* [Move] */
        char *mover;
        unsigned sim_fail_every;
        uint64_t command_timeout_usec; /* kfd-svm */
        /* [Metrics] */
        char *metrics_path;         /* NULL = off */
        uint64_t metrics_interval_usec;
        /* [Limits] */
        unsigned max_jobs;
        unsigned max_pids_per_job;
        unsigned max_hints_per_job;
        unsigned max_monitors;
        unsigned max_connections;
        unsigned max_connections_per_user;
};

extern const struct config_item spmtierd_config_table[];

/* Names known to the daemon (policies, collectors, movers); NULL-terminated. */
extern const char *const spmtierd_policy_names[];
extern const char *const spmtierd_collector_names[];
extern const char *const spmtierd_mover_names[];

/* Loads the config: `path` and its "<path>.d/" drop-ins when path is given (it must exist),
 * else /etc/spmtierd.conf (optional) with drop-ins from /etc, /run, /usr/local/lib and
 * /usr/lib spmtierd.conf.d/. Fills *ret (freed first with spmtierd_settings_done() by the
 * caller when it held a config) only on success; *ret_files (may be NULL) lists the files
 * read. Returns 0, -EINVAL with *err, or another negative errno. */
int spmtierd_settings_load(const char *path, struct spmtierd_settings *ret, char ***ret_files,
                           struct config_error *err);
void spmtierd_settings_done(struct spmtierd_settings *s);
void spmtierd_settings_print(const struct spmtierd_settings *s, FILE *f);
