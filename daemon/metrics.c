/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "metrics.h"
#include "spmtier/macro.h"

static void family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP spmtierd_%s %s\n# TYPE spmtierd_%s %s\n", name, help, name, type);
}

int metrics_format(const struct metrics_snapshot *s, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
#define NODE(name, type, help, fmt, v)                                  \
        do {                                                            \
                family(f, name, type, help);                            \
                fprintf(f, "spmtierd_" name " " fmt "\n", v);           \
        } while (0)
        NODE("epochs_total", "counter", "Policy epochs run.", "%" PRIu64, s->epochs);
        NODE("migrations_total", "counter", "Migrations carried out.", "%" PRIu64, s->migrations);
        NODE("migration_failures_total", "counter", "Migrations that failed.", "%" PRIu64,
             s->failures);
        NODE("migrated_to_gpu_bytes_total", "counter", "Bytes moved into VRAM.", "%" PRIu64,
             s->bytes_to_gpu);
        NODE("migrated_to_ram_bytes_total", "counter", "Bytes moved to system RAM.",
             "%" PRIu64, s->bytes_to_ram);
        NODE("observations_total", "counter", "Access observations applied.", "%" PRIu64,
             s->observations);
        NODE("benefit_seconds_total", "counter",
             "Modelled accessor time saved by the migrations carried out.", "%.6f",
             s->benefit_usec / 1e6);
        NODE("regions", "gauge", "Regions tracked by the policy engine.", "%" PRIu64, s->regions);
        NODE("frozen", "gauge", "1 when all migrations are frozen.", "%d", s->frozen ? 1 : 0);
        NODE("has_gpu", "gauge", "1 when the node has GPUs to manage.", "%d", s->has_gpu ? 1 : 0);
#undef NODE

#define PER_GPU(name, type, help, field)                                                 \
        do {                                                                             \
                family(f, name, type, help);                                             \
                for (unsigned g = 0; g < s->n_gpus; g++)                                 \
                        fprintf(f, "spmtierd_" name "{gpu=\"%u\"} %" PRIu64 "\n",        \
                                s->gpus[g].index, s->gpus[g].field);                     \
        } while (0)
        PER_GPU("gpu_vram_capacity_bytes", "gauge", "VRAM of the GPU.", capacity);
        PER_GPU("gpu_vram_tracked_bytes", "gauge", "Bytes of tracked regions in the GPU's VRAM.",
                used);
        PER_GPU("gpu_migrated_in_bytes_total", "counter", "Bytes moved into the GPU's VRAM.",
                bytes_in);
        PER_GPU("gpu_migrated_out_bytes_total", "counter", "Bytes moved out of the GPU's VRAM.",
                bytes_out);
#undef PER_GPU

        /* The driver's view, for GPUs the kfd-sysfs collector has read. */
#define PER_KFD_GPU(name, type, help, field)                                             \
        do {                                                                             \
                family(f, name, type, help);                                             \
                for (unsigned g = 0; g < s->n_gpus; g++)                                 \
                        if (s->gpus[g].kfd_seen)                                         \
                                fprintf(f, "spmtierd_" name "{gpu=\"%u\"} %" PRIu64 "\n", \
                                        s->gpus[g].index, s->gpus[g].field);             \
        } while (0)
        PER_KFD_GPU("gpu_driver_vram_used_bytes", "gauge",
                    "VRAM in use as the driver counts it (every BO, tracked or not).", driver_used);
        PER_KFD_GPU("gpu_driver_vram_total_bytes", "gauge", "VRAM size as the driver reports it.",
                    driver_total);
        PER_KFD_GPU("gpu_fill_limit_bytes", "gauge",
                    "What the engine may fill of the GPU's VRAM after the driver's other use.",
                    fill_limit);
        PER_KFD_GPU("gpu_kfd_faults_total", "counter",
                    "GPU page faults of the tracked processes (KFD sysfs counters).", faults);
        PER_KFD_GPU("gpu_kfd_pages_in_total", "counter",
                    "Pages the driver moved into VRAM for the tracked processes.", pages_in);
        PER_KFD_GPU("gpu_kfd_pages_out_total", "counter",
                    "Pages the driver moved out of VRAM for the tracked processes.", pages_out);
#undef PER_KFD_GPU

#define PER_JOB(name, type, help, fmt, expr)                                                \
        do {                                                                                \
                family(f, name, type, help);                                                \
                for (size_t i = 0; i < s->n_jobs; i++) {                                    \
                        const struct job *j = s->jobs[i];                                   \
                        fprintf(f, "spmtierd_" name "{job=\"%" PRIu64 "\",uid=\"%" PRIu32   \
                                "\"} " fmt "\n", j->id, j->uid, expr);                      \
                }                                                                           \
        } while (0)
        PER_JOB("job_migrations_total", "counter", "Migrations of the job.", "%" PRIu64,
                j->counters.migrations);
        PER_JOB("job_migration_failures_total", "counter", "Failed migrations of the job.",
                "%" PRIu64, j->counters.failures);
        PER_JOB("job_migrated_to_gpu_bytes_total", "counter", "Bytes of the job moved into VRAM.",
                "%" PRIu64, j->counters.bytes_to_gpu);
        PER_JOB("job_migrated_to_ram_bytes_total", "counter", "Bytes of the job moved to RAM.",
                "%" PRIu64, j->counters.bytes_to_ram);
        PER_JOB("job_benefit_seconds_total", "counter", "Modelled time saved for the job.",
                "%.6f", j->counters.benefit_usec / 1e6);
        PER_JOB("job_processes", "gauge", "Processes attached to the job.", "%zu", j->n_pids);
        PER_JOB("job_hints", "gauge", "Hints held for the job.", "%zu", j->n_hints);
        PER_JOB("job_frozen", "gauge", "1 when the job's migrations are frozen.", "%d",
                j->frozen ? 1 : 0);
#undef PER_JOB

        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

int metrics_write(const char *path, const struct metrics_snapshot *s) {
        _cleanup_free_ char *text = NULL;
        int r = metrics_format(s, &text);

        if (r < 0)
                return r;
        return write_file_atomic(path, text, strlen(text), 0644, /* durable= */ false);
}
