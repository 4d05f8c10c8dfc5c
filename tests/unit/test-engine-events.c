/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The engine: hints, the ping-pong quarantine, move results, driver events, drain, jobs. */

#include "engine-fixture.h"

#define HOT (4 * G2 / 64)

static void hint(struct fx *f, unsigned granule, unsigned n, enum spm_hint_kind k, unsigned gpu,
                 usec_t ttl, int expect) {
        struct spm_hint h = {
                .pid = PID, .start = BASE + (uint64_t) granule * G2, .len = (uint64_t) n * G2,
                .kind = k, .gpu = (uint8_t) gpu, .ttl_usec = ttl,
        };
        if (expect < 0)
                ASSERT_EQ(spm_engine_hint(f->e, &h), expect);
        else
                ASSERT_OK(spm_engine_hint(f->e, &h));
}

static enum spm_hint_kind hint_of(struct fx *f, uint64_t addr) {
        struct region_list *l = malloc(sizeof(*l));
        enum spm_hint_kind k = _SPM_HINT_KIND_INVALID;
        fx_regions(f, l);
        for (size_t i = 0; i < l->n; i++)
                if (addr >= l->r[i].start && addr < l->r[i].start + l->r[i].length)
                        k = l->r[i].hint;
        free(l);
        return k;
}

TEST(hint_rights) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 4, 1 /* GPU 0 only */);
        static const struct {
                enum spm_hint_kind kind;
                unsigned gpu;
                int expect;
        } table[] = {
                { SPM_HINT_PIN_GPU, 0, 0 },
                { SPM_HINT_PIN_GPU, 1, -EPERM },   /* not the job's GPU */
                { SPM_HINT_HOT, 3, -EPERM },
                { SPM_HINT_HOT, 8, -EINVAL },      /* no such GPU */
                { SPM_HINT_PIN_RAM, 5, 0 },        /* the GPU is irrelevant here */
                { SPM_HINT_COLD, 0, 0 },
                { SPM_HINT_STREAMING, 0, 0 },
                { SPM_HINT_NONE, 0, 0 },
                { _SPM_HINT_KIND_MAX, 0, -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                hint(&f, 1, 1, table[i].kind, table[i].gpu, 0, table[i].expect);
        struct spm_hint h = { .pid = 1, .start = BASE, .len = G2, .kind = SPM_HINT_COLD };
        ASSERT_ERROR(spm_engine_hint(f.e, &h), ENOENT);

        /* A job without quota on its GPU cannot pin there either. */
        struct spm_job j = { .id = JOB, .gpu_mask = 1 };
        ASSERT_EQ(spm_engine_job_set(f.e, &j), 1);
        hint(&f, 1, 1, SPM_HINT_PIN_GPU, 0, 0, -EPERM);
        fx_stop(&f);
}

TEST(pins_move_without_heat_and_within_quota) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 8, 1);
        struct spm_job j = { .id = JOB, .gpu_mask = 1 };
        j.vram_quota[0] = 3 * G2;
        ASSERT_EQ(spm_engine_job_set(f.e, &j), 1);
        hint(&f, 0, 5, SPM_HINT_PIN_GPU, 0, 0, 0);
        ASSERT_EQ(hint_of(&f, BASE + 4 * G2), SPM_HINT_PIN_GPU);
        ASSERT_EQ(hint_of(&f, BASE + 5 * G2), SPM_HINT_NONE);
        int n = fx_epoch(&f);
        fx_check_plan(&f, 0);
        ASSERT_TRUE(n >= 1);
        for (int i = 0; i < n; i++)
                ASSERT_EQ(f.plan.moves[i].reason, SPM_REASON_PIN);
        struct spm_engine_stats st;
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.used[SPM_LOC_GPU(0)], 3 * G2); /* the quota, not the five pinned */

        /* Pin to RAM wins over heat. (The quota has room for the five pins and region 6:
         * placed there by the driver, it has no residency to serve, and a pin wanting in
         * would displace it first.) */
        j.vram_quota[0] = 6 * G2;
        ASSERT_EQ(spm_engine_job_set(f.e, &j), 1);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + 6 * G2, G2, SPM_LOC_GPU(0)));
        for (unsigned k = 0; k < 3; k++)
                fx_epoch(&f);
        hint(&f, 6, 1, SPM_HINT_PIN_RAM, 0, 0, 0);
        fx_touch(&f, 6, SPM_ACC_GPU(0), 100 * HOT);
        n = fx_epoch(&f);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(f.plan.moves[0].reason, SPM_REASON_PIN);
        ASSERT_EQ(f.plan.moves[0].to, SPM_LOC_SYSMEM);
        for (unsigned k = 0; k < 5; k++) {
                fx_touch(&f, 6, SPM_ACC_GPU(0), 100 * HOT);
                fx_epoch(&f);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + 6 * G2), SPM_LOC_SYSMEM);
        fx_stop(&f);
}

