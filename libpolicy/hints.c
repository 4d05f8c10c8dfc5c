/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hints: what a job knows about its own memory (hot, cold, pin to a GPU, pin to RAM,
 * streaming), with a TTL. They are kept per process in arrival order, later ones winning where
 * they overlap, and stamped into the covered regions' hint byte (regions are cut at the hint's
 * edges). Placement reads only that byte; rights (the job's GPUs and quota) are checked here
 * and again at placement, since a job's rights can shrink after the hint.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

#define HINTS_MAX 4096

static int process_apply_hints(struct spm_engine *e, struct spm_process *p) {
        int r;

        for (size_t h = 0; h < p->n_hints; h++) {
                const struct spm_hint *hi = &p->hints[h].h;
                if (hi->kind == SPM_HINT_NONE)
                        continue;
                for (size_t q = 0; q < p->n_ranges; q++) {
                        r = range_cut_span(e, &p->ranges[q], hi->start, hi->start + hi->len);
                        if (r < 0)
                                return r;
                }
        }
        for (size_t q = 0; q < p->n_ranges; q++) {
                struct spm_range *rg = &p->ranges[q];
                for (uint32_t k = 0; k < rg->n; k++)
                        rg->r[k].hint = 0;
                for (size_t h = 0; h < p->n_hints; h++) {
                        const struct spm_hint *hi = &p->hints[h].h;
                        uint64_t lo = MAX(hi->start, rg->start), end = hi->start + hi->len;
                        if (end <= rg->start || lo >= rg->end)
                                continue;
                        uint8_t b = hi->kind == SPM_HINT_NONE ? 0 : HINT_BYTE(hi->kind, hi->gpu);
                        for (uint32_t k = range_region_index(e, rg, lo);
                             k < rg->n && region_start(rg, &rg->r[k]) < end; k++)
                                /* NONE spans are not cut: clear only what they cover fully. */
                                if (region_end(rg, &rg->r[k]) <= end &&
                                    region_start(rg, &rg->r[k]) >= hi->start)
                                        rg->r[k].hint = b;
                }
        }
        p->hints_dirty = false;
        return 0;
}

int spm_engine_hint(struct spm_engine *e, const struct spm_hint *h) {
        struct spm_process *p;
        uint64_t end;

        if (!e || !h || (unsigned) h->kind >= _SPM_HINT_KIND_MAX || h->len == 0 ||
            !ADD_SAFE(&end, h->start, h->len))
                return -EINVAL;
        p = engine_process(e, h->pid);
        if (!p)
                return -ENOENT;
        if (h->kind == SPM_HINT_HOT || h->kind == SPM_HINT_PIN_GPU) {
                if (h->gpu >= e->m.n_gpus)
                        return -EINVAL;
                if (!(p->job->j.gpu_mask & (1u << h->gpu)) || p->job->j.vram_quota[h->gpu] == 0)
                        return -EPERM;
        }

        struct spm_hint_entry he = {
                .h = *h,
                .expires = h->ttl_usec ? e->now + h->ttl_usec : 0,
        };
        he.h.start = ALIGN_DOWN(h->start, PAGE_SIZE);
        he.h.len = ALIGN_UP(end, PAGE_SIZE) - he.h.start;
        if (h->kind != SPM_HINT_HOT && h->kind != SPM_HINT_PIN_GPU)
                he.h.gpu = 0;

        /* Entries the new one covers entirely can never show again. */
        size_t w = 0;
        for (size_t i = 0; i < p->n_hints; i++) {
                const struct spm_hint *o = &p->hints[i].h;
                if (!(o->start >= he.h.start && o->start + o->len <= he.h.start + he.h.len))
                        p->hints[w++] = p->hints[i];
        }
        p->n_hints = w;
        if (p->n_hints >= HINTS_MAX)
                return -ENOSPC;
        if (p->n_hints == p->n_hints_alloc) {
                size_t n = MAX(p->n_hints_alloc * 2, 4);
                struct spm_hint_entry *v = realloc(p->hints, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                p->hints = v;
                p->n_hints_alloc = n;
        }
        p->hints[p->n_hints++] = he;
        return process_apply_hints(e, p);
}

/* Step 2 of the epoch: expire hints whose TTL ran out and re-stamp the regions. */
int engine_hints_epoch(struct spm_engine *e) {
        for (size_t i = 0; i < e->n_procs; i++) {
                struct spm_process *p = e->procs[i];
                size_t w = 0;
                for (size_t h = 0; h < p->n_hints; h++)
                        if (p->hints[h].expires && p->hints[h].expires <= e->now)
                                p->hints_dirty = true;
                        else
                                p->hints[w++] = p->hints[h];
                p->n_hints = w;
                if (p->hints_dirty) {
                        int r = process_apply_hints(e, p);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}
