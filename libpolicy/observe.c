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

static int pending_push(struct spm_engine *e, uint32_t pid, uint64_t lo, uint64_t hi) {
        if (e->n_pending >= PENDING_MAX) {
                e->pending_overflow = true;
                return 0;
        }
        if (e->n_pending == e->n_pending_alloc) {
                size_t n = MAX(e->n_pending_alloc * 2, 256);
                struct pending_split *v = realloc(e->pending, n * sizeof(*v));
                if (!v) {
                        /* Losing the exact cut points only slows the split down. */
                        e->pending_overflow = true;
                        return 0;
                }
                e->pending = v;
                e->n_pending_alloc = n;
        }
        e->pending[e->n_pending++] = (struct pending_split) { pid, lo, hi };
        return 0;
}

/* Adds `count` accesses by accessor acc spread evenly over [addr, end) of p. */
static void add_heat(struct spm_engine *e, struct spm_process *p, unsigned acc, uint64_t addr,
                     uint64_t end, double count) {
        uint32_t granule_pages = (uint32_t) (e->c.granule >> PAGE_SHIFT);
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
                uint32_t i = range_region_index(e, rg, addr);
                for (; i < rg->n && addr < end; i++) {
                        struct region *x = &rg->r[i];
                        uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
                        uint64_t hi = MIN(end, xe);
                        x->heat[acc] += (float) (per_byte * (double) (hi - addr));
                        x->flags |= REGION_TOUCHED;
                        if (x->npages > granule_pages && (addr > xs || hi < xe)) {
                                x->flags |= REGION_SPLIT_WANT;

                        }
                        addr = hi;
                }
        }
}

int spm_engine_observe(struct spm_engine *e, const struct spm_access *a) {
        struct spm_process *p;
        uint64_t end;

        if (!e || !a || a->len == 0 || a->accessor >= e->m.n_accessors ||
            !ADD_SAFE(&end, a->addr, a->len))
                return -EINVAL;
        e->st.observations++;
        p = engine_process(e, a->pid);
        struct spm_range *rg = p ? process_range_find(p, a->addr) : NULL;
        if (!rg) {
                e->st.observations_ignored++;
                return 0;
        }

        double count = (double) a->reads + (double) a->writes;
        /* The common case: the span lies inside one region. */
        uint32_t i = range_region_index(e, rg, a->addr);
        struct region *x = &rg->r[i];
        uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
        if (end <= xe) {
                x->heat[a->accessor] += (float) (count * e->scale);
                x->flags |= REGION_TOUCHED;
                if ((a->addr > xs || end < xe) && region_bytes(x) > e->c.granule) {
                        x->flags |= REGION_SPLIT_WANT;
                        (void) pending_push(e, a->pid, ALIGN_DOWN(a->addr, e->c.granule),
                                            ALIGN_UP(end, e->c.granule));
                }
                return 1;
        }
        add_heat(e, p, a->accessor, a->addr, end, count);
        /* Spanning regions: cut at the span's granule edges where it only partly covers a
         * big region. Both edges are recorded whatever the region sizes; cuts at existing
         * boundaries are no-ops. */
        (void) pending_push(e, a->pid, ALIGN_DOWN(a->addr, e->c.granule),
                            ALIGN_UP(end, e->c.granule));
        return 1;
}

int spm_engine_observe_batch(struct spm_engine *e, const struct spm_access *a, size_t n) {
        int applied = 0;

        for (size_t i = 0; i < n; i++) {
                int r = spm_engine_observe(e, &a[i]);
                if (r > 0 && applied < INT32_MAX)
                        applied++;
        }
        return applied;
}

int spm_engine_gpu_fault(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                         unsigned gpu, bool migrated) {
        if (!e || gpu >= e->m.n_gpus || len == 0)
                return -EINVAL;
        if (!engine_process(e, pid))
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
