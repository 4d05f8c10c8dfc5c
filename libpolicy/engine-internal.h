/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Internal state of the policy engine, shared by its modules (engine.c, regions.c, observe.c,
 * hints.c, placement.c, plan.c). Nothing here is API.
 *
 * Layout, chosen for the two hot paths:
 *   - ingest: (pid, addr) -> region in O(1): a pid hash table with a one-entry cache, the
 *     process's ranges sorted by start with a last-hit cache, and per range a slot table (one
 *     uint32 per granule: the first region overlapping it). Regions are never split below the
 *     granule by heat, so the walk from the slot is one step except where a location or hint
 *     span cut a granule.
 *   - the epoch: one linear pass over every range's region array, no sort of the population;
 *     heat decays lazily through a global scale factor (heat is stored multiplied by
 *     e->scale, which grows by 2^(dt/half_life) each epoch and is folded back into the regions
 *     only when it gets large).
 */

#include <stdbool.h>
#include <stdint.h>

#include "spmtier/macro.h"
#include "spmtier/policy.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ULL << PAGE_SHIFT)

/* region.flags */
#define REGION_TOUCHED     0x01 /* observed since the last epoch */
#define REGION_QUARANTINED 0x02 /* ping-pong: no policy moves until stamp */
#define REGION_FRESH       0x04 /* created by a split this epoch: not merged back yet */
#define REGION_MOVED       0x08 /* last_move is valid */
#define REGION_IDLE        0x10 /* was in steady use (touched 3+ epochs in a row and in ~7
                                 * of 8 recent ones), then missed an epoch: its use has
                                 * ended (cleared on a touch) */
#define REGION_RUN_SHIFT   6    /* 0xc0: epochs touched in a row, saturating at 3 */
#define REGION_RUN_MASK    0xc0
#define REGION_NEW_USE     0x20 /* touched in every epoch since its first touch: its heat
                                 * has filled only part of the EWMA window (heat_boost) */

/* A region's hint byte: 0 = none, else (kind + 1) | gpu << 4. */
#define HINT_BYTE(kind, gpu) ((uint8_t) (((unsigned) (kind) + 1) | ((unsigned) (gpu) << 4)))
#define HINT_KIND(b) ((b) ? (enum spm_hint_kind) (((b) & 0x0f) - 1) : SPM_HINT_NONE)
#define HINT_GPU(b) ((unsigned) ((b) >> 4))

/* Regions merged from neighbours never exceed this many granules, so one move stays within
 * a reasonable share of an epoch's migration budget. */
#define MERGE_MAX_GRANULES 64

/* Recurring uses (placement.c, 4a''), per class of accessor: the CPU and the GPUs. */
enum { USE_CPU, USE_GPU };
#define USE_TOUCHED(c) (1u << (2 * (c)))        /* touched by the class since the last epoch */
#define USE_SEEN(c)    (2u << (2 * (c)))        /* the class's last use is known */
#define USE_GAP_MAX    63       /* a longer pause is no pattern (6 bits) */
#define USE_EPOCH_MASK 127      /* last uses are kept mod 128 epochs, and forgotten after
                                 * USE_GAP_MAX + 1 to USE_GAP_MAX + USE_FORGET_EVERY + 1
                                 * epochs, so their ages never alias */
#define USE_FORGET_EVERY 31     /* untouched regions' old uses are forgotten every 32 epochs */

