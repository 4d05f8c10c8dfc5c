/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The engine object: configuration, jobs, processes, introspection. The per-region work lives
 * in regions.c (layout, split/merge), observe.c (ingest), hints.c, placement.c (the epoch) and
 * plan.c (ordering and coalescing).
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

static const char *const reason_names[_SPM_REASON_MAX] = {
        [SPM_REASON_HOT] = "hot",
        [SPM_REASON_COLD] = "cold",
        [SPM_REASON_CPU_HOT] = "cpu-hot",
        [SPM_REASON_DISPLACED] = "displaced",
        [SPM_REASON_HINT_HOT] = "hint-hot",
        [SPM_REASON_HINT_COLD] = "hint-cold",
        [SPM_REASON_PIN] = "pin",
        [SPM_REASON_STREAMING] = "streaming",
        [SPM_REASON_QUOTA] = "quota",
        [SPM_REASON_DRAIN] = "drain",
        [SPM_REASON_QUARANTINE] = "quarantine",
        [SPM_REASON_CPU_DUE] = "cpu-due",
        [SPM_REASON_GPU_DUE] = "gpu-due",
        [SPM_REASON_USE_ENDS] = "use-ends",
        [SPM_REASON_FRONT] = "front",
};

const char *spm_reason_to_string(enum spm_reason r) {
        if ((unsigned) r >= _SPM_REASON_MAX)
                return NULL;
        return reason_names[r];
}


void engine_debug(const struct spm_engine *e, const char *fmt, ...) {
        char buf[256];
        va_list ap;

        if (!e->c.debug)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        e->c.debug(e->c.debug_userdata, buf);
}

void spm_engine_config_defaults(const struct spm_machine *m, struct spm_engine_config *ret) {
        usec_t epoch = m && m->epoch_usec > 0 ? (usec_t) m->epoch_usec : 10000;

        *ret = (struct spm_engine_config) {
                .granule = m && m->granule ? m->granule : 2ULL << 20,
                .epoch_usec = epoch,
                .half_life_usec = 4 * epoch,
                .hysteresis = 2.0,
                .min_residency_epochs = 2,
                .pingpong_trips = 2,
                .pingpong_window_epochs = 16,
                .quarantine_epochs = 12,
                .migrate_budget_bytes = 0,
                .max_regions_per_range = 4096,
                .horizon_epochs = 8.0,
                .fault_accesses = 0.0,
                .merge_interval_epochs = 4,
        };
}

static int config_validate(const struct spm_engine_config *c) {
        if (!c || !IS_POWER_OF_2(c->granule) || c->granule < PAGE_SIZE || c->granule > (1ULL << 30))
                return -EINVAL;
        if (c->epoch_usec == 0 || c->half_life_usec == 0)
                return -EINVAL;
        if (!(c->hysteresis >= 1.0) || !(c->horizon_epochs > 0) || !(c->fault_accesses >= 0))
                return -EINVAL;
        if (c->pingpong_trips == 0 || c->pingpong_trips > 100 || c->max_regions_per_range < 1 ||
            c->max_regions_per_range > MAX_REGIONS_PER_RANGE || c->merge_interval_epochs == 0)
                return -EINVAL;
        /* Region ages are kept mod 2^16 epochs. */
        if (c->min_residency_epochs > 60000 || c->pingpong_window_epochs > 60000 ||
            c->quarantine_epochs > 60000)
                return -EINVAL;
        return 0;
}

