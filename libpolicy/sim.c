/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulation loop and its bookkeeping: where every region is, what each access, fault and
 * migration costs (additive view) and which resource each loads (roofline view). The kernel's
 * own behaviour lives in sim-kfd.c behind struct spm_sim_driver; placement policies in
 * sim-policies.c and sim-oracle.c.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/sim.h"

/* Regions that entered a location, in order; stale entries are skipped lazily. */
struct fifo {
        uint32_t *region;
        uint64_t *seq;
        size_t head, n, alloc;
};

struct spm_sim {
        const struct spm_machine *m;
        const struct spm_simtrace *t;
        const struct spm_sim_config *c;
        const struct spm_sim_driver *drv;
        const struct spm_sim_policy *p;
        void *pstate;
        struct spm_sim_result *res;

        uint32_t epoch;
        uint8_t *loc;
        uint8_t *pref;
        uint64_t *entered;        /* sequence number of the move into the current location */
        uint32_t *last_touch;
        uint32_t *moved1, *moved2;/* epoch + 1 of the last two migrations, 0 = none */
        uint64_t seq;

        unsigned backing;
        bool fast[SPM_MAX_LOCS];
        uint64_t cap[SPM_MAX_LOCS], used[SPM_MAX_LOCS];
        struct fifo fifo[SPM_MAX_LOCS];

        /* roofline: busy time (usec) of each resource in the current epoch */
        double busy_mem[SPM_MAX_LOCS], busy_link[SPM_MAX_LOCS], busy_copy[SPM_MAX_LOCS];
        double busy_cpu;
};

void spm_sim_config_defaults(struct spm_sim_config *ret) {
        *ret = (struct spm_sim_config) {
                .vram_fraction = 0,
                .pingpong_window = 32,
        };
}

void spm_sim_result_done(struct spm_sim_result *r) {
        free(r->placement);
        r->placement = NULL;
}

/* ---- accessors for policies ---- */

const struct spm_machine *spm_sim_machine(const struct spm_sim *s) { return s->m; }
const struct spm_simtrace *spm_sim_trace(const struct spm_sim *s) { return s->t; }
const struct spm_sim_config *spm_sim_config(const struct spm_sim *s) { return s->c; }
uint32_t spm_sim_epoch(const struct spm_sim *s) { return s->epoch; }
double spm_sim_elapsed_usec(const struct spm_sim *s) { return s->res->time_usec; }
unsigned spm_sim_loc(const struct spm_sim *s, uint32_t r) { return s->loc[r]; }
unsigned spm_sim_backing(const struct spm_sim *s) { return s->backing; }
bool spm_sim_is_fast(const struct spm_sim *s, unsigned loc) {
        return loc < SPM_MAX_LOCS && s->fast[loc];
}
uint64_t spm_sim_capacity(const struct spm_sim *s, unsigned loc) {
        return loc < SPM_MAX_LOCS ? s->cap[loc] : 0;
}
uint64_t spm_sim_used(const struct spm_sim *s, unsigned loc) {
        return loc < SPM_MAX_LOCS ? s->used[loc] : 0;
}
unsigned spm_sim_preferred(const struct spm_sim *s, uint32_t r) { return s->pref[r]; }
void spm_sim_set_preferred(struct spm_sim *s, uint32_t r, unsigned loc) {
        s->pref[r] = (uint8_t) loc;
}
uint32_t spm_sim_last_touch(const struct spm_sim *s, uint32_t r) { return s->last_touch[r]; }
bool spm_sim_explaining(const struct spm_sim *s) { return s->c->explain != NULL; }

unsigned spm_sim_fast_loc(const struct spm_sim *s, unsigned accessor) {
        unsigned h = s->m->home[accessor];

        return s->fast[h] ? h : s->backing;
}

double spm_sim_move_cost(const struct spm_sim *s) {
        return spm_machine_migrate_usec(s->m, s->t->granule);
}

double spm_sim_benefit(const struct spm_sim *s, unsigned accessor, unsigned loc, double ops) {
        return ops * (spm_machine_access_ns(s->m, accessor, s->backing) -
                      spm_machine_access_ns(s->m, accessor, loc)) / 1000.0;
}

void spm_sim_explain(struct spm_sim *s, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        if (!s->c->explain)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        s->c->explain(s->c->explain_userdata, buf);
}

/* ---- placement bookkeeping ---- */