/* 56 bytes; with its share of the slot table (8 bytes) a region costs 64 bytes. */
struct region {
        uint32_t off;           /* start, in pages from the range's start */
        uint32_t npages;        /* length in 4 KiB pages */
        float heat[SPM_MAX_ACCESSORS]; /* decayed accesses x e->scale */
        uint16_t last_move;     /* epoch index of the last location change, mod 2^16 (valid
                                 * with REGION_MOVED; ages beyond 65535 epochs alias) */
        uint8_t loc : 4;
        uint8_t prev_loc : 4;   /* where it was before the last change: going back is a trip */
        uint8_t flags;
        uint8_t hint : 7;       /* HINT_BYTE() or 0 */
        uint8_t gpu_sure : 1;   /* the GPUs' last pause was the one predicted (4a'') */
        uint8_t trips;          /* returns to prev_loc, moves no further apart than the window */
        uint8_t reuse;          /* EWMA of "touched this epoch", 0..255 */
        uint8_t moves : 4;      /* saturating at REGION_MOVES_MAX */
        uint8_t use_state : 4;  /* USE_TOUCHED(), USE_SEEN() */
        /* Recurring uses (4a''): the epoch (mod 128) of each class's last use and the pause
         * before it (epochs from the end of the previous use to its start, when it paused:
         * 0 = none seen); for the GPUs also the pause before that one, so uses that
         * alternate two pauses (a layer's forward and backward pass) are predicted too. */
        uint32_t cpu_last : 7, cpu_gap : 6, gpu_last : 7, gpu_gap : 6, gpu_gap2 : 6;
};

#define REGION_MOVES_MAX 15

/* Adds stored heat (accesses x e->scale) of accessor acc to x. */
static inline void region_heat_add(struct region *x, unsigned acc, float v) {
        x->heat[acc] += v;
        x->flags |= REGION_TOUCHED;
        x->use_state |= USE_TOUCHED(acc == SPM_ACC_CPU ? USE_CPU : USE_GPU);
}

static inline unsigned region_use_last(const struct region *r, unsigned c) {
        return c == USE_CPU ? r->cpu_last : r->gpu_last;
}

/* Epochs since class c's last use of r (valid with USE_SEEN(c)). */
static inline unsigned region_use_age(const struct region *r, unsigned c, uint64_t epoch) {
        return (unsigned) (epoch - region_use_last(r, c)) & USE_EPOCH_MASK;
}

/* Epochs until class c's next use of r, if it recurs: 1 = in the coming epoch; 0 = none
 * predicted. The CPU's next use is one pause after its last. The GPUs' is the pause before
 * the last one after it (the same for a steady period, right for two alternating pauses),
 * and only once a pause came when predicted (gpu_sure: then both pauses are known). */
static inline unsigned region_use_due(const struct region *r, unsigned c, uint64_t epoch) {
        if (!(r->use_state & USE_SEEN(c)) || (c == USE_GPU && !r->gpu_sure))
                return 0;
        unsigned g = c == USE_CPU ? r->cpu_gap : r->gpu_gap2;
        if (g == 0)
                return 0;
        unsigned due = (region_use_last(r, c) + g - (unsigned) epoch) & USE_EPOCH_MASK;
        return due <= g ? due : 0;
}

/* A slot of the lookup table. It also accumulates the accesses of one accessor for a slot
 * that one region covers entirely (SLOT_FAST): ingest then touches 8 bytes per granule, not
 * the region, and the epoch folds the counts in with one sequential sweep (range_fold()). */
struct slot {
        uint32_t w;             /* region index | accessor << 24 | SLOT_FAST */
        float count;            /* pending accesses x e->scale */
};
#define SLOT_IDX(w) ((w) & 0xffffffu)
#define SLOT_ACC(w) (((w) >> 24) & 0xfu)
#define SLOT_FAST (1u << 28)
#define MAX_REGIONS_PER_RANGE (1u << 24)

struct spm_range;
static inline uint64_t region_bytes(const struct region *r) {
        return (uint64_t) r->npages << PAGE_SHIFT;
}

struct spm_process;

/* A run of adjacent regions the GPUs used densely in an epoch (placement.c, step 4h): where
 * it was, how far each end moved since the epoch before, and its accesses per byte. */
struct front {
        uint32_t lo, hi;        /* pages from the range's start */
        int32_t d_lo, d_hi;     /* pages; 0 for a run that matched none the epoch before */
        float density;          /* the GPUs' accesses per epoch per byte */
        uint8_t acc;            /* the accessor that used it most */
};
#define FRONT_RUNS 2            /* the longest runs of an epoch that are kept */