/* Recomputes everything derived from the machine and the config. */
static void engine_derive(struct spm_engine *e) {
        e->granule_shift = (unsigned) __builtin_ctzll(e->c.granule);
        e->epochs_per_half_life = (double) e->c.half_life_usec / (double) e->c.epoch_usec;
        /* After n touched epochs reuse is 256 (1 - (7/8)^n) and the heat has filled
         * 1 - 2^(-n / half-life) of its window: the same n gives one from the other. */
        double first = 1.0 - exp2(-1.0 / e->epochs_per_half_life);
        double k = (1.0 / e->epochs_per_half_life) / -log2(7.0 / 8.0);
        for (unsigned u = 0; u < 256; u++) {
                double fill = 1.0 - pow(1.0 - u / 256.0, k);
                e->heat_boost[u] = (float) (1.0 / MAX(fill, first));
        }
        /* The reuse of a region touched in every epoch since its first touch follows one
         * sequence (placement.c, step 4a): its n-th value says n, until it saturates. */
        memset(e->new_use_age, 0, sizeof(e->new_use_age));
        for (unsigned n = 1, u = 0;; n++) {
                u = MIN(u - u / 8 + 32, 255u);
                if (e->new_use_age[u] != 0) {
                        e->new_use_age[u] = 0;
                        break;
                }
                e->new_use_age[u] = (uint8_t) n;
        }
        for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                        e->cost_us[a][l] = a < e->m.n_accessors && l < e->m.n_locs
                                ? (float) (spm_machine_access_ns(&e->m, a, l) / 1000.0) : 0.0f;
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                e->loc_gpu[l] = -1;
        for (unsigned g = 0; g < e->m.n_gpus; g++) {
                unsigned l = e->m.home[SPM_ACC_GPU(g)];
                if (e->loc_gpu[l] < 0)
                        e->loc_gpu[l] = (int) g;
        }
}

int spm_engine_new(const struct spm_machine *m, const struct spm_engine_config *c,
                   struct spm_engine **ret) {
        _cleanup_(spm_engine_freep) struct spm_engine *e = NULL;
        struct spm_engine_config def;

        if (!m || !ret || spm_machine_validate(m) < 0)
                return -EINVAL;
        if (!c) {
                spm_engine_config_defaults(m, &def);
                c = &def;
        }
        if (config_validate(c) < 0)
                return -EINVAL;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->m = *m;
        e->c = *c;
        e->scale = 1.0;
        e->epoch = 1;
        for (unsigned l = 0; l < m->n_locs; l++)
                e->capacity[l] = m->capacity[l];
        engine_derive(e);
        *ret = TAKE_PTR(e);
        return 0;
}

static struct spm_process *process_free(struct spm_engine *e, struct spm_process *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_ranges; i++)
                range_free_regions(e, p, &p->ranges[i]);
        free(p->ranges);
        free(p->hints);
        free(p);
        return NULL;
}

struct spm_engine *spm_engine_free(struct spm_engine *e) {
        if (!e)
                return NULL;
        for (size_t i = 0; i < e->n_procs; i++)
                process_free(e, e->procs[i]);
        free(e->procs);
        free(e->phash);
        for (size_t i = 0; i < e->n_jobs; i++)
                free(e->jobs[i]);
        free(e->jobs);
        free(e->deferred);
        free(e);
        return NULL;
}

int spm_engine_set_config(struct spm_engine *e, const struct spm_engine_config *c) {
        if (!e || config_validate(c) < 0)
                return -EINVAL;
        /* The slot tables are cut at the granule: a new granule needs them rebuilt. */
        bool regranule = c->granule != e->c.granule;
        e->c = *c;
        engine_derive(e);
        if (regranule)
                for (size_t i = 0; i < e->n_procs; i++)
                        for (size_t k = 0; k < e->procs[i]->n_ranges; k++) {
                                struct spm_range *rg = &e->procs[i]->ranges[k];
                                range_fold(rg);
                                rg->base = ALIGN_DOWN(rg->start, e->c.granule);
                                int r = range_rebuild_slots(e, rg);
                                if (r < 0)
                                        return r;
                        }
        return 0;
}

int spm_engine_set_capacity(struct spm_engine *e, unsigned loc, uint64_t bytes) {
        if (!e || loc >= e->m.n_locs)
                return -EINVAL;
        e->capacity[loc] = bytes;
        return 0;
}

int spm_engine_set_migrate_budget(struct spm_engine *e, uint64_t bytes) {
        if (!e)
                return -EINVAL;
        e->c.migrate_budget_bytes = bytes;      /* read at each epoch; nothing derives from it */
        return 0;
}

/* ---- jobs ---- */

struct spm_jobrec *engine_job(struct spm_engine *e, uint64_t id) {
        for (size_t i = 0; i < e->n_jobs; i++)
                if (e->jobs[i]->j.id == id)
                        return e->jobs[i];
        return NULL;
}