TEST(hint_ttl_expires) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 4, 4, 1);
        hint(&f, 1, 2, SPM_HINT_STREAMING, 0, 5 * EPOCH, 0);
        ASSERT_EQ(hint_of(&f, BASE + 2 * G2), SPM_HINT_STREAMING);
        /* Streaming: hot, but never promoted while the hint lasts. */
        for (unsigned k = 0; k < 5; k++) {
                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT);
                ASSERT_EQ(fx_epoch(&f), 0);
        }
        ASSERT_EQ(hint_of(&f, BASE + 2 * G2), SPM_HINT_STREAMING);
        fx_touch(&f, 1, SPM_ACC_GPU(0), HOT);
        fx_epoch(&f); /* at now = 5 epochs: expired */
        ASSERT_EQ(hint_of(&f, BASE + 2 * G2), SPM_HINT_NONE);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));

        /* NONE clears what it covers. */
        hint(&f, 0, 4, SPM_HINT_COLD, 0, 0, 0);
        hint(&f, 0, 1, SPM_HINT_NONE, 0, 0, 0);
        ASSERT_EQ(hint_of(&f, BASE), SPM_HINT_NONE);
        ASSERT_EQ(hint_of(&f, BASE + 3 * G2), SPM_HINT_COLD);
        fx_stop(&f);
}

TEST(cold_hint_leaves_first_hot_hint_promotes) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 8, 2, 1);
        for (unsigned k = 0; k < 4; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), 8 * HOT);
                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT);
                fx_epoch(&f);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
        /* The hotter one is declared cold: it is the one that makes room. */
        hint(&f, 0, 1, SPM_HINT_COLD, 0, 0, 0);
        bool moved = false;
        for (unsigned k = 0; k < 4 && !moved; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), 8 * HOT);
                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT);
                fx_touch(&f, 4, SPM_ACC_GPU(0), 2 * HOT);
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++)
                        if (f.plan.moves[i].to == SPM_LOC_SYSMEM) {
                                ASSERT_EQ(f.plan.moves[i].start, BASE);
                                moved = true;
                        }
        }
        ASSERT_TRUE(moved);
        ASSERT_EQ(fx_loc_of(&f, BASE + 4 * G2), SPM_LOC_GPU(0));
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));

        /* A hot hint promotes a region nobody touched, displacing a cold resident. */
        hint(&f, 6, 1, SPM_HINT_HOT, 0, 0, 0);
        bool promoted = false;
        for (unsigned k = 0; k < 6 && !promoted; k++) {
                int n = fx_epoch(&f);
                fx_check_plan(&f, 0);
                for (int i = 0; i < n; i++)
                        if (f.plan.moves[i].start == BASE + 6 * G2) {
                                ASSERT_EQ(f.plan.moves[i].reason, SPM_REASON_HINT_HOT);
                                promoted = true;
                        }
        }
        ASSERT_TRUE(promoted);
        fx_stop(&f);
}

