/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The engine: regions, observations, heat, placement and the plan. */

#include <limits.h>

#include "engine-fixture.h"

TEST(config_validation) {
        struct fx f = {};
        struct spm_engine *e = NULL;

        fx_config(&f);
        static const uint64_t bad_granules[] = { 0, 2048, 3 * 4096, 2ULL << 30 };
        for (size_t i = 0; i < ELEMENTSOF(bad_granules); i++) {
                struct spm_engine_config c = f.c;
                c.granule = bad_granules[i];
                ASSERT_ERROR(spm_engine_new(&f.m, &c, &e), EINVAL);
                ASSERT_NULL(e);
        }
        static const uint64_t good_granules[] = { 4096, 64 * 1024, 2 * MiB, 1ULL << 30 };
        for (size_t i = 0; i < ELEMENTSOF(good_granules); i++) {
                struct spm_engine_config c = f.c;
                c.granule = good_granules[i];
                ASSERT_OK(spm_engine_new(&f.m, &c, &e));
                e = spm_engine_free(e);
        }
        struct spm_engine_config c = f.c;
        c.hysteresis = 0.5;
        ASSERT_ERROR(spm_engine_new(&f.m, &c, &e), EINVAL);
        ASSERT_EQ(f.c.granule, 2 * MiB);
        ASSERT_EQ(f.c.half_life_usec, 4 * EPOCH);
        ASSERT_ERROR(spm_engine_set_migrate_budget(NULL, G2), EINVAL);
}

TEST(names) {
        for (unsigned r = 0; r < _SPM_REASON_MAX; r++)
                ASSERT_NOT_NULL(spm_reason_to_string((enum spm_reason) r));
        ASSERT_NULL(spm_reason_to_string(_SPM_REASON_MAX));
        for (unsigned k = 0; k < _SPM_HINT_KIND_MAX; k++)
                ASSERT_EQ(spm_hint_kind_from_string(spm_hint_kind_to_string((enum spm_hint_kind) k)),
                          k);
        ASSERT_EQ(spm_hint_kind_from_string("lukewarm"), _SPM_HINT_KIND_INVALID);
        ASSERT_STREQ(spm_hint_kind_to_string(SPM_HINT_PIN_GPU), "pin-gpu");
}

TEST(jobs_processes_ranges) {
        struct fx f = {};
        struct spm_engine_stats st;

        fx_config(&f);
        fx_start(&f, 8, 4, 1);
        ASSERT_ERROR(spm_engine_process_add(f.e, 99, 1), ENOENT);
        struct spm_job j2 = { .id = 8, .gpu_mask = 2 };
        ASSERT_EQ(spm_engine_job_set(f.e, &j2), 0);
        ASSERT_EQ(spm_engine_job_set(f.e, &j2), 1);
        ASSERT_ERROR(spm_engine_process_add(f.e, 8, PID), EEXIST);
        ASSERT_ERROR(spm_engine_range_add(f.e, 1234, BASE, G2, 0), ENOENT);
        ASSERT_ERROR(spm_engine_range_add(f.e, PID, BASE + 1, G2, 0), EINVAL);
        ASSERT_ERROR(spm_engine_range_add(f.e, PID, BASE, G2, 42), EINVAL);

        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.n_regions, 8);
        ASSERT_EQ_U(st.used[SPM_LOC_SYSMEM], 8 * G2);

        /* An unaligned range: its first and last regions stop at the granule. */
        ASSERT_OK(spm_engine_range_add(f.e, PID, BASE + 100 * G2 + 3 * 4096, 2 * G2, 0));
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.n_regions, 8 + 3);
        /* An overlapping range merges with the known one and keeps its regions. */
        ASSERT_OK(spm_engine_range_add(f.e, PID, BASE + 6 * G2, 4 * G2, 0));
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.n_regions, 10 + 3);
        ASSERT_EQ_U(st.used[SPM_LOC_SYSMEM], 12 * G2);

        /* munmap of a middle part splits the range in two. */
        ASSERT_OK(spm_engine_range_remove(f.e, PID, BASE + 2 * G2, G2 + 4096));
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.used[SPM_LOC_SYSMEM], 11 * G2 - 4096);
        struct spm_access a = { .pid = PID, .accessor = 0, .addr = BASE + 2 * G2, .len = 4096,
                                .reads = 1 };
        ASSERT_EQ(spm_engine_observe(f.e, &a), 0);
        a.addr = BASE + 3 * G2 + 4096;
        ASSERT_EQ(spm_engine_observe(f.e, &a), 1);
        ASSERT_ERROR(spm_engine_range_remove(f.e, PID, BASE + 1000 * G2, G2), ENOENT);

        ASSERT_OK(spm_engine_job_remove(f.e, JOB));
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.n_regions, 0);
        ASSERT_EQ_U(st.n_processes, 0);
        ASSERT_EQ_U(st.used[SPM_LOC_SYSMEM], 0);
        ASSERT_ERROR(spm_engine_process_remove(f.e, PID), ENOENT);
        fx_stop(&f);
}

TEST(observe_lookup) {
        struct fx f = {};
        struct spm_engine_stats st;

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        static const struct {
                uint32_t pid;
                uint64_t addr, len;
                uint8_t acc;
                int expect;
        } table[] = {
                { PID, BASE, 4096, 0, 1 },
                { PID, BASE + 4 * G2 - 4096, 4096, 1, 1 },
                { PID, BASE + 4 * G2, 4096, 1, 0 },     /* past the range */
                { PID, BASE - 4096, 4096, 1, 0 },
                { 1, BASE, 4096, 1, 0 },                /* unknown pid */
                { PID, BASE + G2 - 4096, 2 * 4096, 1, 1 }, /* straddles two regions */
                { PID, BASE, 4096, 9, -EINVAL },        /* no such accessor */
                { PID, BASE, 0, 0, -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct spm_access a = { .pid = table[i].pid, .accessor = table[i].acc,
                                        .addr = table[i].addr, .len = table[i].len, .reads = 8 };
                ASSERT_EQ(spm_engine_observe(f.e, &a), table[i].expect);
        }
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.observations, 6);
        ASSERT_EQ_U(st.observations_ignored, 3);

        /* The straddling access split its 16 reads 8/8 between the two regions. */
        fx_epoch(&f);
        struct region_list *l = malloc(sizeof(*l));
        fx_regions(&f, l);
        ASSERT_EQ_U(l->n, 4);
        ASSERT_NEAR(l->r[0].heat[1] / l->r[1].heat[1], 1.0, 1e-6);
        ASSERT_TRUE(l->r[1].heat[1] > 0);
        free(l);
        fx_stop(&f);
}

TEST(decay_halves_after_half_life) {
        static const unsigned half_lives[] = { 1, 2, 4, 10 };

        for (size_t i = 0; i < ELEMENTSOF(half_lives); i++) {
                struct fx f = {};
                struct region_list *l = malloc(sizeof(*l));

                fx_config(&f);
                f.c.half_life_usec = half_lives[i] * EPOCH;
                fx_start(&f, 2, 4, 1);
                fx_touch(&f, 0, SPM_ACC_GPU(0), 1000);
                fx_epoch(&f);
                fx_regions(&f, l);
                double h0 = l->r[0].heat[SPM_ACC_GPU(0)];
                ASSERT_TRUE(h0 > 0);
                for (unsigned k = 0; k < half_lives[i]; k++)
                        fx_epoch(&f);
                fx_regions(&f, l);
                ASSERT_NEAR(l->r[0].heat[SPM_ACC_GPU(0)] / h0, 0.5, 1e-5);
                ASSERT_EQ(l->r[1].heat[SPM_ACC_GPU(0)], 0);
                free(l);
                fx_stop(&f);
        }
}

