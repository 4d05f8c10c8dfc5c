/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Observations: accesses, GPU faults, driver moves and the results of planned moves.
 *
 * Ingest is the hot path (millions of samples per second from the collectors): a pid cache,
 * a range cache, one slot table lookup and one float add in the region's cache line. Heat is
 * added pre-multiplied by the engine's scale (lazy decay), so nothing else is touched.
 */

#include <errno.h>
#include <stdlib.h>

#include "engine-internal.h"

static int defer(struct spm_engine *e, const struct spm_access *a, uint64_t end, double count) {
        if (e->n_deferred == e->n_deferred_alloc) {
                int r = e->n_deferred >= DEFERRED_MAX ? engine_flush_deferred(e) : 0;
                if (r < 0)
                        return r;
        }
        if (e->n_deferred == e->n_deferred_alloc) {
                size_t n = MAX(e->n_deferred_alloc * 2, 256);
                struct deferred_access *v = realloc(e->deferred, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                e->deferred = v;
                e->n_deferred_alloc = n;
        }
        e->deferred[e->n_deferred++] = (struct deferred_access) {
                .pid = a->pid, .accessor = a->accessor, .addr = a->addr, .end = end,
                .count = count,
        };
        return 0;
}

/* Adds `count` accesses by accessor acc spread evenly over [addr, end) of p. */
static void add_heat(struct spm_engine *e, struct spm_process *p, unsigned acc, uint64_t addr,
                    uint64_t end, double count) {
        double per_byte = count * e->scale / (double) (end - addr);

        while (addr < end) {
                struct spm_range *rg = process_range_find(p, addr);
                if (!rg) {
                        /* A hole between ranges: skip to the next range. */
                        size_t k = 0;
                        while (k < p->n_ranges && p->ranges[k].start <= addr)
                                k++;
                        if (k == p->n_ranges || p->ranges[k].start >= end)
                                break;
                        addr = p->ranges[k].start;
                        continue;
                }
                for (uint32_t i = range_region_index(e, rg, addr); addr < end && i < rg->n;
                     i++) {
                        struct region *x = &rg->r[i];
                        uint64_t hi = MIN(end, region_end(rg, x));
                        region_heat_add(x, acc, (float) (per_byte * (double) (hi - addr)));
                        addr = hi;
                }
        }
}

/* Whether [addr, end) covers some region bigger than the granule only partly. */
static bool span_needs_cut(const struct spm_engine *e, struct spm_process *p, uint64_t addr,
                           uint64_t end) {
        for (size_t q = 0; q < p->n_ranges; q++) {
                const struct spm_range *rg = &p->ranges[q];
                if (rg->end <= addr || rg->start >= end)
                        continue;
                for (uint32_t i = range_region_index(e, rg, MAX(addr, rg->start));
                     i < rg->n && region_start(rg, &rg->r[i]) < end; i++) {
                        const struct region *x = &rg->r[i];
                        uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
                        if (region_bytes(x) > e->c.granule && (addr > xs || end < xe))
                                return true;
                }
        }
        return false;
}

/* The common case, the slot already looked up (sl NULL: none): the span lies in one slot that
 * one region covers entirely, used by one accessor in this epoch; the count goes to the slot
 * (8 bytes per granule, folded in at the epoch). Returns whether it applied the access; if
 * not, the rest of observe_in() takes it. */
static inline bool observe_fast(struct spm_engine *e, const struct spm_access *a,
                                const struct spm_range *rg, struct slot *sl) {
        uint64_t end = a->addr + a->len;
        if (!sl || !(sl->w & SLOT_FAST) || a->len == 0 || end < a->addr || end > rg->end ||
            a->accessor >= e->m.n_accessors ||
            ((a->addr - rg->base) >> rg->slot_shift) != ((end - 1 - rg->base) >> rg->slot_shift) ||
            (sl->count != 0 && SLOT_ACC(sl->w) != a->accessor))
                return false;
        double count = (double) a->reads + (double) a->writes;
        e->st.observations++;
        sl->w = (sl->w & ~(0xfu << 24)) | ((uint32_t) a->accessor << 24);
        sl->count += (float) (count * e->scale);
        return true;
}

/* One access, its process and range already found (rg NULL: none). */
static int observe_in(struct spm_engine *e, const struct spm_access *a, struct spm_process *p,
                      struct spm_range *rg) {
        uint64_t end;
        int r;

        if (rg && observe_fast(e, a, rg, &rg->slot[(a->addr - rg->base) >> rg->slot_shift]))
                return 1;
        if (a->len == 0 || a->accessor >= e->m.n_accessors || !ADD_SAFE(&end, a->addr, a->len))
                return -EINVAL;
        e->st.observations++;
        if (!rg) {
                e->st.observations_ignored++;
                return 0;
        }

        double count = (double) a->reads + (double) a->writes;
        /* Not the common case (observe_fast()). Next: the span covers one whole region, or
         * lies in a small one. */
        struct region *x = &rg->r[range_region_index(e, rg, a->addr)];
        uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
        if (end <= xe && ((a->addr == xs && end == xe) || region_bytes(x) <= e->c.granule)) {
                region_heat_add(x, a->accessor, (float) (count * e->scale));
                return 1;
        }
        if (!span_needs_cut(e, p, a->addr, end)) {
                add_heat(e, p, a->accessor, a->addr, end, count);
                return 1;
        }
        /* A span that covers a bigger region only partly: the regions get cut at the
         * span's granule edges first, all cuts of the epoch at once (one pass per range), then
         * the accesses land on the right pieces. Cuts share old heat by bytes and commute, so
         * neither the order of accesses nor when the batch runs changes the outcome. */
        r = defer(e, a, end, count);
        return r < 0 ? r : 1;
}

static int deferred_cmp(const void *a, const void *b) {
        const struct deferred_access *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return (x->addr > y->addr) - (x->addr < y->addr);
}

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

/* Cuts the ranges of p at the granule edges of its deferred accesses [i0, i1). */
static int cut_for(struct spm_engine *e, struct spm_process *p, size_t i0, size_t i1) {
        _cleanup_free_ uint64_t *cuts = malloc(2 * (i1 - i0) * sizeof(*cuts));
        if (!cuts)
                return -ENOMEM;
        for (size_t q = 0; q < p->n_ranges; q++) {
                struct spm_range *rg = &p->ranges[q];
                size_t n = 0;
                for (size_t i = i0; i < i1; i++) {
                        const struct deferred_access *d = &e->deferred[i];
                        if (d->end <= rg->start || d->addr >= rg->end)
                                continue;
                        cuts[n++] = ALIGN_DOWN(d->addr, e->c.granule);
                        cuts[n++] = ALIGN_UP(d->end, e->c.granule);
                }
                if (n == 0)
                        continue;
                qsort(cuts, n, sizeof(*cuts), u64_cmp);
                size_t u = 0;
                for (size_t k = 0; k < n; k++)
                        if ((u == 0 || cuts[u - 1] != cuts[k]) && cuts[k] > rg->start &&
                            cuts[k] < rg->end)
                                cuts[u++] = cuts[k];
                /* The split limit: the lowest cuts that fit, so the outcome is deterministic. */
                size_t room = rg->n < e->c.max_regions_per_range
                        ? e->c.max_regions_per_range - rg->n : 0;
                int r = range_cut(e, rg, cuts, MIN(u, room));
                if (r < 0)
                        return r;
        }
        return 0;
}

int engine_flush_deferred(struct spm_engine *e) {
        if (e->n_deferred == 0)
                return 0;
        qsort(e->deferred, e->n_deferred, sizeof(*e->deferred), deferred_cmp);
        for (size_t i = 0; i < e->n_deferred;) {
                size_t k = i;
                while (k < e->n_deferred && e->deferred[k].pid == e->deferred[i].pid)
                        k++;
                struct spm_process *p = engine_process(e, e->deferred[i].pid);
                if (p) {
                        int r = cut_for(e, p, i, k);
                        if (r < 0)
                                return r;
                        for (size_t t = i; t < k; t++) {
                                const struct deferred_access *d = &e->deferred[t];
                                add_heat(e, p, d->accessor, d->addr, d->end, d->count);
                        }
                }
                i = k;
        }
        e->n_deferred = 0;
        return 0;
}

static struct spm_range *find(struct spm_engine *e, const struct spm_access *a,
                              struct spm_process **ret_p) {
        struct spm_process *p = engine_process(e, a->pid);
        *ret_p = p;
        return p ? process_range_find(p, a->addr) : NULL;
}

int spm_engine_observe(struct spm_engine *e, const struct spm_access *a) {
        struct spm_process *p;
        struct spm_range *rg;

        if (!e || !a)
                return -EINVAL;
        rg = find(e, a, &p);
        return observe_in(e, a, p, rg);
}

#define BATCH 64

int spm_engine_observe_batch(struct spm_engine *e, const struct spm_access *a, size_t n) {
        struct spm_process *ps[BATCH];
        struct spm_range *rgs[BATCH];
        struct slot *sls[BATCH];
        int applied = 0;

        if (!e || (!a && n > 0))
                return -EINVAL;
        /* Look the batch up first and prefetch its slots, so the cache misses of a batch
         * overlap instead of queueing behind one another. */
        for (size_t i = 0; i < n; i += BATCH) {
                size_t m = MIN(BATCH, n - i);
                for (size_t k = 0; k < m; k++) {
                        const struct spm_access *x = &a[i + k];
                        struct spm_range *rg = find(e, x, &ps[k]);
                        rgs[k] = rg;
                        sls[k] = NULL;
                        if (rg && x->addr >= rg->base) {
                                sls[k] = &rg->slot[(x->addr - rg->base) >> rg->slot_shift];
                                __builtin_prefetch(sls[k], 1);
                        }
                }
                for (size_t k = 0; k < m; k++) {
                        int r = observe_fast(e, &a[i + k], rgs[k], sls[k]) ? 1
                                : observe_in(e, &a[i + k], ps[k], rgs[k]);
                        if (r > 0 && applied < INT32_MAX)
                                applied++;
                }
        }
        return applied;
}

int spm_engine_gpu_fault(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                         unsigned gpu, bool migrated) {
        if (!e || gpu >= e->m.n_gpus || len == 0)
                return -EINVAL;
        struct spm_process *p = engine_process(e, pid);
        /* A fault outside every range the engine knows of (the agent has not reported the
         * mapping yet) is -ENOENT like an unknown process, so the caller can declare the span
         * and call again instead of losing the one signal a granule gives. */
        if (!p || !process_range_find(p, addr))
                return -ENOENT;
        if (e->c.fault_accesses > 0) {
                struct spm_access a = {
                        .pid = pid,
                        .accessor = (uint8_t) SPM_ACC_GPU(gpu),
                        .addr = addr,
                        .len = len,
                        .reads = (uint64_t) e->c.fault_accesses,
                };
                (void) spm_engine_observe(e, &a);
        }
        if (!migrated)
                return 0;
        return engine_set_span_location(e, pid, addr, len, e->m.home[SPM_ACC_GPU(gpu)],
                                        SPM_MAX_LOCS);
}

int spm_engine_set_location(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                            unsigned loc) {
        if (!e || loc >= e->m.n_locs || len == 0)
                return -EINVAL;
        return engine_set_span_location(e, pid, addr, len, loc, SPM_MAX_LOCS);
}

int spm_engine_move_result(struct spm_engine *e, const struct spm_move *m, int status,
                           uint64_t moved_bytes) {
        if (!e || !m || m->from >= e->m.n_locs || m->to >= e->m.n_locs || m->length == 0)
                return -EINVAL;
        if (!engine_process(e, m->pid))
                return -ENOENT;
        if (status < 0) {
                moved_bytes = 0;
                e->st.moves_failed++;
        }
        moved_bytes = ALIGN_DOWN(MIN(moved_bytes, m->length), PAGE_SIZE);
        if (moved_bytes == m->length)
                return 0;
        /* The planner booked the whole range at m->to: give the part that did not move back
         * to m->from, unless something else moved it since. */
        return engine_set_span_location(e, m->pid, m->start + moved_bytes,
                                        m->length - moved_bytes, m->from, m->to);
}