TEST(pingpong_quarantine_and_release) {
        static const struct {
                unsigned trips, window, quarantine;
        } table[] = {
                { 1, 32, 10 },
                { 2, 32, 20 },
                { 3, 16, 5 },
        };
        for (size_t t = 0; t < ELEMENTSOF(table); t++) {
                struct fx f = {};
                struct region_list *l = malloc(sizeof(*l));
                fx_config(&f);
                f.c.pingpong_trips = table[t].trips;
                f.c.pingpong_window_epochs = table[t].window;
                f.c.quarantine_epochs = table[t].quarantine;
                fx_start(&f, 4, 4, 1);
                /* The driver pulls granule 1 in, then something pushes it out, and again. One
                 * round trip = out and back. */
                unsigned loc = SPM_LOC_SYSMEM;
                for (unsigned k = 0; k < 2 * table[t].trips; k++) {
                        struct spm_engine_stats st;
                        spm_engine_get_stats(f.e, &st);
                        ASSERT_EQ_U(st.quarantines, 0);
                        loc = loc == SPM_LOC_SYSMEM ? SPM_LOC_GPU(0) : SPM_LOC_SYSMEM;
                        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + G2, G2, loc));
                        fx_epoch(&f);
                        if (k + 1 < 2 * table[t].trips)
                                ASSERT_EQ(f.plan.n_quarantined, 0);
                }
                /* The last return quarantined it, and the plan says so. */
                ASSERT_EQ(f.plan.n_quarantined, 1);
                ASSERT_EQ_U(f.plan.n_held, 1);
                ASSERT_EQ(f.plan.held[0].reason, SPM_REASON_QUARANTINE);
                ASSERT_EQ_U(f.plan.held[0].start, BASE + G2);
                ASSERT_EQ(f.plan.held[0].from, f.plan.held[0].to);
                fx_regions(&f, l);
                ASSERT_TRUE(l->r[1].quarantined);
                ASSERT_FALSE(l->r[0].quarantined);
                /* While quarantined, heat moves nothing. */
                unsigned k;
                for (k = 1; k < table[t].quarantine; k++) {
                        fx_touch(&f, 1, SPM_ACC_GPU(0), 10 * HOT);
                        ASSERT_EQ(fx_epoch(&f), 0);
                }
                fx_regions(&f, l);
                ASSERT_TRUE(l->r[1].quarantined);
                fx_touch(&f, 1, SPM_ACC_GPU(0), 10 * HOT);
                fx_epoch(&f);
                fx_regions(&f, l);
                ASSERT_FALSE(l->r[1].quarantined);
                ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(0));
                free(l);
                fx_stop(&f);
        }
}

TEST(pingpong_outside_window_is_not_counted) {
        struct fx f = {};

        fx_config(&f);
        f.c.pingpong_trips = 1;
        f.c.pingpong_window_epochs = 4;
        fx_start(&f, 2, 2, 1);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, SPM_LOC_GPU(0)));
        for (unsigned k = 0; k < 6; k++)
                fx_epoch(&f);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, SPM_LOC_SYSMEM));
        fx_epoch(&f);
        ASSERT_EQ(f.plan.n_quarantined, 0);
        fx_stop(&f);
}

TEST(move_results_restore_location) {
        /* Table: status, moved granules of a 4-granule move -> granules left on the GPU. */
        static const struct {
                int status;
                unsigned moved, on_gpu;
        } table[] = {
                { 0, 4, 4 },
                { 0, 1, 1 },            /* partial: the rest stays in RAM */
                { -ENOMEM, 4, 0 },      /* failed: moved_bytes is ignored */
                { -EAGAIN, 0, 0 },      /* "succeeded" but not resident */
                { 0, 0, 0 },
        };
        for (size_t t = 0; t < ELEMENTSOF(table); t++) {
                struct fx f = {};
                fx_config(&f);
                fx_start(&f, 8, 8, 1);
                int n = 0;
                for (unsigned k = 0; k < 4 && n == 0; k++) {
                        for (unsigned g = 2; g < 6; g++)
                                fx_touch(&f, g, SPM_ACC_GPU(0), HOT);
                        n = fx_epoch(&f);
                }
                ASSERT_EQ(n, 1);
                struct spm_move m = f.plan.moves[0];
                ASSERT_EQ_U(m.length, 4 * G2);
                struct spm_engine_stats st;
                spm_engine_get_stats(f.e, &st);
                ASSERT_EQ_U(st.used[SPM_LOC_GPU(0)], 4 * G2); /* booked as in flight */
                ASSERT_OK(spm_engine_move_result(f.e, &m, table[t].status,
                                                 (uint64_t) table[t].moved * G2));
                spm_engine_get_stats(f.e, &st);
                ASSERT_EQ_U(st.used[SPM_LOC_GPU(0)], (uint64_t) table[t].on_gpu * G2);
                ASSERT_EQ_U(st.used[SPM_LOC_SYSMEM] + st.used[SPM_LOC_GPU(0)], 8 * G2);
                for (unsigned g = 0; g < 4; g++)
                        ASSERT_EQ(fx_loc_of(&f, BASE + (2 + g) * G2),
                                  g < table[t].on_gpu ? SPM_LOC_GPU(0) : SPM_LOC_SYSMEM);
                ASSERT_EQ_U(st.moves_failed, table[t].status < 0 ? 1 : 0);
                fx_stop(&f);
        }
        struct fx f = {};
        fx_config(&f);
        fx_start(&f, 1, 1, 1);
        struct spm_move bad = { .pid = 999, .start = BASE, .length = G2, .to = 1 };
        ASSERT_ERROR(spm_engine_move_result(f.e, &bad, 0, 0), ENOENT);
        fx_stop(&f);
}