TEST(steady_rate_reads_as_accesses_per_epoch) {
        struct fx f = {};
        struct region_list *l = malloc(sizeof(*l));

        fx_config(&f);
        fx_start(&f, 1, 4, 1);
        for (unsigned k = 0; k < 200; k++) {
                fx_touch(&f, 0, SPM_ACC_CPU, 1000);
                fx_epoch(&f);
        }
        fx_regions(&f, l);
        /* After a decay step the rate of a steady 1000/epoch reads 1000 * 2^(-1/4). */
        ASSERT_NEAR(l->r[0].heat[SPM_ACC_CPU], 1000 * exp2(-0.25), 1.0);
        free(l);
        fx_stop(&f);
}

/* GPU reads per epoch that make a 2 MiB region clearly worth VRAM: four sweeps. */
#define HOT (4 * G2 / 64)

TEST(hot_regions_move_and_coalesce) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 16, 8, 1);
        for (unsigned k = 0; k < 3; k++) {
                /* Granules 2-5 and 9 are hot; the rest is never touched. */
                static const unsigned hot[] = { 2, 3, 4, 5, 9 };
                for (size_t i = 0; i < ELEMENTSOF(hot); i++)
                        fx_touch(&f, hot[i], SPM_ACC_GPU(0), HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                if (n == 0)
                        continue;
                /* All moved in one epoch: two ranges, the 4-granule one coalesced. */
                ASSERT_EQ(n, 2);
                uint64_t lens[2] = { f.plan.moves[0].length, f.plan.moves[1].length };
                ASSERT_TRUE((lens[0] == 4 * G2 && lens[1] == G2) ||
                            (lens[1] == 4 * G2 && lens[0] == G2));
                for (int i = 0; i < n; i++) {
                        ASSERT_EQ(f.plan.moves[i].to, SPM_LOC_GPU(0));
                        ASSERT_EQ(f.plan.moves[i].reason, SPM_REASON_HOT);
                        ASSERT_EQ(f.plan.moves[i].pid, PID);
                        ASSERT_EQ_U(f.plan.moves[i].job_id, JOB);
                }
                /* Highest benefit density first. */
                ASSERT_TRUE(f.plan.moves[0].benefit_usec / f.plan.moves[0].length >=
                            f.plan.moves[1].benefit_usec / f.plan.moves[1].length);
                break;
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + 3 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + 9 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + 0 * G2), SPM_LOC_SYSMEM);
        ASSERT_EQ(fx_loc_of(&f, BASE + 6 * G2), SPM_LOC_SYSMEM);
        /* Nothing moves once placed. */
        for (unsigned k = 0; k < 5; k++) {
                fx_touch(&f, 2, SPM_ACC_GPU(0), HOT);
                ASSERT_EQ(fx_epoch(&f), 0);
        }
        fx_stop(&f);
}

TEST(no_move_without_payoff) {
        /* Table: GPU reads per epoch, epochs touched in a row, whether it must end in VRAM. */
        static const struct {
                uint64_t reads;
                unsigned epochs;
                bool moves;
        } table[] = {
                { G2 / 64, 1, false },          /* streamed once: one sweep, no reuse */
                /* Intense, seen in one epoch only: a new use is scored at its exact rate
                 * (heat corrected for the EWMA window it has filled), and a quarter of the
                 * horizon at 4 sweeps an epoch pays twice the copy. Before the correction
                 * the EWMA read 1/6 of the rate and this stayed in RAM. */
                { 4 * G2 / 64, 1, true },
                { 4 * G2 / 64 / 8, 1, false },  /* the same, saving less than it costs */
                { G2 / 64 / 16, 10, false },    /* lukewarm: saves less than it costs */
                { G2 / 64, 6, true },           /* one sweep every epoch: pays quickly */
                { 4 * G2 / 64, 3, true },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct fx f = {};
                fx_config(&f);
                fx_start(&f, 4, 4, 1);
                for (unsigned k = 0; k < table[i].epochs; k++) {
                        fx_touch(&f, 1, SPM_ACC_GPU(0), table[i].reads);
                        fx_epoch(&f);
                        fx_check_plan(&f, 0);
                }
                for (unsigned k = 0; k < 8; k++) {
                        fx_epoch(&f);
                        fx_check_plan(&f, 0);
                }
                ASSERT_EQ(fx_loc_of(&f, BASE + G2) == SPM_LOC_GPU(0), table[i].moves);
                fx_stop(&f);
        }
}

/* A region seen in one epoch only is discounted as a stream passing by (f = 1/4), unless its
 * process's earlier new uses went on in the next epoch: then it is taken at its word. One
 * sweep in one epoch moves only in the process whose new uses go on. */
TEST(new_use_odds_learned_per_process) {
        for (unsigned goes_on = 0; goes_on < 2; goes_on++) {
                struct fx f = {};
                fx_config(&f);
                fx_start(&f, 8, 8, 1);
                fx_touch(&f, 0, SPM_ACC_GPU(0), G2 / 64);
                fx_epoch(&f);
                if (goes_on)
                        fx_touch(&f, 0, SPM_ACC_GPU(0), G2 / 64);
                fx_epoch(&f);
                fx_touch(&f, 5, SPM_ACC_GPU(0), G2 / 64);
                fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (unsigned k = 0; k < 8; k++) {
                        fx_epoch(&f);
                        fx_check_plan(&f, 0);
                }
                ASSERT_EQ(fx_loc_of(&f, BASE + 5 * G2) == SPM_LOC_GPU(0), goes_on == 1);
                fx_stop(&f);
        }
}

/* A candidate out of a run of uses (not touched both in this epoch and the one before; new
 * uses excepted) counts half the horizon: the same 1.25 sweeps per touch move a region used
 * every epoch at once, and one used every other epoch not at all (before: after 4 epochs). */
TEST(intermittent_use_counts_half_the_horizon) {
        for (unsigned every = 1; every <= 2; every++) {
                struct fx f = {};
                fx_config(&f);
                fx_start(&f, 4, 4, 1);
                for (unsigned k = 0; k < 16; k++) {
                        if (k % every == 0)
                                fx_touch(&f, 1, SPM_ACC_GPU(0), 5 * G2 / 64 / 4);
                        fx_epoch(&f);
                        fx_check_plan(&f, 0);
                        if (every == 1 && k >= 1)
                                ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
                }
                ASSERT_EQ(fx_loc_of(&f, BASE + G2) == SPM_LOC_GPU(0), every == 1);
                fx_stop(&f);
        }
}

TEST(cpu_hot_page_in_vram_goes_home) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, 2 * G2, SPM_LOC_GPU(0)));
        f.now = 100 * EPOCH; /* past the minimum residency */
        for (unsigned k = 0; k < 40; k++)
                fx_epoch(&f);
        bool seen = false;
        for (unsigned k = 0; k < 4 && !seen; k++) {
                fx_touch(&f, 0, SPM_ACC_CPU, G2 / 64 * 4);
                fx_touch(&f, 1, SPM_ACC_GPU(0), G2 / 64 * 4); /* GPU-hot: stays */
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++) {
                        ASSERT_EQ(f.plan.moves[i].start, BASE);
                        ASSERT_EQ(f.plan.moves[i].reason, SPM_REASON_CPU_HOT);
                        ASSERT_EQ(f.plan.moves[i].to, SPM_LOC_SYSMEM);
                        seen = true;
                }
        }
        ASSERT_TRUE(seen);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
        fx_stop(&f);
}

