/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared fixture of the engine tests: a mi250x-gcd node whose VRAM is cut down to a few
 * granules so that capacity binds, one job, one process, one range in RAM. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/policy.h"
#include "test.h"

#define MiB (1024ULL * 1024)
#define G2 (2 * MiB)
#define BASE 0x7f0000000000ULL
#define PID 4242
#define JOB 7
#define EPOCH 10000ULL

struct fx {
        struct spm_engine *e;
        struct spm_machine m;
        struct spm_engine_config c;
        usec_t now;
        struct spm_plan plan;
        uint64_t cap;   /* bytes of VRAM per GPU */
};

static inline void fx_config(struct fx *f) {
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &f->m));
        spm_engine_config_defaults(&f->m, &f->c);
}

/* Builds the engine from f->m/f->c: job JOB (GPUs in gpu_mask, unlimited quota), process PID,
 * a range of n_granules at BASE in RAM, and GPU 0's capacity cut to vram_granules. */
static inline void fx_start(struct fx *f, unsigned n_granules, unsigned vram_granules,
                            uint32_t gpu_mask) {
        struct spm_job j = { .id = JOB, .uid = 1000, .gpu_mask = gpu_mask };

        for (unsigned g = 0; g < SPM_MAX_GPUS; g++)
                j.vram_quota[g] = UINT64_MAX;
        ASSERT_OK(spm_engine_new(&f->m, &f->c, &f->e));
        f->cap = (uint64_t) vram_granules * G2;
        for (unsigned l = 1; l < f->m.n_locs; l++)
                ASSERT_OK(spm_engine_set_capacity(f->e, l, (uint64_t) vram_granules * G2));
        ASSERT_EQ(spm_engine_job_set(f->e, &j), 0);
        ASSERT_OK(spm_engine_process_add(f->e, JOB, PID));
        ASSERT_OK(spm_engine_range_add(f->e, PID, BASE, (uint64_t) n_granules * G2,
                                       SPM_LOC_SYSMEM));
        spm_plan_init(&f->plan);
        f->now = 0;
}

static inline void fx_stop(struct fx *f) {
        spm_plan_done(&f->plan);
        f->e = spm_engine_free(f->e);
}

static inline void fx_touch(struct fx *f, unsigned granule, unsigned accessor, uint64_t reads) {
        struct spm_access a = {
                .pid = PID,
                .accessor = (uint8_t) accessor,
                .addr = BASE + (uint64_t) granule * G2,
                .len = G2,
                .reads = reads,
        };
        ASSERT_EQ(spm_engine_observe(f->e, &a), 1);
}

static inline int fx_epoch(struct fx *f) {
        int r = spm_engine_epoch(f->e, f->now, &f->plan);
        ASSERT_OK(r);
        f->now += EPOCH;
        return r;
}

struct region_list {
        struct spm_region_info r[4096];
        size_t n;
};

static inline int collect_cb(const struct spm_region_info *r, void *userdata) {
        struct region_list *l = userdata;
        if (l->n >= ELEMENTSOF(l->r))
                return -ENOSPC;
        l->r[l->n++] = *r;
        return 0;
}

static inline void fx_regions(struct fx *f, struct region_list *l) {
        l->n = 0;
        ASSERT_OK(spm_engine_foreach_region(f->e, 0, collect_cb, l));
}

/* Where the byte at addr is, per the engine. */
static inline int fx_loc_of(struct fx *f, uint64_t addr) {
        struct region_list *l = malloc(sizeof(*l));
        int loc = -1;

        ASSERT_NOT_NULL(l);
        fx_regions(f, l);
        for (size_t i = 0; i < l->n; i++)
                if (addr >= l->r[i].start && addr < l->r[i].start + l->r[i].length)
                        loc = l->r[i].loc;
        free(l);
        return loc;
}

static inline bool reason_is_forced(enum spm_reason r) {
        return r == SPM_REASON_PIN || r == SPM_REASON_DRAIN || r == SPM_REASON_QUOTA ||
               r == SPM_REASON_HINT_HOT || r == SPM_REASON_QUARANTINE;
}

/* Invariants every plan must keep: no overlap, budgets per link and direction, VRAM capacity
 * after every prefix of the plan (the movers run it in order), benefit >= cost for every move
 * the cost model chose. */
static inline void fx_check_plan(struct fx *f, uint64_t budget) {
        const struct spm_plan *p = &f->plan;
        struct spm_engine_stats st;
        uint64_t in[SPM_MAX_LOCS] = {}, out[SPM_MAX_LOCS] = {};
        int64_t used[SPM_MAX_LOCS];

        spm_engine_get_stats(f->e, &st);
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                used[l] = (int64_t) st.used[l];
        for (size_t i = 0; i < p->n_moves; i++) {
                const struct spm_move *m = &p->moves[i];
                ASSERT_NE(m->from, m->to);
                ASSERT_GT(m->length, 0);
                if (!reason_is_forced(m->reason))
                        ASSERT_TRUE(m->benefit_usec >= m->cost_usec);
                in[m->to] += m->length;
                out[m->from] += m->length;
                used[m->to] -= (int64_t) m->length;
                used[m->from] += (int64_t) m->length;
                for (size_t k = 0; k < i; k++)
                        ASSERT_TRUE(p->moves[k].pid != m->pid ||
                                    p->moves[k].start + p->moves[k].length <= m->start ||
                                    m->start + m->length <= p->moves[k].start);
        }
        for (unsigned l = 1; l < f->m.n_locs && budget; l++) {
                ASSERT_LE_U(in[l], budget);
                ASSERT_LE_U(out[l], budget);
        }
        /* Replay in order from the state before the plan: VRAM never over capacity (or over
         * what it already held, if the driver overfilled it). */
        int64_t before[SPM_MAX_LOCS];
        memcpy(before, used, sizeof(before));
        for (size_t i = 0; i < p->n_moves; i++) {
                const struct spm_move *m = &p->moves[i];
                used[m->to] += (int64_t) m->length;
                used[m->from] -= (int64_t) m->length;
                if (m->to != SPM_LOC_SYSMEM)
                        ASSERT_LE(used[m->to], MAX((int64_t) f->cap, before[m->to]));
        }
        for (unsigned l = 1; l < f->m.n_locs; l++)
                ASSERT_LE_U(st.used[l], MAX(f->cap, (uint64_t) before[l]));
}
