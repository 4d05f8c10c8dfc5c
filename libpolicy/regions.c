/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Regions: declared ranges cut into spans at the granule, split where observations show a
 * hot spot inside a larger region and merged where neighbours look alike (DAMON-style), so a
 * large cold area costs a few regions while a 2 MiB hot spot inside it still gets its own.
 *
 * Heat moves with bytes: a split gives each piece heat in proportion to its length, a merge
 * sums, so totals never change.
 */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

#define NO_LOC 0xff

static int regions_reserve(struct region **v, uint32_t *n_alloc, uint64_t want) {
        if (want <= *n_alloc)
                return 0;
        if (want > UINT32_MAX)
                return -ENOMEM;
        uint64_t n = MAX(want, (uint64_t) *n_alloc * 2);
        n = MIN(n, (uint64_t) UINT32_MAX);
        struct region *x = realloc(*v, n * sizeof(**v));
        if (!x)
                return -ENOMEM;
        *v = x;
        *n_alloc = (uint32_t) n;
        return 0;
}

struct spm_range *process_range_find(struct spm_process *p, uint64_t addr) {
        size_t lo = 0, hi = p->n_ranges;

        if (p->last_range < p->n_ranges) {
                struct spm_range *rg = &p->ranges[p->last_range];
                if (addr >= rg->start && addr < rg->end)
                        return rg;
        }
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (p->ranges[mid].end <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < p->n_ranges && addr >= p->ranges[lo].start) {
                p->last_range = lo;
                return &p->ranges[lo];
        }
        return NULL;
}

uint32_t range_region_index(const struct spm_engine *e, const struct spm_range *rg,
                            uint64_t addr) {
        uint32_t i = rg->slot[(addr - rg->base) >> rg->slot_shift];
        while (region_end(rg, &rg->r[i]) <= addr)
                i++;
        return i;
}

int range_rebuild_slots(const struct spm_engine *e, struct spm_range *rg) {
        unsigned shift = e->granule_shift;
        uint64_t base, n_slots;

        /* Coarsen the slots until there are no more of them than regions: the table then
         * never costs more than 4 bytes per region, and a lookup walks a few regions at most
         * where merged regions share a slot with small ones. */
        for (;; shift++) {
                base = ALIGN_DOWN(rg->start, 1ULL << shift);
                n_slots = ((rg->end - 1 - base) >> shift) + 1;
                if (n_slots <= MAX(rg->n, 1u) || shift >= 62)
                        break;
        }
        uint32_t *s = realloc(rg->slot, n_slots * sizeof(*s));
        if (!s)
                return -ENOMEM;
        rg->slot = s;
        rg->n_slots = (uint32_t) n_slots;
        rg->slot_shift = shift;
        rg->base = base;

        uint64_t next = 0; /* first slot not yet assigned */
        for (uint32_t i = 0; i < rg->n && next < n_slots; i++) {
                uint64_t last = (region_end(rg, &rg->r[i]) - 1 - base) >> shift;
                for (; next <= last; next++)
                        s[next] = i;
        }
        return 0;
}

static void account(struct spm_engine *e, struct spm_process *p, unsigned loc, uint64_t bytes,
                    bool add) {
        if (add) {
                e->used[loc] += bytes;
                p->job->used[loc] += bytes;
        } else {
                e->used[loc] -= bytes;
                p->job->used[loc] -= bytes;
        }
}

void range_free_regions(struct spm_engine *e, struct spm_process *p, struct spm_range *rg) {
        for (uint32_t i = 0; i < rg->n; i++)
                account(e, p, rg->r[i].loc, region_bytes(&rg->r[i]), false);
        e->n_regions -= rg->n;
        free(rg->r);
        free(rg->slot);
        *rg = (struct spm_range) {};
}

/* Splits region r at byte offset `at` (page aligned, inside r) into r and *ret. */
static void region_split(struct region *r, uint32_t at_pages, struct region *ret) {
        double frac = (double) at_pages / r->npages;

        *ret = *r;
        ret->off = r->off + at_pages;
        ret->npages = r->npages - at_pages;
        r->npages = at_pages;
        for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++) {
                float left = (float) (r->heat[a] * frac);
                ret->heat[a] = r->heat[a] - left;
                r->heat[a] = left;
        }
        r->flags |= REGION_FRESH;
        ret->flags |= REGION_FRESH;
}