/* A region the GPU uses, read hard by the CPU for one epoch (an optimizer step, a
 * checkpoint) while the GPU pauses, is not sent home in that epoch: the burst is over by the
 * time it would move, and here the GPU comes back harder. One the CPU goes on reading (and
 * the GPU leaves) goes home after the second epoch. */
TEST(a_one_epoch_cpu_burst_sends_nothing_home) {
        for (unsigned cpu_epochs = 1; cpu_epochs <= 2; cpu_epochs++) {
                struct fx f = {};
                int moved_at = -1;

                fx_config(&f);
                fx_start(&f, 4, 4, 1);
                for (unsigned k = 0; k < 20; k++) {
                        bool cpu = k >= 10 && k < 10 + cpu_epochs;
                        if (cpu)
                                fx_touch(&f, 1, SPM_ACC_CPU, HOT);
                        else if (k < 10)
                                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT);
                        else if (cpu_epochs == 1)
                                fx_touch(&f, 1, SPM_ACC_GPU(0), 4 * HOT);
                        int n = fx_epoch(&f);
                        fx_check_plan(&f, 0);
                        for (int i = 0; i < n; i++)
                                if (f.plan.moves[i].to == SPM_LOC_SYSMEM && moved_at < 0)
                                        moved_at = (int) k;
                        if (k == 9)
                                ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
                }
                ASSERT_EQ(moved_at, cpu_epochs == 1 ? -1 : 11);
                fx_stop(&f);
        }
}

/* Capacity, quota and bandwidth budgets, table-driven, over many epochs of a moving hot set. */
TEST(budgets_never_exceeded) {
        static const struct {
                unsigned vram, quota, budget_granules, hot;
        } table[] = {
                { 1, 0, 0, 4 },
                { 2, 0, 0, 8 },
                { 4, 0, 1, 16 },
                { 8, 3, 2, 16 },
                { 8, 8, 0, 32 },
                { 16, 5, 3, 12 },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct fx f = {};
                uint64_t budget = (uint64_t) table[i].budget_granules * G2;
                fx_config(&f);
                f.c.migrate_budget_bytes = budget;
                fx_start(&f, 64, table[i].vram, 1);
                if (table[i].quota) {
                        struct spm_job j = { .id = JOB, .gpu_mask = 1 };
                        j.vram_quota[0] = (uint64_t) table[i].quota * G2;
                        ASSERT_EQ(spm_engine_job_set(f.e, &j), 1);
                }
                uint64_t limit = table[i].quota ? MIN(table[i].quota, table[i].vram)
                                                : table[i].vram;
                for (unsigned k = 0; k < 60; k++) {
                        /* The hot set slides by one granule per epoch. */
                        for (unsigned h = 0; h < table[i].hot; h++)
                                fx_touch(&f, (k + h) % 64, SPM_ACC_GPU(0), HOT + h);
                        fx_epoch(&f);
                        fx_check_plan(&f, budget ? budget : UINT64_MAX);
                        struct spm_engine_stats st;
                        spm_engine_get_stats(f.e, &st);
                        ASSERT_LE_U(st.used[SPM_LOC_GPU(0)], limit * G2);
                        ASSERT_EQ_U(st.used[SPM_LOC_GPU(0)] + st.used[SPM_LOC_SYSMEM], 64 * G2);
                }
                struct spm_engine_stats st;
                spm_engine_get_stats(f.e, &st);
                ASSERT_TRUE(st.used[SPM_LOC_GPU(0)] > 0);
                fx_stop(&f);
        }
}

TEST(bandwidth_budget_defers) {
        struct fx f = {};

        fx_config(&f);
        f.c.migrate_budget_bytes = 2 * G2;
        fx_start(&f, 16, 16, 1);
        for (unsigned k = 0; k < 2; k++)
                for (unsigned h = 0; h < 10; h++)
                        fx_touch(&f, h, SPM_ACC_GPU(0), HOT);
        fx_epoch(&f);
        ASSERT_LE_U(f.plan.bytes_planned, 2 * G2);
        fx_touch(&f, 9, SPM_ACC_GPU(0), HOT);
        for (unsigned h = 0; h < 10; h++)
                fx_touch(&f, h, SPM_ACC_GPU(0), HOT);
        struct spm_engine_stats st;
        spm_engine_get_stats(f.e, &st);
        uint64_t in_vram = st.used[SPM_LOC_GPU(0)];
        fx_epoch(&f);
        ASSERT_EQ_U(f.plan.bytes_planned, 2 * G2);
        ASSERT_EQ_U(f.plan.bytes_deferred, 10 * G2 - in_vram - 2 * G2);
        fx_check_plan(&f, 2 * G2);
        /* The densest go first: granule 9 had the extra touch. */
        ASSERT_EQ(fx_loc_of(&f, BASE + 9 * G2), SPM_LOC_GPU(0));
        fx_stop(&f);
}

TEST(full_vram_swaps_and_charges_the_victim) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 2, 1);
        /* Warm residents in VRAM; then a far hotter region arrives. */
        for (unsigned k = 0; k < 4; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), G2 / 64);
                fx_touch(&f, 1, SPM_ACC_GPU(0), 2 * G2 / 64);
                fx_epoch(&f);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
        bool swapped = false;
        for (unsigned k = 0; k < 4 && !swapped; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), G2 / 64);
                fx_touch(&f, 1, SPM_ACC_GPU(0), 2 * G2 / 64);
                fx_touch(&f, 5, SPM_ACC_GPU(0), 16 * G2 / 64);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                if (n == 0)
                        continue;
                ASSERT_EQ(n, 2);
                /* The eviction of the cheaper resident comes first, then the promotion. */
                ASSERT_EQ(f.plan.moves[0].start, BASE);
                ASSERT_EQ(f.plan.moves[0].to, SPM_LOC_SYSMEM);
                ASSERT_EQ(f.plan.moves[0].reason, SPM_REASON_DISPLACED);
                ASSERT_EQ(f.plan.moves[1].start, BASE + 5 * G2);
                ASSERT_EQ(f.plan.moves[1].to, SPM_LOC_GPU(0));
                swapped = true;
        }
        ASSERT_TRUE(swapped);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));

        /* A challenger only slightly hotter than the residents does not pay for the swap. */
        for (unsigned k = 0; k < 6; k++) {
                fx_touch(&f, 1, SPM_ACC_GPU(0), 2 * G2 / 64);
                fx_touch(&f, 5, SPM_ACC_GPU(0), 16 * G2 / 64);
                fx_touch(&f, 6, SPM_ACC_GPU(0), 2 * G2 / 64 + 100);
                ASSERT_EQ(fx_epoch(&f), 0);
        }
        fx_stop(&f);
}

/* A phase change: the residents, touched every epoch, stop; a new pair starts at half their
 * rate. The old pair is idle after one missed epoch and makes room at once, although its
 * decayed heat is still above the newcomers'; the new pair is scored at its exact rate. */
