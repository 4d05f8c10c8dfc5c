/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The baselines spmtier is judged against (issue 3, cost-model.md §3):
 *   default      the driver alone: XNACK on, migrate on GPU fault, TTM eviction when full
 *   sysmem       never migrate: PREFERRED_LOC = system memory, the GPU reads over the link
 *   first-touch  placed where first touched (GPU: its VRAM while there is room), never moved
 *   uvm-like     fault migration + 51 % tree prefetch in 32 MiB blocks + LRU eviction
 *   counters     remote access counters, migrate at 256 accesses per 2 MiB, LRU eviction
 *   tpp-like     promote on a second access in consecutive epochs, demote LRU for headroom
 *   damos-like   DAMON-style sampled regions, migrate_hot / migrate_cold under a quota
 * Each is a few dozen lines on top of the simulator's primitives; none sees the future.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/sim.h"

#define NONE UINT32_MAX

/* ---- per-location LRU lists (least recently touched first) ---- */

struct lru {
        uint32_t *prev, *next;
        uint8_t *on;              /* location whose list holds the region, or 0xff */
        uint32_t head[SPM_MAX_LOCS], tail[SPM_MAX_LOCS];
};

static int lru_init(struct lru *l, uint32_t n) {
        n = MAX(n, 1u);
        l->prev = malloc(n * sizeof(*l->prev));
        l->next = malloc(n * sizeof(*l->next));
        l->on = malloc(n);
        if (!l->prev || !l->next || !l->on)
                return -ENOMEM;
        memset(l->on, 0xff, n);
        for (unsigned i = 0; i < SPM_MAX_LOCS; i++)
                l->head[i] = l->tail[i] = NONE;
        return 0;
}

static void lru_done(struct lru *l) {
        free(l->prev);
        free(l->next);
        free(l->on);
}

static void lru_remove(struct lru *l, uint32_t r) {
        unsigned loc = l->on[r];

        if (loc == 0xff)
                return;
        if (l->prev[r] != NONE)
                l->next[l->prev[r]] = l->next[r];
        else
                l->head[loc] = l->next[r];
        if (l->next[r] != NONE)
                l->prev[l->next[r]] = l->prev[r];
        else
                l->tail[loc] = l->prev[r];
        l->on[r] = 0xff;
}

/* Puts r at the most-recent end of loc's list (moving it from wherever it was). */
static void lru_touch(struct lru *l, uint32_t r, unsigned loc) {
        lru_remove(l, r);
        l->on[r] = (uint8_t) loc;
        l->next[r] = NONE;
        l->prev[r] = l->tail[loc];
        if (l->tail[loc] != NONE)
                l->next[l->tail[loc]] = r;
        else
                l->head[loc] = r;
        l->tail[loc] = r;
}

/* Keeps the lists in step with where regions are. */
static void lru_sync(struct lru *l, const struct spm_sim *s, uint32_t r) {
        unsigned loc = spm_sim_loc(s, r);

        if (loc != SPM_SIM_UNPOPULATED && spm_sim_is_fast(s, loc)) {
                if (l->on[r] != loc)
                        lru_touch(l, r, loc);
        } else
                lru_remove(l, r);
}

/* Demotes the least recently touched region at loc that was not touched since epoch `since`
 * (so this epoch's working set is not thrown out). Returns 1, or 0 when there is none. */
static int lru_demote(struct lru *l, struct spm_sim *s, unsigned loc, uint32_t since) {
        uint32_t v = l->head[loc];

        if (v == NONE)
                return 0;
        uint32_t t = spm_sim_last_touch(s, v);
        if (t != UINT32_MAX && t >= since)
                return 0;
        if (spm_sim_move(s, v, spm_sim_backing(s)) < 0)
                return 0;
        lru_remove(l, v);
        return 1;
}

static void set_all_preferred_backing(struct spm_sim *s) {
        for (uint32_t r = 0; r < spm_sim_trace(s)->n_regions; r++)
                spm_sim_set_preferred(s, r, spm_sim_backing(s));
}