static int fifo_push(struct fifo *f, uint32_t r, uint64_t seq) {
        if (f->head + f->n == f->alloc) {
                if (f->head > f->alloc / 2) {
                        /* Compact rather than grow: the live part is small. */
                        memmove(f->region, f->region + f->head, f->n * sizeof(*f->region));
                        memmove(f->seq, f->seq + f->head, f->n * sizeof(*f->seq));
                        f->head = 0;
                } else {
                        size_t n = MAX(f->alloc * 2, (size_t) 64);
                        uint32_t *a = reallocarray(f->region, n, sizeof(*a));
                        if (!a)
                                return -ENOMEM;
                        f->region = a;
                        uint64_t *b = reallocarray(f->seq, n, sizeof(*b));
                        if (!b)
                                return -ENOMEM;
                        f->seq = b;
                        f->alloc = n;
                }
        }
        f->region[f->head + f->n] = r;
        f->seq[f->head + f->n] = seq;
        f->n++;
        return 0;
}

uint32_t spm_sim_oldest_at(const struct spm_sim *s, unsigned loc) {
        struct fifo *f = (struct fifo *) &s->fifo[loc];

        /* Drop entries for regions that have left since (their sequence number changed). */
        while (f->n > 0) {
                uint32_t r = f->region[f->head];

                if (s->loc[r] == loc && s->entered[r] == f->seq[f->head])
                        return r;
                f->head++;
                f->n--;
        }
        return UINT32_MAX;
}

/* Moves region r to `to`, charging cost_usec (split into fault and copy parts). */
static void place(struct spm_sim *s, uint32_t r, unsigned to) {
        unsigned from = s->loc[r];

        if (from != SPM_SIM_UNPOPULATED)
                s->used[from]--;
        s->loc[r] = (uint8_t) to;
        s->used[to]++;
        s->entered[r] = ++s->seq;
        if (s->fast[to])
                (void) fifo_push(&s->fifo[to], r, s->seq);  /* ENOMEM only loses LRU order */
}

/* The device whose copy engine serves a move (migrations are serialised per device). */
static unsigned copy_device(const struct spm_sim *s, unsigned from, unsigned to) {
        if (to != s->backing)
                return to;
        return from == SPM_SIM_UNPOPULATED ? to : from;
}

/* Charges and performs a move. fault: the fixed fault cost instead of the call cost. */
static void charge_move(struct spm_sim *s, uint32_t r, unsigned to, bool fault) {
        unsigned from = s->loc[r];
        double fixed = fault ? s->m->fault_usec : s->m->migrate_call_usec;
        double copy = 0;

        if (from != SPM_SIM_UNPOPULATED) {
                copy = (double) s->t->granule / s->m->migrate_gbps / 1000.0;
                s->res->migrations++;
                if (to == s->backing)
                        s->res->bytes_to_slow += s->t->granule;
                else
                        s->res->bytes_to_fast += s->t->granule;
                if (s->moved2[r] != 0 && s->epoch + 1 - s->moved2[r] < s->c->pingpong_window)
                        s->res->pingpongs++;
                s->moved2[r] = s->moved1[r];
                s->moved1[r] = s->epoch + 1;
        }
        if (fault) {
                s->res->faults++;
                s->res->fault_usec += fixed;
        } else
                s->res->migrate_usec += fixed;
        s->res->migrate_usec += copy;
        s->res->time_usec += fixed + copy;
        s->busy_copy[copy_device(s, from, to)] += fixed + copy;
        place(s, r, to);
}

void spm_sim_populate(struct spm_sim *s, uint32_t r, unsigned loc) {
        if (s->loc[r] == SPM_SIM_UNPOPULATED)
                place(s, r, loc);
}

static bool loc_has_room(const struct spm_sim *s, unsigned loc) {
        if (loc == s->backing)
                return true;
        return s->fast[loc] && s->used[loc] < s->cap[loc];
}

int spm_sim_fault_migrate(struct spm_sim *s, uint32_t r, unsigned to, unsigned accessor,
                          bool evict) {
        if (s->loc[r] == to)
                return 0;
        while (!loc_has_room(s, to)) {
                if (!evict || !s->fast[to] || s->cap[to] == 0 || s->drv->make_room(s, to) < 0)
                        return -ENOSPC;
        }
        unsigned from = s->loc[r];
        charge_move(s, r, to, /* fault= */ true);
        if (s->p->driver_moved)
                s->p->driver_moved(s, s->pstate, r, from, to, true,
                                   accessor == SPM_ACC_CPU ? 0 : accessor - 1);
        return 1;
}