TEST(idle_residents_make_room_at_once) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 2, 1);
        for (unsigned k = 0; k < 20; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), 32 * G2 / 64);
                fx_touch(&f, 1, SPM_ACC_GPU(0), 32 * G2 / 64);
                fx_epoch(&f);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
        fx_touch(&f, 5, SPM_ACC_GPU(0), 16 * G2 / 64);
        fx_touch(&f, 6, SPM_ACC_GPU(0), 16 * G2 / 64);
        ASSERT_EQ(fx_epoch(&f), 2); /* each pair coalesced into one move */
        fx_check_plan(&f, 0);
        ASSERT_EQ(fx_loc_of(&f, BASE + 5 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + 6 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_SYSMEM);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_SYSMEM);

        /* A region touched in most epochs but not all is not idle after one miss. */
        struct fx g = {};
        fx_config(&g);
        fx_start(&g, 8, 1, 1);
        for (unsigned k = 0; k < 16; k++) {
                if (k % 3 != 2)
                        fx_touch(&g, 0, SPM_ACC_GPU(0), 32 * G2 / 64);
                if (k >= 14)
                        fx_touch(&g, 5, SPM_ACC_GPU(0), 16 * G2 / 64);
                fx_epoch(&g);
        }
        ASSERT_EQ(fx_loc_of(&g, BASE), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&g, BASE + 5 * G2), SPM_LOC_SYSMEM);
        fx_stop(&f);
        fx_stop(&g);
}

/* A job without a VRAM quota: a candidate smaller than its victim (VRAM holds one idle region
 * of 8 MiB, merged once its use ended; a hot 2 MiB region arrives) still swaps in. The quota
 * side of the victim count once started at bytes - INT64_MAX and overflowed as soon as the
 * victims outweighed the candidate, so every such group looked short of quota: nothing moved. */
TEST(candidate_smaller_than_its_victim_without_quota) {
        struct fx f = {};
        struct spm_access a = {
                .pid = PID, .accessor = SPM_ACC_GPU(0), .addr = BASE, .len = 4 * G2,
                .reads = 4 * 16 * G2 / 64,
        };
        struct region_list l;

        fx_config(&f);
        fx_start(&f, 16, 4, 1);
        for (unsigned k = 0; k < 4; k++) {
                ASSERT_EQ(spm_engine_observe(f.e, &a), 1);
                fx_epoch(&f);
        }
        for (unsigned k = 0; k < 32; k++)
                ASSERT_EQ(fx_epoch(&f), 0);
        fx_regions(&f, &l);
        bool merged = false;
        for (size_t i = 0; i < l.n; i++)
                if (l.r[i].start == BASE && l.r[i].length == 4 * G2 &&
                    l.r[i].loc == SPM_LOC_GPU(0))
                        merged = true;
        ASSERT_TRUE(merged);
        for (unsigned k = 0; k < 3; k++) {
                fx_touch(&f, 8, SPM_ACC_GPU(0), 64 * G2 / 64);
                fx_epoch(&f);
                fx_check_plan(&f, 0);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + 8 * G2), SPM_LOC_GPU(0));
        fx_stop(&f);
}

/* The driver populating untouched data in VRAM (first touch) is a placement, not a move: the
 * next epoch may swap it for hotter data at once. A region the engine or the driver moved
 * (data that had a home) serves its residency first. */
TEST(first_placement_starts_no_residency) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 1, 1);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, SPM_LOC_GPU(0)));
        fx_touch(&f, 0, SPM_ACC_GPU(0), G2 / 64);
        fx_touch(&f, 3, SPM_ACC_GPU(0), 32 * G2 / 64);
        ASSERT_EQ(fx_epoch(&f), 2);
        fx_check_plan(&f, 0);
        ASSERT_EQ(fx_loc_of(&f, BASE + 3 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_SYSMEM);

        /* The driver undoes both moves. Granule 0 has now gone in, out and in again: moving
         * it out once more would complete a ping-pong, so it is no victim and nothing moves
         * (driver_moves_start_no_residency has one that is free to go). */
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + 3 * G2, G2, SPM_LOC_SYSMEM));
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, SPM_LOC_GPU(0)));
        fx_touch(&f, 0, SPM_ACC_GPU(0), G2 / 64);
        fx_touch(&f, 3, SPM_ACC_GPU(0), 32 * G2 / 64);
        ASSERT_EQ(fx_epoch(&f), 0);
        fx_stop(&f);
}

/* A move the driver made starts no residency: what TTM evicted comes back at the next epoch
 * if it is worth it, in place of what the driver faulted in. */
TEST(driver_moves_start_no_residency) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 2, 1);
        for (unsigned k = 0; k < 2; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), 32 * G2 / 64);
                fx_touch(&f, 1, SPM_ACC_GPU(0), 32 * G2 / 64);
                fx_epoch(&f);
                fx_check_plan(&f, 0);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));

        /* The driver evicts granule 1 and faults granule 5 in, once. */
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + G2, G2, SPM_LOC_SYSMEM));
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + 5 * G2, G2, SPM_LOC_GPU(0)));
        fx_touch(&f, 0, SPM_ACC_GPU(0), 32 * G2 / 64);
        fx_touch(&f, 1, SPM_ACC_GPU(0), 32 * G2 / 64);
        fx_touch(&f, 5, SPM_ACC_GPU(0), G2 / 64);
        ASSERT_EQ(fx_epoch(&f), 2);
        fx_check_plan(&f, 0);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + 5 * G2), SPM_LOC_SYSMEM);
        fx_stop(&f);
}

/* A CPU use that recurs: once two have shown its period, the region goes home the epoch
 * before the next one (the CPU reads VRAM across the link), not before it is known. */
TEST(recurring_cpu_use_goes_home_before_it) {
        struct fx f = {};
        int due_at = -1, n_due = 0;

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        for (unsigned k = 0; k < 43; k++) {
                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT);
                if (k == 3 || k == 23)
                        fx_touch(&f, 1, SPM_ACC_CPU, 2 * HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++)
                        if (f.plan.moves[i].reason == SPM_REASON_CPU_DUE) {
                                ASSERT_EQ_U(f.plan.moves[i].start, BASE + G2);
                                ASSERT_EQ(f.plan.moves[i].to, SPM_LOC_SYSMEM);
                                due_at = (int) k;
                                n_due++;
                        }
        }
        /* Uses at 3 and 23: period 20, the next at 43. */
        ASSERT_EQ(n_due, 1);
        ASSERT_EQ(due_at, 42);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_SYSMEM);
        ASSERT_STREQ(spm_reason_to_string(SPM_REASON_CPU_DUE), "cpu-due");
        fx_stop(&f);
}

/* First touches may land in a full VRAM for a process whose new data the GPU uses densely in
 * its first epoch (a tile read 4 times), not for one that passes through new data lightly,
 * nor for one whose new data of an epoch would not fit in VRAM (12 granules into 8: they
 * would evict each other). */