TEST(gpu_faults_and_driver_evictions) {
        struct fx f = {};
        struct spm_engine_stats st;

        fx_config(&f);
        fx_start(&f, 4, 4, 3);
        ASSERT_OK(spm_engine_gpu_fault(f.e, PID, BASE + G2 + 4096, 4096, 1, false));
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_SYSMEM);
        ASSERT_OK(spm_engine_gpu_fault(f.e, PID, BASE + G2, G2, 1, true));
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), SPM_LOC_GPU(1));
        ASSERT_ERROR(spm_engine_gpu_fault(f.e, 1, BASE, G2, 0, true), ENOENT);
        ASSERT_ERROR(spm_engine_gpu_fault(f.e, PID, BASE, G2, 9, true), EINVAL);
        /* Outside every range: -ENOENT, so the caller can declare the span and retry. */
        ASSERT_ERROR(spm_engine_gpu_fault(f.e, PID, BASE + 50 * G2, G2, 0, false), ENOENT);
        ASSERT_OK(spm_engine_range_add(f.e, PID, BASE + 50 * G2, G2, SPM_LOC_SYSMEM));
        ASSERT_OK(spm_engine_gpu_fault(f.e, PID, BASE + 50 * G2, G2, 0, true));
        ASSERT_EQ(fx_loc_of(&f, BASE + 50 * G2), SPM_LOC_GPU(0));
        ASSERT_ERROR(spm_engine_set_location(f.e, PID, BASE + 100 * G2, G2, 0), ENOENT);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + G2, G2, SPM_LOC_SYSMEM));
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.used[SPM_LOC_GPU(1)], 0);
        ASSERT_EQ_U(st.used[SPM_LOC_SYSMEM], 4 * G2);
        fx_stop(&f);

        /* With fault_accesses set, faults alone make a region hot. */
        fx_config(&f);
        f.c.fault_accesses = 200000;
        fx_start(&f, 4, 4, 1);
        for (unsigned k = 0; k < 4; k++) {
                ASSERT_OK(spm_engine_gpu_fault(f.e, PID, BASE + 2 * G2, 4096, 0, false));
                fx_epoch(&f);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + 2 * G2), SPM_LOC_GPU(0));
        fx_stop(&f);
}

/* GPU heat of the region holding addr, per the engine (accesses per epoch). */
static double gpu0_heat_at(struct fx *f, uint64_t addr) {
        struct region_list *l = malloc(sizeof(*l));
        double h = -1;

        ASSERT_NOT_NULL(l);
        fx_regions(f, l);
        for (size_t i = 0; i < l->n; i++)
                if (addr >= l->r[i].start && addr < l->r[i].start + l->r[i].length)
                        h = l->r[i].heat[SPM_ACC_GPU(0)];
        free(l);
        return h;
}

/* Faults as the only GPU signal: a granule the driver faulted into VRAM cannot fault again
 * while it stays there, so its heat fades slowly (step 4a') instead of at the half-life; once
 * the driver evicts it, silence means cold again. Without fault_accesses (direct access
 * counts, the simulator) heat fades at the half-life wherever the region is. */