int spm_engine_job_set(struct spm_engine *e, const struct spm_job *j) {
        struct spm_jobrec *jr;

        if (!e || !j || j->id == 0)
                return -EINVAL;
        if (e->m.n_gpus < 32 && (j->gpu_mask >> e->m.n_gpus) != 0)
                return -EINVAL;
        jr = engine_job(e, j->id);
        if (jr) {
                jr->j = *j;
                return 1;
        }
        if (e->n_jobs == e->n_jobs_alloc) {
                size_t n = MAX(e->n_jobs_alloc * 2, 8);
                struct spm_jobrec **v = realloc(e->jobs, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                e->jobs = v;
                e->n_jobs_alloc = n;
        }
        jr = calloc(1, sizeof(*jr));
        if (!jr)
                return -ENOMEM;
        jr->j = *j;
        e->jobs[e->n_jobs++] = jr;
        return 0;
}

int spm_engine_job_remove(struct spm_engine *e, uint64_t job_id) {
        struct spm_jobrec *jr = e ? engine_job(e, job_id) : NULL;

        if (!jr)
                return -ENOENT;
        for (size_t i = e->n_procs; i > 0; i--)
                if (e->procs[i - 1]->job == jr)
                        (void) spm_engine_process_remove(e, e->procs[i - 1]->pid);
        for (size_t i = 0; i < e->n_jobs; i++)
                if (e->jobs[i] == jr) {
                        e->jobs[i] = e->jobs[--e->n_jobs];
                        break;
                }
        free(jr);
        return 0;
}

/* ---- processes: an open-addressing table on pid, rebuilt on growth and removal ---- */

static size_t pid_hash(uint32_t pid, size_t size) {
        return (size_t) ((pid * 0x9E3779B1u) >> 7) & (size - 1);
}

static int phash_rebuild(struct spm_engine *e, size_t want) {
        size_t size = 16;
        while (size < want * 2)
                size *= 2;
        struct spm_process **t = calloc(size, sizeof(*t));
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < e->n_procs; i++) {
                size_t h = pid_hash(e->procs[i]->pid, size);
                while (t[h])
                        h = (h + 1) & (size - 1);
                t[h] = e->procs[i];
        }
        free(e->phash);
        e->phash = t;
        e->phash_size = size;
        return 0;
}

struct spm_process *engine_process(struct spm_engine *e, uint32_t pid) {
        if (e->last_proc && e->last_proc->pid == pid)
                return e->last_proc;
        if (!e->phash)
                return NULL;
        for (size_t h = pid_hash(pid, e->phash_size);; h = (h + 1) & (e->phash_size - 1)) {
                struct spm_process *p = e->phash[h];
                if (!p)
                        return NULL;
                if (p->pid == pid)
                        return e->last_proc = p;
        }
}