TEST(first_touch_fast_follows_new_uses) {
        struct fx dense = {}, light = {}, wide = {};

        fx_config(&dense);
        fx_start(&dense, 128, 8, 1);
        fx_config(&light);
        fx_start(&light, 64, 8, 1);
        fx_config(&wide);
        fx_start(&wide, 192, 8, 1);
        for (unsigned k = 0; k < 16; k++) {
                for (unsigned g = 0; g < 12; g++)
                        fx_touch(&wide, k * 12 + g, SPM_ACC_GPU(0), 4 * G2 / 64);
                fx_epoch(&wide);
                ASSERT_FALSE(spm_engine_first_touch_fast(wide.e, PID));
        }
        fx_stop(&wide);
        ASSERT_FALSE(spm_engine_first_touch_fast(dense.e, PID));
        ASSERT_FALSE(spm_engine_first_touch_fast(dense.e, PID + 1));
        ASSERT_FALSE(spm_engine_first_touch_fast(NULL, PID));
        for (unsigned k = 0; k < 16; k++) {
                for (unsigned g = 0; g < 4; g++) {
                        fx_touch(&dense, k * 4 + g, SPM_ACC_GPU(0), 4 * G2 / 64);
                        fx_touch(&light, k * 4 + g, SPM_ACC_GPU(0), G2 / 64 / 4);
                }
                fx_epoch(&dense);
                fx_epoch(&light);
                if (k == 0) {
                        /* One epoch of new uses teaches it. */
                        ASSERT_TRUE(spm_engine_first_touch_fast(dense.e, PID));
                        ASSERT_FALSE(spm_engine_first_touch_fast(light.e, PID));
                }
        }
        ASSERT_TRUE(spm_engine_first_touch_fast(dense.e, PID));
        ASSERT_FALSE(spm_engine_first_touch_fast(light.e, PID));
        /* The CPU's first touches land in RAM whatever VRAM holds: they teach nothing. */
        for (unsigned k = 0; k < 8; k++) {
                fx_touch(&light, k, SPM_ACC_CPU, 64 * G2 / 64);
                for (unsigned g = 0; g < 8; g++)
                        fx_touch(&dense, 64 + 8 * k + g, SPM_ACC_CPU, 64 * G2 / 64);
                fx_epoch(&dense);
                fx_epoch(&light);
        }
        ASSERT_TRUE(spm_engine_first_touch_fast(dense.e, PID));
        ASSERT_FALSE(spm_engine_first_touch_fast(light.e, PID));
        fx_stop(&dense);
        fx_stop(&light);
}

/* The new-use correction lasts while the region is touched in every epoch: one touched in
 * alternate epochs is plain EWMA heat after its first miss, and at this rate stays in RAM. */
TEST(new_use_correction_ends_at_a_miss) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        for (unsigned k = 0; k < 3; k++) {
                if (k != 1)
                        fx_touch(&f, 1, SPM_ACC_GPU(0), G2 / 64);
                fx_epoch(&f);
                fx_check_plan(&f, 0);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_SYSMEM);
        fx_stop(&f);
}

/* Plans are identical whatever order the observations of an epoch come in. */
TEST(order_independence) {
        struct spm_access obs[48];
        unsigned n = 0;
        uint64_t seed = 12345;

        for (unsigned g = 0; g < 24; g++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                obs[n++] = (struct spm_access) {
                        .pid = PID, .accessor = (uint8_t) SPM_ACC_GPU(g % 2),
                        .addr = BASE + g * G2 + ((seed >> 40) % 4) * 4096 * 64,
                        .len = G2 / 2, .reads = 1000 + (seed >> 50) % 20000,
                };
                obs[n++] = (struct spm_access) {
                        .pid = PID, .accessor = SPM_ACC_CPU, .addr = BASE + g * G2,
                        .len = G2, .reads = (seed >> 33) % 3000, .writes = g * 10,
                };
        }
        struct spm_move ref[64];
        size_t n_ref[6] = {};
        for (unsigned trial = 0; trial < 8; trial++) {
                struct fx f = {};
                fx_config(&f);
                fx_start(&f, 32, 6, 3);
                uint64_t s = 99 + trial;
                for (unsigned ep = 0; ep < 6; ep++) {
                        struct spm_access o[48];
                        memcpy(o, obs, sizeof(o));
                        for (unsigned i = 0; i < n; i++)
                                o[i].reads = o[i].reads * (ep + 1) / 2;
                        /* Fisher-Yates with a fixed seed per trial; trial 0 keeps the order. */
                        for (unsigned i = n - 1; trial > 0 && i > 0; i--) {
                                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                                unsigned k = (unsigned) ((s >> 33) % (i + 1));
                                struct spm_access t = o[i];
                                o[i] = o[k];
                                o[k] = t;
                        }
                        ASSERT_EQ(spm_engine_observe_batch(f.e, o, n), (int) n);
                        int r = fx_epoch(&f);
                        fx_check_plan(&f, 0);
                        if (trial == 0) {
                                ASSERT_LE(r, 64 / 6);
                                if (r > 0)
                                        memcpy(&ref[ep * 10], f.plan.moves, r * sizeof(*ref));
                                n_ref[ep] = (size_t) r;
                        } else {
                                ASSERT_EQ_U((size_t) r, n_ref[ep]);
                                for (int i = 0; i < r; i++) {
                                        const struct spm_move *a = &ref[ep * 10 + i];
                                        const struct spm_move *b = &f.plan.moves[i];
                                        ASSERT_EQ_U(a->start, b->start);
                                        ASSERT_EQ_U(a->length, b->length);
                                        ASSERT_EQ(a->to, b->to);
                                        ASSERT_EQ(a->reason, b->reason);
                                        ASSERT_NEAR(a->benefit_usec, b->benefit_usec,
                                                    1e-6 * a->benefit_usec);
                                }
                        }
                }
                fx_stop(&f);
        }
        size_t total = 0;
        for (unsigned ep = 0; ep < 6; ep++)
                total += n_ref[ep];
        ASSERT_TRUE(total > 0); /* the scenario does move something */
}

TEST(coalescing_table) {
        /* Hot granules -> expected move lengths (in granules), in address order. */
        static const struct {
                unsigned hot[8], n_hot;
                unsigned lens[8], n_lens;
        } table[] = {
                { { 1, 2, 3 }, 3, { 3 }, 1 },
                { { 0, 2, 4 }, 3, { 1, 1, 1 }, 3 },
                { { 0, 1, 3, 4, 5, 7 }, 6, { 2, 3, 1 }, 3 },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct fx f = {};
                fx_config(&f);
                fx_start(&f, 8, 8, 1);
                int n = 0;
                for (unsigned k = 0; k < 4 && n == 0; k++) {
                        for (unsigned h = 0; h < table[i].n_hot; h++)
                                fx_touch(&f, table[i].hot[h], SPM_ACC_GPU(0), HOT);
                        n = fx_epoch(&f);
                }
                ASSERT_EQ(n, (int) table[i].n_lens);
                for (unsigned k = 0; k < table[i].n_lens; k++) {
                        bool found = false;
                        unsigned at = k == 0 ? table[i].hot[0] : 0;
                        (void) at;
                        for (int m = 0; m < n; m++)
                                if (f.plan.moves[m].length == table[i].lens[k] * G2)
                                        found = true;
                        ASSERT_TRUE(found);
                }
                fx_stop(&f);
        }
}

static double heat_sum(struct fx *f, struct region_list *l, uint64_t *bytes) {
        double s = 0;
        *bytes = 0;
        fx_regions(f, l);
        for (size_t i = 0; i < l->n; i++) {
                for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                        s += l->r[i].heat[a];
                *bytes += l->r[i].length;
        }
        return s;
}

