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

/* Grows *v to hold want regions; exact (no slack: cuts of big arrays are rare and
 * large reallocs are mremap()s) or doubling. */
static int regions_reserve_full(struct region **v, uint32_t *n_alloc, uint64_t want, bool exact) {
        if (want <= *n_alloc)
                return 0;
        if (want > UINT32_MAX)
                return -ENOMEM;
        uint64_t n = exact ? want : MAX(want, (uint64_t) *n_alloc * 2);
        n = MIN(n, (uint64_t) UINT32_MAX);
        struct region *x = realloc(*v, n * sizeof(**v));
        if (!x)
                return -ENOMEM;
        *v = x;
        *n_alloc = (uint32_t) n;
        return 0;
}

static int regions_reserve(struct region **v, uint32_t *n_alloc, uint64_t want) {
        return regions_reserve_full(v, n_alloc, want, false);
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
        uint32_t i = SLOT_IDX(rg->slot[(addr - rg->base) >> rg->slot_shift].w);
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
        struct slot *s = realloc(rg->slot, n_slots * sizeof(*s));
        if (!s)
                return -ENOMEM;
        rg->slot = s;
        rg->n_slots = (uint32_t) n_slots;
        rg->slot_shift = shift;
        rg->base = base;

        uint64_t next = 0; /* first slot not yet assigned */
        for (uint32_t i = 0; i < rg->n && next < n_slots; i++) {
                const struct region *x = &rg->r[i];
                uint64_t xs = region_start(rg, x), xe = xs + region_bytes(x);
                uint64_t last = (xe - 1 - base) >> shift;
                for (; next <= last; next++) {
                        /* Fast: the region covers the slot (within the range) and is no
                         * bigger than the granule, so any access inside the slot is all its. */
                        uint64_t ss = MAX(base + (next << shift), rg->start);
                        uint64_t se = MIN(base + ((next + 1) << shift), rg->end);
                        bool fast = shift == e->granule_shift && xs <= ss && xe >= se &&
                                    region_bytes(x) <= e->c.granule;
                        s[next] = (struct slot) { .w = i | (fast ? SLOT_FAST : 0) };
                }
        }
        return 0;
}

uint32_t range_fold_upto(struct spm_range *rg, uint32_t s, uint32_t idx) {
        for (; s < rg->n_slots && SLOT_IDX(rg->slot[s].w) <= idx; s++) {
                struct slot *sl = &rg->slot[s];
                if (sl->count == 0)
                        continue;
                struct region *x = &rg->r[SLOT_IDX(sl->w)];
                region_heat_add(x, SLOT_ACC(sl->w), sl->count);
                sl->count = 0;
        }
        return s;
}

void range_fold(struct spm_range *rg) {
        (void) range_fold_upto(rg, 0, UINT32_MAX);
}

/* Accesses of accessor acc to region idx still pending in its slots. */
float range_pending(const struct spm_range *rg, uint32_t idx, unsigned acc) {
        const struct region *x = &rg->r[idx];
        uint64_t s0 = (region_start(rg, x) - rg->base) >> rg->slot_shift;
        uint64_t s1 = (region_end(rg, x) - 1 - rg->base) >> rg->slot_shift;
        float sum = 0;

        for (uint64_t s = s0; s <= s1; s++)
                if (SLOT_IDX(rg->slot[s].w) == idx && SLOT_ACC(rg->slot[s].w) == acc)
                        sum += rg->slot[s].count;
        return sum;
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
        size_t inside = 0, k = 0;

        /* Cuts strictly inside a region, each point once (cuts are sorted). */
        for (uint32_t i = 0; i < rg->n && k < n; i++) {
                uint64_t s = region_start(rg, &rg->r[i]), end = s + region_bytes(&rg->r[i]);
                while (k < n && cuts[k] <= s)
                        k++;
                for (; k < n && cuts[k] < end; k++)
                        if (k == 0 || cuts[k] != cuts[k - 1])
                                inside++;
        }
        if (inside == 0)
                return 0;
        range_fold(rg);

        /* In place, from the end: grow once, then every region moves up by the number of
         * cuts below it, split as it goes (no fresh array, no page faults per epoch). */
        int r = regions_reserve_full(&rg->r, &rg->n_alloc, (uint64_t) rg->n + inside, true);
        if (r < 0)
                return r;
        uint32_t w = rg->n + (uint32_t) inside;
        k = n;
        for (uint32_t i = rg->n; i > 0; i--) {
                struct region cur = rg->r[i - 1];
                uint64_t s = region_start(rg, &cur);
                while (k > 0 && cuts[k - 1] >= s + region_bytes(&cur))
                        k--;
                while (k > 0 && cuts[k - 1] > s) {
                        struct region rest;
                        region_split(&cur, (uint32_t) ((cuts[k - 1] - s) >> PAGE_SHIFT), &rest);
                        rg->r[--w] = rest;
                        e->n_regions++;
                        uint64_t c = cuts[--k];
                        while (k > 0 && cuts[k - 1] == c)
                                k--;
                }
                rg->r[--w] = cur;
        }
        rg->n += (uint32_t) inside;
        return range_rebuild_slots(e, rg);
}

