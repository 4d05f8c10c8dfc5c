/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The KFD SVM model (shared/reference/kfd-svm.md §9). Section numbers in comments refer to that
 * file; function names in quotes are the kernel functions whose behaviour is reproduced.
 *
 * Representation: a range table sorted by (pid, start) whose fragments are uniform in attributes,
 * location and GPU mappings. A kernel prange is the set of contiguous fragments sharing a
 * range_id; residency changes split fragments but keep the range_id, SET splits pranges.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spmtier/kfd-model.h"
#include "spmtier/macro.h"

#define UNDEF KFD_LOCATION_UNDEFINED
#define BIT(i) ((uint8_t) (1u << (i)))

static uint64_t frag_end(const struct kfd_entry *e) {
        return e->start + e->npages;
}

static uint64_t page_bytes(const struct kfd_node *n) {
        return 1ULL << n->cfg.page_shift;
}

void kfd_config_default(unsigned n_gpus, struct kfd_config *ret) {
        struct kfd_config c = {
                .n_gpus = MIN(n_gpus, (unsigned) KFD_MAX_GPUS),
                .mem_mode = KFD_MEM_COHERENT,
                .page_shift = 12,
                .xnack_default = false,
                .kfd_major = KFD_VERSION_MAJOR,
                .kfd_minor = KFD_VERSION_MINOR,
        };
        for (unsigned i = 0; i < c.n_gpus; i++)
                c.gpu[i] = (struct kfd_gpu_config) {
                        .gpu_id = 0x1000 + 0x111 * (i + 1), /* any non-zero 16-bit hash */
                        .location_id = (0xc1 + 8 * i) << 8,
                        .vram_bytes = 64ULL << 30,
                        .hive_id = 0x5a17e0001ULL,
                        .svm = true,
                        .xnack_capable = true,
                };
        *ret = c;
}

void kfd_config_from_machine(const struct spm_machine *m, struct kfd_config *ret) {
        unsigned g = m->kind == SPM_MEM_NUMA ? MAX(m->n_gpus, 1u) : m->n_gpus;

        kfd_config_default(g, ret);
        ret->mem_mode = m->kind == SPM_MEM_DEVICE_COHERENT ? KFD_MEM_COHERENT :
                        m->kind == SPM_MEM_DEVICE_PRIVATE ? KFD_MEM_PRIVATE : KFD_MEM_APU;
        ret->xnack_default = m->xnack;
        for (unsigned i = 0; i < ret->n_gpus && m->kind != SPM_MEM_NUMA; i++)
                ret->gpu[i].vram_bytes = m->capacity[SPM_LOC_GPU(i)];
}

int kfd_config_validate(const struct kfd_config *c) {
        if (c->n_gpus > KFD_MAX_GPUS || c->page_shift < 12 || c->page_shift > 16 ||
            (unsigned) c->mem_mode >= _KFD_MEM_MODE_MAX)
                return -EINVAL;
        for (unsigned i = 0; i < c->n_gpus; i++) {
                if (c->gpu[i].gpu_id == 0 || c->gpu[i].gpu_id > 0xffff)
                        return -EINVAL;
                for (unsigned j = 0; j < i; j++)
                        if (c->gpu[j].gpu_id == c->gpu[i].gpu_id)
                                return -EINVAL;
        }
        return 0;
}

int kfd_node_init(struct kfd_node *n, const struct kfd_config *c) {
        int r = kfd_config_validate(c);
        if (r < 0)
                return r;
        memset(n, 0, sizeof(*n));
        n->magic = KFD_NODE_MAGIC;
        n->version = KFD_NODE_VERSION;
        n->size = sizeof(*n);
        n->cfg = *c;
        n->next_range = 1;
        return 0;
}

int kfd_node_check(const struct kfd_node *n) {
        if (n->magic != KFD_NODE_MAGIC || n->version != KFD_NODE_VERSION || n->size != sizeof(*n))
                return -EINVAL;
        return kfd_config_validate(&n->cfg);
}

int kfd_gpu_index(const struct kfd_node *n, uint32_t gpu_id) {
        for (unsigned i = 0; i < n->cfg.n_gpus; i++)
                if (n->cfg.gpu[i].gpu_id == gpu_id)
                        return (int) i;
        return -EINVAL;
}

static uint32_t loc_gpu_id(const struct kfd_node *n, unsigned loc) {
        return loc == KFD_LOC_RAM ? 0 : n->cfg.gpu[loc - 1].gpu_id;
}

static bool same_hive(const struct kfd_node *n, unsigned a, unsigned b) {
        return a == b || (n->cfg.gpu[a].hive_id != 0 && n->cfg.gpu[a].hive_id == n->cfg.gpu[b].hive_id);
}

static uint8_t svm_gpus(const struct kfd_node *n) {
        uint8_t m = 0;
        for (unsigned i = 0; i < n->cfg.n_gpus; i++)
                if (n->cfg.gpu[i].svm)
                        m |= BIT(i);
        return m;
}

struct kfd_process *kfd_process_get(struct kfd_node *n, int32_t pid) {
        if (pid <= 0)
                return NULL;
        for (unsigned i = 0; i < KFD_MAX_PROCS; i++)
                if (n->procs[i].pid == pid)
                        return &n->procs[i];
        return NULL;
}

/* "kfd_process_xnack_mode": XNACK can be on only when every GPU supports retry faults. */
static bool xnack_possible(const struct kfd_node *n) {
        for (unsigned i = 0; i < n->cfg.n_gpus; i++)
                if (!n->cfg.gpu[i].xnack_capable)
                        return false;
        return true;
}

int kfd_process_open(struct kfd_node *n, int32_t pid) {
        if (pid <= 0)
                return -EINVAL;
        if (kfd_process_get(n, pid))
                return 0;
        for (unsigned i = 0; i < KFD_MAX_PROCS; i++)
                if (n->procs[i].pid == 0) {
                        n->procs[i] = (struct kfd_process) {
                                .pid = pid,
                                .xnack = n->cfg.xnack_default && xnack_possible(n),
                                .dirty = true,
                        };
                        return 0;
                }
        return -ENOSPC;
}

int kfd_check_caller(int32_t owner_pid, int32_t caller_pid) {
        return owner_pid == caller_pid ? 0 : -EBADF;
}

/* ---- the fragment table ---- */