TEST(split_and_merge_keep_totals) {
        struct fx f = {};
        struct region_list *l = malloc(sizeof(*l));
        uint64_t bytes;

        fx_config(&f);
        f.c.merge_interval_epochs = 1;
        fx_start(&f, 64, 8, 1);
        /* Uniformly lukewarm: neighbours look alike and merge. */
        for (unsigned g = 0; g < 64; g++)
                fx_touch(&f, g, SPM_ACC_CPU, 100);
        fx_epoch(&f);
        double before = heat_sum(&f, l, &bytes);
        for (unsigned k = 0; k < 3; k++)
                fx_epoch(&f);
        double after = heat_sum(&f, l, &bytes);
        ASSERT_TRUE(l->n < 64);
        ASSERT_TRUE(l->n >= 1);
        ASSERT_EQ_U(bytes, 64 * G2);
        ASSERT_NEAR(after / before, exp2(-3.0 / 4.0), 1e-4);
        size_t merged = l->n;

        /* A 2 MiB hot spot inside the merged area gets its own region within an epoch or
         * two, and the split keeps the total. */
        for (unsigned k = 0; k < 3; k++) {
                fx_touch(&f, 37, SPM_ACC_GPU(0), HOT);
                fx_epoch(&f);
        }
        fx_regions(&f, l);
        ASSERT_TRUE(l->n > merged);
        bool isolated = false;
        for (size_t i = 0; i < l->n; i++)
                if (l->r[i].start == BASE + 37 * G2 && l->r[i].length == G2)
                        isolated = true;
        ASSERT_TRUE(isolated);
        ASSERT_EQ(fx_loc_of(&f, BASE + 37 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + 36 * G2), SPM_LOC_SYSMEM);

        /* A location change cutting a region keeps heat and bytes exactly. */
        before = heat_sum(&f, l, &bytes);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + 3 * 4096, 5 * 4096, SPM_LOC_GPU(1)));
        after = heat_sum(&f, l, &bytes);
        ASSERT_NEAR(after, before, 1e-5 * before);
        ASSERT_EQ_U(bytes, 64 * G2);
        ASSERT_EQ(fx_loc_of(&f, BASE + 3 * 4096), SPM_LOC_GPU(1));
        ASSERT_EQ(fx_loc_of(&f, BASE + 8 * 4096), SPM_LOC_SYSMEM);
        free(l);
        fx_stop(&f);
}

TEST(granule_configurable) {
        static const uint64_t granules[] = { 4096, 64 * 1024, 2 * MiB, 16 * MiB };
        for (size_t i = 0; i < ELEMENTSOF(granules); i++) {
                struct fx f = {};
                struct spm_engine_stats st;
                fx_config(&f);
                f.c.granule = granules[i];
                fx_start(&f, 4, 4, 1);
                spm_engine_get_stats(f.e, &st);
                ASSERT_EQ_U(st.n_regions, MAX(1, MIN(4 * G2 / granules[i], f.c.max_regions_per_range)));
                struct spm_access a = { .pid = PID, .accessor = 1, .addr = BASE + G2 + 8192,
                                        .len = 4096, .reads = 5 };
                ASSERT_EQ(spm_engine_observe(f.e, &a), 1);
                fx_stop(&f);
        }
}

TEST(memory_per_region) {
        struct fx f = {};
        struct spm_engine_stats st;

        fx_config(&f);
        f.c.max_regions_per_range = 1 << 20;
        fx_start(&f, 1, 1, 1);
        ASSERT_OK(spm_engine_range_add(f.e, PID, BASE + (1ULL << 40), 100000 * G2, 0));
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.n_regions, 100001);
        ASSERT_LE_U(st.memory_bytes / st.n_regions, 64);
        fx_stop(&f);
}

/* A training step in miniature: the GPU passes over a region twice per 10 epochs (at 0 and 3:
 * pauses of 3 and 7 alternate, like a layer's forward and backward pass) and the CPU updates
 * it at 5. Once the GPUs' pauses came as predicted, the region moves in the epoch before the
 * GPU use that follows the CPU's (gpu-due; a single-period predictor would expect it 3 epochs
 * after the last), and goes home the epoch before the CPU's (cpu-due), the first time from
 * one CPU use only: it recurs with the GPUs' period. Nothing else moves. When the uses stop,
 * one predicted use does not come (the move at 49) and then no predicted move comes back,
 * also not once the epoch count has wrapped the 7 bits that last uses are kept in. The same
 * GPU uses of a region hinted STREAMING move nothing. */
TEST(recurring_gpu_and_cpu_uses_move_before_them) {
        struct fx f = {};
        unsigned n_gpu_due = 0, n_cpu_due = 0;

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        ASSERT_OK(spm_engine_hint(f.e, &(struct spm_hint) {
                .pid = PID, .start = BASE + 3 * G2, .len = G2, .kind = SPM_HINT_STREAMING }));
        for (unsigned k = 0; k < 400; k++) {
                bool on = k < 45;
                if (on && (k % 10 == 0 || k % 10 == 3)) {
                        fx_touch(&f, 1, SPM_ACC_GPU(0), 2 * HOT);
                        fx_touch(&f, 3, SPM_ACC_GPU(0), 2 * HOT);
                }
                if (on && k % 10 == 5)
                        fx_touch(&f, 1, SPM_ACC_CPU, HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n && k >= 14; i++) {
                        const struct spm_move *mv = &f.plan.moves[i];
                        ASSERT_EQ_U(mv->start, BASE + G2);
                        if (k % 10 == 9) {
                                ASSERT_EQ(mv->reason, SPM_REASON_GPU_DUE);
                                ASSERT_EQ(mv->to, SPM_LOC_GPU(0));
                                n_gpu_due++;
                        } else {
                                ASSERT_EQ(k % 10, 4u);
                                ASSERT_EQ(mv->reason, SPM_REASON_CPU_DUE);
                                ASSERT_EQ(mv->to, SPM_LOC_SYSMEM);
                                n_cpu_due++;
                        }
                        ASSERT_LT(k, 60u);
                }
                if (on && k >= 20 && k % 10 == 0)
                        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
                if (on && k >= 15 && k % 10 == 5)
                        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_SYSMEM);
                ASSERT_EQ(fx_loc_of(&f, BASE + 3 * G2), SPM_LOC_SYSMEM);
        }
        /* In at 19, 29, 39 (and 49, for a use that did not come); home at 14 (the CPU's
         * period still unseen), 24, 34, 44. */
        ASSERT_EQ(n_gpu_due, 4u);
        ASSERT_EQ(n_cpu_due, 4u);
        ASSERT_STREQ(spm_reason_to_string(SPM_REASON_GPU_DUE), "gpu-due");
        fx_stop(&f);
}

/* A blocked algorithm in miniature: granules 0-1 are read in every epoch (a shared matrix),
 * and tiles of 8 granules take turns, six epochs each (2-9, then 10-17, ...), filling VRAM
 * (10 granules) with the shared ones. Once the first tile's use has ended as a block and the
 * next one started in its place, six epochs is the process's usual length: each later tile
 * leaves in its sixth epoch (use-ends; the part beyond an epoch's budget in its fifth), so
 * the next one finds room, and the shared granules never leave. Twins learn nothing and
 * predict nothing: one whose tiles are a single granule (chance, not a tile), one where other
 * new uses end while the first tile runs (uses that end one by one, at random: no block), so
 * its second tile is no prediction, and one whose next tile starts an epoch after the first
 * ended (no tile for a tile). */