TEST(fault_heat_holds_while_resident) {
        for (int faults_only = 0; faults_only < 2; faults_only++) {
                struct fx f = {};

                fx_config(&f);
                f.c.fault_accesses = faults_only ? 200000 : 0;
                fx_start(&f, 4, 4, 1);
                if (faults_only)
                        ASSERT_OK(spm_engine_gpu_fault(f.e, PID, BASE, G2, 0, true));
                else {
                        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, SPM_LOC_GPU(0)));
                        fx_touch(&f, 0, SPM_ACC_GPU(0), 200000);
                }
                fx_epoch(&f);
                double h0 = gpu0_heat_at(&f, BASE);
                ASSERT_TRUE(h0 > 0);
                for (unsigned k = 0; k < 12; k++) /* three half-lives */
                        fx_epoch(&f);
                double h12 = gpu0_heat_at(&f, BASE);
                ASSERT_EQ(fx_loc_of(&f, BASE), SPM_LOC_GPU(0));
                if (faults_only)
                        ASSERT_TRUE(h12 > 0.5 * h0);   /* 4x slower: 2^-(3/4) = 0.59 */
                else
                        ASSERT_TRUE(h12 < 0.15 * h0);  /* 2^-3 = 0.125 */
                /* TTM evicts it: from then on it fades at the half-life. */
                ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, SPM_LOC_SYSMEM));
                for (unsigned k = 0; k < 12; k++)
                        fx_epoch(&f);
                ASSERT_TRUE(gpu0_heat_at(&f, BASE) < 0.15 * h12);
                fx_stop(&f);
        }
}

TEST(drain_moves_everything_back) {
        struct fx f = {};
        struct spm_engine_stats st;

        fx_config(&f);
        fx_start(&f, 8, 8, 3);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, 3 * G2, SPM_LOC_GPU(0)));
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + 5 * G2, G2, SPM_LOC_GPU(0)));
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE + 7 * G2, G2, SPM_LOC_GPU(1)));
        int n = spm_engine_drain(f.e, 0, 0, &f.plan);
        ASSERT_EQ(n, 2); /* coalesced: [0, 3) and [5, 6) */
        for (int i = 0; i < n; i++) {
                ASSERT_EQ(f.plan.moves[i].reason, SPM_REASON_DRAIN);
                ASSERT_EQ(f.plan.moves[i].from, SPM_LOC_GPU(0));
                ASSERT_EQ(f.plan.moves[i].to, SPM_LOC_SYSMEM);
        }
        ASSERT_EQ_U(f.plan.bytes_planned, 4 * G2);
        spm_engine_get_stats(f.e, &st);
        ASSERT_EQ_U(st.used[SPM_LOC_GPU(0)], 0);
        ASSERT_EQ_U(st.used[SPM_LOC_GPU(1)], G2);
        /* Heat does not bring it back: the drained GPU is off limits until the job is set
         * again. */
        for (unsigned k = 0; k < 6; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), 10 * HOT);
                fx_epoch(&f);
                for (size_t i = 0; i < f.plan.n_moves; i++)
                        ASSERT_NE(f.plan.moves[i].to, SPM_LOC_GPU(0));
        }
        ASSERT_ERROR(spm_engine_drain(f.e, 0, 999, &f.plan), ENOENT);
        ASSERT_ERROR(spm_engine_drain(f.e, 8, 0, &f.plan), EINVAL);
        fx_stop(&f);
}