int range_cut_span(struct spm_engine *e, struct spm_range *rg, uint64_t lo, uint64_t hi) {
        uint64_t cuts[2] = { lo, hi };
        return range_cut(e, rg, cuts, 2);
}

/* Neighbours merge when nothing tells them apart: same location and hint, no quarantine,
 * no fresh split, no recent move, and per accessor heat densities within 1/8 of each other (or both below a
 * floor of a few accesses per granule and epoch). */
static bool regions_alike(const struct spm_engine *e, const struct region *a,
                          const struct region *b, uint64_t max_pages, float floor_per_page) {
        if (a->loc != b->loc || a->hint != b->hint)
                return false;
        if ((a->flags | b->flags) & (REGION_QUARANTINED | REGION_FRESH))
                return false;
        if (a->reuse >= 48 || b->reuse >= 48)
                return false; /* in use: placement needs it at the granule */
        if (a->cpu_gap != b->cpu_gap || a->gpu_gap != b->gpu_gap || a->gpu_gap2 != b->gpu_gap2)
                return false; /* a different recurring use */
        if ((uint64_t) a->npages + b->npages > max_pages)
                return false;
        /* A region that moved within the ping-pong window keeps its own history. */
        if ((region_moved(a) && region_age(e, a) <= e->c.pingpong_window_epochs) ||
            (region_moved(b) && region_age(e, b) <= e->c.pingpong_window_epochs))
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
        range_fold(rg);
        for (uint32_t i = 1; i < rg->n; i++) {
                struct region *a = &rg->r[w], *b = &rg->r[i];
                if (regions_alike(e, a, b, max_pages, floor_per_page)) {
                        for (unsigned x = 0; x < SPM_MAX_ACCESSORS; x++)
                                a->heat[x] += b->heat[x];
                        a->npages += b->npages;
                        if (region_moved(b) && (!region_moved(a) ||
                                                region_age(e, b) < region_age(e, a)))
                                a->last_move = b->last_move;
                        a->moves = MAX(a->moves, b->moves);
                        a->trips = MAX(a->trips, b->trips);
                        a->reuse = MAX(a->reuse, b->reuse);
                        a->flags |= b->flags & (REGION_TOUCHED | REGION_MOVED);
                        /* The later last use of each class; the GPUs' with its certainty. */
                        if ((b->use_state & USE_SEEN(USE_CPU)) &&
                            (!(a->use_state & USE_SEEN(USE_CPU)) ||
                             region_use_age(b, USE_CPU, e->epoch) <
                                     region_use_age(a, USE_CPU, e->epoch)))
                                a->cpu_last = b->cpu_last;
                        if ((b->use_state & USE_SEEN(USE_GPU)) &&
                            (!(a->use_state & USE_SEEN(USE_GPU)) ||
                             region_use_age(b, USE_GPU, e->epoch) <
                                     region_use_age(a, USE_GPU, e->epoch))) {
                                a->gpu_last = b->gpu_last;
                                a->gpu_sure = b->gpu_sure;
                        }
                        a->use_state |= b->use_state;
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

bool region_would_quarantine(const struct spm_engine *e, const struct region *r, unsigned to) {
        if (to == r->loc || to != r->prev_loc)
                return false;
        if (region_moved(r) && region_age(e, r) > e->c.pingpong_window_epochs)
                return false;
        return r->trips + 1u >= 2 * e->c.pingpong_trips - 1;
}

bool region_quarantine_over(const struct spm_engine *e, const struct region *r) {
        return region_age(e, r) >= e->c.quarantine_epochs;
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
        /* A return counts only when the move out was within the window. */
        bool stale = region_moved(r) && region_age(e, r) > e->c.pingpong_window_epochs;
        if (stale)
                r->trips = 0;
        if (!stale && to == r->prev_loc && r->trips < UINT8_MAX) {
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
        r->last_move = (uint16_t) e->epoch;
        r->flags |= REGION_MOVED;
        if (r->moves < REGION_MOVES_MAX)
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
                range_fold(old);
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
        if (nr.n_alloc > nr.n) {
                /* Exact size: the array is the bulk of the engine's memory. */
                struct region *v = realloc(nr.r, (size_t) nr.n * sizeof(*v));
                if (v) {
                        nr.r = v;
                        nr.n_alloc = nr.n;
                }
        }
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
                range_fold(rg);
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
                        } else {
                                /* A move the driver made (its first placement of data,
                                 * a TTM eviction, a fault migration) starts no residency:
                                 * residency keeps the engine from undoing its own moves,
                                 * and placement may correct the driver's at once. They
                                 * still count for the ping-pong detector, and a quarantine
                                 * runs from the move that started it. */
                                bool moved = x->loc != loc;
                                if (!region_relocate(e, p, x, loc, true) && moved &&
                                    !(x->flags & REGION_QUARANTINED))
                                        x->last_move = (uint16_t) (e->epoch -
                                                                   e->c.min_residency_epochs);
                        }
                }
        }
        return found ? 0 : -ENOENT;
}