int spm_sim_driver_move(struct spm_sim *s, uint32_t r, unsigned to) {
        unsigned from = s->loc[r];

        if (from == to || !loc_has_room(s, to))
                return 0;
        charge_move(s, r, to, /* fault= */ false);
        s->res->evictions++;
        if (s->p->driver_moved)
                s->p->driver_moved(s, s->pstate, r, from, to, false, 0);
        return 1;
}

int spm_sim_move(struct spm_sim *s, uint32_t r, unsigned to) {
        s->pref[r] = (uint8_t) to;
        if (s->loc[r] == to)
                return 0;
        /* An unpopulated region preferring the backing location is populated there on first
         * touch anyway: nothing to copy. */
        if (s->loc[r] == SPM_SIM_UNPOPULATED && to == s->backing)
                return 0;
        if (!loc_has_room(s, to)) {
                /* KFD: reserve_mem_limit fails, the ioctl still reports success. */
                s->res->prefetch_failed++;
                return -ENOSPC;
        }
        charge_move(s, r, to, /* fault= */ false);
        return 1;
}

/* ---- setup ---- */

void spm_sim_layout(const struct spm_machine *m, const struct spm_simtrace *t,
                    const struct spm_sim_config *c, struct spm_sim_layout *ret) {
        struct spm_sim_layout y = { .backing = SPM_LOC_SYSMEM };
        bool is_home[SPM_MAX_LOCS] = {};

        for (unsigned a = 0; a < m->n_accessors; a++)
                if (t->accessor_mask & (1u << a))
                        is_home[m->home[a]] = true;
        if (m->kind == SPM_MEM_NUMA) {
                /* The farthest node no accessor calls home backs everything (CXL-like). */
                y.backing = m->n_locs - 1;
                for (unsigned l = m->n_locs; l-- > 0;)
                        if (!is_home[l]) {
                                y.backing = l;
                                break;
                        }
        }
        for (unsigned l = 0; l < m->n_locs; l++) {
                if (l == y.backing || !is_home[l])
                        continue;
                y.fast[l] = true;
                y.n_fast++;
                y.cap[l] = m->capacity[l] / t->granule;
                if (c->vram_fraction > 0) {
                        uint32_t mask = 0;

                        for (unsigned a = 0; a < m->n_accessors; a++)
                                if (m->home[a] == l)
                                        mask |= 1u << a;
                        uint64_t n = spm_simtrace_footprint(t, mask) / t->granule;
                        uint64_t k = (uint64_t) ((double) n * c->vram_fraction);
                        y.cap[l] = MIN(y.cap[l], MAX(k, (uint64_t) 1));
                }
        }
        y.cap[y.backing] = UINT64_MAX;
        *ret = y;
}

static void setup_locations(struct spm_sim *s) {
        struct spm_sim_layout y;

        spm_sim_layout(s->m, s->t, s->c, &y);
        s->backing = y.backing;
        memcpy(s->fast, y.fast, sizeof(s->fast));
        memcpy(s->cap, y.cap, sizeof(s->cap));
}

static void sim_free(struct spm_sim *s) {
        free(s->loc);
        free(s->pref);
        free(s->entered);
        free(s->last_touch);
        free(s->moved1);
        free(s->moved2);
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++) {
                free(s->fifo[l].region);
                free(s->fifo[l].seq);
        }
}

/* ---- the loop ---- */

static void charge_access(struct spm_sim *s, const struct spm_sim_access *a) {
        const struct spm_machine *m = s->m;
        unsigned l = s->loc[a->region], acc = a->accessor;
        double usec = a->ops * spm_machine_access_ns(m, acc, l) / 1000.0;

        s->res->time_usec += usec;
        s->res->access_usec += usec;
        s->res->total_ops += a->ops;
        if (l == m->home[acc])
                s->res->fast_ops += a->ops;
        if (acc == SPM_ACC_CPU)
                s->busy_cpu += usec;
        else if (l == m->home[acc])
                s->busy_mem[l] += usec;
        else
                s->busy_link[l == s->backing ? m->home[acc] : l] += usec;
        s->last_touch[a->region] = s->epoch;
}

static double roofline_epoch(struct spm_sim *s) {
        double worst = s->busy_cpu;

        for (unsigned l = 0; l < SPM_MAX_LOCS; l++) {
                worst = MAX(worst, s->busy_mem[l]);
                worst = MAX(worst, s->busy_link[l]);
                worst = MAX(worst, s->busy_copy[l]);
        }
        memset(s->busy_mem, 0, sizeof(s->busy_mem));
        memset(s->busy_link, 0, sizeof(s->busy_link));
        memset(s->busy_copy, 0, sizeof(s->busy_copy));
        s->busy_cpu = 0;
        return worst;
}