TEST(two_jobs_share_a_gpu_under_quotas) {
        struct fx f = {};

        fx_config(&f);
        fx_start(&f, 16, 6, 1);
        struct spm_job j1 = { .id = JOB, .gpu_mask = 1 }, j2 = { .id = 8, .gpu_mask = 1 };
        j1.vram_quota[0] = 2 * G2;
        j2.vram_quota[0] = 3 * G2;
        ASSERT_EQ(spm_engine_job_set(f.e, &j1), 1);
        ASSERT_EQ(spm_engine_job_set(f.e, &j2), 0);
        ASSERT_OK(spm_engine_process_add(f.e, 8, PID + 1));
        ASSERT_OK(spm_engine_range_add(f.e, PID + 1, BASE, 16 * G2, SPM_LOC_SYSMEM));
        for (unsigned k = 0; k < 20; k++) {
                for (unsigned g = 0; g < 8; g++) {
                        fx_touch(&f, (g + k) % 16, SPM_ACC_GPU(0), HOT * (g + 1));
                        struct spm_access a = { .pid = PID + 1, .accessor = 1,
                                                .addr = BASE + ((g * 3 + k) % 16) * G2,
                                                .len = G2, .reads = HOT * (8 - g) };
                        ASSERT_EQ(spm_engine_observe(f.e, &a), 1);
                }
                fx_epoch(&f);
                fx_check_plan(&f, 0);
                struct spm_engine_stats st;
                spm_engine_get_stats(f.e, &st);
                ASSERT_LE_U(st.used[SPM_LOC_GPU(0)], 5 * G2);
                uint64_t u1 = 0, u2 = 0;
                struct region_list *l = malloc(sizeof(*l));
                fx_regions(&f, l);
                for (size_t i = 0; i < l->n; i++)
                        if (l->r[i].loc == SPM_LOC_GPU(0))
                                *(l->r[i].job_id == JOB ? &u1 : &u2) += l->r[i].length;
                free(l);
                ASSERT_LE_U(u1, 2 * G2);
                ASSERT_LE_U(u2, 3 * G2);
        }
        /* Shrinking a quota gives the excess back. */
        j2.vram_quota[0] = G2;
        ASSERT_EQ(spm_engine_job_set(f.e, &j2), 1);
        for (unsigned k = 0; k < 3; k++)
                fx_epoch(&f);
        uint64_t u2 = 0;
        struct region_list *l = malloc(sizeof(*l));
        fx_regions(&f, l);
        for (size_t i = 0; i < l->n; i++)
                if (l->r[i].loc == SPM_LOC_GPU(0) && l->r[i].job_id == 8)
                        u2 += l->r[i].length;
        free(l);
        ASSERT_LE_U(u2, G2);
        /* A frozen job moves nothing. */
        j1.frozen = true;
        ASSERT_EQ(spm_engine_job_set(f.e, &j1), 1);
        for (unsigned k = 0; k < 4; k++) {
                for (unsigned g = 8; g < 16; g++)
                        fx_touch(&f, g, SPM_ACC_GPU(0), 50 * HOT);
                fx_epoch(&f);
                for (size_t i = 0; i < f.plan.n_moves; i++)
                        ASSERT_TRUE(f.plan.moves[i].job_id != JOB);
        }
        fx_stop(&f);
}

TEST(numa_profile_places_on_the_gpus_node) {
        struct fx f = {};

        ASSERT_OK(spm_machine_profile("mi300a-node", &f.m));
        spm_engine_config_defaults(&f.m, &f.c);
        fx_start(&f, 4, 4, 0xf);
        for (unsigned k = 0; k < 4; k++) {
                fx_touch(&f, 1, SPM_ACC_GPU(2), HOT * 8);
                fx_touch(&f, 2, SPM_ACC_CPU, HOT);
                fx_epoch(&f);
                fx_check_plan(&f, 0);
        }
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), 2);
        ASSERT_EQ(fx_loc_of(&f, BASE + 2 * G2), 0);
        fx_stop(&f);
}

/* On mi300a-node node 0 is GPU 0's home as well as the CPU's: data that GPU 0 reads hard on
 * node 3 moves to node 0 as a promotion (hot), not as "cold" or "cpu-hot", the reasons of a
 * move to system RAM. */
TEST(numa_move_to_the_gpus_home_node_0_is_hot) {
        struct fx f = {};
        bool seen = false;

        ASSERT_OK(spm_machine_profile("mi300a-node", &f.m));
        spm_engine_config_defaults(&f.m, &f.c);
        fx_start(&f, 4, 16, 0xf);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, 4 * G2, 3));
        for (unsigned k = 0; k < 4 && !seen; k++) {
                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT * 8);
                int n = fx_epoch(&f);
                for (int i = 0; i < n; i++) {
                        ASSERT_EQ(f.plan.moves[i].to, 0);
                        ASSERT_EQ(f.plan.moves[i].reason, SPM_REASON_HOT);
                        seen = true;
                }
        }
        ASSERT_TRUE(seen);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), 0);
        fx_stop(&f);
}