int spm_engine_process_add(struct spm_engine *e, uint64_t job_id, uint32_t pid) {
        struct spm_jobrec *jr;
        struct spm_process *p;
        int r;

        if (!e || pid == 0)
                return -EINVAL;
        jr = engine_job(e, job_id);
        if (!jr)
                return -ENOENT;
        p = engine_process(e, pid);
        if (p)
                return p->job == jr ? 0 : -EEXIST;
        if (e->n_procs == e->n_procs_alloc) {
                size_t n = MAX(e->n_procs_alloc * 2, 8);
                struct spm_process **v = realloc(e->procs, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                e->procs = v;
                e->n_procs_alloc = n;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->pid = pid;
        p->job = jr;
        e->procs[e->n_procs++] = p;
        r = phash_rebuild(e, e->n_procs);
        if (r < 0) {
                e->n_procs--;
                free(p);
                return r;
        }
        return 0;
}

int spm_engine_process_remove(struct spm_engine *e, uint32_t pid) {
        struct spm_process *p = e ? engine_process(e, pid) : NULL;

        if (!p)
                return -ENOENT;
        for (size_t i = 0; i < e->n_procs; i++)
                if (e->procs[i] == p) {
                        e->procs[i] = e->procs[--e->n_procs];
                        break;
                }
        e->last_proc = NULL;
        process_free(e, p);
        /* Shrinking cannot fail to fit; on ENOMEM keep the old table minus the entry. */
        if (phash_rebuild(e, e->n_procs) < 0)
                for (size_t h = 0; h < e->phash_size; h++)
                        if (e->phash[h] == p) {
                                /* Rehash the cluster after the hole. */
                                e->phash[h] = NULL;
                                for (size_t k = (h + 1) & (e->phash_size - 1); e->phash[k];
                                     k = (k + 1) & (e->phash_size - 1)) {
                                        struct spm_process *q = e->phash[k];
                                        e->phash[k] = NULL;
                                        size_t s = pid_hash(q->pid, e->phash_size);
                                        while (e->phash[s])
                                                s = (s + 1) & (e->phash_size - 1);
                                        e->phash[s] = q;
                                }
                                break;
                        }
        return 0;
}

/* ---- introspection ---- */

static int proc_cmp(const void *a, const void *b) {
        const struct spm_process *x = *(struct spm_process *const *) a;
        const struct spm_process *y = *(struct spm_process *const *) b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

static double heat_rate_factor(const struct spm_engine *e) {
        /* Stored heat is a decayed sum; x (1 - 2^-1/h) turns it into accesses per epoch. */
        return (1.0 - exp2(-1.0 / e->epochs_per_half_life)) / e->scale;
}

int spm_engine_foreach_region(const struct spm_engine *e, uint32_t pid,
                              int (*cb)(const struct spm_region_info *r, void *userdata),
                              void *userdata) {
        _cleanup_free_ struct spm_process **order = NULL;
        double k;

        if (!e || !cb)
                return -EINVAL;
        if (e->n_procs == 0)
                return 0;
        order = malloc(e->n_procs * sizeof(*order));
        if (!order)
                return -ENOMEM;
        memcpy(order, e->procs, e->n_procs * sizeof(*order));
        qsort(order, e->n_procs, sizeof(*order), proc_cmp);
        k = heat_rate_factor(e);

        for (size_t i = 0; i < e->n_procs; i++) {
                const struct spm_process *p = order[i];
                if (pid != 0 && p->pid != pid)
                        continue;
                for (size_t q = 0; q < p->n_ranges; q++) {
                        const struct spm_range *rg = &p->ranges[q];
                        for (uint32_t x = 0; x < rg->n; x++) {
                                const struct region *r = &rg->r[x];
                                struct spm_region_info info = {
                                        .pid = p->pid,
                                        .job_id = p->job->j.id,
                                        .start = region_start(rg, r),
                                        .length = region_bytes(r),
                                        .loc = r->loc,
                                        .moves = r->moves,
                                        .quarantined = r->flags & REGION_QUARANTINED,
                                        .hint = HINT_KIND(r->hint),
                                };
                                for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                                        info.heat[a] = (float) (r->heat[a] * k);
                                for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                                        info.heat[a] += (float) (range_pending(rg, x, a) * k);
                                if (region_moved(r)) {
                                        uint64_t back = (uint64_t) region_age(e, r) *
                                                        e->c.epoch_usec;
                                        info.last_move_usec = e->now > back ? e->now - back : 1;
                                }
                                int ret = cb(&info, userdata);
                                if (ret < 0)
                                        return ret;
                        }
                }
        }
        return 0;
}

void spm_engine_get_stats(const struct spm_engine *e, struct spm_engine_stats *ret) {
        uint64_t mem = sizeof(*e);

        *ret = e->st;
        ret->n_regions = e->n_regions;
        ret->n_processes = e->n_procs;
        ret->n_jobs = e->n_jobs;
        memcpy(ret->used, e->used, sizeof(ret->used));
        mem += e->n_jobs_alloc * sizeof(*e->jobs) + e->n_jobs * sizeof(struct spm_jobrec);
        mem += e->n_procs_alloc * sizeof(*e->procs) + e->phash_size * sizeof(*e->phash);
        mem += e->n_deferred_alloc * sizeof(*e->deferred);
        for (size_t i = 0; i < e->n_procs; i++) {
                const struct spm_process *p = e->procs[i];
                mem += sizeof(*p) + p->n_ranges_alloc * sizeof(*p->ranges) +
                       p->n_hints_alloc * sizeof(*p->hints);
                for (size_t q = 0; q < p->n_ranges; q++)
                        mem += (uint64_t) p->ranges[q].n_alloc * sizeof(struct region) +
                               (uint64_t) p->ranges[q].n_slots * sizeof(struct slot);
        }
        ret->memory_bytes = mem;
}