struct spm_range {
        uint64_t start, end;    /* regions cover it without gaps, in address order */
        uint64_t base;          /* start aligned down to the slot size: slot 0 */
        struct region *r;
        uint32_t n, n_alloc;
        struct slot *slot;      /* slot[i]: the first region overlapping slot i */
        uint32_t n_slots;
        unsigned slot_shift;    /* >= the granule, chosen so that n_slots <= n */
        /* The last epoch's dense runs (step 4h) and its highest GPU density, which decides
         * what is dense in the next one. */
        struct front front[FRONT_RUNS];
        unsigned n_front;
        float front_max;
        /* Where the part after a front's next one ends (pages): cut in step 3 of the next
         * epoch, when no plan item refers to the regions. */
        uint32_t front_cut[2 * FRONT_RUNS];
        unsigned n_front_cut;
};

static inline bool region_moved(const struct region *r) {
        return r->flags & REGION_MOVED;
}

static inline uint64_t region_start(const struct spm_range *rg, const struct region *r) {
        return rg->start + ((uint64_t) r->off << PAGE_SHIFT);
}
static inline uint64_t region_end(const struct spm_range *rg, const struct region *r) {
        return region_start(rg, r) + region_bytes(r);
}

struct spm_hint_entry {
        struct spm_hint h;
        usec_t expires;         /* 0 = never */
};

struct spm_jobrec {
        struct spm_job j;
        uint64_t used[SPM_MAX_LOCS];  /* bytes of the job's regions per location */
};

struct spm_process {
        uint32_t pid;
        struct spm_jobrec *job;
        struct spm_range *ranges;     /* sorted by start, disjoint */
        size_t n_ranges, n_ranges_alloc;
        size_t last_range;
        struct spm_hint_entry *hints; /* in order of arrival; later ones win */
        size_t n_hints, n_hints_alloc;
        bool hints_dirty;
        /* Bytes of new uses (regions touched for the first time) seen in the epoch after
         * their first, and of those touched again then: decayed sums over the epochs that
         * had some (placement.c, step 4a). Their ratio is the odds that a new use goes on. */
        double new_seen, new_again;
        uint64_t new_seen_epoch, new_again_epoch;
        /* GPU accesses of new uses in their first epoch, and their bytes: decayed sums like
         * new_seen, and the same sum of 1 per such epoch (spm_engine_first_touch_fast()). */
        double first_acc, first_bytes, first_epochs, first_acc_epoch;
        uint64_t first_bytes_epoch;
        /* How long its new uses last (placement.c, new_use_learn()): epochs, 0 unknown.
         * Of the new uses that ended in this epoch: the shortest and longest (STEADY_RUN or
         * more; UINT8_MAX: too long to tell; 0: none) and their bytes, whether any (also
         * shorter) did, and the epochs before it in which none did. */
        unsigned life, life_min, life_max, life_quiet;
        uint64_t life_bytes;
        bool life_ended;
        /* The bytes of the block that taught life, and of the next block what may leave an
         * epoch early (beyond one epoch's budget; placement.c, use-ends). */
        uint64_t life_block, life_early;
        /* A CPU use seen once recurs with the period that a region used by the CPU in the
         * same epoch has learned (placement.c, cpu_use_due()): that epoch (mod 128) and the
         * period (0: none); the next epoch's, from this epoch's region pass. */
        uint8_t cpu_cohort_last, cpu_cohort_period, cpu_cohort_last_next, cpu_cohort_period_next;
};

/* A partial access waiting for the regions to be cut at its edges (observe.c). */
#define DEFERRED_MAX (1u << 20)
struct deferred_access {
        uint32_t pid;
        uint8_t accessor;
        uint64_t addr, end;
        double count;
};

struct spm_engine {
        struct spm_machine m;
        struct spm_engine_config c;