TEST(a_tile_leaves_when_its_use_reaches_the_usual_length) {
        /* Tile width (granules), the epoch's migration budget (granules, 0: the machine's), and
         * the granules of each later tile that leave in its fifth and its sixth epoch. */
        static const struct {
                unsigned width, budget, fifth, sixth;
        } table[] = {
                { 8, 0, 0, 8 },
                { 1, 0, 0, 0 },
                /* A tile bigger than an epoch's budget: what the budget cannot take in the
                 * sixth epoch leaves in the fifth (the light granules: their last epoch in RAM
                 * costs least), so the next tile's first touches find room. */
                { 8, 6, 2, 6 },
        };
        for (size_t w = 0; w < ELEMENTSOF(table); w++) {
                unsigned width = table[w].width;
                struct fx f = {};
                unsigned n_ends[6] = {};

                fx_config(&f);
                f.c.migrate_budget_bytes = (uint64_t) table[w].budget * G2;
                fx_start(&f, 2 + 5 * width, 2 + width, 1);
                for (unsigned k = 0; k < 30; k++) {
                        unsigned tile = 2 + width * (k / 6);
                        for (unsigned i = 0; i < 2; i++)
                                fx_touch(&f, i, SPM_ACC_GPU(0), 4 * HOT);
                        /* The last two granules of a tile are used lightly (C in C += A B). */
                        for (unsigned i = 0; i < width; i++)
                                fx_touch(&f, tile + i, SPM_ACC_GPU(0),
                                         i + 2 < width ? 2 * HOT : HOT / 2);
                        int n = fx_epoch(&f);
                        fx_check_plan(&f, f.c.migrate_budget_bytes);
                        for (int i = 0; i < n; i++) {
                                const struct spm_move *mv = &f.plan.moves[i];
                                if (mv->reason != SPM_REASON_USE_ENDS)
                                        continue;
                                /* The tile in its last epochs, from the second tile on. */
                                ASSERT_TRUE(k >= 10);
                                ASSERT_EQ(mv->to, SPM_LOC_SYSMEM);
                                ASSERT_TRUE(mv->start >= BASE + tile * G2 &&
                                            mv->start + mv->length <= BASE + (tile + width) * G2);
                                if (k >= 12) /* (the second tile's light granules came late) */
                                        n_ends[k % 6] += (unsigned) (mv->length / G2);
                        }
                        ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_GPU(0));
                        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
                }
                /* Whole tiles at 16-17, 22-23 and 28-29. */
                ASSERT_EQ(n_ends[4], 3 * table[w].fifth);
                ASSERT_EQ(n_ends[5], 3 * table[w].sixth);
                ASSERT_EQ(n_ends[0] + n_ends[1] + n_ends[2] + n_ends[3], 0u);
                fx_stop(&f);
        }
        ASSERT_STREQ(spm_reason_to_string(SPM_REASON_USE_ENDS), "use-ends");

        struct fx g = {};
        fx_config(&g);
        fx_start(&g, 28, 10, 1);
        for (unsigned k = 0; k < 12; k++) {
                unsigned tile = k < 6 ? 2 : 12;
                for (unsigned i = 0; i < 8; i++)
                        fx_touch(&g, tile + i, SPM_ACC_GPU(0), 2 * HOT);
                /* Two more new uses end while the first tile runs. */
                for (unsigned i = 0; i < 2; i++)
                        if (k < 3 + i)
                                fx_touch(&g, 10 + i, SPM_ACC_GPU(0), 2 * HOT);
                int n = fx_epoch(&g);
                fx_check_plan(&g, 0);
                for (int i = 0; i < n; i++)
                        ASSERT_NE(g.plan.moves[i].reason, SPM_REASON_USE_ENDS);
        }
        fx_stop(&g);

        struct fx h = {};
        fx_config(&h);
        fx_start(&h, 28, 10, 1);
        for (unsigned k = 0; k < 14; k++) {
                /* The second tile starts an epoch after the first ended: no tile for a tile. */
                for (unsigned i = 0; i < 8 && k != 6; i++)
                        fx_touch(&h, (k < 6 ? 2 : 12) + i, SPM_ACC_GPU(0), 2 * HOT);
                int n = fx_epoch(&h);
                fx_check_plan(&h, 0);
                for (int i = 0; i < n; i++)
                        ASSERT_NE(h.plan.moves[i].reason, SPM_REASON_USE_ENDS);
        }
        fx_stop(&h);
}

/* The period a region learns for its CPU use is its process's for that use: granule 1 has
 * the GPU pattern of a layer's weights (GPU uses at 0 and 3 of each 10 epochs, the CPU's at
 * 5); granules 2 and 6 are gradients, written by the GPU at 2-4 and read by the CPU at 5,
 * with no GPU pattern of their own yet. Once granule 1's pattern is confirmed (13), they go
 * home in the epoch before the second CPU use (cpu-due at 14) as well. Granule 6 is read by
 * the CPU only once: it is not sent home again for a third (24), while granule 2, read at
 * 15 too, now has its own period. Granule 4, used like them but read by the CPU at 6
 * (another use), learns nothing from them: only its own second CPU use gives it a period. */
TEST(a_cpu_use_shares_the_period_of_its_epoch) {
        struct fx f = {};
        unsigned home2 = 0, home6 = 0;

        fx_config(&f);
        fx_start(&f, 8, 6, 1);
        for (unsigned k = 0; k < 30; k++) {
                if (k % 10 == 0 || k % 10 == 3)
                        fx_touch(&f, 1, SPM_ACC_GPU(0), 2 * HOT);
                if (k % 10 >= 2 && k % 10 <= 4)
                        for (unsigned g = 2; g <= 6; g += 2)
                                fx_touch(&f, g, SPM_ACC_GPU(0), 4 * HOT);
                if (k % 10 == 5) {
                        fx_touch(&f, 1, SPM_ACC_CPU, HOT);
                        fx_touch(&f, 2, SPM_ACC_CPU, HOT);
                }
                if (k == 5)
                        fx_touch(&f, 6, SPM_ACC_CPU, HOT);
                if (k % 10 == 6)
                        fx_touch(&f, 4, SPM_ACC_CPU, HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++) {
                        const struct spm_move *mv = &f.plan.moves[i];
                        if (mv->reason != SPM_REASON_CPU_DUE)
                                continue;
                        uint64_t end = mv->start + mv->length;
                        /* (from 25 on granule 4 has a CPU period of its own) */
                        ASSERT_FALSE(k < 20 && mv->start <= BASE + 4 * G2 && end > BASE + 4 * G2);
                        if (mv->start <= BASE + 2 * G2 && end > BASE + 2 * G2) {
                                ASSERT_TRUE(k == 14 || k == 24);
                                home2++;
                        }
                        if (mv->start <= BASE + 6 * G2 && end > BASE + 6 * G2) {
                                ASSERT_EQ(k, 14u);
                                home6++;
                        }
                }
                if (k == 13)
                        ASSERT_EQ(fx_loc_of(&f, BASE + 2 * G2), SPM_LOC_GPU(0));
                if (k == 14)
                        ASSERT_EQ(fx_loc_of(&f, BASE + 2 * G2), SPM_LOC_SYSMEM);
        }
        ASSERT_EQ(home2, 2u);
        ASSERT_EQ(home6, 1u);
        fx_stop(&f);
}

/* An oversubscribed sweep in miniature: 8 windows of 2 granules, window w read 5 times over
 * in the epochs k with k % 8 == w, VRAM holding one window. Each window's use saves about
 * 1.6 times its copy in and a victim's copy out: once the period is confirmed, the window
 * just used (its next use 8 epochs away, no sooner than the horizon) makes room for the next
 * one, which moves in the epoch before its use (gpu-due), so every window is read from VRAM.
 * Priced by its heat, or at the hysteresis, that swap would not pay, and one window would
 * stay resident for good. */
