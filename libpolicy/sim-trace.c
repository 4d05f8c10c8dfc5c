/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A trace in memory, cut into regions of one granule: rows are collected as they come, then
 * sorted once into (epoch, region, accessor) order with duplicates merged. Sorting beats a hash
 * map here: a million rows sort in well under a second and the result is deterministic.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/sim.h"

struct spm_simtrace_raw {
        uint32_t epoch;
        uint32_t pid;
        uint64_t addr;      /* granule aligned */
        uint8_t accessor;
        uint32_t region;    /* assigned by finish */
        double ops;
};

#define MAX_EPOCHS (1u << 24)

int spm_simtrace_new(uint64_t granule, usec_t epoch_usec, struct spm_simtrace **ret) {
        struct spm_simtrace *t;

        if (!IS_POWER_OF_2(granule) || granule < 4096 || epoch_usec == 0)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->granule = granule;
        t->epoch_usec = epoch_usec;
        *ret = t;
        return 0;
}

struct spm_simtrace *spm_simtrace_free(struct spm_simtrace *t) {
        if (!t)
                return NULL;
        free(t->regions);
        free(t->acc);
        free(t->epoch_start);
        free(t->hints);
        free(t->raw);
        free(t);
        return NULL;
}

static int raw_push(struct spm_simtrace *t, const struct spm_simtrace_raw *r) {
        if (t->n_raw == t->n_raw_alloc) {
                size_t n = MAX(t->n_raw_alloc * 2, (size_t) 1024);
                struct spm_simtrace_raw *p = reallocarray(t->raw, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                t->raw = p;
                t->n_raw_alloc = n;
        }
        t->raw[t->n_raw++] = *r;
        return 0;
}

int spm_simtrace_add(struct spm_simtrace *t, uint64_t epoch, const struct spm_access *a) {
        uint64_t end, ops;
        int r;

        if (t->finished || a->accessor >= SPM_MAX_ACCESSORS || a->len == 0 || epoch >= MAX_EPOCHS)
                return -EINVAL;
        if (!ADD_SAFE(&end, a->addr, a->len) || !ADD_SAFE(&ops, a->reads, a->writes))
                return -EINVAL;
        t->rows++;
        /* Spread the row's accesses over the granules it overlaps, by overlap. */
        for (uint64_t g = ALIGN_DOWN(a->addr, t->granule); g < end; g += t->granule) {
                uint64_t lo = MAX(g, a->addr), hi = MIN(g + t->granule, end);
                struct spm_simtrace_raw raw = {
                        .epoch = (uint32_t) epoch,
                        .pid = a->pid,
                        .addr = g,
                        .accessor = a->accessor,
                        .ops = (double) ops * (double) (hi - lo) / (double) a->len,
                };

                r = raw_push(t, &raw);
                if (r < 0)
                        return r;
                if (g + t->granule < g)
                        break;
        }
        if (epoch + 1 > t->n_epochs)
                t->n_epochs = (uint32_t) epoch + 1;
        return 0;
}

int spm_simtrace_add_hint(struct spm_simtrace *t, uint64_t epoch, const struct spm_hint *h) {
        if (t->finished || epoch >= MAX_EPOCHS)
                return -EINVAL;
        if (t->n_hints == t->n_hints_alloc) {
                size_t n = MAX(t->n_hints_alloc * 2, (size_t) 16);
                struct spm_sim_hint *p = reallocarray(t->hints, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                t->hints = p;
                t->n_hints_alloc = n;
        }
        t->hints[t->n_hints++] = (struct spm_sim_hint) { .epoch = (uint32_t) epoch, .hint = *h };
        if (epoch + 1 > t->n_epochs)
                t->n_epochs = (uint32_t) epoch + 1;
        return 0;
}

static int cmp_by_addr(const void *a, const void *b) {
        const struct spm_simtrace_raw *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        if (x->addr != y->addr)
                return x->addr < y->addr ? -1 : 1;
        if (x->epoch != y->epoch)
                return x->epoch < y->epoch ? -1 : 1;
        return (int) x->accessor - (int) y->accessor;
}

static int cmp_by_epoch(const void *a, const void *b) {
        const struct spm_simtrace_raw *x = a, *y = b;

        if (x->epoch != y->epoch)
                return x->epoch < y->epoch ? -1 : 1;
        if (x->region != y->region)
                return x->region < y->region ? -1 : 1;
        return (int) x->accessor - (int) y->accessor;
}

static int cmp_hint(const void *a, const void *b) {
        const struct spm_sim_hint *x = a, *y = b;

        return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

int spm_simtrace_finish(struct spm_simtrace *t) {
        size_t n_regions = 0, n_acc = 0;

        if (t->finished)
                return -EINVAL;
        if (t->n_raw > 0)
                qsort(t->raw, t->n_raw, sizeof(*t->raw), cmp_by_addr);
        for (size_t i = 0; i < t->n_raw; i++)
                if (i == 0 || t->raw[i].pid != t->raw[i - 1].pid ||
                    t->raw[i].addr != t->raw[i - 1].addr)
                        n_regions++;
        if (n_regions >= UINT32_MAX)
                return -ENOMEM;

        struct spm_sim_region *regions = calloc(MAX(n_regions, (size_t) 1), sizeof(*regions));
        size_t *epoch_start = calloc((size_t) t->n_epochs + 1, sizeof(*epoch_start));
        if (!regions || !epoch_start) {
                free(regions);
                free(epoch_start);
                return -ENOMEM;
        }
        n_regions = 0;
        for (size_t i = 0; i < t->n_raw; i++) {
                struct spm_simtrace_raw *r = &t->raw[i];

                if (i == 0 || r->pid != t->raw[i - 1].pid || r->addr != t->raw[i - 1].addr) {
                        regions[n_regions] = (struct spm_sim_region) {
                                .pid = r->pid,
                                .addr = r->addr,
                                .first_epoch = r->epoch,
                        };
                        n_regions++;
                }
                r->region = (uint32_t) (n_regions - 1);
                regions[n_regions - 1].accessor_mask |= 1u << r->accessor;
                t->accessor_mask |= 1u << r->accessor;
        }

        if (t->n_raw > 0)
                qsort(t->raw, t->n_raw, sizeof(*t->raw), cmp_by_epoch);
        /* Merge in place: equal (epoch, region, accessor) are adjacent now. */
        for (size_t i = 0; i < t->n_raw; i++) {
                if (n_acc > 0 && t->raw[n_acc - 1].epoch == t->raw[i].epoch &&
                    t->raw[n_acc - 1].region == t->raw[i].region &&
                    t->raw[n_acc - 1].accessor == t->raw[i].accessor)
                        t->raw[n_acc - 1].ops += t->raw[i].ops;
                else
                        t->raw[n_acc++] = t->raw[i];
        }
        struct spm_sim_access *acc = calloc(MAX(n_acc, (size_t) 1), sizeof(*acc));
        if (!acc) {
                free(regions);
                free(epoch_start);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_acc; i++) {
                acc[i] = (struct spm_sim_access) {
                        .region = t->raw[i].region,
                        .accessor = t->raw[i].accessor,
                        .ops = t->raw[i].ops,
                };
                epoch_start[t->raw[i].epoch + 1]++;
        }
        for (uint32_t e = 0; e < t->n_epochs; e++)
                epoch_start[e + 1] += epoch_start[e];
        if (t->n_hints > 0)
                qsort(t->hints, t->n_hints, sizeof(*t->hints), cmp_hint);

        free(t->raw);
        t->raw = NULL;
        t->n_raw = t->n_raw_alloc = 0;
        t->regions = regions;
        t->n_regions = (uint32_t) n_regions;
        t->acc = acc;
        t->n_acc = n_acc;
        t->epoch_start = epoch_start;
        t->finished = true;
        return 0;
}

uint64_t spm_simtrace_footprint(const struct spm_simtrace *t, uint32_t accessor_mask) {
        uint64_t n = 0;

        for (uint32_t i = 0; i < t->n_regions; i++)
                if (t->regions[i].accessor_mask & accessor_mask)
                        n++;
        return n * t->granule;
}

uint32_t spm_simtrace_find(const struct spm_simtrace *t, uint32_t pid, uint64_t addr) {
        uint32_t lo = 0, hi = t->n_regions;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                const struct spm_sim_region *g = &t->regions[mid];

                if (g->pid < pid || (g->pid == pid && g->addr < addr))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < t->n_regions && t->regions[lo].pid == pid && t->regions[lo].addr == addr)
                return lo;
        return UINT32_MAX;
}