int spm_sim_run(const struct spm_machine *m, const struct spm_simtrace *t,
                const struct spm_sim_config *c, const struct spm_sim_policy *p,
                struct spm_sim_result *ret) {
        struct spm_sim_result res = {};
        struct spm_sim s = {
                .m = m,
                .t = t,
                .c = c,
                .p = p,
                .res = &res,
                .drv = c->driver ? c->driver : &spm_sim_kfd_driver,
        };
        int r = 0;

        if (spm_machine_validate(m) < 0 || !t->finished || t->granule != m->granule)
                return -EINVAL;
        for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                if ((t->accessor_mask & (1u << a)) && a >= m->n_accessors)
                        return -EINVAL;
        snprintf(res.policy, sizeof(res.policy), "%s", p->name);
        res.n_regions = t->n_regions;
        res.n_epochs = t->n_epochs;

        size_t n = MAX((size_t) t->n_regions, (size_t) 1);
        s.loc = malloc(n);
        s.pref = malloc(n);
        s.entered = calloc(n, sizeof(*s.entered));
        s.last_touch = malloc(n * sizeof(*s.last_touch));
        s.moved1 = calloc(n, sizeof(*s.moved1));
        s.moved2 = calloc(n, sizeof(*s.moved2));
        if (c->record_placement)
                res.placement = malloc(MAX(n * t->n_epochs, (size_t) 1));
        if (!s.loc || !s.pref || !s.entered || !s.last_touch || !s.moved1 || !s.moved2 ||
            (c->record_placement && !res.placement)) {
                r = -ENOMEM;
                goto finish;
        }
        memset(s.loc, SPM_SIM_UNPOPULATED, n);
        memset(s.pref, SPM_SIM_NO_PREF, n);
        memset(s.last_touch, 0xff, n * sizeof(*s.last_touch));
        setup_locations(&s);

        if (p->init) {
                r = p->init(&s, &s.pstate);
                if (r < 0)
                        goto finish;
        }
        for (uint32_t e = 0; e < t->n_epochs; e++) {
                s.epoch = e;
                if (p->epoch_begin) {
                        r = p->epoch_begin(&s, s.pstate, e);
                        if (r < 0)
                                goto finish;
                }
                /* The epoch's accesses are concurrent: first what the driver does about them
                 * (faults, evictions), then every access is served from where its region ended
                 * up. A region faulted in and evicted again within one epoch thus pays both
                 * moves and gains nothing, as interleaved accesses would; charging in trace
                 * order instead would let a fault-driven policy time-share VRAM between
                 * regions within an epoch, which no epoch-level schedule (and no real
                 * interleaving) allows. */
                for (size_t i = t->epoch_start[e]; i < t->epoch_start[e + 1]; i++) {
                        const struct spm_sim_access *a = &t->acc[i];

                        if (a->accessor == SPM_ACC_CPU)
                                s.drv->cpu_touch(&s, a->region);
                        else
                                s.drv->gpu_touch(&s, a->region, a->accessor - 1);
                }
                for (size_t i = t->epoch_start[e]; i < t->epoch_start[e + 1]; i++) {
                        const struct spm_sim_access *a = &t->acc[i];

                        charge_access(&s, a);
                        if (p->observe)
                                p->observe(&s, s.pstate, a, s.loc[a->region]);
                }
                /* Where each region was while the epoch ran (after its faults). */
                if (res.placement)
                        for (uint32_t i = 0; i < t->n_regions; i++)
                                res.placement[(size_t) i * t->n_epochs + e] = s.loc[i];
                if (p->epoch_end) {
                        r = p->epoch_end(&s, s.pstate, e);
                        if (r < 0)
                                goto finish;
                }
                res.roofline_usec += roofline_epoch(&s);
        }
        *ret = res;
        res.placement = NULL;
finish:
        if (p->done && s.pstate)
                p->done(s.pstate);
        spm_sim_result_done(&res);
        sim_free(&s);
        return r;
}

int spm_sim_policy_fault(struct spm_sim *s, uint32_t r, unsigned gpu) {
        if (!s->p->gpu_fault)
                return 0;
        return s->p->gpu_fault(s, s->pstate, r, gpu);
}
