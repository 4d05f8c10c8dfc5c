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

/* A partial access to a region bigger than the granule: cut the region at the access's
 * granule-aligned edges now, so this epoch's heat already lands on the right piece (the cut
 * shares the old heat by bytes, so the result does not depend on the order of accesses). */
static int maybe_cut(struct spm_engine *e, struct spm_range *rg, uint32_t i, uint64_t addr,
                     uint64_t end) {
        const struct region *x = &rg->r[i];
        uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
        uint64_t lo = MAX(xs, ALIGN_DOWN(addr, e->c.granule));
        uint64_t hi = MIN(xe, ALIGN_UP(end, e->c.granule));

        if (region_bytes(x) <= e->c.granule || (lo == xs && hi == xe))
                return 0;
        if (rg->n + 2 > e->c.max_regions_per_range)
                return 0;
        int r = range_cut_span(e, rg, lo, hi);
        return r < 0 ? r : 1;
}

/* Adds `count` accesses by accessor acc spread evenly over [addr, end) of p. */
static int add_heat(struct spm_engine *e, struct spm_process *p, unsigned acc, uint64_t addr,
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
                while (addr < end && addr < rg->end) {
                        uint32_t i = range_region_index(e, rg, addr);
                        int r = maybe_cut(e, rg, i, addr, end);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                i = range_region_index(e, rg, addr);
                        struct region *x = &rg->r[i];
                        uint64_t hi = MIN(end, region_end(rg, x));
                        x->heat[acc] += (float) (per_byte * (double) (hi - addr));
                        x->flags |= REGION_TOUCHED;
                        addr = hi;
                }
        }
        return 0;
}

int spm_engine_observe(struct spm_engine *e, const struct spm_access *a) {
        struct spm_process *p;
        uint64_t end;
        int r;

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
        /* The common case: the span covers one whole region, or lies in a small one. */
        struct region *x = &rg->r[range_region_index(e, rg, a->addr)];
        uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
        if (end <= xe && ((a->addr == xs && end == xe) || region_bytes(x) <= e->c.granule)) {
                x->heat[a->accessor] += (float) (count * e->scale);
                x->flags |= REGION_TOUCHED;
                return 1;
        }
        r = add_heat(e, p, a->accessor, a->addr, end, count);
        return r < 0 ? r : 1;
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