TEST(a_sweep_slides_through_vram_when_each_use_pays) {
        struct fx f = {};
        unsigned n_in = 0;

        fx_config(&f);
        fx_start(&f, 16, 2, 1);
        for (unsigned k = 0; k < 64; k++) {
                unsigned w = k % 8;
                for (unsigned i = 0; i < 2; i++)
                        fx_touch(&f, 2 * w + i, SPM_ACC_GPU(0), 5 * G2 / 64);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++)
                        if (f.plan.moves[i].reason == SPM_REASON_GPU_DUE) {
                                unsigned next = 2 * ((k + 1) % 8);
                                ASSERT_TRUE(f.plan.moves[i].start >= BASE + next * G2 &&
                                            f.plan.moves[i].start < BASE + (next + 2) * G2);
                                n_in++;
                        }
                if (k >= 32) {
                        unsigned next = 2 * ((k + 1) % 8);
                        ASSERT_EQ(fx_loc_of(&f, BASE + next * G2), SPM_LOC_GPU(0));
                        ASSERT_EQ(fx_loc_of(&f, BASE + (next + 1) * G2), SPM_LOC_GPU(0));
                }
        }
        ASSERT_TRUE(n_in >= 32);
        fx_stop(&f);
}

/* A hot window of 8 granules slides through a 64-granule range, 2 granules an epoch (forward,
 * or backward from the top), while one cold granule elsewhere is touched now and then. Once
 * the window advanced at that pace twice, the 2 granules it reaches next are in VRAM before
 * their first hot epoch (front), not after it. Windows that jump about, or stay put and
 * then jump (tiles), are no front: nothing moves for that reason. A second sweep over data
 * VRAM (32 granules) let go of is a front too: the granules it enters were used before, and
 * their first hot epoch shows in their heat at a sixth (it is corrected), where a new use's
 * is corrected anyway. Returns the moves for a front. */
static unsigned run_window(unsigned (*lo_of)(unsigned k), unsigned epochs, unsigned vram,
                           uint64_t reads, unsigned check_from) {
        struct fx f = {};
        unsigned n_front = 0;

        fx_config(&f);
        fx_start(&f, 64, vram, 1);
        for (unsigned k = 0; k < epochs; k++) {
                unsigned lo = lo_of(k);
                for (unsigned i = 0; i < 8; i++)
                        fx_touch(&f, lo + i, SPM_ACC_GPU(0), reads);
                if (k % 3 == 0)
                        fx_touch(&f, 63 - (k * 5) % 16, SPM_ACC_GPU(0), HOT / 8);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                unsigned next = lo_of(k + 1);
                for (int i = 0; i < n; i++) {
                        const struct spm_move *mv = &f.plan.moves[i];
                        if (mv->reason != SPM_REASON_FRONT)
                                continue;
                        n_front++;
                        /* only what the window reaches next at its pace (the 2 granules
                         * beyond its end or before its start; the plan may join the window's
                         * own moves to it) */
                        ASSERT_EQ(mv->to, SPM_LOC_GPU(0));
                        ASSERT_TRUE(mv->start + 2 * G2 >= BASE + (uint64_t) lo * G2 &&
                                    mv->start + mv->length <= BASE + (uint64_t) (lo + 10) * G2);
                }
                /* what the window enters next */
                if (k >= check_from && k + 1 < epochs)
                        for (unsigned g = next; g < next + 8; g++) {
                                if (g < lo || g >= lo + 8)
                                        ASSERT_EQ(fx_loc_of(&f, BASE + (uint64_t) g * G2),
                                                  SPM_LOC_GPU(0));
                        }
        }
        fx_stop(&f);
        return n_front;
}

static unsigned window_forward(unsigned k) { return 2 * k; }
static unsigned window_backward(unsigned k) { return 54 - 2 * k; }
static unsigned window_jumps(unsigned k) { return (k * 37) % 56; }
static unsigned window_tiles(unsigned k) { return 8 * (k / 5); }
static unsigned window_twice(unsigned k) { return 2 * (k % 28); }

TEST(a_window_moving_at_a_steady_pace_is_prefetched_ahead) {
        ASSERT_TRUE(run_window(window_forward, 24, 64, 4 * HOT, 2) >= 15);
        ASSERT_TRUE(run_window(window_backward, 24, 64, 4 * HOT, 2) >= 15);
        ASSERT_EQ(run_window(window_jumps, 24, 64, 4 * HOT, UINT_MAX), 0u);
        ASSERT_EQ(run_window(window_tiles, 24, 64, 4 * HOT, UINT_MAX), 0u);
        /* the second sweep, from epoch 30 on (28 starts it, 29 and 30 show its pace) */
        unsigned n = run_window(window_twice, 50, 32, 2 * HOT, 30);
        ASSERT_TRUE(n >= 30);
}

/* Layers: a block of 8 granules read hard for one epoch, the next block the epoch after (a
 * forward pass). Once the pace is seen, each block moves into VRAM the epoch before its use
 * (front), and the block just used is not promoted after it: its use is over (by heat alone
 * it would be, a new use's rate being corrected from its first epoch, as the first two are). */
TEST(a_layer_the_front_leaves_is_not_promoted) {
        struct fx f = {};
        unsigned n_ahead = 0;

        fx_config(&f);
        fx_start(&f, 64, 64, 1);
        for (unsigned k = 0; k < 7; k++) {
                for (unsigned i = 0; i < 8; i++)
                        fx_touch(&f, 8 * k + i, SPM_ACC_GPU(0), 4 * HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++) {
                        const struct spm_move *mv = &f.plan.moves[i];
                        if (k < 2 || mv->to != SPM_LOC_GPU(0))
                                continue;
                        /* only the next block, none of the one just used */
                        ASSERT_TRUE(mv->start >= BASE + (uint64_t) (8 * k + 8) * G2);
                        ASSERT_TRUE(mv->start + mv->length <= BASE + (uint64_t) (8 * k + 16) * G2);
                        n_ahead++;
                }
                /* the third block ran from RAM (the pace was not seen yet) and stays there;
                 * from then on each block is in VRAM before its use */
                if (k == 2)
                        ASSERT_EQ(fx_loc_of(&f, BASE + 16 * G2), SPM_LOC_SYSMEM);
                if (k >= 2 && k < 6)
                        ASSERT_EQ(fx_loc_of(&f, BASE + (uint64_t) (8 * k + 8) * G2), SPM_LOC_GPU(0));
        }
        ASSERT_TRUE(n_ahead >= 5);
        fx_stop(&f);
}

/* A GPU use that comes right after the CPU's (an optimizer step, then the next forward
 * pass): GPU uses at 0 and 7 of each 10 epochs, the CPU's at 9. Once the pattern is known the
 * region goes home the epoch before the CPU's use and comes back in the very next epoch,
 * the CPU's, for the GPU's use: neither the CPU's touch nor the move an epoch ago holds the
 * predicted move back. */
TEST(gpu_use_right_after_the_cpus_comes_in_before_it) {
        struct fx f = {};
        unsigned n_back = 0;

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        for (unsigned k = 0; k < 60; k++) {
                if (k % 10 == 0 || k % 10 == 7)
                        fx_touch(&f, 1, SPM_ACC_GPU(0), 2 * HOT);
                if (k % 10 == 9)
                        fx_touch(&f, 1, SPM_ACC_CPU, HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                if (k < 28)
                        continue;
                if (k % 10 == 8) {
                        /* home for the CPU's use at 9 */
                        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_SYSMEM);
                } else if (k % 10 == 9) {
                        bool back = false;
                        for (int i = 0; i < n; i++)
                                back |= f.plan.moves[i].reason == SPM_REASON_GPU_DUE &&
                                        f.plan.moves[i].to == SPM_LOC_GPU(0);
                        ASSERT_TRUE(back);
                        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
                        n_back++;
                }
        }
        ASSERT_EQ(n_back, 4u);
        fx_stop(&f);
}

TEST_MAIN()