/* On mi300a-node the CPU's home, node 0, is GPU 0's too: a recurring CPU use (at 9 of every
 * 10 epochs, light GPU uses at 0 and 7) of data that GPU work pushed out of node 0 between
 * its uses brings nothing back before it (cpu-due), which would displace the GPU's data
 * there; on mi250x-gcd the same pattern sends the region home before each CPU use
 * (gpu_use_right_after_the_cpus_comes_in_before_it). */
static unsigned cpu_due_moves(const char *profile, unsigned slow, uint64_t gpu_reads) {
        struct fx f = {};
        unsigned n_due = 0;

        ASSERT_OK(spm_machine_profile(profile, &f.m));
        spm_engine_config_defaults(&f.m, &f.c);
        fx_start(&f, 4, 4, slow == 3 ? 0xf : 1);
        ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, 4 * G2, slow));
        if (slow == 3) {
                /* node 0 holds 2 granules: one the GPU always uses, and one more */
                ASSERT_OK(spm_engine_set_capacity(f.e, 0, 2 * G2));
                ASSERT_OK(spm_engine_set_location(f.e, PID, BASE, G2, 0));
        }
        for (unsigned k = 0; k < 60; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), HOT);
                if (k % 10 >= 1 && k % 10 <= 6)
                        fx_touch(&f, 3, SPM_ACC_GPU(0), HOT);
                if (k % 10 == 0 || k % 10 == 7)
                        fx_touch(&f, 1, SPM_ACC_GPU(0), gpu_reads);
                if (k % 10 == 9)
                        fx_touch(&f, 1, SPM_ACC_CPU, 8 * HOT);
                int n = fx_epoch(&f);
                for (int i = 0; i < n; i++)
                        n_due += f.plan.moves[i].reason == SPM_REASON_CPU_DUE;
        }
        fx_stop(&f);
        return n_due;
}

TEST(numa_apu_brings_nothing_home_for_a_cpu_use) {
        ASSERT_EQ(cpu_due_moves("mi300a-node", 3, HOT / 8), 0u);
        ASSERT_TRUE(cpu_due_moves("mi250x-gcd", SPM_LOC_GPU(0), 2 * HOT) >= 2);
}

/* Replays the plan from the state before it: location 0 never holds more than cap0 after any
 * prefix (the fixture's check covers the other locations). */
static void check_loc0_capacity(struct fx *f, uint64_t cap0) {
        struct spm_engine_stats st;
        int64_t used0;

        spm_engine_get_stats(f->e, &st);
        used0 = (int64_t) st.used[0];
        for (size_t i = 0; i < f->plan.n_moves; i++)
                used0 += f->plan.moves[i].to == 0 ? -(int64_t) f->plan.moves[i].length
                         : f->plan.moves[i].from == 0 ? (int64_t) f->plan.moves[i].length : 0;
        for (size_t i = 0; i < f->plan.n_moves; i++) {
                const struct spm_move *m = &f->plan.moves[i];
                used0 += m->to == 0 ? (int64_t) m->length
                         : m->from == 0 ? -(int64_t) m->length : 0;
                ASSERT_LE(used0, (int64_t) cap0);
        }
        ASSERT_LE_U(st.used[0], cap0);
}

/* n epochs of the CPU touching granules g0..g0+3, every plan checked. */
static void cpu_hot_epochs(struct fx *f, unsigned g0, unsigned n, uint64_t cap0) {
        for (unsigned k = 0; k < n; k++) {
                for (unsigned g = g0; g < g0 + 4; g++)
                        fx_touch(f, g, SPM_ACC_CPU, HOT * 8);
                fx_epoch(f);
                fx_check_plan(f, 0);
                check_loc0_capacity(f, cap0);
        }
}

/* A NUMA machine as daemon/topology.c builds it: the CPU alone, a small fast node 0 and a big
 * slow node 1. The hot set moves: the new one comes in, the cooled one makes room. */