/* Index of the first fragment of pid that ends after page (the one holding it, or the next). */
static unsigned lower(const struct kfd_node *n, int32_t pid, uint64_t page) {
        unsigned lo = 0, hi = n->n_entries;

        while (lo < hi) {
                unsigned mid = lo + (hi - lo) / 2;
                const struct kfd_entry *e = &n->e[mid];
                if (e->pid < pid || (e->pid == pid && frag_end(e) <= page))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static bool holds(const struct kfd_node *n, unsigned i, int32_t pid, uint64_t page) {
        return i < n->n_entries && n->e[i].pid == pid && n->e[i].start <= page &&
               page < frag_end(&n->e[i]);
}

static int insert_at(struct kfd_node *n, unsigned i, const struct kfd_entry *e) {
        if (n->n_entries >= KFD_MAX_ENTRIES)
                return -ENOSPC;
        memmove(&n->e[i + 1], &n->e[i], (n->n_entries - i) * sizeof(n->e[0]));
        n->e[i] = *e;
        n->n_entries++;
        return 0;
}

static void remove_at(struct kfd_node *n, unsigned i) {
        memmove(&n->e[i], &n->e[i + 1], (n->n_entries - i - 1) * sizeof(n->e[0]));
        n->n_entries--;
}

/* Makes page a fragment boundary. Returns 0 or -ENOSPC. */
static int split_at(struct kfd_node *n, int32_t pid, uint64_t page) {
        unsigned i = lower(n, pid, page);
        if (!holds(n, i, pid, page) || n->e[i].start == page)
                return 0;
        struct kfd_entry right = n->e[i];
        right.start = page;
        right.npages = frag_end(&n->e[i]) - page;
        int r = insert_at(n, i + 1, &right);
        if (r < 0)
                return r;
        n->e[i].npages = page - n->e[i].start;
        return 0;
}

static bool mergeable(const struct kfd_entry *a, const struct kfd_entry *b) {
        return a->pid == b->pid && frag_end(a) == b->start && a->range_id == b->range_id &&
               a->flags == b->flags && a->preferred == b->preferred && a->prefetch == b->prefetch &&
               a->bo == b->bo && a->granularity == b->granularity && a->loc == b->loc &&
               a->access == b->access && a->in_place == b->in_place && a->mapped == b->mapped &&
               a->cow == b->cow;
}

/* Merges equal neighbours around [s, e) so the table stays small. */
static void merge_around(struct kfd_node *n, int32_t pid, uint64_t s, uint64_t e) {
        unsigned i = lower(n, pid, s > 0 ? s - 1 : 0);
        while (i + 1 < n->n_entries && n->e[i].pid == pid && n->e[i].start <= e) {
                if (mergeable(&n->e[i], &n->e[i + 1])) {
                        n->e[i].npages += n->e[i + 1].npages;
                        n->e[i].validate_ns = MAX(n->e[i].validate_ns, n->e[i + 1].validate_ns);
                        remove_at(n, i + 1);
                } else
                        i++;
        }
}

/* The prange holding fragment i: [*ret_s, *ret_e) pages. */
static void prange_bounds(const struct kfd_node *n, unsigned i, uint64_t *ret_s, uint64_t *ret_e) {
        unsigned a = i, b = i;
        while (a > 0 && n->e[a - 1].pid == n->e[i].pid && n->e[a - 1].range_id == n->e[i].range_id &&
               frag_end(&n->e[a - 1]) == n->e[a].start)
                a--;
        while (b + 1 < n->n_entries && n->e[b + 1].pid == n->e[i].pid &&
               n->e[b + 1].range_id == n->e[i].range_id && frag_end(&n->e[b]) == n->e[b + 1].start)
                b++;
        *ret_s = n->e[a].start;
        *ret_e = frag_end(&n->e[b]);
}

/* ---- spans: pins and KFD BO VAs ---- */

static bool span_overlaps(const struct kfd_node *n, int32_t pid, uint32_t kind, uint64_t s, uint64_t e) {
        for (unsigned i = 0; i < KFD_MAX_SPANS; i++) {
                const struct kfd_span *sp = &n->spans[i];
                if (sp->pid == pid && sp->kind == kind && sp->start < e && s < sp->start + sp->npages)
                        return true;
        }
        return false;
}

static int span_add(struct kfd_node *n, int32_t pid, uint32_t kind, uint64_t s, uint64_t e) {
        for (unsigned i = 0; i < KFD_MAX_SPANS; i++)
                if (n->spans[i].pid == 0) {
                        n->spans[i] = (struct kfd_span) { pid, kind, s, e - s };
                        return 0;
                }
        return -ENOSPC;
}

/* Drops spans of pid overlapping [s, e) (all kinds when kind == 0). */
static void span_drop(struct kfd_node *n, int32_t pid, uint32_t kind, uint64_t s, uint64_t e) {
        for (unsigned i = 0; i < KFD_MAX_SPANS; i++) {
                struct kfd_span *sp = &n->spans[i];
                if (sp->pid == pid && (kind == 0 || sp->kind == kind) && sp->start < e &&
                    s < sp->start + sp->npages)
                        *sp = (struct kfd_span) {};
        }
}

/* ---- BOs and VRAM ---- */

static struct kfd_bo *bo_get(struct kfd_node *n, uint32_t id) {
        return id > 0 && id <= KFD_MAX_BOS && n->bos[id - 1].id == id ? &n->bos[id - 1] : NULL;
}

static void counters_vram(struct kfd_node *n, int32_t pid, unsigned gpu, int64_t delta) {
        struct kfd_process *p = kfd_process_get(n, pid);
        if (p) {
                p->c[gpu].vram_bytes += (uint64_t) delta;
                p->dirty = true;
        }
}

static int bo_alloc(struct kfd_node *n, int32_t pid, unsigned gpu, uint64_t pages, bool svm,
                    uint64_t stamp) {
        for (unsigned i = 0; i < KFD_MAX_BOS; i++)
                if (n->bos[i].id == 0) {
                        n->bos[i] = (struct kfd_bo) {
                                .id = i + 1, .pid = pid, .gpu = (uint8_t) gpu, .svm = svm,
                                .pages = pages, .live = pages, .lru = stamp,
                        };
                        n->vram_used[gpu] += pages * page_bytes(n);
                        counters_vram(n, pid, gpu, (int64_t) (pages * page_bytes(n)));
                        return (int) (i + 1);
                }
        return -ENOSPC;
}

static void bo_free(struct kfd_node *n, struct kfd_bo *bo) {
        uint64_t bytes = bo->pages * page_bytes(n);
        n->vram_used[bo->gpu] -= MIN(bytes, n->vram_used[bo->gpu]);
        counters_vram(n, bo->pid, bo->gpu, -(int64_t) bytes);
        *bo = (struct kfd_bo) {};
}

/* Pages left VRAM; the BO (and its VRAM) goes when none is left ("svm_range_bo_release"). */
static void bo_release(struct kfd_node *n, uint32_t id, uint64_t pages) {
        struct kfd_bo *bo = bo_get(n, id);
        if (!bo)
                return;
        bo->live -= MIN(pages, bo->live);
        if (bo->live == 0)
                bo_free(n, bo);
}

static void bo_touch(struct kfd_node *n, uint32_t id, uint64_t stamp) {
        struct kfd_bo *bo = bo_get(n, id);
        if (bo)
                bo->lru = MAX(bo->lru, stamp);
}

/* ---- events ---- */

static void emit(const struct kfd_ctx *ctx, const struct kfd_event *ev) {
        if (ctx && ctx->emit)
                ctx->emit(ctx->userdata, ev);
}

static uint64_t now(const struct kfd_ctx *ctx) {
        return ctx ? ctx->now_ns : 0;
}

/* Queue eviction for every GPU where the process has queues, restored ~1 ms later
 * ("svm_range_evict" with XNACK off, "svm_range_restore_work"). */
static void evict_queues(struct kfd_node *n, const struct kfd_ctx *ctx, struct kfd_process *p,
                         int trigger) {
        for (unsigned g = 0; g < n->cfg.n_gpus; g++) {
                if (p->n_queues[g] == 0)
                        continue;
                struct kfd_event ev = {
                        .id = KFD_EV_QUEUE_EVICTION, .dev = g, .ns = now(ctx), .pid = p->pid,
                        .gpu_id = n->cfg.gpu[g].gpu_id, .trigger = trigger,
                };
                emit(ctx, &ev);
                ev.id = KFD_EV_QUEUE_RESTORE;
                ev.ns += KFD_RESTORE_DELAY_NS;
                emit(ctx, &ev);
                p->c[g].evicted_ns += KFD_RESTORE_DELAY_NS;
                p->dirty = true;
        }
}

/* The MMU notifier fired on fragments [i, j): XNACK off evicts the queues (they are restored and
 * re-mapped), XNACK on unmaps the span from each GPU that mapped it. */
static void invalidate(struct kfd_node *n, const struct kfd_ctx *ctx, struct kfd_process *p,
                       unsigned i, unsigned j, int unmap_trigger) {
        uint8_t mapped = 0;
        for (unsigned k = i; k < j; k++)
                mapped |= n->e[k].mapped;
        if (!mapped)
                return;
        if (!p->xnack) {
                evict_queues(n, ctx, p, KFD_QEV_SVM);
                return;
        }
        for (unsigned g = 0; g < n->cfg.n_gpus; g++) {
                if (!(mapped & BIT(g)))
                        continue;
                struct kfd_event ev = {
                        .id = KFD_EV_UNMAP_FROM_GPU, .dev = g, .ns = now(ctx), .pid = p->pid,
                        .addr = n->e[i].start, .npages = frag_end(&n->e[j - 1]) - n->e[i].start,
                        .gpu_id = n->cfg.gpu[g].gpu_id, .trigger = unmap_trigger,
                };
                emit(ctx, &ev);
        }
        for (unsigned k = i; k < j; k++)
                n->e[k].mapped &= n->e[k].in_place; /* in-place GPUs are re-mapped at once */
}

/* ---- migration ---- */

static bool frag_pinned(const struct kfd_node *n, const struct kfd_entry *e) {
        return span_overlaps(n, e->pid, KFD_SPAN_PIN, e->start, frag_end(e));
}

/* Moves fragments [i, j) (contiguous, one prange, one source location) to `to`; pinned pages are
 * skipped when moving to VRAM (migrate_vma collected fewer pages). One MIGRATE_START/END pair,
 * as "svm_migrate_vma_to_vram"/"_to_ram" emit per VMA chunk. bo is the destination BO. */
static void move_run(struct kfd_node *n, const struct kfd_ctx *ctx, struct kfd_process *p,
                     unsigned i, unsigned j, unsigned to, int trigger, uint32_t bo,
                     struct kfd_result *res) {
        unsigned from = n->e[i].loc;
        uint64_t npages = frag_end(&n->e[j - 1]) - n->e[i].start, moved = 0;
        unsigned dev = to != KFD_LOC_RAM ? to - 1 : from - 1;
        struct kfd_event ev = {
                .id = KFD_EV_MIGRATE_START, .dev = dev, .ns = now(ctx), .pid = p->pid,
                .addr = n->e[i].start, .npages = npages, .from = loc_gpu_id(n, from),
                .to = loc_gpu_id(n, to), .prefetch = n->e[i].prefetch,
                .preferred = n->e[i].preferred, .trigger = trigger,
        };

        emit(ctx, &ev);
        invalidate(n, ctx, p, i, j, KFD_UNMAP_MMU_NOTIFY_MIGRATE);
        for (unsigned k = i; k < j; k++) {
                struct kfd_entry *e = &n->e[k];
                if (e->loc == to || (to != KFD_LOC_RAM && frag_pinned(n, e))) {
                        if (res && e->loc != to)
                                res->skipped_pages += e->npages;
                        continue;
                }
                if (e->loc != KFD_LOC_RAM) {
                        bo_release(n, e->bo, e->npages);
                        p->c[e->loc - 1].page_out += e->npages;
                        if (res)
                                res->pages_out += e->npages;
                }
                if (to != KFD_LOC_RAM) {
                        p->c[to - 1].page_in += e->npages;
                        if (res)
                                res->pages_in += e->npages;
                }
                e->loc = (uint8_t) to;
                e->bo = to != KFD_LOC_RAM ? bo : 0;
                moved += e->npages;
        }
        p->dirty = true;
        if (res) {
                res->migrations++;
                res->bytes_moved += moved * page_bytes(n);
        }
        ev.id = KFD_EV_MIGRATE_END;
        ev.ns += moved * page_bytes(n) / 25; /* ~25 GB/s SDMA; only orders START before END */
        emit(ctx, &ev);
}

/* Runs of fragments in [i, j) that need `pred`: contiguous, same prange, same location. */
static unsigned run_end(const struct kfd_node *n, unsigned i, unsigned j) {
        unsigned k = i + 1;
        while (k < j && n->e[k].start == frag_end(&n->e[k - 1]) &&
               n->e[k].range_id == n->e[i].range_id && n->e[k].loc == n->e[i].loc)
                k++;
        return k;
}

static void evict_bo(struct kfd_node *n, const struct kfd_ctx *ctx, uint32_t id, struct kfd_result *res);

/* TTM: makes room for pages on gpu by evicting whole SVM BOs, least recently used first, never
 * one touched by the current operation (lru >= stamp). Returns 0 or -ENOSPC. */
static int vram_make_room(struct kfd_node *n, const struct kfd_ctx *ctx, unsigned gpu,
                          uint64_t pages, uint64_t stamp, struct kfd_result *res) {
        uint64_t need = pages * page_bytes(n), cap = n->cfg.gpu[gpu].vram_bytes, evictable = 0;

        for (unsigned i = 0; i < KFD_MAX_BOS; i++)
                if (n->bos[i].id && n->bos[i].gpu == gpu && n->bos[i].svm && n->bos[i].lru < stamp)
                        evictable += n->bos[i].pages * page_bytes(n);
        if (n->vram_used[gpu] - evictable + need > cap)
                return -ENOSPC;
        while (n->vram_used[gpu] + need > cap) {
                struct kfd_bo *victim = NULL;
                for (unsigned i = 0; i < KFD_MAX_BOS; i++) {
                        struct kfd_bo *b = &n->bos[i];
                        if (b->id && b->gpu == gpu && b->svm && b->lru < stamp &&
                            (!victim || b->lru < victim->lru))
                                victim = b;
                }
                if (!victim)
                        return -ENOSPC;
                evict_bo(n, ctx, victim->id, res);
        }
        return 0;
}

/* "svm_range_evict_svm_bo_worker": every range sharing the BO goes back to RAM. */
static void evict_bo(struct kfd_node *n, const struct kfd_ctx *ctx, uint32_t id, struct kfd_result *res) {
        struct kfd_bo *bo = bo_get(n, id);
        struct kfd_process *p = bo ? kfd_process_get(n, bo->pid) : NULL;
        struct kfd_result victim = {}; /* the victim's migrations are not the caller's */

        if (!p) {
                if (bo)
                        bo_free(n, bo);
                return;
        }
        for (unsigned i = 0; bo_get(n, id) && i < n->n_entries;) {
                if (n->e[i].pid != p->pid || n->e[i].bo != id) {
                        i++;
                        continue;
                }
                unsigned j = i + 1;
                while (j < n->n_entries && n->e[j].bo == id && n->e[j].pid == p->pid &&
                       n->e[j].start == frag_end(&n->e[j - 1]) && n->e[j].range_id == n->e[i].range_id)
                        j++;
                move_run(n, ctx, p, i, j, KFD_LOC_RAM, KFD_MIG_TTM_EVICTION, 0, &victim);
                i = j;
        }
        if (bo_get(n, id)) /* pages the table lost track of: free the VRAM anyway */
                bo_free(n, bo_get(n, id));
        if (res)
                res->evicted_pages += victim.pages_out;
}

/* The BO already holding part of fragment i's prange at location `to`, or NULL. */
static struct kfd_bo *range_bo(struct kfd_node *n, unsigned i, unsigned to) {
        uint64_t rs, re;
        prange_bounds(n, i, &rs, &re);
        for (unsigned k = lower(n, n->e[i].pid, rs); k < n->n_entries && n->e[k].pid == n->e[i].pid &&
                                                     n->e[k].start < re; k++)
                if (n->e[k].loc == to && n->e[k].bo && n->e[k].range_id == n->e[i].range_id)
                        return bo_get(n, n->e[k].bo);
        return NULL;
}

/* Migrates pid's registered pages in [s, e) to location `to`. Returns 0, -ENOSPC (table full;
 * or a failed VRAM placement when vram_errors), and counts failed pages in res. */
static int migrate_span(struct kfd_node *n, const struct kfd_ctx *ctx, struct kfd_process *p,
                        uint64_t s, uint64_t e, unsigned to, int trigger, uint64_t stamp,
                        bool vram_errors, struct kfd_result *res) {
        int r, ret = 0;

        if ((r = split_at(n, p->pid, s)) < 0 || (r = split_at(n, p->pid, e)) < 0)
                return r;
        if (to != KFD_LOC_RAM)
                for (unsigned k = 0; k < KFD_MAX_SPANS; k++) {
                        const struct kfd_span *sp = &n->spans[k];
                        if (sp->pid != p->pid || sp->kind != KFD_SPAN_PIN)
                                continue;
                        if ((sp->start > s && sp->start < e && (r = split_at(n, p->pid, sp->start)) < 0) ||
                            (sp->start + sp->npages > s && sp->start + sp->npages < e &&
                             (r = split_at(n, p->pid, sp->start + sp->npages)) < 0))
                                return r;
                }

        /* Keep this operation's own BOs from being evicted to make room for itself. */
        for (unsigned i = lower(n, p->pid, s); i < n->n_entries && n->e[i].pid == p->pid &&
                                               n->e[i].start < e; i++)
                bo_touch(n, n->e[i].bo, stamp);

        /* VRAM to VRAM goes through RAM (two MIGRATE pairs). */
        for (int phase = to == KFD_LOC_RAM ? 1 : 0; phase < 2; phase++) {
                unsigned i = lower(n, p->pid, s);
                while (i < n->n_entries && n->e[i].pid == p->pid && n->e[i].start < e) {
                        unsigned from = n->e[i].loc;
                        bool wanted = phase == 0 ? (from != KFD_LOC_RAM && from != to) : from != to;
                        if (!wanted) {
                                i++;
                                continue;
                        }
                        unsigned j = run_end(n, i, lower(n, p->pid, e));
                        if (phase == 0) {
                                move_run(n, ctx, p, i, j, KFD_LOC_RAM, trigger, 0, res);
                                i = j;
                                continue;
                        }
                        uint32_t bo = 0;
                        if (to != KFD_LOC_RAM) {
                                uint64_t pages = 0;
                                for (unsigned k = i; k < j; k++)
                                        if (!frag_pinned(n, &n->e[k]))
                                                pages += n->e[k].npages;
                                /* "svm_range_validate_svm_bo": pages coming back to the
                                 * prange's BO reuse its VRAM. Eviction may move other fragments
                                 * but never inserts or removes one, so i and j stay valid. */
                                struct kfd_bo *own = range_bo(n, i, to);
                                if (own && pages && own->live + pages <= own->pages) {
                                        own->live += pages;
                                        r = (int) own->id;
                                } else {
                                        r = pages ? vram_make_room(n, ctx, to - 1, pages, stamp, res) : 0;
                                        if (r >= 0 && pages)
                                                r = bo_alloc(n, p->pid, to - 1, pages, true, stamp);
                                }
                                if (r < 0) {
                                        /* "svm_range_trigger_migration": VRAM failures are
                                         * silent on recent kernels. */
                                        if (res)
                                                res->failed_pages += pages;
                                        if (vram_errors)
                                                ret = -ENOSPC;
                                        i = j;
                                        continue;
                                }
                                bo = (uint32_t) r;
                        }
                        move_run(n, ctx, p, i, j, to, trigger, bo, res);
                        i = j;
                }
        }
        merge_around(n, p->pid, s, e);
        return ret;
}

/* ---- location rules ---- */

/* §4.1 "svm_range_best_prefetch_location". Returns a location or -1 for none. */
static int best_prefetch_loc(const struct kfd_node *n, const struct kfd_process *p,
                             const struct kfd_entry *e) {
        if (e->prefetch == UNDEF)
                return -1;
        if (e->prefetch == KFD_LOCATION_SYSMEM || n->cfg.mem_mode == KFD_MEM_APU)
                return KFD_LOC_RAM;
        int g = kfd_gpu_index(n, e->prefetch);
        if (g < 0)
                return -1;
        uint8_t rights = p->xnack ? e->in_place : (uint8_t) (e->access | e->in_place);
        for (unsigned i = 0; i < n->cfg.n_gpus; i++)
                if ((rights & BIT(i)) && !same_hive(n, i, (unsigned) g))
                        return KFD_LOC_RAM;
        return g + 1;
}

/* §4.2 "svm_range_best_restore_location" for a fault on GPU g. Returns a location or -EACCES. */
static int best_restore_loc(const struct kfd_node *n, const struct kfd_entry *e, unsigned g) {
        if (n->cfg.mem_mode == KFD_MEM_APU)
                return KFD_LOC_RAM;
        if (e->preferred == KFD_LOCATION_SYSMEM)
                return KFD_LOC_RAM;
        if (e->preferred != UNDEF) {
                int pg = kfd_gpu_index(n, e->preferred);
                if (pg >= 0 && same_hive(n, (unsigned) pg, g))
                        return pg + 1;
        }
        if (e->access & BIT(g))
                return (int) g + 1;
        if (e->in_place & BIT(g)) {
                if (e->loc != KFD_LOC_RAM && same_hive(n, e->loc - 1u, g))
                        return e->loc;
                return KFD_LOC_RAM;
        }
        return -EACCES;
}

/* ---- validation ---- */

/* "svm_range_is_valid": every page inside VMAs without VM_IO|VM_PFNMAP|VM_MIXEDMAP. */
static bool vmas_cover(const struct kfd_ctx *ctx, uint64_t s, uint64_t e) {
        if (!ctx || !ctx->vmas)
                return true;
        for (size_t i = 0; i < ctx->n_vmas && s < e; i++) {
                const struct kfd_vma *v = &ctx->vmas[i];
                if (v->end <= s)
                        continue;
                if (v->start > s || (v->flags & KFD_VMA_IO))
                        return false;
                s = v->end;
        }
        return s >= e;
}

static const struct kfd_vma *vma_find(const struct kfd_ctx *ctx, uint64_t addr) {
        if (!ctx || !ctx->vmas)
                return NULL;
        for (size_t i = 0; i < ctx->n_vmas; i++)
                if (ctx->vmas[i].start <= addr && addr < ctx->vmas[i].end)
                        return &ctx->vmas[i];
        return NULL;
}

static bool vma_writable(const struct kfd_ctx *ctx, uint64_t addr) {
        const struct kfd_vma *v = vma_find(ctx, addr);
        return !v || (v->flags & KFD_VMA_WRITE);
}

static int check_span(const struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid,
                      uint64_t start, uint64_t size, uint64_t *ret_s, uint64_t *ret_e) {
        uint64_t mask = page_bytes(n) - 1, end;
        if (start == 0 || size == 0 || (start & mask) || (size & mask) || !ADD_SAFE(&end, start, size))
                return -EINVAL;
        if (!vmas_cover(ctx, start, end))
                return -EFAULT;
        if (span_overlaps(n, pid, KFD_SPAN_KFD_BO, start >> n->cfg.page_shift, end >> n->cfg.page_shift))
                return -EADDRINUSE;
        *ret_s = start >> n->cfg.page_shift;
        *ret_e = end >> n->cfg.page_shift;
        return 0;
}

/* "svm_range_check_attr". */
static int check_attrs(const struct kfd_node *n, unsigned nattr,
                       const struct kfd_svm_attr *attrs, bool get) {
        for (unsigned i = 0; i < nattr; i++) {
                uint32_t v = attrs[i].value;
                int g;
                switch (attrs[i].type) {
                case KFD_ATTR_PREFERRED_LOC:
                case KFD_ATTR_PREFETCH_LOC:
                        if (get || v == KFD_LOCATION_SYSMEM || v == UNDEF)
                                break;
                        if (kfd_gpu_index(n, v) < 0)
                                return -EINVAL;
                        break;
                case KFD_ATTR_ACCESS_IN_PLACE:
                case KFD_ATTR_NO_ACCESS:
                        if (get) /* GET answers through ACCESS only */
                                return -EINVAL;
                        __attribute__((fallthrough));
                case KFD_ATTR_ACCESS:
                        g = kfd_gpu_index(n, v);
                        if (g < 0 || !n->cfg.gpu[g].svm)
                                return -EINVAL;
                        break;
                case KFD_ATTR_SET_FLAGS:
                case KFD_ATTR_CLR_FLAGS:
                case KFD_ATTR_GRANULARITY:
                        break;
                default:
                        return -EINVAL;
                }
        }
        return 0;
}

/* "svm_range_new" + "svm_range_set_default_attributes". */
static struct kfd_entry new_range(struct kfd_node *n, const struct kfd_process *p, uint64_t s,
                                  uint64_t e) {
        return (struct kfd_entry) {
                .pid = p->pid,
                .flags = KFD_FLAG_HOST_ACCESS | KFD_FLAG_COHERENT,
                .start = s,
                .npages = e - s,
                .preferred = UNDEF,
                .prefetch = UNDEF,
                .granularity = KFD_DEFAULT_GRANULARITY,
                .loc = KFD_LOC_RAM,
                .access = p->xnack ? svm_gpus(n) : 0,
                .range_id = n->next_range++,
        };
}

static void apply_attr(struct kfd_node *n, struct kfd_entry *e, const struct kfd_svm_attr *a) {
        uint8_t bit = 0;
        if (a->type == KFD_ATTR_ACCESS || a->type == KFD_ATTR_ACCESS_IN_PLACE ||
            a->type == KFD_ATTR_NO_ACCESS)
                bit = BIT(kfd_gpu_index(n, a->value));
        switch (a->type) {
        case KFD_ATTR_PREFERRED_LOC:
                e->preferred = a->value;
                break;
        case KFD_ATTR_PREFETCH_LOC:
                e->prefetch = a->value;
                break;
        case KFD_ATTR_ACCESS:
                e->access |= bit;
                e->in_place &= (uint8_t) ~bit;
                break;
        case KFD_ATTR_ACCESS_IN_PLACE:
                e->in_place |= bit;
                e->access &= (uint8_t) ~bit;
                break;
        case KFD_ATTR_NO_ACCESS:
                e->access &= (uint8_t) ~bit;
                e->in_place &= (uint8_t) ~bit;
                break;
        case KFD_ATTR_SET_FLAGS:
                e->flags |= a->value;
                break;
        case KFD_ATTR_CLR_FLAGS:
                e->flags &= ~a->value;
                break;
        case KFD_ATTR_GRANULARITY:
                e->granularity = (uint8_t) MIN(a->value, (uint32_t) KFD_MAX_GRANULARITY);
                break;
        }
}

/* ---- the ioctls ---- */

/* The checks both SVM ops start with, in the kernel's order: the process, the attributes
 * ("svm_range_check_attr"), then the span ("svm_range_is_valid", "svm_range_check_vm"). */
static int svm_begin(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t start,
                     uint64_t size, unsigned nattr, const struct kfd_svm_attr *attrs, bool get,
                     struct kfd_process **ret_p, uint64_t *ret_s, uint64_t *ret_e) {
        struct kfd_process *p = kfd_process_get(n, pid);
        int r;

        if (!p)
                return -ESRCH;
        if ((r = check_attrs(n, nattr, attrs, get)) < 0)
                return r;
        if ((r = check_span(n, ctx, pid, start, size, ret_s, ret_e)) < 0)
                return r;
        *ret_p = p;
        return 0;
}

int kfd_svm_set(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t start,
                uint64_t size, unsigned nattr, const struct kfd_svm_attr *attrs,
                struct kfd_result *res) {
        struct kfd_process *p;
        uint64_t s, e, stamp;
        bool prefetch = false;
        int r;

        if ((r = svm_begin(n, ctx, pid, start, size, nattr, attrs, false, &p, &s, &e)) < 0)
                return r;

        /* Structure is all-or-nothing: count the fragments this needs before changing any. */
        unsigned need = 2, i = lower(n, pid, s);
        uint64_t cur = s;
        for (; i < n->n_entries && n->e[i].pid == pid && n->e[i].start < e; i++) {
                if (n->e[i].start > cur)
                        need++;
                cur = frag_end(&n->e[i]);
        }
        if (n->n_entries + need + 2 > KFD_MAX_ENTRIES)
                return -ENOSPC;

        uint32_t left = 0, right = 0;
        i = lower(n, pid, s);
        if (holds(n, i, pid, s) && n->e[i].start < s)
                left = n->e[i].range_id;
        i = lower(n, pid, e > 0 ? e - 1 : 0);
        if (holds(n, i, pid, e - 1) && frag_end(&n->e[i]) > e)
                right = n->e[i].range_id;
        if ((r = split_at(n, pid, s)) < 0 || (r = split_at(n, pid, e)) < 0)
                return r;

        /* Fill the gaps with new ranges, then give the clipped pranges new ids: a split prange
         * is two pranges. */
        uint32_t new_left = left ? n->next_range++ : 0, new_right = right ? n->next_range++ : 0;
        if (left && left == right)
                new_right = new_left;
        cur = s;
        i = lower(n, pid, s);
        while (cur < e) {
                if (holds(n, i, pid, cur)) {
                        if (left && n->e[i].range_id == left)
                                n->e[i].range_id = new_left;
                        else if (right && n->e[i].range_id == right)
                                n->e[i].range_id = new_right;
                        cur = frag_end(&n->e[i]);
                        i++;
                        continue;
                }
                uint64_t gap_end = i < n->n_entries && n->e[i].pid == pid ? MIN(n->e[i].start, e) : e;
                struct kfd_entry fresh = new_range(n, p, cur, gap_end);
                if ((r = insert_at(n, i, &fresh)) < 0)
                        return r; /* cannot happen: counted above */
                cur = gap_end;
                i++;
        }

        for (i = lower(n, pid, s); i < n->n_entries && n->e[i].pid == pid && n->e[i].start < e; i++) {
                struct kfd_entry *f = &n->e[i];
                for (unsigned k = 0; k < nattr; k++)
                        apply_attr(n, f, &attrs[k]);
                /* "svm_range_validate_and_map": XNACK off maps every GPU with access now; XNACK
                 * on maps only the in-place GPUs, the others fault. */
                uint8_t rights = f->access | f->in_place;
                f->mapped &= rights;
                f->mapped |= p->xnack ? f->in_place : rights;
        }
        for (unsigned k = 0; k < nattr; k++)
                if (attrs[k].type == KFD_ATTR_PREFETCH_LOC)
                        prefetch = true;

        stamp = ++n->lru_clock;
        r = 0;
        /* "svm_range_is_same_attrs" never treats PREFETCH_LOC as unchanged: always migrate. */
        for (cur = s; prefetch && cur < e;) {
                i = lower(n, pid, cur);
                if (!holds(n, i, pid, cur))
                        break;
                int best = best_prefetch_loc(n, p, &n->e[i]);
                uint64_t run = frag_end(&n->e[i]);
                for (unsigned k = i + 1; k < n->n_entries && n->e[k].pid == pid && n->e[k].start == run &&
                                         run < e && best_prefetch_loc(n, p, &n->e[k]) == best; k++)
                        run = frag_end(&n->e[k]);
                run = MIN(run, e);
                if (best >= 0) {
                        int q = migrate_span(n, ctx, p, cur, run, (unsigned) best,
                                             KFD_MIG_PREFETCH, stamp,
                                             n->cfg.vram_prefetch_errors, res);
                        if (q < 0 && r == 0)
                                r = q;
                }
                cur = run;
        }
        merge_around(n, pid, s, e);
        return r;
}

int kfd_svm_get(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t start,
                uint64_t size, unsigned nattr, struct kfd_svm_attr *attrs) {
        struct kfd_process *p;
        uint64_t s, e;
        int r;

        if ((r = svm_begin(n, ctx, pid, start, size, nattr, attrs, true, &p, &s, &e)) < 0)
                return r;

        /* "svm_range_get_attr": intersect over the existing pranges only. */
        uint32_t preferred = UNDEF, prefetch = UNDEF, flags_and = UINT32_MAX, flags_or = 0;
        uint8_t access = UINT8_MAX, in_place = UINT8_MAX, gran = KFD_MAX_GRANULARITY;
        bool first = true, pref_ok = true, pf_ok = true;

        for (unsigned i = lower(n, pid, s); i < n->n_entries && n->e[i].pid == pid && n->e[i].start < e; i++) {
                const struct kfd_entry *f = &n->e[i];
                if (f->preferred == UNDEF || (!first && f->preferred != preferred))
                        pref_ok = false;
                if (f->prefetch == UNDEF || (!first && f->prefetch != prefetch))
                        pf_ok = false;
                preferred = f->preferred;
                prefetch = f->prefetch;
                flags_and &= f->flags;
                flags_or |= f->flags;
                access &= f->access;
                in_place &= f->in_place;
                gran = MIN(gran, f->granularity);
                first = false;
        }
        if (first) {
                /* No range: the defaults, and CLR_FLAGS answers ~0 (flags_or stays 0). */
                flags_and = KFD_FLAG_HOST_ACCESS | KFD_FLAG_COHERENT;
                access = p->xnack ? svm_gpus(n) : 0;
                in_place = 0;
                gran = KFD_DEFAULT_GRANULARITY;
        }
        if (!pref_ok || first)
                preferred = UNDEF;
        if (!pf_ok || first)
                prefetch = UNDEF;

        for (unsigned k = 0; k < nattr; k++) {
                struct kfd_svm_attr *a = &attrs[k];
                switch (a->type) {
                case KFD_ATTR_PREFERRED_LOC:
                        a->value = preferred;
                        break;
                case KFD_ATTR_PREFETCH_LOC:
                        a->value = prefetch;
                        break;
                case KFD_ATTR_ACCESS: {
                        uint8_t bit = BIT(kfd_gpu_index(n, a->value));
                        a->type = (access & bit) ? KFD_ATTR_ACCESS :
                                  (in_place & bit) ? KFD_ATTR_ACCESS_IN_PLACE :
                                                     KFD_ATTR_NO_ACCESS;
                        break;
                }
                case KFD_ATTR_SET_FLAGS:
                        a->value = flags_and;
                        break;
                case KFD_ATTR_CLR_FLAGS:
                        a->value = ~flags_or;
                        break;
                case KFD_ATTR_GRANULARITY:
                        a->value = gran;
                        break;
                }
        }
        return 0;
}

int kfd_set_xnack(struct kfd_node *n, int32_t pid, int32_t enable, int32_t *ret_enable) {
        struct kfd_process *p = kfd_process_get(n, pid);
        if (!p)
                return -ESRCH;
        if (enable < 0) {
                if (ret_enable)
                        *ret_enable = p->xnack;
                return 0;
        }
        for (unsigned g = 0; g < n->cfg.n_gpus; g++)
                if (p->n_queues[g])
                        return -EBUSY;
        if (enable && !xnack_possible(n))
                return -EPERM;
        p->xnack = enable != 0;
        if (ret_enable)
                *ret_enable = p->xnack;
        return 0;
}

int kfd_queue_update(struct kfd_node *n, int32_t pid, unsigned gpu, int delta) {
        struct kfd_process *p = kfd_process_get(n, pid);
        if (!p || gpu >= n->cfg.n_gpus || (delta < 0 && p->n_queues[gpu] < (unsigned) -delta))
                return -EINVAL;
        p->n_queues[gpu] += (unsigned) delta;
        return 0;
}

/* "svm_range_create_unregistered_range": a GPU fault outside any range creates one aligned to
 * the default granularity inside the VMA; heap and stack prefer system memory. */
static int create_unregistered(struct kfd_node *n, const struct kfd_ctx *ctx, struct kfd_process *p,
                               uint64_t page) {
        const struct kfd_vma *v = vma_find(ctx, page << n->cfg.page_shift);
        uint64_t gran = 1ULL << KFD_DEFAULT_GRANULARITY, s, e;

        if (ctx && ctx->vmas && (!v || (v->flags & KFD_VMA_IO)))
                return -EFAULT;
        s = ALIGN_DOWN(page, gran);
        e = s + gran;
        if (v) {
                s = MAX(s, v->start >> n->cfg.page_shift);
                e = MIN(e, v->end >> n->cfg.page_shift);
        }
        unsigned i = lower(n, p->pid, page);
        if (i > 0 && n->e[i - 1].pid == p->pid)
                s = MAX(s, frag_end(&n->e[i - 1]));
        if (i < n->n_entries && n->e[i].pid == p->pid)
                e = MIN(e, n->e[i].start);
        struct kfd_entry f = new_range(n, p, s, e);
        if (v && (v->flags & (KFD_VMA_HEAP | KFD_VMA_STACK)))
                f.preferred = KFD_LOCATION_SYSMEM;
        return insert_at(n, i, &f);
}

/* Common start of an access: the process, the span in pages, a new LRU stamp. */
static int access_begin(struct kfd_node *n, int32_t pid, uint64_t addr, uint64_t len,
                        struct kfd_process **ret_p, uint64_t *ret_page, uint64_t *ret_end,
                        uint64_t *ret_stamp) {
        struct kfd_process *p = kfd_process_get(n, pid);
        if (!p)
                return -ESRCH;
        if (len == 0 || addr + len < addr)
                return -EINVAL;
        *ret_p = p;
        *ret_page = addr >> n->cfg.page_shift;
        *ret_end = DIV_ROUND_UP(addr + len, page_bytes(n));
        *ret_stamp = ++n->lru_clock;
        return 0;
}

/* What a fault at page in fragment i migrates: the 2^granularity-aligned block clipped to the
 * prange ("svm_range_restore_pages", "svm_migrate_to_ram"). */
static void fault_span(const struct kfd_node *n, unsigned i, uint64_t page, uint64_t *ret_s,
                       uint64_t *ret_e) {
        uint64_t rs, re, gran = 1ULL << n->e[i].granularity, base = ALIGN_DOWN(page, gran);
        prange_bounds(n, i, &rs, &re);
        *ret_s = MAX(base, rs);
        *ret_e = gran >= re - base ? re : MIN(base + gran, re);
}

/* Adds what a migration step did (not the access counts) to res, which may be NULL. */
static void result_add(struct kfd_result *res, const struct kfd_result *step) {
        if (!res)
                return;
        res->migrations += step->migrations;
        res->pages_in += step->pages_in;
        res->pages_out += step->pages_out;
        res->bytes_moved += step->bytes_moved;
        res->evicted_pages += step->evicted_pages;
        res->failed_pages += step->failed_pages;
        res->skipped_pages += step->skipped_pages;
}

static void account(struct kfd_node *n, const struct kfd_entry *f, uint64_t pages, uint64_t stamp,
                    struct kfd_result *res) {
        bo_touch(n, f->bo, stamp);
        if (res) {
                res->pages += pages;
                res->pages_at[f->loc] += pages;
        }
}

static void emit_fault(const struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, unsigned gpu,
                       uint32_t id, uint64_t page, char c) {
        struct kfd_event ev = {
                .id = id, .dev = gpu, .ns = now(ctx), .pid = pid, .addr = page,
                .gpu_id = n->cfg.gpu[gpu].gpu_id, .c = c,
        };
        emit(ctx, &ev);
}

int kfd_gpu_access(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, unsigned gpu,
                   uint64_t addr, uint64_t len, bool write, struct kfd_result *res) {
        struct kfd_process *p;
        uint64_t page, end, stamp;
        int r;

        if (gpu >= n->cfg.n_gpus)
                return -EINVAL;
        if ((r = access_begin(n, pid, addr, len, &p, &page, &end, &stamp)) < 0)
                return r;

        while (page < end) {
                unsigned i = lower(n, pid, page);
                if (!holds(n, i, pid, page)) {
                        if (!p->xnack)
                                goto fatal;
                        if ((r = create_unregistered(n, ctx, p, page)) < 0) {
                                if (r == -EFAULT)
                                        goto fatal;
                                return r;
                        }
                        continue;
                }
                struct kfd_entry *f = &n->e[i];
                uint64_t cnt = MIN(frag_end(f), end) - page;
                /* GPU_RO maps without the write bit, and a write fault on a read-only VMA is
                 * -EPERM in "svm_range_restore_pages": a memory exception either way. */
                if (write && ((f->flags & KFD_FLAG_GPU_RO) || !vma_writable(ctx, page << n->cfg.page_shift)))
                        goto fatal;
                if (f->mapped & BIT(gpu)) {
                        account(n, f, cnt, stamp, res);
                        page += cnt;
                        continue;
                }
                if (!p->xnack)
                        goto fatal; /* no retry faults: the VM fault is fatal */
                if (f->validate_ns && now(ctx) - f->validate_ns < KFD_DUP_FAULT_NS) {
                        /* "svm_range_restore_pages" drops it; the retry is served later from
                         * wherever the pages are. */
                        if (res)
                                res->dup_faults++;
                        account(n, f, cnt, stamp, res);
                        page += cnt;
                        continue;
                }
                int best = best_restore_loc(n, f, gpu);
                if (best < 0)
                        goto fatal;
                emit_fault(n, ctx, pid, gpu, KFD_EV_PAGE_FAULT_START, page, write ? 'W' : 'R');
                p->c[gpu].faults++;
                p->dirty = true;
                if (res)
                        res->faults++;

                uint64_t fs, fe;
                fault_span(n, i, page, &fs, &fe);
                bool need = false;
                for (unsigned k = lower(n, pid, fs); k < n->n_entries && n->e[k].pid == pid &&
                                                     n->e[k].start < fe; k++)
                        need |= n->e[k].loc != (unsigned) best;
                struct kfd_result step = {};
                if (need) {
                        /* A failed VRAM migration falls back to mapping system memory. */
                        r = migrate_span(n, ctx, p, fs, fe, (unsigned) best, KFD_MIG_PAGEFAULT_GPU, stamp,
                                         false, &step);
                        result_add(res, &step);
                        if (r < 0)
                                return r;
                }
                bool migrated = step.pages_in + step.pages_out > 0;
                if ((r = split_at(n, pid, fs)) < 0 || (r = split_at(n, pid, fe)) < 0)
                        return r;
                for (unsigned k = lower(n, pid, fs); k < n->n_entries && n->e[k].pid == pid &&
                                                     n->e[k].start < fe; k++) {
                        n->e[k].mapped |= BIT(gpu);
                        n->e[k].validate_ns = now(ctx);
                }
                emit_fault(n, ctx, pid, gpu, KFD_EV_PAGE_FAULT_END, page, migrated ? 'M' : 'U');
                merge_around(n, pid, fs, fe);
        }
        return 0;

fatal:
        if (res)
                res->fatal = true;
        return -EFAULT;
}

int kfd_cpu_access(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t addr,
                   uint64_t len, bool write, struct kfd_result *res) {
        struct kfd_process *p;
        uint64_t page, end, stamp;
        int r;

        if ((r = access_begin(n, pid, addr, len, &p, &page, &end, &stamp)) < 0)
                return r;

        while (page < end) {
                unsigned i = lower(n, pid, page);
                if (!holds(n, i, pid, page)) {
                        uint64_t next = i < n->n_entries && n->e[i].pid == pid ? MIN(n->e[i].start, end) : end;
                        if (res) {
                                res->pages += next - page;
                                res->pages_at[KFD_LOC_RAM] += next - page;
                        }
                        page = next;
                        continue;
                }
                struct kfd_entry *f = &n->e[i];
                uint64_t cnt = MIN(frag_end(f), end) - page;
                if (f->loc == KFD_LOC_RAM || n->cfg.mem_mode != KFD_MEM_PRIVATE) {
                        if (write && f->cow) {
                                /* COW break: the CPU gets a new page, the GPUs must re-map. */
                                invalidate(n, ctx, p, i, i + 1, KFD_UNMAP_MMU_NOTIFY);
                                f->cow = 0;
                        }
                        account(n, f, cnt, stamp, res);
                        page += cnt;
                        continue;
                }
                /* DEVICE_PRIVATE: "svm_migrate_to_ram" moves the granule back. */
                uint64_t fs, fe;
                fault_span(n, i, page, &fs, &fe);
                if (res)
                        res->faults++;
                r = migrate_span(n, ctx, p, fs, fe, KFD_LOC_RAM, KFD_MIG_PAGEFAULT_CPU,
                                 stamp, false, res);
                if (r < 0)
                        return r;
        }
        return 0;
}

int kfd_unmap(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t addr, uint64_t len) {
        struct kfd_process *p;
        uint64_t s, e, stamp;
        int r;

        if ((r = access_begin(n, pid, addr, len, &p, &s, &e, &stamp)) < 0)
                return r;
        if ((r = split_at(n, pid, s)) < 0 || (r = split_at(n, pid, e)) < 0)
                return r;
        for (unsigned i = lower(n, pid, s); i < n->n_entries && n->e[i].pid == pid && n->e[i].start < e;) {
                struct kfd_entry *f = &n->e[i];
                for (unsigned g = 0; g < n->cfg.n_gpus; g++)
                        if (f->mapped & BIT(g)) {
                                struct kfd_event ev = {
                                        .id = KFD_EV_UNMAP_FROM_GPU, .dev = g, .ns = now(ctx),
                                        .pid = pid, .addr = f->start, .npages = f->npages,
                                        .gpu_id = n->cfg.gpu[g].gpu_id,
                                        .trigger = KFD_UNMAP_FROM_CPU,
                                };
                                emit(ctx, &ev);
                        }
                if (f->loc != KFD_LOC_RAM)
                        bo_release(n, f->bo, f->npages);
                remove_at(n, i);
        }
        span_drop(n, pid, 0, s, e);
        return 0;
}

int kfd_sync_vmas(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid) {
        if (!ctx || !ctx->vmas)
                return 0;
        for (;;) {
                uint64_t hole_s = 0, hole_e = 0;
                for (unsigned i = lower(n, pid, 0); i < n->n_entries && n->e[i].pid == pid && !hole_e; i++) {
                        uint64_t s = n->e[i].start << n->cfg.page_shift;
                        uint64_t e = frag_end(&n->e[i]) << n->cfg.page_shift;
                        /* First byte of [s, e) no VMA covers, and how far the hole goes. */
                        for (uint64_t a = s; a < e;) {
                                const struct kfd_vma *v = vma_find(ctx, a);
                                if (v) {
                                        a = v->end;
                                        continue;
                                }
                                uint64_t b = e;
                                for (size_t k = 0; k < ctx->n_vmas; k++)
                                        if (ctx->vmas[k].start > a && ctx->vmas[k].start < b)
                                                b = ctx->vmas[k].start;
                                hole_s = a;
                                hole_e = b;
                                break;
                        }
                }
                if (!hole_e)
                        return 0;
                int r = kfd_unmap(n, ctx, pid, hole_s, hole_e - hole_s);
                if (r < 0)
                        return r;
        }
}

void kfd_fork(struct kfd_node *n, int32_t parent_pid) {
        for (unsigned i = lower(n, parent_pid, 0); i < n->n_entries && n->e[i].pid == parent_pid; i++)
                if (n->e[i].loc == KFD_LOC_RAM && n->e[i].mapped)
                        n->e[i].cow = 1;
}

void kfd_process_exit(struct kfd_node *n, int32_t pid) {
        struct kfd_process *p = kfd_process_get(n, pid);
        unsigned i = lower(n, pid, 0), j = i;

        while (j < n->n_entries && n->e[j].pid == pid)
                j++;
        memmove(&n->e[i], &n->e[j], (n->n_entries - j) * sizeof(n->e[0]));
        n->n_entries -= j - i;
        for (unsigned k = 0; k < KFD_MAX_BOS; k++)
                if (n->bos[k].id && n->bos[k].pid == pid)
                        bo_free(n, &n->bos[k]);
        span_drop(n, pid, 0, 0, UINT64_MAX);
        if (p)
                *p = (struct kfd_process) {};
}

int kfd_pin(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t addr, uint64_t len,
            bool pin) {
        struct kfd_process *p;
        uint64_t s, e, stamp;
        int r;

        if ((r = access_begin(n, pid, addr, len, &p, &s, &e, &stamp)) < 0)
                return r;
        if (!pin) {
                span_drop(n, pid, KFD_SPAN_PIN, s, e);
                return 0;
        }
        if ((r = span_add(n, pid, KFD_SPAN_PIN, s, e)) < 0)
                return r;
        /* "mm/gup: migrate device coherent pages when pinning": VRAM pages go to RAM first. */
        if (n->cfg.mem_mode == KFD_MEM_COHERENT)
                return migrate_span(n, ctx, p, s, e, KFD_LOC_RAM, KFD_MIG_PAGEFAULT_CPU, stamp,
                                    false, NULL);
        return 0;
}

int kfd_register_kfd_bo(struct kfd_node *n, int32_t pid, uint64_t addr, uint64_t len) {
        if (!kfd_process_get(n, pid))
                return -ESRCH;
        return span_add(n, pid, KFD_SPAN_KFD_BO, addr >> n->cfg.page_shift,
                        DIV_ROUND_UP(addr + len, page_bytes(n)));
}

int kfd_vram_alloc(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, unsigned gpu,
                   uint64_t bytes) {
        uint64_t pages = DIV_ROUND_UP(bytes, page_bytes(n)), stamp = ++n->lru_clock;
        if (!kfd_process_get(n, pid) || gpu >= n->cfg.n_gpus || bytes == 0)
                return -EINVAL;
        if (vram_make_room(n, ctx, gpu, pages, stamp, NULL) < 0)
                return -ENOMEM;
        return bo_alloc(n, pid, gpu, pages, false, stamp);
}

int kfd_vram_free(struct kfd_node *n, uint32_t bo_id) {
        struct kfd_bo *bo = bo_get(n, bo_id);
        if (!bo || bo->svm)
                return -EINVAL;
        bo_free(n, bo);
        return 0;
}

void kfd_residency(const struct kfd_node *n, int32_t pid, uint64_t addr, uint64_t len,
                   uint64_t ret_pages[SPM_MAX_LOCS]) {
        uint64_t s = addr >> n->cfg.page_shift, e = DIV_ROUND_UP(addr + len, page_bytes(n));
        memset(ret_pages, 0, sizeof(uint64_t) * SPM_MAX_LOCS);
        for (unsigned i = lower(n, pid, s); i < n->n_entries && n->e[i].pid == pid && n->e[i].start < e; i++)
                ret_pages[n->e[i].loc] += MIN(frag_end(&n->e[i]), e) - MAX(n->e[i].start, s);
}

unsigned kfd_entry_count(const struct kfd_node *n, int32_t pid) {
        unsigned c = 0;
        for (unsigned i = lower(n, pid, 0); i < n->n_entries && n->e[i].pid == pid; i++)
                c++;
        return c;
}

/* ---- SMI ---- */

int kfd_smi_format(const struct kfd_event *ev, char *buf, size_t size) {
        long long ns = (long long) ev->ns;
        unsigned long addr = (unsigned long) ev->addr, np = (unsigned long) ev->npages;
        int k;

        /* Formats from kfd_smi_events.c (Linux 6.1), after the "%x " event id. */
        switch (ev->id) {
        case KFD_EV_MIGRATE_START:
                k = snprintf(buf, size, "%x %lld -%d @%lx(%lx) %x->%x %x:%x %d\n", ev->id, ns, ev->pid,
                             addr, np, ev->from, ev->to, ev->prefetch, ev->preferred, ev->trigger);
                break;
        case KFD_EV_MIGRATE_END:
                k = snprintf(buf, size, "%x %lld -%d @%lx(%lx) %x->%x %d\n", ev->id, ns, ev->pid, addr,
                             np, ev->from, ev->to, ev->trigger);
                break;
        case KFD_EV_PAGE_FAULT_START:
        case KFD_EV_PAGE_FAULT_END:
                k = snprintf(buf, size, "%x %lld -%d @%lx(%x) %c\n", ev->id, ns, ev->pid, addr,
                             ev->gpu_id, ev->c);
                break;
        case KFD_EV_QUEUE_EVICTION:
                k = snprintf(buf, size, "%x %lld -%d %x %d\n", ev->id, ns, ev->pid, ev->gpu_id, ev->trigger);
                break;
        case KFD_EV_QUEUE_RESTORE:
                k = ev->c ? snprintf(buf, size, "%x %lld -%d %x %c\n", ev->id, ns, ev->pid, ev->gpu_id, ev->c)
                          : snprintf(buf, size, "%x %lld -%d %x\n", ev->id, ns, ev->pid, ev->gpu_id);
                break;
        case KFD_EV_UNMAP_FROM_GPU:
                k = snprintf(buf, size, "%x %lld -%d @%lx(%lx) %x %d\n", ev->id, ns, ev->pid, addr, np,
                             ev->gpu_id, ev->trigger);
                break;
        case KFD_EV_VMFAULT:
                k = snprintf(buf, size, "%x %x:%s\n", ev->id, (unsigned) ev->pid, "fakekfd");
                break;
        default:
                k = snprintf(buf, size, "%x\n", ev->id);
                break;
        }
        if (k < 0)
                return -EINVAL;
        return (size_t) k >= size ? (int) size - 1 : k;
}

bool kfd_smi_wants(uint64_t mask, int32_t client_pid, bool suser, const struct kfd_event *ev) {
        if (ev->id == 0 || ev->id > 64 || !(mask & KFD_EV_MASK(ev->id)))
                return false;
        if (ev->pid && ev->pid != client_pid &&
            !(suser && (mask & KFD_EV_MASK(KFD_EV_ALL_PROCESS))))
                return false;
        return true;
}

void kfd_smi_fifo_init(struct kfd_smi_fifo *f, uint32_t size) {
        memset(f, 0, offsetof(struct kfd_smi_fifo, buf));
        f->size = CLAMP(size, 64u, (uint32_t) KFD_SMI_FIFO_MAX);
}

bool kfd_smi_fifo_push(struct kfd_smi_fifo *f, const char *line, size_t len) {
        if (len > f->size - f->len) {
                f->dropped++; /* "kfd_smi_event_add" drops silently when full */
                return false;
        }
        for (size_t i = 0; i < len; i++)
                f->buf[(f->head + f->len + i) % f->size] = line[i];
        f->len += (uint32_t) len;
        return true;
}

int kfd_smi_fifo_read(struct kfd_smi_fifo *f, char *buf, size_t size, bool old_kernel_quirk) {
        if (f->len == 0)
                return -EAGAIN;
        size_t k = MIN(size, (size_t) f->len);
        if (old_kernel_quirk)
                k = MIN(k, sizeof(char *)); /* min3(size, sizeof(buf), ...) with buf a pointer */
        for (size_t i = 0; i < k; i++)
                buf[i] = f->buf[(f->head + i) % f->size];
        f->head = (uint32_t) ((f->head + k) % f->size);
        f->len -= (uint32_t) k;
        return (int) k;
}