/* ---- default and sysmem ---- */

const struct spm_sim_policy spm_sim_policy_default = {
        .name = "default",
        .description = "the driver alone: XNACK on, migrate on GPU fault, evict when full",
};

static int sysmem_init(struct spm_sim *s, void **ret) {
        set_all_preferred_backing(s);
        *ret = NULL;
        return 0;
}

const struct spm_sim_policy spm_sim_policy_sysmem = {
        .name = "sysmem",
        .description = "never migrate: GPUs read system memory over the link",
        .init = sysmem_init,
};

/* ---- first-touch ---- */

static int first_touch_fault(struct spm_sim *s, void *state, uint32_t r, unsigned gpu) {
        unsigned loc = spm_sim_loc(s, r);

        if (loc == SPM_SIM_UNPOPULATED &&
            spm_sim_fault_migrate(s, r, spm_sim_fast_loc(s, SPM_ACC_GPU(gpu)), SPM_ACC_GPU(gpu),
                                  /* evict= */ false) < 0)
                spm_sim_populate(s, r, spm_sim_backing(s));
        /* Pinned where it landed: later faults only map. */
        spm_sim_set_preferred(s, r, spm_sim_loc(s, r));
        return 1;
}

static void first_touch_observe(struct spm_sim *s, void *state, const struct spm_sim_access *a,
                                unsigned loc) {
        if (spm_sim_preferred(s, a->region) == SPM_SIM_NO_PREF)
                spm_sim_set_preferred(s, a->region, loc);
}

const struct spm_sim_policy spm_sim_policy_first_touch = {
        .name = "first-touch",
        .description = "placed where first touched, never moved",
        .gpu_fault = first_touch_fault,
        .observe = first_touch_observe,
};

/* ---- uvm-like ---- */

#define UVM_BLOCK_GRANULES 16u   /* a 32 MiB prefetch tree of 2 MiB leaves */
#define UVM_THRESHOLD 0.51       /* UVM_PREFETCH_THRESHOLD_DEFAULT */

struct uvm_state {
        struct lru lru;
};