TEST(numa_small_fast_node_demotes_the_cooled_part) {
        struct fx f = {};
        struct spm_job j = { .id = JOB, .uid = 1000 };
        const uint64_t cap0 = 4 * G2;

        f.m = (struct spm_machine) {
                .kind = SPM_MEM_NUMA, .n_gpus = 0, .n_locs = 2, .n_accessors = 1,
                .granule = G2, .migrate_gbps = 8.0, .migrate_call_usec = 5.0,
                .epoch_usec = 100000.0,
        };
        f.m.capacity[0] = cap0;
        f.m.capacity[1] = 64 * G2;
        f.m.bw_gbps[SPM_ACC_CPU][0] = 40.0;
        f.m.lat_ns[SPM_ACC_CPU][0] = 100.0;
        f.m.bw_gbps[SPM_ACC_CPU][1] = 20.0;
        f.m.lat_ns[SPM_ACC_CPU][1] = 200.0;
        f.m.dep_fraction[SPM_ACC_CPU] = 0.01;
        spm_engine_config_defaults(&f.m, &f.c);
        f.cap = 64 * G2;
        ASSERT_OK(spm_engine_new(&f.m, &f.c, &f.e));
        ASSERT_EQ(spm_engine_job_set(f.e, &j), 0);
        ASSERT_OK(spm_engine_process_add(f.e, JOB, PID));
        ASSERT_OK(spm_engine_range_add(f.e, PID, BASE, 12 * G2, 1));
        spm_plan_init(&f.plan);

        cpu_hot_epochs(&f, 0, 12, cap0);
        for (unsigned g = 0; g < 4; g++)
                ASSERT_EQ(fx_loc_of(&f, BASE + g * G2), 0);

        /* Phase 2: granules 4-7 hot, 0-3 idle. Node 0 is full, so the new hot set gets in
         * only by demoting the old one. */
        cpu_hot_epochs(&f, 4, 40, cap0);
        for (unsigned g = 0; g < 4; g++)
                ASSERT_EQ(fx_loc_of(&f, BASE + g * G2), 1);
        for (unsigned g = 4; g < 8; g++)
                ASSERT_EQ(fx_loc_of(&f, BASE + g * G2), 0);
        for (unsigned g = 8; g < 12; g++)
                ASSERT_EQ(fx_loc_of(&f, BASE + g * G2), 1);
        fx_stop(&f);
}

/* On mi300a-node GPU 0's home is node 0, the start location: its quota holds there too. The
 * job runs on GPUs 0 and 1, so what node 0 cannot keep goes to node 1. */
TEST(numa_quota_of_gpu0_holds_on_node0) {
        struct fx f = {};
        struct spm_job j = { .id = JOB, .uid = 1000, .gpu_mask = 0x3 };

        ASSERT_OK(spm_machine_profile("mi300a-node", &f.m));
        spm_engine_config_defaults(&f.m, &f.c);
        fx_start(&f, 6, 16, 0x3);
        for (unsigned g = 0; g < SPM_MAX_GPUS; g++)
                j.vram_quota[g] = UINT64_MAX;
        j.vram_quota[0] = 2 * G2;
        ASSERT_EQ(spm_engine_job_set(f.e, &j), 1);
        for (unsigned k = 0; k < 12; k++) {
                fx_touch(&f, 0, SPM_ACC_GPU(0), HOT * 8);
                fx_touch(&f, 1, SPM_ACC_GPU(0), HOT * 8);
                fx_epoch(&f);
                fx_check_plan(&f, 0);
        }
        struct region_list *l = malloc(sizeof(*l));
        uint64_t on0 = 0;
        ASSERT_NOT_NULL(l);
        fx_regions(&f, l);
        for (size_t i = 0; i < l->n; i++)
                if (l->r[i].loc == 0)
                        on0 += l->r[i].length;
        free(l);
        ASSERT_EQ(on0, 2 * G2);
        /* The hot part stays with GPU 0, the rest went to node 1. */
        ASSERT_EQ(fx_loc_of(&f, BASE), 0);
        ASSERT_EQ(fx_loc_of(&f, BASE + G2), 0);
        for (unsigned g = 2; g < 6; g++)
                ASSERT_EQ(fx_loc_of(&f, BASE + g * G2), 1);
        fx_stop(&f);
}

TEST_MAIN()