        /* Derived from m and c (engine_derive()). */
        unsigned granule_shift;
        float cost_us[SPM_MAX_ACCESSORS][SPM_MAX_LOCS]; /* usec per 64-byte access */
        uint64_t capacity[SPM_MAX_LOCS];
        int loc_gpu[SPM_MAX_LOCS];    /* the GPU whose home a location is, -1 for none */
        double epochs_per_half_life;
        /* By reuse: 1 / the share of the heat's EWMA window that a region touched in
         * every epoch since its first touch has filled (REGION_NEW_USE). */
        float heat_boost[256];
        /* By reuse: how many epochs such a region has been in use (1 after its first touch;
         * 0 where reuse no longer tells, a long use's reuse saturates). */
        uint8_t new_use_age[256];

        struct spm_jobrec **jobs;
        size_t n_jobs, n_jobs_alloc;

        struct spm_process **procs;   /* unordered */
        size_t n_procs, n_procs_alloc;
        struct spm_process **phash;   /* open addressing on pid, size a power of two */
        size_t phash_size;
        struct spm_process *last_proc;

        struct deferred_access *deferred;
        size_t n_deferred, n_deferred_alloc;

        double scale;                 /* heat is stored multiplied by this */
        uint32_t epoch;               /* epoch index, 1 before the first epoch call */
        usec_t now;
        bool started;

        uint64_t used[SPM_MAX_LOCS];
        uint64_t n_regions;
        struct spm_engine_stats st;
};

/* What a location may hold. On a NUMA machine every node is bounded, node 0 (the fast one)
 * included. Elsewhere location 0 is system RAM, the backing store the driver evicts into:
 * the engine tracks address ranges, not resident pages, so what it counts there may exceed
 * the DIMMs and must not push data into VRAM. */
static inline uint64_t loc_capacity(const struct spm_engine *e, unsigned l) {
        if (l == SPM_LOC_SYSMEM && e->m.kind != SPM_MEM_NUMA)
                return UINT64_MAX;
        return e->capacity[l];
}

/* Epochs since r last moved (mod 2^16). */
static inline uint32_t region_age(const struct spm_engine *e, const struct region *r) {
        return (uint16_t) (e->epoch - r->last_move);
}

/* engine.c */
void engine_debug(const struct spm_engine *e, const char *fmt, ...) _printf_(2, 3);
struct spm_process *engine_process(struct spm_engine *e, uint32_t pid);
struct spm_jobrec *engine_job(struct spm_engine *e, uint64_t id);

/* regions.c */
struct spm_range *process_range_find(struct spm_process *p, uint64_t addr);
uint32_t range_region_index(const struct spm_engine *e, const struct spm_range *rg,
                            uint64_t addr);
int range_rebuild_slots(const struct spm_engine *e, struct spm_range *rg);
void range_fold(struct spm_range *rg);
/* Folds the pending counts of slots s.. into their regions up to region idx (slots map to
 * regions in address order); returns the next slot: lets a pass over the regions fold as it
 * goes instead of sweeping the slots separately. */
uint32_t range_fold_upto(struct spm_range *rg, uint32_t s, uint32_t idx);
float range_pending(const struct spm_range *rg, uint32_t idx, unsigned acc);
int range_cut(struct spm_engine *e, struct spm_range *rg, const uint64_t *cuts, size_t n);
int range_cut_span(struct spm_engine *e, struct spm_range *rg, uint64_t lo, uint64_t hi);
void range_merge(struct spm_engine *e, struct spm_process *p, struct spm_range *rg);
void range_free_regions(struct spm_engine *e, struct spm_process *p, struct spm_range *rg);
bool region_relocate(struct spm_engine *e, struct spm_process *p, struct region *r,
                     unsigned to, bool counted);
bool region_would_quarantine(const struct spm_engine *e, const struct region *r, unsigned to);
bool region_quarantine_over(const struct spm_engine *e, const struct region *r);
int engine_set_span_location(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                             unsigned loc, unsigned only_from);

/* observe.c */
int engine_flush_deferred(struct spm_engine *e);

/* hints.c */
int engine_hints_epoch(struct spm_engine *e);

/* plan.c */
int plan_push(struct spm_plan *p, const struct spm_move *m);
int plan_push_held(struct spm_plan *p, const struct spm_move *m);
int plan_finish(const struct spm_engine *e, struct spm_plan *p);