int range_cut(struct spm_engine *e, struct spm_range *rg, const uint64_t *cuts, size_t n) {
        size_t inside = 0;

        for (size_t k = 0; k < n; k++)
                if (cuts[k] > rg->start && cuts[k] < rg->end)
                        inside++;
        if (inside == 0)
                return 0;

        struct region *v = malloc(((size_t) rg->n + inside) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        uint32_t w = 0;
        size_t k = 0;
        for (uint32_t i = 0; i < rg->n; i++) {
                struct region cur = rg->r[i];
                uint64_t s = region_start(rg, &cur);
                while (k < n && cuts[k] <= s)
                        k++;
                while (k < n && cuts[k] < s + region_bytes(&cur)) {
                        struct region rest;
                        region_split(&cur, (uint32_t) ((cuts[k] - s) >> PAGE_SHIFT), &rest);
                        v[w++] = cur;
                        cur = rest;
                        s = cuts[k];
                        e->n_regions++;
                        k++;
                }
                v[w++] = cur;
        }
        free(rg->r);
        rg->r = v;
        rg->n = w;
        rg->n_alloc = w;
        return range_rebuild_slots(e, rg);
}

int range_cut_span(struct spm_engine *e, struct spm_range *rg, uint64_t lo, uint64_t hi) {
        uint64_t cuts[2] = { lo, hi };
        return range_cut(e, rg, cuts, 2);
}

/* Neighbours merge when nothing tells them apart: same location and hint, no quarantine,
 * no fresh split, and per accessor heat densities within 1/8 of each other (or both below a
 * floor of a few accesses per granule and epoch). */
static bool regions_alike(const struct spm_engine *e, const struct region *a,
                          const struct region *b, uint64_t max_pages, float floor_per_page) {
        if (a->loc != b->loc || a->hint != b->hint)
                return false;
        if ((a->flags | b->flags) & (REGION_QUARANTINED | REGION_FRESH | REGION_SPLIT_WANT))
                return false;
        if ((uint64_t) a->npages + b->npages > max_pages)
                return false;
        for (unsigned x = 0; x < e->m.n_accessors; x++) {
                float da = a->heat[x] / a->npages, db = b->heat[x] / b->npages;
                float hi = MAX(da, db), lo = MIN(da, db);
                if (hi - lo > 0.125f * hi + floor_per_page)
                        return false;
        }
        return true;
}

void range_merge(struct spm_engine *e, struct spm_process *p, struct spm_range *rg) {
        uint64_t max_pages = (e->c.granule >> PAGE_SHIFT) * MERGE_MAX_GRANULES;
        uint64_t granule_pages = e->c.granule >> PAGE_SHIFT;
        /* 16 accesses per epoch and granule, in stored units per page. */
        double rate = 1.0 - exp2(-1.0 / e->epochs_per_half_life);
        float floor_per_page = (float) (16.0 * e->scale / rate / (double) granule_pages);
        uint32_t w = 0;

        if (rg->n < 2)
                return;
        for (uint32_t i = 1; i < rg->n; i++) {
                struct region *a = &rg->r[w], *b = &rg->r[i];
                if (regions_alike(e, a, b, max_pages, floor_per_page)) {
                        for (unsigned x = 0; x < SPM_MAX_ACCESSORS; x++)
                                a->heat[x] += b->heat[x];
                        a->npages += b->npages;
                        a->last_move = MAX(a->last_move, b->last_move);
                        a->moves = MAX(a->moves, b->moves);
                        a->trips = MAX(a->trips, b->trips);
                        a->reuse = MAX(a->reuse, b->reuse);
                        a->flags |= b->flags & REGION_TOUCHED;
                        e->n_regions--;
                } else
                        rg->r[++w] = *b;
        }
        if (w + 1 == rg->n)
                return;
        rg->n = w + 1;
        /* Shrinking never fails in practice; keep the bigger block if it does. */
        struct region *v = realloc(rg->r, (size_t) rg->n * sizeof(*v));
        if (v) {
                rg->r = v;
                rg->n_alloc = rg->n;
        }
        (void) range_rebuild_slots(e, rg); /* shrinks: cannot need more memory */
        (void) p;
}

bool region_quarantine_over(const struct spm_engine *e, const struct region *r) {
        return e->epoch >= r->last_move + e->c.quarantine_epochs;
}

/* Moves r to `to` in the books. A counted change (policy or driver) feeds the ping-pong
 * detector: going back to where it came from is half a round trip, and the streak resets when
 * two changes are further apart than the window. Returns true when this change quarantined r. */
bool region_relocate(struct spm_engine *e, struct spm_process *p, struct region *r,
                     unsigned to, bool counted) {
        bool q = false;

        if (to == r->loc)
                return false;
        account(e, p, r->loc, region_bytes(r), false);
        account(e, p, to, region_bytes(r), true);
        if (!counted) {
                r->loc = (uint8_t) to;
                return false;
        }
        if (r->last_move && e->epoch - r->last_move > e->c.pingpong_window_epochs)
                r->trips = 0;
        if (to == r->prev_loc && r->trips < UINT8_MAX) {
                r->trips++;
                /* N round trips = 2N - 1 returns after the first move out. */
                if (r->trips >= 2 * e->c.pingpong_trips - 1 && !(r->flags & REGION_QUARANTINED)) {
                        r->flags |= REGION_QUARANTINED;
                        r->trips = 0;
                        e->st.quarantines++;
                        q = true;
                }
        }
        r->prev_loc = r->loc;
        r->loc = (uint8_t) to;
        r->last_move = e->epoch;
        if (r->moves < UINT16_MAX)
                r->moves++;
        return q;
}

/* ---- ranges ---- */

/* Appends fresh regions for [a, b) at loc, cut at the granule and at most `chunk` bytes. */
static int append_fresh(struct spm_engine *e, struct region **v, uint32_t *n, uint32_t *n_alloc,
                        uint64_t range_start, uint64_t a, uint64_t b, unsigned loc,
                        uint64_t chunk) {
        while (a < b) {
                uint64_t next = MIN(b, ALIGN_DOWN(a, e->c.granule) + chunk);
                int r = regions_reserve(v, n_alloc, (uint64_t) *n + 1);
                if (r < 0)
                        return r;
                (*v)[(*n)++] = (struct region) {
                        .off = (uint32_t) ((a - range_start) >> PAGE_SHIFT),
                        .npages = (uint32_t) ((next - a) >> PAGE_SHIFT),
                        .loc = (uint8_t) loc,
                        .prev_loc = (uint8_t) loc,
                };
                a = next;
        }
        return 0;
}

static int ranges_reserve(struct spm_process *p, size_t want) {
        if (want <= p->n_ranges_alloc)
                return 0;
        size_t n = MAX(want, p->n_ranges_alloc * 2);
        struct spm_range *v = realloc(p->ranges, n * sizeof(*v));
        if (!v)
                return -ENOMEM;
        p->ranges = v;
        p->n_ranges_alloc = n;
        return 0;
}

int spm_engine_range_add(struct spm_engine *e, uint32_t pid, uint64_t start, uint64_t len,
                         unsigned loc) {
        struct spm_process *p;
        uint64_t end;
        int r;

        if (!e || len == 0 || (start | len) & (PAGE_SIZE - 1) || loc >= e->m.n_locs ||
            !ADD_SAFE(&end, start, len))
                return -EINVAL;
        p = engine_process(e, pid);
        if (!p)
                return -ENOENT;

        /* The ranges [first, last) overlap the new one; the union replaces them all. */
        size_t first = 0, last;
        while (first < p->n_ranges && p->ranges[first].end <= start)
                first++;
        last = first;
        while (last < p->n_ranges && p->ranges[last].start < end)
                last++;
        uint64_t ustart = first < last ? MIN(start, p->ranges[first].start) : start;
        uint64_t uend = first < last ? MAX(end, p->ranges[last - 1].end) : end;
        if (((uend - ustart) >> PAGE_SHIFT) > UINT32_MAX)
                return -EINVAL;

        uint64_t granules = DIV_ROUND_UP(uend - ALIGN_DOWN(ustart, e->c.granule), e->c.granule);
        uint64_t chunk = e->c.granule * DIV_ROUND_UP(granules, e->c.max_regions_per_range);

        struct spm_range nr = { .start = ustart, .end = uend };
        uint64_t at = ustart;
        for (size_t i = first; i < last; i++) {
                struct spm_range *old = &p->ranges[i];
                r = append_fresh(e, &nr.r, &nr.n, &nr.n_alloc, ustart, at, old->start, loc, chunk);
                if (r < 0)
                        goto fail;
                r = regions_reserve(&nr.r, &nr.n_alloc, (uint64_t) nr.n + old->n);
                if (r < 0)
                        goto fail;
                uint32_t shift = (uint32_t) ((old->start - ustart) >> PAGE_SHIFT);
                for (uint32_t k = 0; k < old->n; k++) {
                        nr.r[nr.n] = old->r[k];
                        nr.r[nr.n++].off += shift;
                }
                at = old->end;
        }
        r = append_fresh(e, &nr.r, &nr.n, &nr.n_alloc, ustart, at, uend, loc, chunk);
        if (r < 0)
                goto fail;
        r = range_rebuild_slots(e, &nr);
        if (r < 0)
                goto fail;
        r = ranges_reserve(p, p->n_ranges + 1);
        if (r < 0)
                goto fail;

        /* Commit: account the fresh regions, drop the old ranges' shells (their regions now
         * live in nr). */
        uint64_t fresh_bytes = uend - ustart, fresh_regions = nr.n;
        for (size_t i = first; i < last; i++) {
                fresh_bytes -= p->ranges[i].end - p->ranges[i].start;
                fresh_regions -= p->ranges[i].n;
                free(p->ranges[i].r);
                free(p->ranges[i].slot);
        }
        account(e, p, loc, fresh_bytes, true);
        e->n_regions += fresh_regions;
        memmove(&p->ranges[first + 1], &p->ranges[last], (p->n_ranges - last) * sizeof(nr));
        p->n_ranges = p->n_ranges - (last - first) + 1;
        p->ranges[first] = nr;
        p->last_range = first;
        return 0;
fail:
        free(nr.r);
        free(nr.slot);
        return r;
}

int spm_engine_range_remove(struct spm_engine *e, uint32_t pid, uint64_t start, uint64_t len) {
        struct spm_process *p;
        uint64_t end;
        bool found = false;
        int r;

        if (!e || !ADD_SAFE(&end, start, len))
                return -EINVAL;
        p = engine_process(e, pid);
        if (!p)
                return -ENOENT;
        start = ALIGN_DOWN(start, PAGE_SIZE);
        end = ALIGN_UP(end, PAGE_SIZE);

        for (size_t i = p->n_ranges; i > 0; i--) {
                struct spm_range *rg = &p->ranges[i - 1];
                if (rg->end <= start || rg->start >= end)
                        continue;
                found = true;
                r = range_cut_span(e, rg, start, end);
                if (r < 0)
                        return r;

                /* Regions [a, b) go; [0, a) stay in rg, [b, n) form a new range after it. */
                uint32_t a = 0, b;
                while (a < rg->n && region_end(rg, &rg->r[a]) <= start)
                        a++;
                b = a;
                while (b < rg->n && region_start(rg, &rg->r[b]) < end)
                        b++;
                struct spm_range right = {};
                if (b < rg->n) {
                        right.start = region_start(rg, &rg->r[b]);
                        right.end = rg->end;
                        right.n = right.n_alloc = rg->n - b;
                        right.r = malloc((size_t) right.n * sizeof(*right.r));
                        if (!right.r)
                                return -ENOMEM;
                        uint32_t shift = (uint32_t) ((right.start - rg->start) >> PAGE_SHIFT);
                        for (uint32_t k = 0; k < right.n; k++) {
                                right.r[k] = rg->r[b + k];
                                right.r[k].off -= shift;
                        }
                        r = range_rebuild_slots(e, &right);
                        if (r >= 0)
                                r = ranges_reserve(p, p->n_ranges + 1);
                        if (r < 0) {
                                free(right.r);
                                free(right.slot);
                                return r;
                        }
                        rg = &p->ranges[i - 1]; /* ranges_reserve may have moved it */
                }
                for (uint32_t k = a; k < b; k++)
                        account(e, p, rg->r[k].loc, region_bytes(&rg->r[k]), false);
                e->n_regions -= b - a;
                if (a > 0) {
                        rg->n = a;
                        rg->end = region_end(rg, &rg->r[a - 1]);
                        r = range_rebuild_slots(e, rg); /* fewer slots: no allocation */
                        if (r < 0)
                                return r;
                } else {
                        free(rg->r);
                        free(rg->slot);
                }
                size_t at = i - 1 + (a > 0);
                if (a == 0) {
                        memmove(&p->ranges[i - 1], &p->ranges[i],
                                (p->n_ranges - i) * sizeof(*rg));
                        p->n_ranges--;
                }
                if (right.r) {
                        memmove(&p->ranges[at + 1], &p->ranges[at],
                                (p->n_ranges - at) * sizeof(*rg));
                        p->ranges[at] = right;
                        p->n_ranges++;
                }
        }
        p->last_range = 0;
        return found ? 0 : -ENOENT;
}

/* Sets the location of [addr, addr+len) of pid, cutting regions at the span's pages. With
 * only_from < SPM_MAX_LOCS, only regions at only_from change, uncounted (a failed move
 * going back). Returns 0, or -ENOENT when no declared range overlaps. */
int engine_set_span_location(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                             unsigned loc, unsigned only_from) {
        struct spm_process *p = engine_process(e, pid);
        uint64_t end;
        bool found = false;

        if (!p)
                return -ENOENT;
        if (!ADD_SAFE(&end, addr, len))
                return -EINVAL;
        addr = ALIGN_DOWN(addr, PAGE_SIZE);
        end = ALIGN_UP(end, PAGE_SIZE);
        for (size_t i = 0; i < p->n_ranges; i++) {
                struct spm_range *rg = &p->ranges[i];
                if (rg->end <= addr || rg->start >= end)
                        continue;
                found = true;
                int r = range_cut_span(e, rg, addr, end);
                if (r < 0)
                        return r;
                for (uint32_t k = range_region_index(e, rg, MAX(addr, rg->start));
                     k < rg->n && region_start(rg, &rg->r[k]) < end; k++) {
                        struct region *x = &rg->r[k];
                        if (only_from < SPM_MAX_LOCS) {
                                if (x->loc == only_from)
                                        region_relocate(e, p, x, loc, false);
                        } else
                                region_relocate(e, p, x, loc, true);
                }
        }
        return found ? 0 : -ENOENT;
}

static int pending_cmp(const void *a, const void *b) {
        const struct pending_split *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        if (x->lo != y->lo)
                return x->lo < y->lo ? -1 : 1;
        return (x->hi > y->hi) - (x->hi < y->hi);
}

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

/* Step 3a of the epoch: split where partial accesses asked for it. The cut points are the
 * accesses' granule-aligned edges, so the result does not depend on the order the accesses
 * came in. When more than PENDING_MAX partial accesses came in (the count, not their order,
 * decides), every region that asked is halved instead, DAMON's way. */
int engine_apply_pending_splits(struct spm_engine *e) {
        _cleanup_free_ uint64_t *cuts = NULL;
        size_t n_cuts_alloc = 0;
        int r;

        if (e->n_pending == 0 && !e->pending_overflow)
                return 0;
        if (!e->pending_overflow)
                qsort(e->pending, e->n_pending, sizeof(*e->pending), pending_cmp);

        for (size_t i = 0; i < e->n_procs; i++) {
                struct spm_process *p = e->procs[i];
                size_t pi = 0, pn = 0;
                if (!e->pending_overflow) {
                        /* This process's entries: a contiguous run after the sort. */
                        size_t lo = 0, hi = e->n_pending;
                        while (lo < hi) {
                                size_t mid = (lo + hi) / 2;
                                if (e->pending[mid].pid < p->pid)
                                        lo = mid + 1;
                                else
                                        hi = mid;
                        }
                        pi = lo;
                        while (lo < e->n_pending && e->pending[lo].pid == p->pid)
                                lo++;
                        pn = lo - pi;
                        if (pn == 0)
                                continue;
                }
                for (size_t q = 0; q < p->n_ranges; q++) {
                        struct spm_range *rg = &p->ranges[q];
                        size_t nc = 0;
                        size_t want = e->pending_overflow ? rg->n : 2 * pn;
                        if (want > n_cuts_alloc) {
                                uint64_t *v = realloc(cuts, want * sizeof(*v));
                                if (!v)
                                        return -ENOMEM;
                                cuts = v;
                                n_cuts_alloc = want;
                        }
                        if (e->pending_overflow) {
                                for (uint32_t k = 0; k < rg->n; k++) {
                                        struct region *x = &rg->r[k];
                                        if (!(x->flags & REGION_SPLIT_WANT))
                                                continue;
                                        uint64_t mid = ALIGN_DOWN(region_start(rg, x) +
                                                                  region_bytes(x) / 2,
                                                                  e->c.granule);
                                        if (mid > region_start(rg, x))
                                                cuts[nc++] = mid;
                                }
                        } else
                                for (size_t k = pi; k < pi + pn; k++) {
                                        const struct pending_split *ps = &e->pending[k];
                                        if (ps->hi <= rg->start || ps->lo >= rg->end)
                                                continue;
                                        cuts[nc++] = ps->lo;
                                        cuts[nc++] = ps->hi;
                                }
                        for (uint32_t k = 0; k < rg->n; k++)
                                rg->r[k].flags &= (uint8_t) ~REGION_SPLIT_WANT;
                        if (nc == 0)
                                continue;
                        qsort(cuts, nc, sizeof(*cuts), u64_cmp);
                        size_t u = 0;
                        for (size_t k = 0; k < nc; k++)
                                if (u == 0 || cuts[u - 1] != cuts[k])
                                        cuts[u++] = cuts[k];
                        /* The split limit: keep the lowest cuts that fit. */
                        size_t room = rg->n < e->c.max_regions_per_range
                                ? e->c.max_regions_per_range - rg->n : 0;
                        r = range_cut(e, rg, cuts, MIN(u, room));
                        if (r < 0)
                                return r;
                }
        }
        e->n_pending = 0;
        e->pending_overflow = false;
        return 0;
}
