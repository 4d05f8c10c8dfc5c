/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Prometheus textfile metrics (for node_exporter's textfile collector): node-wide, per-GPU
 * and per-job counters and gauges, written atomically so a scrape never sees half a file.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs.h"

struct metrics_gpu {
        unsigned index;
        uint64_t capacity;
        uint64_t used;
        uint64_t bytes_in;
        uint64_t bytes_out;
        /* What the kfd-sysfs collector read (only when kfd_seen). */
        bool kfd_seen;
        uint64_t driver_used, driver_total, fill_limit, faults, pages_in, pages_out;
};

struct metrics_snapshot {
        uint64_t epochs;
        uint64_t migrations;
        uint64_t failures;
        uint64_t bytes_to_gpu;
        uint64_t bytes_to_ram;
        uint64_t observations;
        uint64_t regions;
        double benefit_usec;
        bool frozen;
        bool has_gpu;
        struct metrics_gpu gpus[SPM_MAX_GPUS];
        unsigned n_gpus;
        const struct job *const *jobs;
        size_t n_jobs;
};

/* Renders the text exposition format into *ret (malloc'd). Returns 0 or -ENOMEM. */
int metrics_format(const struct metrics_snapshot *s, char **ret);
/* Renders and replaces path atomically. Returns 0 or a negative errno. */
int metrics_write(const char *path, const struct metrics_snapshot *s);
