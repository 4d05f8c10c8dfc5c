/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Speed and memory of the policy engine, against plain reference loops measured in the same
 * run (the ratios are the figures that travel between machines):
 *
 *   BENCH epoch_usec / qsort_usec / epoch_vs_qsort   one epoch over 1,000,000 regions vs glibc
 *                                                    qsort of 1,000,000 uint64
 *   BENCH ingest_samples_per_sec / ingest_vs_scatter 20 M observations vs 20 M increments
 *                                                    scattered into an array of the region count
 *   BENCH bytes_per_region / sizeof_region           heap bytes per tracked region
 *
 * Inputs come from a fixed-seed generator, so every run sees the same work. Each timing is the
 * best of a few repetitions (the machine is shared). Never run as a test.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../libpolicy/engine-internal.h"
#include "spmtier/macro.h"
#include "spmtier/policy.h"

#define N_REGIONS 1000000ULL
#define N_PROCS 16
#define N_SAMPLES 20000000ULL
#define CHUNK 1000000ULL
#define G2 (2ULL << 20)
#define BASE 0x7f0000000000ULL
#define REPS 3

static uint64_t rng_state = 0x5eed5eed12345678ULL;

static uint64_t rng(void) {
        /* splitmix64 */
        uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

static double now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

static double bench_qsort(void) {
        uint64_t *v = malloc(N_REGIONS * sizeof(*v)), *w = malloc(N_REGIONS * sizeof(*w));
        double best = 1e30;

        if (!v || !w)
                abort();
        for (uint64_t i = 0; i < N_REGIONS; i++)
                v[i] = rng();
        for (int r = 0; r < REPS; r++) {
                memcpy(w, v, N_REGIONS * sizeof(*w));
                double t = now_usec();
                qsort(w, N_REGIONS, sizeof(*w), u64_cmp);
                best = MIN(best, now_usec() - t);
        }
        free(v);
        free(w);
        return best;
}

static uint64_t regions_per_proc(void) {
        return N_REGIONS / N_PROCS;
}

/* 1,000,000 regions of 2 MiB in 16 processes of one job using all 8 GPUs. */
static struct spm_engine *make_engine(void) {
        struct spm_machine m;
        struct spm_engine_config c;
        struct spm_engine *e;
        struct spm_job j = { .id = 1, .gpu_mask = 0xff };

        if (spm_machine_profile("mi250x-gcd", &m) < 0)
                abort();
        spm_engine_config_defaults(&m, &c);
        c.max_regions_per_range = 1 << 20;
        if (spm_engine_new(&m, &c, &e) < 0)
                abort();
        for (unsigned g = 0; g < 8; g++)
                j.vram_quota[g] = UINT64_MAX;
        if (spm_engine_job_set(e, &j) < 0)
                abort();
        for (uint32_t p = 0; p < N_PROCS; p++) {
                if (spm_engine_process_add(e, 1, 1000 + p) < 0 ||
                    spm_engine_range_add(e, 1000 + p, BASE, regions_per_proc() * G2, 0) < 0)
                        abort();
        }
        return e;
}

/* One epoch's observations: a skewed working set. Process p's GPU is p % 8; a tenth of the
 * regions are touched each epoch (a hot core every epoch, a warm ring now and then), a few
 * by the CPU. */
static size_t make_epoch_obs(struct spm_access *o, unsigned epoch) {
        size_t n = 0;
        uint64_t per = regions_per_proc();

        for (uint32_t p = 0; p < N_PROCS; p++)
                for (uint64_t k = 0; k < per / 10; k++) {
                        uint64_t r = rng();
                        uint64_t idx = (k < per / 40) ? (k * 7 + epoch) % per : r % per;
                        bool cpu = (r >> 60) == 0;
                        o[n++] = (struct spm_access) {
                                .pid = 1000 + p,
                                .accessor = (uint8_t) (cpu ? 0 : 1 + p % 8),
                                .addr = BASE + idx * G2,
                                .len = G2,
                                .reads = (k < per / 40 ? 200000 : 20000) + (r >> 48) % 1000,
                        };
                }
        return n;
}

static void bench_epoch(double qsort_usec) {
        struct spm_engine *e = make_engine();
        struct spm_access *o = malloc(N_REGIONS / 10 * sizeof(*o) + 64 * sizeof(*o));
        struct spm_plan plan;
        double best = 1e30, sum = 0;
        unsigned n_timed = 0;
        uint64_t moves = 0;

        if (!o)
                abort();
        spm_plan_init(&plan);
        for (unsigned ep = 0; ep < 24; ep++) {
                size_t n = make_epoch_obs(o, ep);
                (void) spm_engine_observe_batch(e, o, n);
                double t = now_usec();
                int r = spm_engine_epoch(e, (usec_t) ep * 10000, &plan);
                double dt = now_usec() - t;
                if (r < 0)
                        abort();
                moves += (uint64_t) r;
                /* The first epochs fill VRAM from nothing; the steady state is what counts. */
                if (ep >= 8) {
                        best = MIN(best, dt);
                        sum += dt;
                        n_timed++;
                }
        }
        struct spm_engine_stats st;
        spm_engine_get_stats(e, &st);
        printf("BENCH epoch_usec %.0f usec\n", best);
        printf("BENCH epoch_mean_usec %.0f usec\n", sum / n_timed);
        printf("BENCH qsort_1m_usec %.0f usec\n", qsort_usec);
        printf("BENCH epoch_vs_qsort %.3f ratio\n", best / qsort_usec);
        printf("BENCH epoch_mean_vs_qsort %.3f ratio\n", sum / n_timed / qsort_usec);
        printf("# epoch bench: %" PRIu64 " regions, %" PRIu64 " moves planned in 24 epochs, "
               "%" PRIu64 " bytes to GPUs\n", st.n_regions, moves, st.bytes_to_gpu);
        printf("BENCH bytes_per_region %.1f bytes\n", (double) st.memory_bytes / st.n_regions);
        printf("BENCH sizeof_region %zu bytes\n", sizeof(struct region));
        spm_plan_done(&plan);
        free(o);
        spm_engine_free(e);
}

static void bench_ingest(void) {
        struct spm_engine *e = make_engine();
        struct spm_access *o = malloc(CHUNK * sizeof(*o));
        uint32_t *idx = malloc(CHUNK * sizeof(*idx));
        uint64_t *counts = calloc(N_REGIONS, sizeof(*counts));
        double best_ingest = 1e30, best_scatter = 1e30;
        uint64_t per = regions_per_proc();

        if (!o || !idx || !counts)
                abort();
        /* The same random sample stream for both loops: region i of process i / per. */
        for (uint64_t k = 0; k < CHUNK; k++) {
                uint64_t r = rng() % (per * N_PROCS);
                idx[k] = (uint32_t) r;
                o[k] = (struct spm_access) {
                        .pid = (uint32_t) (1000 + r / per),
                        .accessor = (uint8_t) (1 + (r / per) % 8),
                        .addr = BASE + (r % per) * G2,
                        .len = G2,
                        .reads = 64,
                };
        }
        for (int rep = 0; rep < REPS; rep++) {
                double t = now_usec();
                for (uint64_t s = 0; s < N_SAMPLES; s += CHUNK)
                        (void) spm_engine_observe_batch(e, o, CHUNK);
                best_ingest = MIN(best_ingest, now_usec() - t);

                t = now_usec();
                for (uint64_t s = 0; s < N_SAMPLES; s += CHUNK)
                        for (uint64_t k = 0; k < CHUNK; k++)
                                counts[idx[k]]++;
                __asm__ volatile("" : : "r"(counts) : "memory");
                best_scatter = MIN(best_scatter, now_usec() - t);
        }
        printf("BENCH ingest_samples_per_sec %.3g samples/s\n", N_SAMPLES / best_ingest * 1e6);
        printf("BENCH scatter_per_sec %.3g increments/s\n", N_SAMPLES / best_scatter * 1e6);
        printf("BENCH ingest_vs_scatter %.2f ratio\n", best_ingest / best_scatter);
        free(o);
        free(idx);
        free(counts);
        spm_engine_free(e);
}

int main(void) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        double q = bench_qsort();
        bench_epoch(q);
        bench_ingest();
        return 0;
}