static int uvm_init(struct spm_sim *s, void **ret) {
        struct uvm_state *u = calloc(1, sizeof(*u));

        if (!u)
                return -ENOMEM;
        if (lru_init(&u->lru, spm_sim_trace(s)->n_regions) < 0) {
                lru_done(&u->lru);
                free(u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

static void uvm_done(void *state) {
        struct uvm_state *u = state;

        lru_done(&u->lru);
        free(u);
}

/* Makes one slot at loc by evicting the LRU region (not r). Returns 0 or -ENOSPC. */
static int uvm_make_room(struct spm_sim *s, struct uvm_state *u, unsigned loc, uint32_t keep) {
        while (spm_sim_free(s, loc) == 0) {
                uint32_t v = u->lru.head[loc];

                if (v == keep && v != NONE)
                        v = u->lru.next[v];
                if (v == NONE)
                        return -ENOSPC;
                lru_remove(&u->lru, v);
                if (spm_sim_driver_move(s, v, spm_sim_backing(s)) <= 0)
                        return -ENOSPC;
        }
        return 0;
}

static int uvm_fault(struct spm_sim *s, void *state, uint32_t r, unsigned gpu) {
        struct uvm_state *u = state;
        const struct spm_simtrace *t = spm_sim_trace(s);
        unsigned acc = SPM_ACC_GPU(gpu), home = spm_sim_fast_loc(s, acc);

        if (uvm_make_room(s, u, home, r) < 0 ||
            spm_sim_fault_migrate(s, r, home, acc, /* evict= */ false) < 0) {
                if (spm_sim_loc(s, r) == SPM_SIM_UNPOPULATED)
                        spm_sim_populate(s, r, spm_sim_backing(s));
                return 1;
        }
        lru_touch(&u->lru, r, home);

        /* Tree prefetch: the largest aligned subtree around r whose present leaves are >= 51 %
         * resident after this fault gets the rest of them. */
        uint32_t pid = t->regions[r].pid;
        uint64_t g = t->granule, addr = t->regions[r].addr;
        uint64_t block = ALIGN_DOWN(addr / g, (uint64_t) UVM_BLOCK_GRANULES);
        uint32_t leaf[UVM_BLOCK_GRANULES];
        for (unsigned i = 0; i < UVM_BLOCK_GRANULES; i++)
                leaf[i] = spm_simtrace_find(t, pid, (block + i) * g);

        unsigned best_lo = 0, best_n = 0;
        for (unsigned n = 2; n <= UVM_BLOCK_GRANULES; n *= 2) {
                unsigned lo = (unsigned) ALIGN_DOWN(addr / g - block, (uint64_t) n);
                unsigned res = 0, present = 0;

                /* Only leaves the process uses count (others have nothing to move). */
                for (unsigned i = lo; i < lo + n; i++)
                        if (leaf[i] != NONE) {
                                present++;
                                res += spm_sim_loc(s, leaf[i]) == home;
                        }
                if (res < present && res >= UVM_THRESHOLD * present) {
                        best_lo = lo;
                        best_n = n;
                }
        }
        for (unsigned i = best_lo; i < best_lo + best_n; i++) {
                uint32_t p = leaf[i];

                if (p == NONE || spm_sim_loc(s, p) == home)
                        continue;
                if (uvm_make_room(s, u, home, r) < 0)
                        break;
                if (spm_sim_move(s, p, home) > 0) {
                        spm_sim_set_preferred(s, p, SPM_SIM_NO_PREF);
                        lru_touch(&u->lru, p, home);
                }
        }
        return 1;
}

static void uvm_observe(struct spm_sim *s, void *state, const struct spm_sim_access *a,
                        unsigned loc) {
        struct uvm_state *u = state;

        if (spm_sim_is_fast(s, loc))
                lru_touch(&u->lru, a->region, loc);
}

static void uvm_driver_moved(struct spm_sim *s, void *state, uint32_t r, unsigned from,
                             unsigned to, bool fault, unsigned gpu) {
        lru_sync(&((struct uvm_state *) state)->lru, s, r);
}

const struct spm_sim_policy spm_sim_policy_uvm_like = {
        .name = "uvm-like",
        .description = "fault migration + 51% tree prefetch (32 MiB) + LRU eviction",
        .init = uvm_init,
        .done = uvm_done,
        .gpu_fault = uvm_fault,
        .observe = uvm_observe,
        .driver_moved = uvm_driver_moved,
};

/* ---- counters, tpp-like: remote-mapped, promote at epoch end ---- */

#define COUNTER_THRESHOLD 256.0   /* accesses per 2 MiB (UVM access counters) */

struct promo_state {
        struct lru lru;
        double *count;            /* counters: remote accesses since the last migration */
        uint32_t *seen;           /* tpp: epoch + 1 of the last remote GPU access */
        uint32_t *prev_seen;      /* tpp: the one before */
        uint8_t *want;            /* GPU accessor that asked, + 1 */
        uint32_t *cand;
        size_t n_cand;
        double *cand_ops;
};

static int promo_init(struct spm_sim *s, void **ret) {
        uint32_t n = MAX(spm_sim_trace(s)->n_regions, 1u);
        struct promo_state *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        *ret = p;
        p->count = calloc(n, sizeof(*p->count));
        p->seen = calloc(n, sizeof(*p->seen));
        p->prev_seen = calloc(n, sizeof(*p->prev_seen));
        p->want = calloc(n, 1);
        p->cand = calloc(n, sizeof(*p->cand));
        p->cand_ops = calloc(n, sizeof(*p->cand_ops));
        if (lru_init(&p->lru, n) < 0 || !p->count || !p->seen || !p->prev_seen || !p->want || !p->cand ||
            !p->cand_ops)
                return -ENOMEM;
        set_all_preferred_backing(s);
        return 0;
}

static void promo_done(void *state) {
        struct promo_state *p = state;

        lru_done(&p->lru);
        free(p->count);
        free(p->seen);
        free(p->prev_seen);
        free(p->want);
        free(p->cand);
        free(p->cand_ops);
        free(p);
}

static void cand_add(struct promo_state *p, uint32_t r, unsigned accessor, double ops) {
        if (p->want[r] == 0) {
                p->cand[p->n_cand++] = r;
                p->cand_ops[r] = 0;
        }
        p->want[r] = (uint8_t) (accessor + 1);
        p->cand_ops[r] += ops;
}

static void counters_observe(struct spm_sim *s, void *state, const struct spm_sim_access *a,
                             unsigned loc) {
        struct promo_state *p = state;
        unsigned home = spm_sim_fast_loc(s, a->accessor);

        if (spm_sim_is_fast(s, loc))
                lru_touch(&p->lru, a->region, loc);
        if (a->accessor == SPM_ACC_CPU || loc == home || !spm_sim_is_fast(s, home))
                return;
        p->count[a->region] += a->ops;
        if (p->count[a->region] >= COUNTER_THRESHOLD)
                cand_add(p, a->region, a->accessor, a->ops);
}

static int cmp_cand(const void *a, const void *b, void *userdata) {
        const struct promo_state *p = userdata;
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        double ox = p->cand_ops[x], oy = p->cand_ops[y];

        if (ox != oy)
                return ox > oy ? -1 : 1;
        return x < y ? -1 : x > y;
}

/* Promotes this epoch's candidates, hottest first; makes room by LRU demotion when
 * make_room, else only into free space. */
static void promote_candidates(struct spm_sim *s, struct promo_state *p, bool make_room) {
        qsort_r(p->cand, p->n_cand, sizeof(*p->cand), cmp_cand, p);
        for (size_t i = 0; i < p->n_cand; i++) {
                uint32_t r = p->cand[i];
                unsigned home = spm_sim_fast_loc(s, p->want[r] - 1u);

                p->want[r] = 0;
                if (spm_sim_loc(s, r) == home)
                        continue;
                if (spm_sim_free(s, home) == 0 &&
                    (!make_room || !lru_demote(&p->lru, s, home, spm_sim_epoch(s))))
                        continue;
                if (spm_sim_move(s, r, home) > 0) {
                        lru_touch(&p->lru, r, home);
                        p->count[r] = 0;
                }
        }
        p->n_cand = 0;
}

static int counters_epoch_end(struct spm_sim *s, void *state, uint32_t epoch) {
        promote_candidates(s, state, /* make_room= */ true);
        return 0;
}

const struct spm_sim_policy spm_sim_policy_counters = {
        .name = "counters",
        .description = "access counters: migrate at 256 remote accesses per 2 MiB, LRU eviction",
        .init = promo_init,
        .done = promo_done,
        .observe = counters_observe,
        .epoch_end = counters_epoch_end,
};

#define TPP_HEADROOM 0.02  /* keep 2 % of the fast tier free (demotion watermark) */

static void tpp_observe(struct spm_sim *s, void *state, const struct spm_sim_access *a,
                        unsigned loc) {
        struct promo_state *p = state;
        unsigned home = spm_sim_fast_loc(s, a->accessor);
        uint32_t e = spm_sim_epoch(s);

        if (spm_sim_is_fast(s, loc))
                lru_touch(&p->lru, a->region, loc);
        if (a->accessor == SPM_ACC_CPU || loc == home || !spm_sim_is_fast(s, home))
                return;
        if (p->seen[a->region] != e + 1) {
                p->prev_seen[a->region] = p->seen[a->region];
                p->seen[a->region] = e + 1;
        }
        /* A NUMA hint fault in this epoch after one in the previous: the page is active. */
        if (p->prev_seen[a->region] == e && e > 0)
                cand_add(p, a->region, a->accessor, a->ops);
}

static int tpp_epoch_end(struct spm_sim *s, void *state, uint32_t epoch) {
        struct promo_state *p = state;

        /* Demote cold pages to keep the watermark, then promote into free space only. */
        const struct spm_machine *m = spm_sim_machine(s);
        for (unsigned l = 0; l < m->n_locs; l++) {
                if (!spm_sim_is_fast(s, l))
                        continue;
                uint64_t want = (uint64_t) (TPP_HEADROOM * (double) spm_sim_capacity(s, l)) + 1;
                while (spm_sim_free(s, l) < want && lru_demote(&p->lru, s, l, epoch))
                        ;
        }
        promote_candidates(s, p, /* make_room= */ false);
        return 0;
}

const struct spm_sim_policy spm_sim_policy_tpp_like = {
        .name = "tpp-like",
        .description = "promote on a second access in consecutive epochs, demote LRU for headroom",
        .init = promo_init,
        .done = promo_done,
        .observe = tpp_observe,
        .epoch_end = tpp_epoch_end,
};

/* ---- damos-like ---- */

#define DAMON_REGION_GRANULES 8u  /* a monitoring region covers up to 8 granules */
#define DAMON_WINDOW 4u           /* aggregation interval, epochs */
#define DAMOS_HOT 2u              /* nr_accesses >= 2 of 4: migrate_hot */
#define DAMOS_COLD_AGE 2u         /* windows with nr_accesses == 0: migrate_cold */

struct damos_state {
        uint32_t n_groups;
        uint32_t *group_first;    /* first region of each monitoring region */
        uint8_t *nr_accesses;     /* in the current window */
        uint8_t *idle_windows;
        uint32_t *order;
};

static uint32_t group_size(const struct damos_state *d, uint32_t g, uint32_t n_regions) {
        uint32_t end = g + 1 < d->n_groups ? d->group_first[g + 1] : n_regions;
        return end - d->group_first[g];
}

static int damos_init(struct spm_sim *s, void **ret) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        struct damos_state *d = calloc(1, sizeof(*d));
        uint32_t n = MAX(t->n_regions, 1u);

        if (!d)
                return -ENOMEM;
        *ret = d;
        d->group_first = calloc(n, sizeof(*d->group_first));
        d->nr_accesses = calloc(n, 1);
        d->idle_windows = calloc(n, 1);
        d->order = calloc(n, sizeof(*d->order));
        if (!d->group_first || !d->nr_accesses || !d->idle_windows || !d->order)
                return -ENOMEM;
        /* Monitoring regions: runs of adjacent granules of one process. */
        for (uint32_t r = 0; r < t->n_regions; r++) {
                bool start = d->n_groups == 0 ||
                             r - d->group_first[d->n_groups - 1] >= DAMON_REGION_GRANULES ||
                             t->regions[r].pid != t->regions[r - 1].pid ||
                             t->regions[r].addr != t->regions[r - 1].addr + t->granule;
                if (start)
                        d->group_first[d->n_groups++] = r;
        }
        set_all_preferred_backing(s);
        return 0;
}

static void damos_done(void *state) {
        struct damos_state *d = state;

        free(d->group_first);
        free(d->nr_accesses);
        free(d->idle_windows);
        free(d->order);
        free(d);
}

/* The granule DAMON samples in group g during window w: one per window, rotating. */
static uint32_t damos_sample(const struct damos_state *d, uint32_t g, uint32_t w, uint32_t n) {
        return d->group_first[g] + (w * 7 + g) % group_size(d, g, n);
}

static int damos_epoch_end(struct spm_sim *s, void *state, uint32_t epoch) {
        struct damos_state *d = state;
        const struct spm_simtrace *t = spm_sim_trace(s);
        uint32_t w = epoch / DAMON_WINDOW;

        /* Sampling: did anyone touch the sampled granule this epoch? */
        for (uint32_t g = 0; g < d->n_groups; g++) {
                uint32_t r = damos_sample(d, g, w, t->n_regions);

                if (spm_sim_last_touch(s, r) == epoch)
                        d->nr_accesses[g]++;
        }
        if ((epoch + 1) % DAMON_WINDOW != 0)
                return 0;

        /* Quota per window: a quarter of each fast location. */
        uint64_t quota[SPM_MAX_LOCS] = {};
        const struct spm_machine *m = spm_sim_machine(s);
        for (unsigned l = 0; l < m->n_locs; l++)
                if (spm_sim_is_fast(s, l))
                        quota[l] = MAX(spm_sim_capacity(s, l) / 4, (uint64_t) 1);

        /* migrate_cold first, so migrate_hot finds room. */
        for (uint32_t g = 0; g < d->n_groups; g++) {
                d->idle_windows[g] = d->nr_accesses[g] == 0 ? MIN(d->idle_windows[g] + 1, 255) : 0;
                if (d->idle_windows[g] < DAMOS_COLD_AGE)
                        continue;
                for (uint32_t r = d->group_first[g]; r < d->group_first[g] + group_size(d, g, t->n_regions); r++) {
                        unsigned loc = spm_sim_loc(s, r);

                        if (loc != SPM_SIM_UNPOPULATED && spm_sim_is_fast(s, loc) && quota[loc] > 0 &&
                            spm_sim_move(s, r, spm_sim_backing(s)) > 0)
                                quota[loc]--;
                }
        }
        /* migrate_hot: hottest groups first. */
        uint32_t n = 0;
        for (uint32_t g = 0; g < d->n_groups; g++)
                if (d->nr_accesses[g] >= DAMOS_HOT)
                        d->order[n++] = g;
        for (uint32_t i = 1; i < n; i++)  /* insertion sort by nr_accesses, stable */
                for (uint32_t j = i; j > 0 && d->nr_accesses[d->order[j]] > d->nr_accesses[d->order[j - 1]]; j--) {
                        uint32_t x = d->order[j];
                        d->order[j] = d->order[j - 1];
                        d->order[j - 1] = x;
                }
        for (uint32_t i = 0; i < n; i++) {
                uint32_t g = d->order[i];

                for (uint32_t r = d->group_first[g]; r < d->group_first[g] + group_size(d, g, t->n_regions); r++) {
                        uint32_t mask = t->regions[r].accessor_mask & ~1u;
                        if (!mask)
                                continue;
                        unsigned home = spm_sim_fast_loc(s, (unsigned) __builtin_ctz(mask));

                        if (!spm_sim_is_fast(s, home) || quota[home] == 0 || spm_sim_free(s, home) == 0)
                                continue;
                        if (spm_sim_move(s, r, home) > 0)
                                quota[home]--;
                }
        }
        memset(d->nr_accesses, 0, d->n_groups);
        return 0;
}

const struct spm_sim_policy spm_sim_policy_damos_like = {
        .name = "damos-like",
        .description = "DAMON-style sampled regions, migrate_hot/migrate_cold with a quota",
        .init = damos_init,
        .done = damos_done,
        .epoch_end = damos_epoch_end,
};

/* ---- registry ---- */

const struct spm_sim_policy *const spm_sim_baselines[] = {
        &spm_sim_policy_default,
        &spm_sim_policy_sysmem,
        &spm_sim_policy_first_touch,
        &spm_sim_policy_uvm_like,
        &spm_sim_policy_counters,
        &spm_sim_policy_tpp_like,
        &spm_sim_policy_damos_like,
        &spm_sim_policy_static_opt,
        &spm_sim_policy_clairvoyant,
        &spm_sim_policy_exact,
        NULL,
};

const struct spm_sim_policy *spm_sim_policy_find(const char *name) {
        for (const struct spm_sim_policy *const *p = spm_sim_baselines; *p; p++)
                if (strcmp((*p)->name, name) == 0)
                        return *p;
        return NULL;
}
