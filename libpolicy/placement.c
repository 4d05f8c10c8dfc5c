/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The epoch: decide where every region should be and plan the moves that get it there.
 * The steps are numbered as in docs/policy.md.
 *
 * Cost model. Heat gives each region a rate per accessor (accesses per epoch, decayed). At
 * location l the region costs C(l) = sum_a rate_a * access_us(a, l) per epoch, so the CPU
 * reading VRAM in place costs CPU time like anything else. Moving it from s to t saves
 * C(s) - C(t) per epoch for as long as it stays, expected to be the horizon H (epochs), and
 * costs one migration (call + bytes / copy bandwidth). A move is worth it when
 *     H * f * (C(s) - C(t)) > hysteresis * migration cost,
 * where f discounts regions seen in a single epoch only (a stream touches each page once per
 * sweep: its heat is real, its reuse is not). Making room charges the victims too: their lost
 * saving over H, their migration, and the fault the GPU will take when it touches them again.
 *
 * Selection is greedy by benefit density (saving per byte) under every GPU's capacity, every
 * job's quota and the per-link migration budget. Only the best few candidates are ever sorted:
 * a histogram on the density picks the cut that covers the epoch's budget (no sort of the
 * population), and the region pass itself is linear.
 */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

#define SORT_ALL_BELOW 4096
#define VICTIM_WALK 64
#define KEY_PIN 1e30
#define KEY_HINT_HOT 1e20
#define STEADY_RUN 3            /* epochs touched in a row (REGION_RUN_MASK saturates here) */
#define STEADY_REUSE 224        /* and reuse of ~16 epochs in a row, or ~7 in 8 for long */
#define IDLE_PRICE (1.0 / 16)   /* what an idle region's heat still says about its future */
#define FAULT_HOLD 4            /* faults only: a resident region's GPU heat fades this many
                                 * times slower (step 4a') */
#define INTERMITTENT_SHARE 0.5 /* of the horizon, for a candidate out of a run of uses */
#define FIRST_TOUCH_REUSE 32    /* reuse after one touched epoch from 0 (never touched) */
#define CPU_DUE_AHEAD 4         /* epochs before a recurring CPU use that its region may
                                 * leave VRAM (step 4a'') */
#define LIFE_GRANULES 8         /* a block of new uses that teaches their length (life) */
#define NEW_USE_MEMORY 0.5      /* weight of the previous epochs' new uses, per epoch that
                                 * has some (new_use_learn()) */

struct item {
        double key;             /* candidates: density, higher first; victims: -density */
        double gain;            /* candidates: saving over H; victims: saving lost over H */
        double cost;            /* migration (victims: + the fault to come back) */
        uint64_t bytes;
        uint64_t start;
        struct spm_process *p;
        struct spm_range *rg;
        uint32_t idx;
        uint8_t from, to, reason;
        bool forced, taken;
        bool due;               /* filed for a predicted use */
        bool early;             /* use-ends an epoch early: within p->life_early */
};

struct vec {
        struct item *v;
        size_t n, n_alloc;
};

static int vec_push(struct vec *v, const struct item *it) {
        if (v->n == v->n_alloc) {
                size_t n = MAX(v->n_alloc * 2, 64);
                struct item *x = realloc(v->v, n * sizeof(*x));
                if (!x)
                        return -ENOMEM;
                v->v = x;
                v->n_alloc = n;
        }
        v->v[v->n++] = *it;
        return 0;
}

/* Higher key first; exact ties by (pid, start) so the order never depends on the input's. */
static int item_cmp(const void *a, const void *b) {
        const struct item *x = a, *y = b;
        if (x->key != y->key)
                return x->key > y->key ? -1 : 1;
        if (x->p->pid != y->p->pid)
                return x->p->pid < y->p->pid ? -1 : 1;
        return (x->start > y->start) - (x->start < y->start);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

static uint64_t key_bits(double k) {
        uint64_t u;
        memcpy(&u, &k, sizeof(u));
        return (u >> 63) ? ~u : u | (1ULL << 63);
}

/* Sorts the best items to the front and returns how many are sorted: all of them when few,
 * else the ones above a histogram cut that covers `need` bytes (whole bucket included). */
static int select_top(struct vec *v, uint64_t need, size_t *ret) {
        if (v->n <= SORT_ALL_BELOW) {
                if (v->n > 1)
                        qsort(v->v, v->n, sizeof(*v->v), item_cmp);
                *ret = v->n;
                return 0;
        }
        _cleanup_free_ uint64_t *hist = calloc(1 << 16, sizeof(*hist));
        if (!hist)
                return -ENOMEM;
        for (size_t i = 0; i < v->n; i++)
                hist[key_bits(v->v[i].key) >> 48] += v->v[i].bytes;
        uint64_t sum = 0;
        unsigned cut = 0;
        for (unsigned b = (1 << 16); b > 0; b--) {
                sum += hist[b - 1];
                if (sum >= need) {
                        cut = b - 1;
                        break;
                }
        }
        size_t m = 0;
        for (size_t i = 0; i < v->n; i++)
                if ((key_bits(v->v[i].key) >> 48) >= cut) {
                        struct item t = v->v[m];
                        v->v[m++] = v->v[i];
                        v->v[i] = t;
                }
        qsort(v->v, m, sizeof(*v->v), item_cmp);
        *ret = m;
        return 0;
}

/* Step 4h's runs of the range being scored: the one open at the last region, the longest
 * closed ones, and the highest GPU density seen. */
struct front_scan {
        struct front run, runs[FRONT_RUNS];
        double run_rate;                /* the open run's accesses per epoch */
        unsigned n_runs;
        float max;
};

struct epoch_ctx {
        struct spm_engine *e;
        struct spm_plan *plan;
        double rate_k;                  /* stored heat -> accesses per epoch */
        double fault_hold_k;            /* > 1 when faults are the only GPU signal: what a
                                         * resident region's GPU heat is multiplied by this
                                         * epoch so it fades FAULT_HOLD times slower */
        double H;
        uint64_t in_budget[SPM_MAX_LOCS], out_budget[SPM_MAX_LOCS];
        bool ram_binds;                 /* location 0 can fill up (or a quota there bind)
                                         * this epoch: its regions are victims too */
        struct vec cands;
        struct vec quarantined;         /* new quarantines in RAM that want a GPU */
        struct vec victims[SPM_MAX_LOCS];
        size_t n_victims_sorted[SPM_MAX_LOCS];
        size_t victim_cursor[SPM_MAX_LOCS];
        /* Step 4h, for the range being scored: its dense runs so far, and where its
         * candidates start in cands. */
        struct front_scan fs;
        size_t cands_mark;
};

static void epoch_ctx_done(struct epoch_ctx *x) {
        free(x->cands.v);
        free(x->quarantined.v);
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                free(x->victims[l].v);
}

/* A job's budget at a location: the quota of the GPU whose home it is. Location 0 is also
 * where everything starts and the CPU's home: a job holds it without a quota unless it runs
 * on the GPU whose home it is (node 0 of a NUMA machine). */
static uint64_t quota_for(const struct spm_engine *e, const struct spm_jobrec *j, unsigned l) {
        int g = e->loc_gpu[l];
        if (g < 0)
                return UINT64_MAX;
        if (!(j->j.gpu_mask & (1u << g)))
                return l == SPM_LOC_SYSMEM ? UINT64_MAX : 0;
        return j->j.vram_quota[g];
}

static bool loc_allowed(const struct spm_engine *e, const struct spm_jobrec *j, unsigned l) {
        return l == SPM_LOC_SYSMEM || (quota_for(e, j, l) > 0 && e->capacity[l] > 0);
}

static int64_t room_of(const struct spm_engine *e, unsigned l) {
        return (int64_t) MIN(loc_capacity(e, l), (uint64_t) INT64_MAX) - (int64_t) e->used[l];
}

static int64_t job_room(const struct spm_engine *e, const struct spm_jobrec *j, unsigned l) {
        uint64_t q = quota_for(e, j, l);
        if (q == UINT64_MAX)
                return INT64_MAX;
        return (int64_t) MIN(q, (uint64_t) INT64_MAX) - (int64_t) j->used[l];
}

static double migrate_cost(const struct spm_engine *e, uint64_t bytes) {
        return spm_machine_migrate_usec(&e->m, bytes);
}

static int hold(struct epoch_ctx *x, struct spm_process *p, struct spm_range *rg,
                struct region *r) {
        return plan_push_held(x->plan, &(struct spm_move) {
                .pid = p->pid,
                .job_id = p->job->j.id,
                .start = region_start(rg, r),
                .length = region_bytes(r),
                .from = r->loc,
                .to = r->loc,
                .reason = SPM_REASON_QUARANTINE,
        });
}

/* A region's rates per accessor, and the accessors whose rate is not zero (most regions have
 * one or two): the cost sums skip the zero terms, which add nothing. */
struct rates {
        const double *rate;
        uint8_t acc[SPM_MAX_ACCESSORS];
        unsigned n;
};

/* C(l): usec per epoch at location l. */
static double cost_at(const struct spm_engine *e, const struct rates *rt, unsigned l) {
        double c = 0;
        for (unsigned k = 0; k < rt->n; k++)
                c += rt->rate[rt->acc[k]] * e->cost_us[rt->acc[k]][l];
        return c;
}

/* Of the bytes of a process's new uses (regions touched for the first time), the share that
 * was touched again in the next epoch, over the recent epochs that had new uses: the odds that
 * a region seen in one epoch is in use, not a stream passing by. A process that streams
 * learns ~0, one that starts phases or tiles learns ~1. */
static double new_use_odds(const struct spm_process *p) {
        return p->new_seen > 0 ? p->new_again / p->new_seen : 0;
}

bool spm_engine_first_touch_fast(struct spm_engine *e, uint32_t pid) {
        const struct spm_process *p = e ? engine_process(e, pid) : NULL;
        if (!p || p->first_bytes <= 0)
                return false;
        /* The GPUs' accesses of its new data in their first epoch alone pay for the eviction
         * the fault causes (the same test as a move's: hysteresis x the copy). */
        double saving = INFINITY, room = INFINITY;
        for (unsigned g = 0; g < e->m.n_gpus; g++) {
                unsigned a = SPM_ACC_GPU(g), h = e->m.home[a];
                saving = MIN(saving, e->cost_us[a][SPM_LOC_SYSMEM] - e->cost_us[a][h]);
                room = MIN(room, (double) loc_capacity(e, h));
        }
        /* And an epoch's new data must fit in VRAM: beyond it the first touches evict each
         * other (TTM takes the oldest), each paying a fault and a copy for nothing. */
        if (p->first_bytes / p->first_epochs > room)
                return false;
        double per_byte = migrate_cost(e, e->c.granule) / (double) e->c.granule;
        return p->first_acc / p->first_bytes * saving > e->c.hysteresis * per_byte;
}

static void new_use_learn(struct spm_process *p, uint64_t life_bytes_min, uint64_t epoch) {
        /* The CPU's period learned in this epoch's pass (cpu_use_due()); one too old to
         * predict anything is dropped before the epoch mod 128 could alias it. */
        if (p->cpu_cohort_period_next != 0) {
                p->cpu_cohort_last = p->cpu_cohort_last_next;
                p->cpu_cohort_period = p->cpu_cohort_period_next;
                p->cpu_cohort_period_next = 0;
        } else if (((epoch - p->cpu_cohort_last) & USE_EPOCH_MASK) > USE_GAP_MAX)
                p->cpu_cohort_period = 0;
        /* How long new uses last (life): learned when the runs that ended in this epoch all
         * lasted as long, no other new use ended while they ran (they ended as a block, not
         * one by one at random), the block is LIFE_GRANULES or more, and new uses of at least
         * half as many bytes started in their place (the working set moved on: a tile for a
         * tile). Any other end of a new use unlearns it. */
        if (p->life_ended) {
                p->life = p->life_min != 0 && p->life_min == p->life_max &&
                          p->life_quiet + 1 >= p->life_min &&
                          p->life_bytes >= life_bytes_min &&
                          2 * p->first_bytes_epoch >= p->life_bytes ? p->life_min : 0;
                p->life_block = p->life ? p->life_bytes : 0;
                p->life_min = p->life_max = 0;
                p->life_bytes = 0;
                p->life_quiet = 0;
                p->life_ended = false;
        } else
                p->life_quiet++;
        if (p->first_bytes_epoch > 0) {
                p->first_acc = p->first_acc * NEW_USE_MEMORY + p->first_acc_epoch;
                p->first_bytes = p->first_bytes * NEW_USE_MEMORY + (double) p->first_bytes_epoch;
                p->first_epochs = p->first_epochs * NEW_USE_MEMORY + 1.0;
                p->first_acc_epoch = 0;
                p->first_bytes_epoch = 0;
        }
        if (p->new_seen_epoch == 0)
                return;
        p->new_seen = p->new_seen * NEW_USE_MEMORY + (double) p->new_seen_epoch;
        p->new_again = p->new_again * NEW_USE_MEMORY + (double) p->new_again_epoch;
        p->new_seen_epoch = p->new_again_epoch = 0;
}

/* Step 4a'': a class's use of r. The pause from the end of its previous use to the start of
 * this one (when it paused) is its period; the GPUs keep the pause before it too, and whether
 * this one came when predicted. A use not renewed within USE_GAP_MAX epochs is forgotten, at
 * the latest USE_FORGET_EVERY + 1 epochs later (untouched regions are looked at only then):
 * its age never reaches the 128 epochs that last uses wrap at, and a prediction from it
 * never comes due (region_use_due()). */
static void use_record(struct region *r, unsigned c, uint64_t epoch) {
        unsigned age = region_use_age(r, c, epoch);
        if (!(r->use_state & USE_TOUCHED(c))) {
                if ((r->use_state & USE_SEEN(c)) && age > USE_GAP_MAX) {
                        r->use_state &= (uint8_t) ~USE_SEEN(c);
                        if (c == USE_CPU)
                                r->cpu_gap = 0;
                        else
                                r->gpu_gap = r->gpu_gap2 = r->gpu_sure = 0;
                }
                return;
        }
        if ((r->use_state & USE_SEEN(c)) && age > 1) {
                unsigned gap = age <= USE_GAP_MAX ? age : 0;
                if (c == USE_CPU)
                        r->cpu_gap = gap;
                else {
                        unsigned predicted = r->gpu_gap2 ? r->gpu_gap2 : r->gpu_gap;
                        r->gpu_sure = gap != 0 && gap == predicted;
                        r->gpu_gap2 = r->gpu_gap;
                        r->gpu_gap = gap;
                }
        }
        if (c == USE_CPU)
                r->cpu_last = epoch & USE_EPOCH_MASK;
        else
                r->gpu_last = epoch & USE_EPOCH_MASK;
        r->use_state = (uint8_t) ((r->use_state & ~USE_TOUCHED(c)) | USE_SEEN(c));
}

/* The period of the GPUs' confirmed uses of r: their pause when both are equal, else the
 * sum of the two. */
static unsigned gpu_period(const struct region *r) {
        return r->gpu_gap == r->gpu_gap2 ? r->gpu_gap : r->gpu_gap + r->gpu_gap2;
}

/* Epochs until the CPU's next use of r, if it recurs (region_use_due()). A CPU use seen once
 * is taken to recur once more with the period of the GPUs' uses, once theirs came as
 * predicted (a use that then does not come, an initialisation, predicts nothing more): a
 * training step's optimizer comes back with its forward and backward passes. That period is
 * the process's for the CPU's use of that epoch (learned in 4a''): a region without a GPU
 * pattern of its own whose one CPU use came in the same epoch takes it (the optimizer reads
 * the gradients too, which the GPUs write once a step). */
static unsigned cpu_use_due(const struct spm_process *p, const struct region *r,
                            uint64_t epoch) {
        unsigned due = region_use_due(r, USE_CPU, epoch);
        if (due > 0 || !(r->use_state & USE_SEEN(USE_CPU)) || r->cpu_gap != 0)
                return due;
        unsigned period;
        if (r->gpu_sure)
                period = gpu_period(r);
        else if (p->cpu_cohort_period != 0 && r->cpu_last == p->cpu_cohort_last)
                period = p->cpu_cohort_period;
        else
                return 0;
        /* Once: a use that did not come when predicted is none. */
        unsigned age = region_use_age(r, USE_CPU, epoch);
        return age < period ? period - age : 0;
}

/* What the GPUs' accesses of an epoch at the region's rates cost more from RAM than at cur. */
static double c_ram_less(const struct spm_engine *e, const struct rates *rt, unsigned cur) {
        double d = 0;
        for (unsigned k = 0; k < rt->n; k++)
                if (rt->acc[k] != SPM_ACC_CPU)
                        d += rt->rate[rt->acc[k]] * (e->cost_us[rt->acc[k]][SPM_LOC_SYSMEM] -
                                                     e->cost_us[rt->acc[k]][cur]);
        return d;
}

/* A recurring CPU use due soon of a region in VRAM: what serving it from RAM saves, less the
 * GPUs' loss until then. The CPU touches it as much as in its last use: stored heat does not
 * decay (the scale grows), so heat / scale, grown back by the epochs since, is the count of
 * that use. An untouched region leaves up to CPU_DUE_AHEAD epochs early (the copies share the
 * epoch's budget, so a big set needs a few epochs to leave), or right away when the GPUs
 * come back only after the CPU (nothing is lost meanwhile), but not before a GPU use that is
 * predicted to come first; a touched one when it is due. The use is predicted, so a region
 * that moved in for the GPUs' last use may go at once. */
static double cpu_due_saving(const struct epoch_ctx *x, const struct spm_process *p,
                             const struct region *r, const struct rates *rt, unsigned cur,
                             bool touched, bool settled) {
        const struct spm_engine *e = x->e;
        unsigned due = cpu_use_due(p, r, e->epoch);
        if (cur == SPM_LOC_SYSMEM || due == 0 || (due > 1 && (touched || !settled)))
                return 0;
        /* On an APU the CPU's home is a GPU's too (node 0 of mi300a-node): bringing data
         * there for a CPU use displaces that GPU's, and the GPUs' own uses bring theirs
         * anyway (mi300a-node ml-layers 1/8: -0.53 with it, 0.00 without). */
        if (e->loc_gpu[SPM_LOC_SYSMEM] >= 0)
                return 0;
        unsigned gpu_due = region_use_due(r, USE_GPU, e->epoch);
        if (gpu_due != 0 && gpu_due < due)
                return 0;
        bool gpus_after = gpu_due > due;
        if (due > CPU_DUE_AHEAD && !gpus_after)
                return 0;
        double age = region_use_age(r, USE_CPU, e->epoch);
        double count = r->heat[SPM_ACC_CPU] / e->scale * exp2(age / e->epochs_per_half_life);
        double saving = count * (e->cost_us[SPM_ACC_CPU][cur] -
                                 e->cost_us[SPM_ACC_CPU][SPM_LOC_SYSMEM]);
        if (!gpus_after)
                saving -= due * c_ram_less(e, rt, cur);
        return saving;
}

/* Accessor a's count of one recurring GPU use of r (gpu_sure): its heat at the last use,
 * less what the uses before it left (stored heat does not decay, the scale grows): uses of
 * equal counts, the last one pause (gpu_gap) after the one before, that one gpu_gap2 after
 * the one before it, and so on. */
static double gpu_use_count(const struct spm_engine *e, const struct region *r, unsigned a) {
        double hl = e->epochs_per_half_life;
        double age = region_use_age(r, USE_GPU, e->epoch);
        double period = r->gpu_gap + r->gpu_gap2;
        return r->heat[a] / e->scale * exp2(age / hl) *
               (1.0 - exp2(-period / hl)) / (1.0 + exp2(-(double) r->gpu_gap / hl));
}

/* A recurring GPU use due in the coming epoch of a region in RAM: what serving that use from
 * VRAM saves, as many accesses as its last use. *to is where: the home of the GPU that used
 * it most. The use is predicted, so neither a CPU use in this epoch nor a move home for it
 * (cpu-due, the epoch before) holds the region back. */
static double gpu_due_saving(const struct epoch_ctx *x, const struct region *r,
                             const struct spm_jobrec *j, unsigned cur, unsigned *to) {
        const struct spm_engine *e = x->e;
        if (cur != SPM_LOC_SYSMEM || region_use_due(r, USE_GPU, e->epoch) != 1)
                return 0;
        unsigned best = 0;
        for (unsigned a = 1; a < e->m.n_accessors; a++)
                if (r->heat[a] > 0 && (best == 0 || r->heat[a] > r->heat[best]))
                        best = a;
        if (best == 0 || !loc_allowed(e, j, e->m.home[best]))
                return 0;
        *to = e->m.home[best];
        return gpu_use_count(e, r, best) *
               (e->cost_us[best][SPM_LOC_SYSMEM] - e->cost_us[best][*to]);
}

/* Epochs until the GPUs' next use of r in VRAM at cur when it is far: predicted (confirmed)
 * no sooner than the horizon, with no CPU use predicted before it; else 0. Until then the
 * room it holds serves nobody, so as a victim it is worth one use spread over the epochs to
 * it (far_use_price()), and it costs its copy out only: the predicted use brings it back by
 * a prefetch (gpu-due), not a fault. An oversubscribed sweep then slides its window through
 * VRAM, each part moved in for its use, as the oracle does, instead of keeping one part. */
static unsigned far_use(const struct epoch_ctx *x, const struct spm_process *p,
                        const struct region *r) {
        const struct spm_engine *e = x->e;
        if (!r->gpu_sure || r->loc == SPM_LOC_SYSMEM)
                return 0;
        unsigned due = region_use_due(r, USE_GPU, e->epoch);
        if (due < x->H)
                return 0;
        unsigned cpu_due = cpu_use_due(p, r, e->epoch);
        return cpu_due == 0 || cpu_due > due ? due : 0;
}

static double far_use_price(const struct spm_engine *e, const struct region *r, unsigned due) {
        double saving = 0;
        for (unsigned a = 1; a < e->m.n_accessors; a++)
                if (r->heat[a] > 0)
                        saving += gpu_use_count(e, r, a) *
                                  (e->cost_us[a][SPM_LOC_SYSMEM] - e->cost_us[a][r->loc]);
        return saving / due;
}

/* Files r as a candidate for a predicted GPU use at `to` (gpu-due, front) when what the use
 * saves (gain) pays for the copy in and the copy back out (for the next CPU use, or as a
 * victim). A COLD, STREAMING or PIN_RAM hint keeps it out. Returns 1 when filed. */
static int due_candidate(struct epoch_ctx *x, struct spm_process *p, struct spm_range *rg,
                         uint32_t idx, unsigned to, double gain, enum spm_reason reason) {
        const struct region *r = &rg->r[idx];
        enum spm_hint_kind hint = HINT_KIND(r->hint);
        if (hint == SPM_HINT_COLD || hint == SPM_HINT_STREAMING || hint == SPM_HINT_PIN_RAM)
                return 0;
        uint64_t bytes = region_bytes(r);
        double cost = migrate_cost(x->e, bytes);
        if (!(gain > 2 * cost))
                return 0;
        int ret = vec_push(&x->cands, &(struct item) {
                .key = gain / (double) bytes,
                .gain = gain,
                .cost = cost,
                .bytes = bytes,
                .start = region_start(rg, r),
                .p = p, .rg = rg, .idx = idx,
                .from = r->loc, .to = (uint8_t) to,
                .reason = reason,
                .due = true,
        });
        return ret < 0 ? ret : 1;
}

/* Files r as a gpu-due candidate when a recurring GPU use is due in the coming epoch
 * (due_candidate()). Returns 1 when filed. */
static int gpu_due_candidate(struct epoch_ctx *x, struct spm_process *p, struct spm_range *rg,
                             uint32_t idx) {
        const struct region *r = &rg->r[idx];
        if (!r->gpu_sure)
                return 0;
        unsigned to = SPM_LOC_SYSMEM;
        double gain = gpu_due_saving(x, r, p->job, r->loc, &to);
        return gain > 0 ? due_candidate(x, p, rg, idx, to, gain, SPM_REASON_GPU_DUE) : 0;
}

/* Step 4h: fronts. A region is dense in an epoch when the GPUs touched it at FRONT_DENSE or
 * more of the range's highest density of the epoch before (heat is a slow EWMA: a region
 * entering a hot window shows a sixth of its rate, a cold one touched now and then a
 * hundredth); adjacent dense regions form a run. A run that overlaps or touches one of the
 * epoch before (a window slid, the next layer started where the last one ended) and whose end
 * moved at the pace it moved the epoch before is a front: the pages that pace reaches next
 * are due in the coming epoch. The runs are found in the region pass (front_note()), the
 * fronts after it (front_finish()). */
#define FRONT_DENSE (1.0 / 16)

static void front_close(struct front_scan *f) {
        struct front *c = &f->run;
        if (c->hi == c->lo)
                return;
        c->density = (float) (f->run_rate / ((double) (c->hi - c->lo) * PAGE_SIZE));
        /* Keep the longest: insertion into a short sorted array. */
        unsigned n = f->n_runs, k = n < FRONT_RUNS ? n : FRONT_RUNS - 1;
        if (n < FRONT_RUNS || c->hi - c->lo > f->runs[k].hi - f->runs[k].lo) {
                while (k > 0 && f->runs[k - 1].hi - f->runs[k - 1].lo < c->hi - c->lo) {
                        f->runs[k] = f->runs[k - 1];
                        k--;
                }
                f->runs[k] = *c;
                f->n_runs = MIN(n + 1, (unsigned) FRONT_RUNS);
        }
        *c = (struct front) {};
        f->run_rate = 0;
}

/* In the region pass, after 4a'': r's GPU accesses per epoch (a new use's corrected) and
 * whether it is dense; surge: it was not touched in the epoch before, so its heat is mostly
 * this epoch's, which the EWMA shows at a sixth (a new use's is corrected already). */
static void front_note(struct epoch_ctx *x, const struct spm_range *rg, const struct region *r,
                       bool gpu_touched, bool new_use, bool surge) {
        const struct spm_engine *e = x->e;
        struct front_scan *f = &x->fs;
        double rate = 0, top = 0;
        unsigned acc = 0;
        if (gpu_touched) {
                double k = x->rate_k * (new_use ? e->heat_boost[r->reuse] : 1.0f);
                for (unsigned a = 1; a < e->m.n_accessors; a++) {
                        double v = r->heat[a] * k;
                        rate += v;
                        if (v > top) {
                                top = v;
                                acc = a;
                        }
                }
        }
        double density = rate / (double) region_bytes(r);
        if (acc == 0 || density < FRONT_DENSE * rg->front_max) {
                front_close(f);
                return;
        }
        f->max = (float) MAX((double) f->max, density);
        if (f->run.hi != r->off || f->run.hi == f->run.lo) {
                front_close(f);
                f->run.lo = r->off;
                f->run.acc = (uint8_t) acc;
        }
        f->run.hi = r->off + r->npages;
        f->run_rate += surge && !new_use ? rate * e->heat_boost[FIRST_TOUCH_REUSE] : rate;
}

/* Whether two advances of a run's end are one steady pace: same direction, within half. */
static bool front_steady(int32_t d, int32_t d_before) {
        if (d == 0 || (d > 0) != (d_before > 0))
                return false;
        int64_t a = llabs(d), b = llabs(d_before);
        return 2 * llabs(a - b) <= MAX(a, b);
}

static void front_begin(struct epoch_ctx *x) {
        x->fs = (struct front_scan) {};
        x->cands_mark = x->cands.n;
}

/* Files the regions of pages [lo, hi) of rg that lie in RAM as due at the home of the front's
 * GPU (due_candidate()); none on an APU, where RAM is that home (moving the next part from the
 * slow node displaced the CPU's data there, mi300a-node oversub 1/8 -0.05 -> -0.20). What the
 * use saves: the run's density over the region's bytes, for the epochs the front takes to
 * pass over it (per_byte; at most the horizon). A region that reaches beyond [lo, hi) waits
 * for its cut (next epoch). */
static int front_file(struct epoch_ctx *x, struct spm_process *p, struct spm_range *rg,
                      uint32_t lo, uint32_t hi, double per_byte, unsigned acc) {
        struct spm_engine *e = x->e;
        unsigned to = e->m.home[acc];
        if (to == SPM_LOC_SYSMEM || p->job->j.frozen || !loc_allowed(e, p->job, to))
                return 0;
        double per_access = e->cost_us[acc][SPM_LOC_SYSMEM] - e->cost_us[acc][to];
        for (uint32_t k = range_region_index(e, rg, rg->start + ((uint64_t) lo << PAGE_SHIFT));
             k < rg->n && rg->r[k].off < hi; k++) {
                const struct region *r = &rg->r[k];
                if (r->off < lo || r->off + r->npages > hi || r->loc != SPM_LOC_SYSMEM ||
                    (r->flags & REGION_QUARANTINED))
                        continue;
                int ret = due_candidate(x, p, rg, k, to,
                                        per_byte * (double) region_bytes(r) * per_access,
                                        SPM_REASON_FRONT);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

/* After the range's pass: each run is matched with the one of the epoch before that it
 * overlaps or touches; where one of its ends moved at the pace it moved the epoch before,
 * the pages that pace reaches next are filed (front_file()), and what the front leaves behind
 * in the coming epoch (the pace's worth at its back: a whole layer, or a window's tail) is not
 * promoted for its heat: its use is over (this range's hot candidates there are dropped). The
 * part after the next one is cut to its own regions in step 3 of the next epoch, so that
 * a move then takes just those pages. */
static int front_finish(struct epoch_ctx *x, struct spm_process *p, struct spm_range *rg) {
        struct front_scan *f = &x->fs;
        uint64_t size = (rg->end - rg->start) >> PAGE_SHIFT;
        int ret = 0;

        front_close(f);
        rg->n_front_cut = 0;
        for (unsigned i = 0; i < f->n_runs && ret >= 0; i++) {
                struct front *c = &f->runs[i];
                const struct front *b = NULL;
                for (unsigned k = 0; k < rg->n_front && !b; k++)
                        if (rg->front[k].lo <= c->hi && c->lo <= rg->front[k].hi)
                                b = &rg->front[k];
                if (!b)
                        continue;
                c->d_hi = (int32_t) ((int64_t) c->hi - (int64_t) b->hi);
                c->d_lo = (int32_t) ((int64_t) c->lo - (int64_t) b->lo);
                uint32_t lo, hi, leave_lo, leave_hi, pace;
                if (c->d_hi > 0 && front_steady(c->d_hi, b->d_hi)) {
                        pace = (uint32_t) MAX(c->d_hi, b->d_hi);
                        lo = c->hi;
                        hi = (uint32_t) MIN((uint64_t) c->hi + pace, size);
                        leave_lo = c->lo;
                        leave_hi = c->lo + MIN(pace, c->hi - c->lo);
                        rg->front_cut[rg->n_front_cut++] = hi;
                        rg->front_cut[rg->n_front_cut++] = (uint32_t) MIN((uint64_t) hi + pace, size);
                } else if (c->d_lo < 0 && front_steady(c->d_lo, b->d_lo)) {
                        pace = (uint32_t) -(int64_t) MIN(c->d_lo, b->d_lo);
                        lo = c->lo > pace ? c->lo - pace : 0;
                        hi = c->lo;
                        leave_lo = c->hi - MIN(pace, c->hi - c->lo);
                        leave_hi = c->hi;
                        rg->front_cut[rg->n_front_cut++] = lo;
                        rg->front_cut[rg->n_front_cut++] = lo > pace ? lo - pace : 0;
                } else
                        continue;
                if (lo >= hi)
                        continue;
                size_t w = x->cands_mark;
                for (size_t k = x->cands_mark; k < x->cands.n; k++) {
                        const struct item *it = &x->cands.v[k];
                        const struct region *r = &rg->r[it->idx];
                        if (it->reason == SPM_REASON_HOT && r->off >= leave_lo &&
                            r->off + r->npages <= leave_hi)
                                continue;
                        x->cands.v[w++] = *it;
                }
                x->cands.n = w;
                /* It stays hot while the front passes over it: the run's length over the pace
                 * (a layer: one epoch; a sliding window: many), at most the horizon. */
                double stay = (double) ((c->hi - c->lo) / pace);
                ret = front_file(x, p, rg, lo, hi, (double) c->density * MIN(x->H, MAX(stay, 1.0)),
                                 c->acc);
        }
        memcpy(rg->front, f->runs, sizeof(f->runs));
        rg->n_front = f->n_runs;
        rg->front_max = f->max;
        return ret;
}

/* Step 3: the cuts the fronts of the last epoch asked for (front_finish()). */
static int front_cuts(struct spm_engine *e) {
        for (size_t i = 0; i < e->n_procs; i++)
                for (size_t q = 0; q < e->procs[i]->n_ranges; q++) {
                        struct spm_range *rg = &e->procs[i]->ranges[q];
                        uint64_t cuts[2 * FRONT_RUNS], size = (rg->end - rg->start) >> PAGE_SHIFT;
                        size_t n = 0;
                        for (unsigned k = 0; k < rg->n_front_cut; k++)
                                if (rg->front_cut[k] > 0 && rg->front_cut[k] < size)
                                        cuts[n++] = rg->start + ((uint64_t) rg->front_cut[k] << PAGE_SHIFT);
                        rg->n_front_cut = 0;
                        if (n > 1)
                                qsort(cuts, n, sizeof(*cuts), cmp_u64);
                        int r = n ? range_cut(e, rg, cuts, n) : 0;
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* Step 4: one pass over a region. Updates its reuse and quarantine state, and files it as a
 * candidate (it wants to move) and/or a victim (it sits in VRAM and could make room). */
static int score_region(struct epoch_ctx *x, struct spm_process *p, struct spm_range *rg,
                        uint32_t idx) {
        struct spm_engine *e = x->e;
        struct region *r = &rg->r[idx];
        const struct spm_jobrec *j = p->job;
        int ret;

        /* 4a'. Faults as the only GPU signal (config fault_accesses, the daemon on kfd-smi):
         * a granule faults once and then stays mapped, so a region resident at the home of a
         * GPU that heated it cannot show that GPU's use. Silence there is no evidence of
         * cold: its heat for that GPU fades FAULT_HOLD times slower, and it counts as touched
         * (no idle victim, its reuse kept). It still ages, so a newer fault outranks it. */
        if (x->fault_hold_k > 1.0) {
                int g = e->loc_gpu[r->loc];
                if (g >= 0 && r->heat[SPM_ACC_GPU(g)] > 0) {
                        r->heat[SPM_ACC_GPU(g)] *= (float) x->fault_hold_k;
                        r->flags |= REGION_TOUCHED;
                }
        }
        /* 4a. reuse: an EWMA of "touched in this epoch"; two touches within ~5 epochs
         * reach 48. Also the epochs touched in a row, and two states they give:
         * - idle: a region in steady use (touched 3+ epochs in a row and in ~7 of 8) that
         *   misses an epoch has ended its use (a phase moved on); its decayed heat would
         *   keep it in VRAM for half-lives, so as a victim it is priced at IDLE_PRICE;
         * - a new use: touched in every epoch since its first touch. Its heat has filled
         *   only part of the EWMA window and is corrected for it (heat_boost), so a new hot
         *   set is scored at its rate from its first epoch on; after its first miss it is
         *   plain EWMA heat for good. */
        bool touched = r->flags & REGION_TOUCHED;
        bool gpu_touched = r->use_state & USE_TOUCHED(USE_GPU);
        /* The epoch after a new use's first: does it go on? (new_use_odds()) */
        if ((r->flags & REGION_NEW_USE) && r->reuse == FIRST_TOUCH_REUSE) {
                p->new_seen_epoch += region_bytes(r);
                if (touched)
                        p->new_again_epoch += region_bytes(r);
        }
        unsigned run = (r->flags & REGION_RUN_MASK) >> REGION_RUN_SHIFT;
        bool surge = run == 0;  /* not touched in the epoch before (4h) */
        bool steady = run >= STEADY_RUN && r->reuse >= STEADY_REUSE;
        run = touched ? MIN(run + 1, (unsigned) STEADY_RUN) : 0;
        r->flags = (uint8_t) ((r->flags & ~REGION_RUN_MASK) | (run << REGION_RUN_SHIFT));
        if (touched)
                r->flags &= (uint8_t) ~REGION_IDLE;
        else if (steady)
                r->flags |= REGION_IDLE;
        if (touched && r->reuse == 0) {
                r->flags |= REGION_NEW_USE;
                double acc = 0;
                for (unsigned a = 1; a < e->m.n_accessors; a++)
                        acc += r->heat[a] / e->scale;
                if (acc > 0) {
                        p->first_acc_epoch += acc;
                        p->first_bytes_epoch += region_bytes(r);
                }
        }
        else if (!touched && (r->flags & REGION_NEW_USE)) {
                /* A new use ended: how long it lasted (life). */
                unsigned n = e->new_use_age[r->reuse];
                p->life_ended = true;
                p->life_bytes += region_bytes(r);
                if (n >= STEADY_RUN || n == 0) {
                        n = n ? n : UINT8_MAX;
                        p->life_min = p->life_min ? MIN(p->life_min, n) : n;
                        p->life_max = MAX(p->life_max, n);
                }
                r->flags &= (uint8_t) ~REGION_NEW_USE;
        }
        bool new_use = r->flags & REGION_NEW_USE;
        unsigned u = r->reuse - r->reuse / 8u + (touched ? 32u : 0u);
        r->reuse = (uint8_t) MIN(u, 255u);
        r->flags &= (uint8_t) ~(REGION_TOUCHED | REGION_FRESH);

        /* A CPU use that starts in this epoch of a region the GPUs use (see 4g). */
        bool cpu_starts = (r->use_state & USE_TOUCHED(USE_CPU)) &&
                          (r->use_state & USE_SEEN(USE_GPU)) &&
                          !((r->use_state & USE_SEEN(USE_CPU)) &&
                            region_use_age(r, USE_CPU, e->epoch) == 1);
        /* 4a''. recurring uses, the CPU's and the GPUs' (region_use_due()). */
        if ((r->use_state & (USE_TOUCHED(USE_CPU) | USE_TOUCHED(USE_GPU))) ||
            (r->use_state && !(e->epoch & USE_FORGET_EVERY))) {
                use_record(r, USE_CPU, e->epoch);
                use_record(r, USE_GPU, e->epoch);
        }
        /* A CPU use seen once of a region with confirmed GPU uses recurs with their period:
         * the process's for that CPU epoch, from the next epoch on (cpu_use_due()). */
        if ((r->use_state & USE_SEEN(USE_CPU)) && r->cpu_gap == 0 && r->gpu_sure) {
                p->cpu_cohort_last_next = (uint8_t) r->cpu_last;
                p->cpu_cohort_period_next = (uint8_t) gpu_period(r);
        }

        front_note(x, rg, r, gpu_touched, new_use, surge);

        /* 4b. quarantine: the new ones are settled below (held where they are, or pinned
         * where the cost model wants them); release the served ones. */
        bool new_quarantine = false;
        if (r->flags & REGION_QUARANTINED) {
                new_quarantine = region_moved(r) && region_age(e, r) == 0;
                if (!new_quarantine && !region_quarantine_over(e, r))
                        return 0;
        }
        if (r->flags & REGION_QUARANTINED && !new_quarantine) {
                /* Served: start a clean history, the next move is no return. */
                r->flags &= (uint8_t) ~REGION_QUARANTINED;
                r->prev_loc = r->loc;
                r->trips = 0;
        }
        if (j->j.frozen && !new_quarantine)
                return 0;

        enum spm_hint_kind hint = HINT_KIND(r->hint);
        unsigned hgpu = HINT_GPU(r->hint);
        /* Most of the population: in RAM, untouched this epoch, no hint that pulls it into
         * VRAM. Only what is in use, or predicted to be (gpu-due), moves up and RAM is no
         * victim unless it can fill up, so the cost model has nothing more to say about it. */
        if (r->loc == SPM_LOC_SYSMEM && !touched && !new_quarantine && !x->ram_binds &&
            hint != SPM_HINT_PIN_GPU && hint != SPM_HINT_HOT) {
                ret = gpu_due_candidate(x, p, rg, idx);
                return ret < 0 ? ret : 0;
        }
        bool settled = !region_moved(r) || region_age(e, r) >= e->c.min_residency_epochs;
        uint64_t bytes = region_bytes(r);
        unsigned cur = r->loc;

        /* 4c. rates per accessor (a new use's corrected); a cold hint zeroes the GPUs', a
         * streaming one keeps them out of the saving. */
        double rate[SPM_MAX_ACCESSORS], sum = 0;
        unsigned n_acc = e->m.n_accessors;
        struct rates rt = { .rate = rate };
        double rate_k = x->rate_k * (new_use ? e->heat_boost[r->reuse] : 1.0f);
        for (unsigned a = 0; a < n_acc; a++) {
                rate[a] = r->heat[a] * rate_k;
                if (a != SPM_ACC_CPU && (hint == SPM_HINT_COLD || hint == SPM_HINT_STREAMING))
                        rate[a] = 0;
                sum += rate[a];
                if (rate[a] > 0)
                        rt.acc[rt.n++] = (uint8_t) a;
        }
        if (sum <= 0 && cur == SPM_LOC_SYSMEM && hint != SPM_HINT_PIN_GPU &&
            hint != SPM_HINT_HOT && !new_quarantine && !x->ram_binds)
                return 0;
        double f = r->reuse >= 48 ? 1.0
                   : new_use && r->reuse == FIRST_TOUCH_REUSE ? MAX(0.25, new_use_odds(p))
                   : 0.25;

        /* 4d. cost per epoch at the current location and at every location worth a look:
         * RAM and the homes of the accessors that touch it. */
        double c_cur = cost_at(e, &rt, cur);
        unsigned best = cur;
        double c_best = c_cur;
        for (unsigned a = 0; a < n_acc; a++) {
                unsigned l = a == 0 ? SPM_LOC_SYSMEM : e->m.home[a];
                if (a != 0 && rate[a] <= 0)
                        continue;
                if (l == best || !loc_allowed(e, j, l))
                        continue;
                double c = cost_at(e, &rt, l);
                if (c < c_best || (c == c_best && l < best && best != cur)) {
                        c_best = c;
                        best = l;
                }
        }

        /* 4e. a new quarantine: someone (the driver, mostly) keeps moving it. The engine stops
         * moving it and the plan lists it as held where it is, so the mover can pin it there
         * (PREFERRED_LOC): a thrashing driver stops, like UVM's thrashing mitigation. */
        if (new_quarantine) {
                x->plan->n_quarantined++;
                if (cur != SPM_LOC_SYSMEM || best == SPM_LOC_SYSMEM)
                        return hold(x, p, rg, r);
                /* In RAM but worth a GPU: held there only if it is worth no more than what
                 * VRAM holds (decided after placement, hold_or_release()). */
                return vec_push(&x->quarantined, &(struct item) {
                        .key = x->H * f * (c_cur - c_best) / (double) bytes,
                        .bytes = bytes,
                        .start = region_start(rg, r),
                        .p = p, .rg = rg, .idx = idx,
                        .from = (uint8_t) cur, .to = (uint8_t) best,
                });
        }

        /* 4f. a victim: in VRAM, movable, not held there by a hint. One whose next use is far
         * (far_use()) may go although it moved in for its last use. */
        bool quota_gone = cur != SPM_LOC_SYSMEM && !loc_allowed(e, j, cur);
        unsigned far = far_use(x, p, r);
        if (cur != SPM_LOC_SYSMEM && (settled || far) && hint != SPM_HINT_PIN_GPU &&
            hint != SPM_HINT_HOT) {
                double c_ram = cost_at(e, &rt, SPM_LOC_SYSMEM), gpu_rate = 0;
                for (unsigned k = 0; k < rt.n; k++)
                        if (rt.acc[k] != SPM_ACC_CPU)
                                gpu_rate += rate[rt.acc[k]];
                double price = x->H * f * (c_ram - c_cur);
                if (r->flags & REGION_IDLE)
                        price *= IDLE_PRICE;
                double cost = migrate_cost(e, bytes) +
                              (e->m.xnack && gpu_rate > 0 && !far ? e->m.fault_usec : 0);
                if (far)
                        price = MIN(price, far_use_price(e, r, far));
                ret = vec_push(&x->victims[cur], &(struct item) {
                        .key = -(price / (double) bytes),
                        .gain = price,
                        .cost = cost,
                        .bytes = bytes,
                        .start = region_start(rg, r),
                        .p = p, .rg = rg, .idx = idx,
                        .from = (uint8_t) cur, .to = SPM_LOC_SYSMEM,
                        .reason = quota_gone ? SPM_REASON_QUOTA : SPM_REASON_DISPLACED,
                });
                if (ret < 0)
                        return ret;
        }

        /* 4f'. a victim in location 0, when it can fill up: it makes room by going to the
         * next-best location the job may use. */
        if (cur == SPM_LOC_SYSMEM && x->ram_binds && settled && hint != SPM_HINT_PIN_RAM &&
            !((hint == SPM_HINT_PIN_GPU || hint == SPM_HINT_HOT) &&
              e->m.home[SPM_ACC_GPU(hgpu)] == SPM_LOC_SYSMEM)) {
                unsigned to = SPM_LOC_SYSMEM;
                double c_to = 0;
                for (unsigned l = 1; l < e->m.n_locs; l++) {
                        if (!loc_allowed(e, j, l))
                                continue;
                        double c = cost_at(e, &rt, l);
                        if (to == SPM_LOC_SYSMEM || c < c_to) {
                                to = l;
                                c_to = c;
                        }
                }
                if (to != SPM_LOC_SYSMEM) {
                        double price = x->H * f * (c_to - c_cur);
                        bool quota_over = job_room(e, j, cur) < 0;
                        ret = vec_push(&x->victims[cur], &(struct item) {
                                .key = -(price / (double) bytes),
                                .gain = price,
                                .cost = migrate_cost(e, bytes),
                                .bytes = bytes,
                                .start = region_start(rg, r),
                                .p = p, .rg = rg, .idx = idx,
                                .from = (uint8_t) cur, .to = (uint8_t) to,
                                .reason = quota_over ? SPM_REASON_QUOTA : SPM_REASON_DISPLACED,
                        });
                        if (ret < 0)
                                return ret;
                }
        }

        /* 4g. a candidate: hints first, then the cost model. */
        struct item c = {
                .bytes = bytes,
                .start = region_start(rg, r),
                .p = p, .rg = rg, .idx = idx,
                .from = (uint8_t) cur,
                .cost = migrate_cost(e, bytes),
        };
        if (hint == SPM_HINT_PIN_RAM) {
                if (cur == SPM_LOC_SYSMEM)
                        return 0;
                c.to = SPM_LOC_SYSMEM;
                c.reason = SPM_REASON_PIN;
                c.forced = true;
                c.key = KEY_PIN;
        } else if (hint == SPM_HINT_PIN_GPU || hint == SPM_HINT_HOT) {
                unsigned l = e->m.home[SPM_ACC_GPU(hgpu)];
                if (cur == l || !loc_allowed(e, j, l))
                        return 0;
                if (hint == SPM_HINT_HOT && !settled)
                        return 0;
                c.to = (uint8_t) l;
                c.reason = hint == SPM_HINT_PIN_GPU ? SPM_REASON_PIN : SPM_REASON_HINT_HOT;
                c.forced = true;
                c.key = (hint == SPM_HINT_PIN_GPU ? KEY_PIN : KEY_HINT_HOT) -
                        (double) bytes / 1e6;
        } else {
                /* A recurring CPU use is due: home before it, and back (a second copy)
                 * when the GPU wants it again. Moves for predicted uses (c.due) are no
                 * ping-pong: they may return a region to where it just came from. */
                double due = cpu_due_saving(x, p, r, &rt, cur, touched, settled);
                if (due > e->c.hysteresis * 2 * c.cost) {
                        c.to = SPM_LOC_SYSMEM;
                        c.gain = due;
                        c.key = due / (double) bytes;
                        c.reason = SPM_REASON_CPU_DUE;
                        c.due = true;
                        return vec_push(&x->cands, &c);
                }
                /* A new use that reached the length of its process's new uses that ended
                 * last is predicted to end with this epoch: a tile or phase of a blocked
                 * algorithm is done, and the next one's first touches are coming. When
                 * VRAM has no room for another such block, it leaves now, so the new data
                 * need not evict (TTM takes the oldest: a region in long use). What it is
                 * worth: the first epoch of as many bytes of the process's new data. */
                unsigned age = e->new_use_age[r->reuse];
                bool ends = age == p->life, early = age + 1 == p->life && p->life_early > 0;
                if (new_use && touched && cur != SPM_LOC_SYSMEM && settled &&
                    p->life >= STEADY_RUN && (ends || early) &&
                    room_of(e, cur) < (int64_t) p->life_block && p->first_bytes > 0) {
                        int g = e->loc_gpu[cur];
                        unsigned a = SPM_ACC_GPU(g >= 0 ? (unsigned) g : 0);
                        double gain = (double) bytes * p->first_acc / p->first_bytes *
                                      (e->cost_us[a][SPM_LOC_SYSMEM] - e->cost_us[a][cur]);
                        /* A block bigger than the epoch's budget would leave its last part
                         * an epoch late, after the next one's first touches evicted for
                         * it: that part (p->life_early) leaves the epoch before, what its
                         * own last epoch in RAM costs least first. */
                        if (early)
                                gain -= c_ram_less(e, &rt, cur);
                        if (gain > (early ? 1.0 : e->c.hysteresis) * c.cost) {
                                c.to = SPM_LOC_SYSMEM;
                                c.gain = gain;
                                c.key = gain / (double) bytes;
                                c.reason = SPM_REASON_USE_ENDS;
                                c.due = true;
                                c.early = early;
                                return vec_push(&x->cands, &c);
                        }
                }
                /* A recurring GPU use is due: into VRAM before it. */
                ret = gpu_due_candidate(x, p, rg, idx);
                if (ret != 0)
                        return ret < 0 ? ret : 0;
                /* Only what is in use now moves up: decayed heat of a phase that ended
                 * would otherwise displace the current one. */
                if (best == cur || !settled || (best != SPM_LOC_SYSMEM && !touched))
                        return 0;
                if (hint == SPM_HINT_STREAMING && best != SPM_LOC_SYSMEM)
                        return 0;
                /* Nor does a region the GPUs use go home for a CPU use in its first epoch: a
                 * one-epoch burst (an optimizer step, a checkpoint) is over by the time it
                 * would have moved, and the GPUs come back for what it sent home; a CPU use
                 * that goes on sends it the epoch after. */
                if (best == SPM_LOC_SYSMEM && cpu_starts)
                        return 0;
                c.to = (uint8_t) best;
                c.gain = x->H * f * (c_cur - c_best);
                /* Out of a run of uses (not touched both in this epoch and the one before),
                 * a new use excepted: intermittent, or over. Its use is less sure to last
                 * than a run's, and a swap for it is less sure to pay. */
                if (run < 2 && !new_use)
                        c.gain *= INTERMITTENT_SHARE;
                if (c.gain <= e->c.hysteresis * c.cost)
                        return 0;
                c.key = c.gain / (double) bytes;
                /* Location 0 is a GPU's home on an APU (mi300a-node): a move there for that
                 * GPU is a promotion too. */
                int bg = e->loc_gpu[best];
                if (best != SPM_LOC_SYSMEM || (bg >= 0 && rate[SPM_ACC_GPU(bg)] > 0))
                        c.reason = SPM_REASON_HOT;
                else if (hint == SPM_HINT_COLD)
                        c.reason = SPM_REASON_HINT_COLD;
                else
                        c.reason = rate[SPM_ACC_CPU] > 0 ? SPM_REASON_CPU_HOT : SPM_REASON_COLD;
        }
        return vec_push(&x->cands, &c);
}

static bool budget_ok(const struct epoch_ctx *x, unsigned from, unsigned to, uint64_t bytes) {
        return (from == SPM_LOC_SYSMEM || x->out_budget[from] >= bytes) &&
               (to == SPM_LOC_SYSMEM || x->in_budget[to] >= bytes);
}

static void budget_take(struct epoch_ctx *x, unsigned from, unsigned to, uint64_t bytes) {
        if (from != SPM_LOC_SYSMEM)
                x->out_budget[from] -= bytes;
        if (to != SPM_LOC_SYSMEM)
                x->in_budget[to] -= bytes;
}

/* Books one move: the region is at its destination from now on (in flight), and the plan
 * gets the move with its share of the group's benefit and cost. */
static int apply_move(struct epoch_ctx *x, struct item *it, double benefit, double cost,
                      enum spm_reason reason) {
        struct spm_engine *e = x->e;
        struct region *r = &it->rg->r[it->idx];
        int ret;

        budget_take(x, it->from, it->to, it->bytes);
        if (it->due)
                r->trips = 0;   /* a predicted use: a clean ping-pong history */
        if (it->early)
                it->p->life_early -= MIN(it->bytes, it->p->life_early);
        if (region_relocate(e, it->p, r, it->to, true)) {
                x->plan->n_quarantined++;
                ret = hold(x, it->p, it->rg, r);
                if (ret < 0)
                        return ret;
        }
        it->taken = true;
        e->st.moves_planned++;
        if (it->to == SPM_LOC_SYSMEM)
                e->st.bytes_to_ram += it->bytes;
        else
                e->st.bytes_to_gpu += it->bytes;
        x->plan->bytes_planned += it->bytes;
        return plan_push(x->plan, &(struct spm_move) {
                .pid = it->p->pid,
                .job_id = it->p->job->j.id,
                .start = it->start,
                .length = it->bytes,
                .from = it->from,
                .to = it->to,
                .reason = reason,
                .benefit_usec = benefit,
                .cost_usec = cost,
        });
}

/* Whether location 0 or a job's quota there could run out this epoch, when at most `inflow`
 * bytes come in: only then are its regions filed as victims (on mi250x-gcd, 512 GB of RAM
 * never binds and the epoch skips the RAM population). */
static bool ram_binds(const struct spm_engine *e, uint64_t inflow) {
        int64_t in = (int64_t) MIN(inflow, (uint64_t) INT64_MAX);
        if (room_of(e, SPM_LOC_SYSMEM) < in)
                return true;
        for (size_t i = 0; i < e->n_jobs; i++)
                if (job_room(e, e->jobs[i], SPM_LOC_SYSMEM) < in)
                        return true;
        return false;
}

/* Step 5a: a location or a job over its budget (the capacity or a quota shrank, or the driver
 * overfilled it) gives back its cheapest regions first, within the migration budget. */
static int enforce_budgets(struct epoch_ctx *x) {
        struct spm_engine *e = x->e;
        int ret;

        for (unsigned l = 0; l < e->m.n_locs; l++) {
                struct vec *v = &x->victims[l];
                for (size_t i = 0; i < x->n_victims_sorted[l]; i++) {
                        struct item *it = &v->v[i];
                        bool over_cap = room_of(e, l) < 0;
                        bool over_quota = job_room(e, it->p->job, l) < 0;
                        if (it->taken || !(over_cap || over_quota))
                                continue;
                        if (!budget_ok(x, it->from, it->to, it->bytes) ||
                            room_of(e, it->to) < (int64_t) it->bytes) {
                                x->plan->bytes_deferred += it->bytes;
                                continue;
                        }
                        enum spm_reason why = over_quota ? SPM_REASON_QUOTA : SPM_REASON_COLD;
                        ret = apply_move(x, it, MAX(it->cost, 0), it->cost, why);
                        if (ret < 0)
                                return ret;
                }
        }
        return 0;
}

/* Step 5b: one candidate. Demotions need only the budget; a move into VRAM may need victims
 * (cheapest first; for a quota, the job's own), and then the whole group must pay:
 *     gain - sum(victim loss) > hysteresis * (cost + sum(victim cost)),
 * unless the candidate is forced by a pin or hint (victims are never forced ones). */
static int place_candidate(struct epoch_ctx *x, struct item *c) {
        struct spm_engine *e = x->e;
        unsigned to = c->to;
        struct item *picked[VICTIM_WALK];
        size_t n_picked = 0;
        int ret;

        if (c->rg->r[c->idx].loc != c->from)
                return 0; /* moved as a victim already */
        /* Never be the one who completes a ping-pong: a region the driver keeps pulling
         * back stays where it is (the detector quarantines it when the driver does it). A
         * move for a predicted use is none: the use, not heat, brings it back. */
        if (!c->forced && !c->due && region_would_quarantine(e, &c->rg->r[c->idx], to))
                return 0;
        if (!budget_ok(x, c->from, to, c->bytes)) {
                x->plan->bytes_deferred += c->bytes;
                return 0;
        }
        if (c->early && c->p->life_early < c->bytes)
                return 0;
        if (to == SPM_LOC_SYSMEM && room_of(e, to) >= (int64_t) c->bytes &&
            job_room(e, c->p->job, to) >= (int64_t) c->bytes) {
                if (!c->forced && !(c->gain > (c->early ? 1.0 : e->c.hysteresis) * c->cost))
                        return 0;
                return apply_move(x, c, c->forced ? MAX(c->gain, c->cost) : c->gain, c->cost,
                                  c->reason);
        }

        int64_t need_cap = (int64_t) c->bytes - room_of(e, to);
        /* No quota (room INT64_MAX) needs nothing; counting victims off bytes - INT64_MAX
         * would overflow after two of them and make every group look short of quota. */
        int64_t jroom = job_room(e, c->p->job, to);
        int64_t need_quota = jroom == INT64_MAX ? 0 : (int64_t) c->bytes - jroom;
        double loss = 0, vcost = 0;
        uint64_t vbytes = 0, pending[SPM_MAX_LOCS] = {};
        struct vec *v = &x->victims[to];
        size_t i = x->victim_cursor[to];
        while (i < x->n_victims_sorted[to] && v->v[i].taken)
                i++;
        x->victim_cursor[to] = i;
        for (size_t walked = 0; (need_cap > 0 || need_quota > 0) && i < x->n_victims_sorted[to] &&
                                walked < VICTIM_WALK;
             i++, walked++) {
                struct item *w = &v->v[i];
                if (w->taken || w->rg->r[w->idx].loc != to ||
                    region_would_quarantine(e, &w->rg->r[w->idx], w->to))
                        continue;
                bool same_job = w->p->job == c->p->job;
                if (!(need_cap > 0 || same_job))
                        continue;
                /* The victim's destination must hold it too (it frees what the candidate
                 * leaves), within its migration budget. */
                int64_t room = room_of(e, w->to) - (int64_t) pending[w->to] +
                               (c->from == w->to ? (int64_t) c->bytes : 0);
                if (room < (int64_t) w->bytes ||
                    (w->to != SPM_LOC_SYSMEM && x->in_budget[w->to] < pending[w->to] + w->bytes))
                        continue;
                /* Victims come cheapest first: once one is denser than the candidate, no
                 * later one can pay. */
                if (!c->forced && -w->key >= c->key)
                        break;
                picked[n_picked++] = w;
                pending[w->to] += w->bytes;
                loss += w->gain;
                vcost += w->cost;
                vbytes += w->bytes;
                need_cap -= (int64_t) w->bytes;
                if (same_job)
                        need_quota -= (int64_t) w->bytes;
        }
        if (need_cap > 0 || need_quota > 0)
                return 0;
        if (vbytes > 0 && x->out_budget[to] < vbytes) {
                x->plan->bytes_deferred += c->bytes;
                return 0;
        }
        /* A move into VRAM for a predicted GPU use needs no margin: the use comes from a
         * confirmed pattern, not from heat that may fade, and the victims are priced by their
         * own (far_use()). (A cpu-due move into a bounded node 0, on an APU, displaces GPU
         * data like any promotion: it keeps the hysteresis.) */
        double G = c->gain - loss, C = c->cost + vcost;
        if (!c->forced && !(G > (c->reason == SPM_REASON_GPU_DUE ? 1.0 : e->c.hysteresis) * C))
                return 0;
        if (c->forced)
                G = MAX(G, C);

        /* The group shares its net saving and its cost in proportion to bytes, so every move
         * of it carries benefit >= cost. */
        double total = (double) (c->bytes + vbytes);
        for (size_t k = 0; k < n_picked; k++) {
                double w = (double) picked[k]->bytes / total;
                ret = apply_move(x, picked[k], G * w, C * w, picked[k]->reason);
                if (ret < 0)
                        return ret;
        }
        double w = (double) c->bytes / total;
        return apply_move(x, c, G * w, C * w, c->reason);
}

/* Step 5c: a region the driver keeps pulling into VRAM and evicting again (a thrash: VRAM is
 * too small for what the GPU touches) is held in RAM when it is worth no more than the
 * cheapest region VRAM keeps, so the thrash stops (what UVM's thrashing mitigation does).
 * One worth more is left to the driver: pinned in RAM, a hot region would stay slow. */
static int hold_or_release(struct epoch_ctx *x) {
        struct spm_engine *e = x->e;

        for (size_t i = 0; i < x->quarantined.n; i++) {
                struct item *q = &x->quarantined.v[i];
                unsigned l = q->to;
                double floor = -1;
                for (size_t k = 0; k < x->n_victims_sorted[l]; k++) {
                        const struct item *w = &x->victims[l].v[k];
                        if (!w->taken && w->rg->r[w->idx].loc == l) {
                                floor = -w->key;
                                break;
                        }
                }
                bool full = room_of(e, l) < (int64_t) q->bytes;
                if (full && (floor < 0 || q->key <= floor * (1 + 1e-9))) {
                        int r = hold(x, q->p, q->rg, &q->rg->r[q->idx]);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Step 6 lives in plan.c (order, coalesce, capacity-safe order); step 7: decay. */
static void decay(struct spm_engine *e, usec_t dt) {
        e->scale *= exp2((double) dt / (double) e->c.half_life_usec);
        if (e->scale < 0x1p40)
                return;
        /* Fold the scale back into the regions before floats run out of exponent. */
        float k = (float) (1.0 / e->scale);
        for (size_t i = 0; i < e->n_procs; i++)
                for (size_t q = 0; q < e->procs[i]->n_ranges; q++) {
                        struct spm_range *rg = &e->procs[i]->ranges[q];
                        range_fold(rg);
                        for (uint32_t t = 0; t < rg->n; t++)
                                for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                                        rg->r[t].heat[a] *= k;
                }
        e->scale = 1.0;
}

static void plan_reset(struct spm_plan *plan, usec_t now) {
        plan->now = now;
        plan->n_moves = 0;
        plan->n_held = 0;
        plan->bytes_planned = 0;
        plan->bytes_deferred = 0;
        plan->n_quarantined = 0;
}

int spm_engine_epoch(struct spm_engine *e, usec_t now, struct spm_plan *plan) {
        struct epoch_ctx x = { .e = e, .plan = plan };
        usec_t dt;
        int r;

        if (!e || !plan)
                return -EINVAL;
        plan_reset(plan, now);

        /* 1. Clock. A clock going back is taken as no time passing. */
        dt = !e->started ? e->c.epoch_usec : now > e->now ? now - e->now : 0;
        if (!e->started || now > e->now)
                e->now = now;
        e->started = true;

        /* 2. Hints: expire, re-stamp. */
        r = engine_hints_epoch(e);
        if (r < 0)
                goto finish;

        /* 3. Regions adapt: split where partial accesses showed a spot inside a bigger
         * region (and let those accesses land), merge look-alikes. */
        r = engine_flush_deferred(e);
        if (r < 0)
                goto finish;
        if (e->epoch % e->c.merge_interval_epochs == 0)
                for (size_t i = 0; i < e->n_procs; i++)
                        for (size_t q = 0; q < e->procs[i]->n_ranges; q++)
                                range_merge(e, e->procs[i], &e->procs[i]->ranges[q]);
        r = front_cuts(e);
        if (r < 0)
                goto finish;

        /* 4. Score every region (one linear pass). */
        x.rate_k = (1.0 - exp2(-1.0 / e->epochs_per_half_life)) / e->scale;
        x.fault_hold_k = e->c.fault_accesses > 0
                ? exp2((double) dt / (double) e->c.half_life_usec * (1.0 - 1.0 / FAULT_HOLD))
                : 1.0;
        x.H = e->c.horizon_epochs;
        uint64_t budget = e->c.migrate_budget_bytes
                ? e->c.migrate_budget_bytes
                : (uint64_t) (e->m.migrate_gbps * 1000.0 * (double) e->c.epoch_usec);
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                x.in_budget[l] = x.out_budget[l] = budget;
        for (size_t i = 0; i < e->n_procs; i++) {
                struct spm_process *p = e->procs[i];
                /* In whole granules: the budget takes whole ones too. */
                p->life_early = p->life_block > budget
                        ? ALIGN_UP(p->life_block - budget, e->c.granule) : 0;
        }
        x.ram_binds = ram_binds(e, (e->m.n_locs - 1) * budget);
        for (size_t i = 0; i < e->n_procs; i++)
                for (size_t q = 0; q < e->procs[i]->n_ranges; q++) {
                        struct spm_range *rg = &e->procs[i]->ranges[q];
                        uint32_t s = 0;
                        front_begin(&x);
                        for (uint32_t t = 0; t < rg->n; t++) {
                                s = range_fold_upto(rg, s, t);
                                r = score_region(&x, e->procs[i], rg, t);
                                if (r < 0)
                                        goto finish;
                        }
                        r = front_finish(&x, e->procs[i], rg);
                        if (r < 0)
                                goto finish;
                }
        for (size_t i = 0; i < e->n_procs; i++)
                new_use_learn(e->procs[i], LIFE_GRANULES * e->c.granule, e->epoch);

        /* 5. Select: only the best candidates and the cheapest victims that the budget could
         * ever move get sorted. */
        uint64_t total_budget = 0;
        for (unsigned l = 0; l < e->m.n_locs; l++) {
                if (l != SPM_LOC_SYSMEM)
                        total_budget += 2 * budget;
                r = select_top(&x.victims[l], 2 * budget + (uint64_t) MAX(-room_of(e, l), 0),
                               &x.n_victims_sorted[l]);
                if (r < 0)
                        goto finish;
        }
        r = enforce_budgets(&x);
        if (r < 0)
                goto finish;
        size_t n_sorted;
        r = select_top(&x.cands, 2 * total_budget, &n_sorted);
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < n_sorted; i++) {
                r = place_candidate(&x, &x.cands.v[i]);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = n_sorted; i < x.cands.n; i++)
                plan->bytes_deferred += x.cands.v[i].bytes;
        r = hold_or_release(&x);
        if (r < 0)
                goto finish;

        /* 6. Order and coalesce the plan. */
        r = plan_finish(e, plan);
        if (r < 0)
                goto finish;
        r = (int) MIN(plan->n_moves, (size_t) INT32_MAX);
finish:
        /* 7. Decay (lazily: one multiplication) and advance the epoch, even on failure, so
         * time stays consistent. */
        decay(e, dt);
        e->epoch++;
        e->st.epochs++;
        epoch_ctx_done(&x);
        return r;
}

int spm_engine_drain(struct spm_engine *e, unsigned gpu, uint64_t job_id, struct spm_plan *plan) {
        unsigned l;
        int r;

        if (!e || !plan || gpu >= e->m.n_gpus)
                return -EINVAL;
        if (job_id != 0 && !engine_job(e, job_id))
                return -ENOENT;
        l = e->m.home[SPM_ACC_GPU(gpu)];
        plan_reset(plan, e->now);
        if (l == SPM_LOC_SYSMEM)
                return 0;

        /* Placement must not bring it back: the drained jobs lose their quota there (a
         * later spm_engine_job_set() restores it). */
        for (size_t i = 0; i < e->n_jobs; i++)
                if (job_id == 0 || e->jobs[i]->j.id == job_id)
                        e->jobs[i]->j.vram_quota[gpu] = 0;

        for (size_t i = 0; i < e->n_procs; i++) {
                struct spm_process *p = e->procs[i];
                if (job_id != 0 && p->job->j.id != job_id)
                        continue;
                for (size_t q = 0; q < p->n_ranges; q++) {
                        struct spm_range *rg = &p->ranges[q];
                        for (uint32_t t = 0; t < rg->n; t++) {
                                struct region *x = &rg->r[t];
                                if (x->loc != l)
                                        continue;
                                double cost = migrate_cost(e, region_bytes(x));
                                struct spm_move m = {
                                        .pid = p->pid,
                                        .job_id = p->job->j.id,
                                        .start = region_start(rg, x),
                                        .length = region_bytes(x),
                                        .from = (uint8_t) l,
                                        .to = SPM_LOC_SYSMEM,
                                        .reason = SPM_REASON_DRAIN,
                                        .benefit_usec = cost,
                                        .cost_usec = cost,
                                };
                                (void) region_relocate(e, p, x, SPM_LOC_SYSMEM, true);
                                x->flags &= (uint8_t) ~REGION_QUARANTINED;
                                r = plan_push(plan, &m);
                                if (r < 0)
                                        return r;
                                plan->bytes_planned += m.length;
                                e->st.bytes_to_ram += m.length;
                                e->st.moves_planned++;
                        }
                }
        }
        r = plan_finish(e, plan);
        if (r < 0)
                return r;
        return (int) MIN(plan->n_moves, (size_t) INT32_MAX);
}
