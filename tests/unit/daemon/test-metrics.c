/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "metrics.h"
#include "test.h"

static struct job job_a = { .id = 7, .uid = 1000, .n_pids = 2, .n_hints = 3, .frozen = true,
                            .counters = { .migrations = 5, .failures = 1,
                                          .bytes_to_gpu = 4096, .bytes_to_ram = 8192,
                                          .benefit_usec = 2500000 } };
static struct job job_b = { .id = 8, .uid = 1001 };

static struct metrics_snapshot snapshot(void) {
        static const struct job *jobs[] = { &job_a, &job_b };
        struct metrics_snapshot s = {
                .epochs = 100, .migrations = 5, .failures = 1, .bytes_to_gpu = 4096,
                .bytes_to_ram = 8192, .observations = 12345, .regions = 17,
                .benefit_usec = 2500000, .has_gpu = true, .n_gpus = 2,
                .jobs = jobs, .n_jobs = 2,
        };
        s.gpus[0] = (struct metrics_gpu) { .index = 0, .capacity = 64ULL << 30, .used = 1 << 20,
                                           .bytes_in = 4096 };
        s.gpus[1] = (struct metrics_gpu) { .index = 1, .capacity = 64ULL << 30, .bytes_out = 512 };
        /* kfd-sysfs has read GPU 1 only: its driver figures appear, GPU 0's do not. */
        s.gpus[1].kfd_seen = true;
        s.gpus[1].driver_used = 3 << 20;
        s.gpus[1].driver_total = 64ULL << 30;
        s.gpus[1].fill_limit = 60ULL << 30;
        s.gpus[1].faults = 9;
        s.gpus[1].pages_in = 1024;
        s.gpus[1].pages_out = 256;
        return s;
}

TEST(format_has_every_family_once_with_type_and_values) {
        struct metrics_snapshot s = snapshot();
        char *text = NULL;

        ASSERT_OK(metrics_format(&s, &text));
        static const char *const want[] = {
                "spmtierd_epochs_total 100\n",
                "spmtierd_migrations_total 5\n",
                "spmtierd_migration_failures_total 1\n",
                "spmtierd_migrated_to_gpu_bytes_total 4096\n",
                "spmtierd_benefit_seconds_total 2.500000\n",
                "spmtierd_regions 17\n",
                "spmtierd_has_gpu 1\n",
                "spmtierd_gpu_vram_capacity_bytes{gpu=\"1\"} 68719476736\n",
                "spmtierd_gpu_vram_tracked_bytes{gpu=\"0\"} 1048576\n",
                "spmtierd_gpu_migrated_out_bytes_total{gpu=\"1\"} 512\n",
                "spmtierd_job_migrations_total{job=\"7\",uid=\"1000\"} 5\n",
                "spmtierd_job_migrations_total{job=\"8\",uid=\"1001\"} 0\n",
                "spmtierd_job_processes{job=\"7\",uid=\"1000\"} 2\n",
                "spmtierd_job_hints{job=\"7\",uid=\"1000\"} 3\n",
                "spmtierd_job_frozen{job=\"7\",uid=\"1000\"} 1\n",
                "spmtierd_job_benefit_seconds_total{job=\"7\",uid=\"1000\"} 2.500000\n",
                "# TYPE spmtierd_job_hints gauge\n",
                "spmtierd_gpu_driver_vram_used_bytes{gpu=\"1\"} 3145728\n",
                "spmtierd_gpu_fill_limit_bytes{gpu=\"1\"} 64424509440\n",
                "spmtierd_gpu_kfd_faults_total{gpu=\"1\"} 9\n",
                "spmtierd_gpu_kfd_pages_out_total{gpu=\"1\"} 256\n",
                "# TYPE spmtierd_gpu_kfd_pages_in_total counter\n",
                "# TYPE spmtierd_migrations_total counter\n",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                if (!strstr(text, want[i]))
                        fprintf(stderr, "missing: %s", want[i]);
                ASSERT_NOT_NULL(strstr(text, want[i]));
        }
        /* Each family has exactly one HELP and one TYPE line; every sample line belongs to a
         * family declared before it. */
        unsigned help = 0, type = 0, samples = 0;
        char last_family[128] = "";
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "# HELP ", 7) == 0)
                        help++;
                else if (strncmp(line, "# TYPE ", 7) == 0) {
                        type++;
                        sscanf(line + 7, "%127s", last_family);
                } else {
                        samples++;
                        ASSERT_TRUE(strncmp(line, last_family, strlen(last_family)) == 0);
                }
        }
        ASSERT_EQ(help, type);
        ASSERT_EQ(type, 28);
        ASSERT_EQ(samples, 10 + 4 * 2 + 6 * 1 + 8 * 2);
        ASSERT_NULL(strstr(text, "spmtierd_gpu_driver_vram_used_bytes{gpu=\"0\"}"));
        free(text);
}

TEST(write_is_atomic_and_replaces) {
        char dir[] = "/tmp/test-metrics-XXXXXX", path[128], *text = NULL;
        struct metrics_snapshot s = snapshot();
        size_t size;

        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/spmtierd.prom", dir);
        ASSERT_OK(metrics_write(path, &s));
        s.epochs = 101;
        s.n_jobs = 0;
        ASSERT_OK(metrics_write(path, &s));
        ASSERT_OK(read_file_full(path, 1 << 20, &text, &size));
        ASSERT_NOT_NULL(strstr(text, "spmtierd_epochs_total 101\n"));
        ASSERT_NULL(strstr(text, "job=\"7\""));
        free(text);
        struct stat st;
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0644);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
        ASSERT_EQ(system(cmd), 0);
        /* A directory that does not exist is an error, not a crash or a stray file. */
        snprintf(path, sizeof(path), "%s/missing/spmtierd.prom", dir);
        ASSERT_ERROR(metrics_write(path, &s), ENOENT);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ASSERT_EQ(system(cmd), 0);
}

TEST_MAIN()
