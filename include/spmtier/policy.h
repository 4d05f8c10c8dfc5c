/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * libpolicy: the spmtier decision engine. Pure C: no syscalls, no globals, no logging beyond
 * the optional debug callback, deterministic (the same calls in the same order give the same
 * plan; observations within one epoch may arrive in any order — the plan is the same up to
 * float rounding of heat sums). docs/policy.md describes the steps; placement.c numbers them.
 *
 * Life of an epoch:
 *   1. the daemon (or the simulator) declares jobs, processes and migratable ranges;
 *   2. it feeds observations: accesses per accessor, GPU faults, migration results, driver
 *      evictions, and hints;
 *   3. spm_engine_epoch() decays heat, splits/merges regions, scores every region's benefit
 *      of each location under the machine's cost model, solves placement under every GPU's
 *      VRAM budget and every job's quota, and returns a plan: an ordered, coalesced list of
 *      moves within the migration-bandwidth budget;
 *   4. the movers carry the plan out and report each move's result back.
 *
 * Errors are negative errno values. Time is usec (uint64_t) everywhere.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/machine.h"

typedef uint64_t usec_t;

struct spm_engine;

enum spm_hint_kind {
        SPM_HINT_HOT,       /* treat as hot for the given accessor (GPU) */
        SPM_HINT_COLD,      /* treat as cold: first to leave VRAM */
        SPM_HINT_PIN_GPU,   /* keep in the given GPU's VRAM (within the job's quota) */
        SPM_HINT_PIN_RAM,   /* keep in system RAM */
        SPM_HINT_STREAMING, /* touched once per sweep: never worth migrating */
        SPM_HINT_NONE,      /* clear hints on the span */
        _SPM_HINT_KIND_MAX,
        _SPM_HINT_KIND_INVALID = -22,
};

enum spm_reason {
        SPM_REASON_HOT,        /* GPU heat outweighs the migration cost */
        SPM_REASON_COLD,       /* cooled down: make room or release the quota */
        SPM_REASON_CPU_HOT,    /* CPU-hot page in VRAM costs CPU time: bring it home */
        SPM_REASON_DISPLACED,  /* evicted for a region of higher benefit density */
        SPM_REASON_HINT_HOT,
        SPM_REASON_HINT_COLD,
        SPM_REASON_PIN,
        SPM_REASON_STREAMING,
        SPM_REASON_QUOTA,      /* the job's quota shrank or the budget changed */
        SPM_REASON_DRAIN,      /* admin drain of a GPU */
        SPM_REASON_QUARANTINE, /* ping-pong: held where it is (spm_plan.held), not moved */
        SPM_REASON_CPU_DUE,    /* a recurring CPU use is due: home before it */
        SPM_REASON_GPU_DUE,    /* a recurring GPU use is due: into VRAM before it */
        SPM_REASON_USE_ENDS,   /* a new use reached its process's usual length: make room */
        SPM_REASON_FRONT,      /* the GPUs' hot part advances steadily: the next part is due */
        _SPM_REASON_MAX,
        _SPM_REASON_INVALID = -22,
};

const char *spm_reason_to_string(enum spm_reason r);
const char *spm_hint_kind_to_string(enum spm_hint_kind k);
enum spm_hint_kind spm_hint_kind_from_string(const char *s); /* _SPM_HINT_KIND_INVALID if none */

typedef void (*spm_debug_fn)(void *userdata, const char *msg);

struct spm_engine_config {
        uint64_t granule;              /* region granularity, bytes; power of two, 4 KiB..1 GiB;
                                        * default: the machine's granule (2 MiB) */
        usec_t epoch_usec;             /* default: the machine's epoch (10 ms) */
        usec_t half_life_usec;         /* heat decay half-life; default 4 epochs */
        double hysteresis;             /* a move's benefit must exceed its cost by this factor;
                                        * default 2 */
        unsigned min_residency_epochs; /* a region stays where it moved at least this long;
                                        * default 2 */
        unsigned pingpong_trips;       /* round trips within the window that quarantine;
                                        * default 2 (a round trip: out and back; a return
                                        * counts when the move out was within the window) */
        unsigned pingpong_window_epochs;  /* default 16; <= 60000 like the two others */
        unsigned quarantine_epochs;    /* default 12, counted from the region's last move */
        uint64_t migrate_budget_bytes; /* per link and direction per epoch; 0 = from the
                                        * machine's migrate_gbps x epoch */
        unsigned max_regions_per_range;/* split limit per declared range, <= 2^24; default 4096;
                                        * a bigger range starts with regions of several
                                        * granules */
        double horizon_epochs;         /* amortisation horizon: a move must pay for itself
                                        * within this many epochs of expected residence;
                                        * default 2 half-lives */
        double fault_accesses;         /* heat credited to the GPU per GPU fault, in 64-byte
                                        * accesses; default 0 (set it when faults are the only
                                        * GPU signal, e.g. kfd-smi without counters) */
        unsigned merge_interval_epochs;/* merge similar neighbours every this many epochs;
                                        * default 4 */
        spm_debug_fn debug;            /* optional, debug messages only */
        void *debug_userdata;
};

/* Fills *ret with the defaults for machine m. */
void spm_engine_config_defaults(const struct spm_machine *m, struct spm_engine_config *ret);

/* Creates an engine. The machine is copied. Returns 0, -EINVAL for a bad machine or config,
 * -ENOMEM. */
int spm_engine_new(const struct spm_machine *m, const struct spm_engine_config *c,
                   struct spm_engine **ret);
struct spm_engine *spm_engine_free(struct spm_engine *e);
static inline void spm_engine_freep(struct spm_engine **e) {
        if (*e)
                *e = spm_engine_free(*e);
}

/* Replaces the configuration (reload); regions and heat are kept. Returns 0 or -EINVAL. */
int spm_engine_set_config(struct spm_engine *e, const struct spm_engine_config *c);

/* Sets the bytes of location loc the engine may fill (e.g. VRAM minus what non-migratable
 * allocations use; the simulator's VRAM fraction). Default: the machine's capacity. Regions
 * already placed stay; placement stops adding and makes room down to the new figure.
 * Returns 0 or -EINVAL. */
int spm_engine_set_capacity(struct spm_engine *e, unsigned loc, uint64_t bytes);

/* Sets the configuration's migrate_budget_bytes alone (per link and direction and epoch; 0:
 * the machine's migrate_gbps x epoch_usec), for a caller that sizes it every epoch (the
 * simulator, by the epochs' modelled time). Returns 0 or -EINVAL. */
int spm_engine_set_migrate_budget(struct spm_engine *e, uint64_t bytes);

/* ---- jobs, processes, ranges ---- */

struct spm_job {
        uint64_t id;
        uint32_t uid;
        uint32_t gpu_mask;                     /* GPUs the job may use */
        uint64_t vram_quota[SPM_MAX_GPUS];     /* bytes per GPU; 0 = no VRAM; UINT64_MAX = all */
        bool frozen;                           /* plan no moves for this job */
};

/* Adds or updates a job. Returns 0 (added), 1 (updated), -EINVAL. */
int spm_engine_job_set(struct spm_engine *e, const struct spm_job *j);
/* Removes a job, its processes and their regions. Returns 0 or -ENOENT. */
int spm_engine_job_remove(struct spm_engine *e, uint64_t job_id);

/* Attaches pid to a job (a process belongs to one job). Returns 0, -ENOENT (no job), -EEXIST
 * (attached to another job). */
int spm_engine_process_add(struct spm_engine *e, uint64_t job_id, uint32_t pid);
/* Forgets a process and its regions. Returns 0 or -ENOENT. */
int spm_engine_process_remove(struct spm_engine *e, uint32_t pid);

/* Declares a migratable range [start, start+len) of pid, currently at location loc. start and
 * len are aligned to the page size (4 KiB); regions are cut at the granule. Overlaps with a
 * known range are merged. Returns 0, -ENOENT (no such process), -EINVAL, -ENOMEM. */
int spm_engine_range_add(struct spm_engine *e, uint32_t pid, uint64_t start, uint64_t len,
                         unsigned loc);
/* Forgets [start, start+len) of pid (munmap). Returns 0 or -ENOENT. */
int spm_engine_range_remove(struct spm_engine *e, uint32_t pid, uint64_t start, uint64_t len);

/* ---- observations ---- */

struct spm_access {
        uint32_t pid;
        uint8_t accessor;    /* SPM_ACC_CPU or SPM_ACC_GPU(n) */
        uint64_t addr;
        uint64_t len;
        uint64_t reads;      /* 64-byte accesses in this epoch */
        uint64_t writes;
};

/* Adds accesses. Spans outside any declared range of a known process are ignored (counted
 * in stats). A span that covers a region bigger than the granule only partly is kept until
 * the next epoch, which cuts the region at the span's granule edges and then applies it (so
 * spm_engine_foreach_region() shows it after that epoch). Returns the number of accesses
 * applied or kept (0 or 1), -EINVAL, or -ENOMEM. */
int spm_engine_observe(struct spm_engine *e, const struct spm_access *a);
/* Batch form, faster (it prefetches ahead); returns how many were applied, or -EINVAL. */
int spm_engine_observe_batch(struct spm_engine *e, const struct spm_access *a, size_t n);

/* A GPU fault on a span (SMI PAGE_FAULT): migrated says where the data went (to the GPU's
 * home) or that it was mapped only. Credits config.fault_accesses accesses to the GPU. A
 * location change counts for the ping-pong detector like any other. Returns 0, -EINVAL, or
 * -ENOENT when the process is unknown or addr lies in none of its ranges (declare the span,
 * then call again: the fault is the granule's only signal). */
int spm_engine_gpu_fault(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                         unsigned gpu, bool migrated);

/* The driver (or anyone) moved a span: e.g. TTM eviction to RAM, or residency read back from
 * counters. Sets the location without counting a policy move. Returns 0 or -ENOENT. */
int spm_engine_set_location(struct spm_engine *e, uint32_t pid, uint64_t addr, uint64_t len,
                            unsigned loc);

struct spm_move;
/* Result of a planned move: status 0 = done, moved_bytes may be < length (partial: the
 * rest stays where it was); status < 0 = failed (-ENOMEM VRAM full, -EBUSY, -ESRCH pid gone,
 * -EAGAIN not resident after a "successful" prefetch). Returns 0 or -ENOENT. */
int spm_engine_move_result(struct spm_engine *e, const struct spm_move *m, int status,
                           uint64_t moved_bytes);

/* ---- hints ---- */

struct spm_hint {
        uint32_t pid;
        uint64_t start;
        uint64_t len;
        enum spm_hint_kind kind;
        uint8_t gpu;          /* for HOT/PIN_GPU */
        usec_t ttl_usec;      /* 0 = until cleared */
};

/* Applies a hint from now (the engine's clock: the last epoch's time). Later hints win where
 * they overlap; a hint covering older ones entirely replaces them; SPM_HINT_NONE clears what it
 * covers. Hints act only within the job's rights (its GPUs and quota): PIN_GPU and HOT move
 * regions only while the job has quota and the GPU has room, evicting unhinted regions if
 * needed; PIN_RAM and COLD/STREAMING never bring a region to VRAM. Returns 0, -ENOENT,
 * -EINVAL, -EPERM (GPU not the job's, or no quota there), -ENOSPC (4096 hints in a process). */
int spm_engine_hint(struct spm_engine *e, const struct spm_hint *h);

/* Whether data pid touches for the first time should land in VRAM even when VRAM is full
 * (the driver's default: the fault evicts something), rather than be pinned to system
 * memory. Learned per process: true when the GPUs use its new data so densely in their first
 * epoch that that epoch alone pays for the eviction (a tile, a window read several times),
 * false for one that passes through new data lightly, and for an unknown pid. */
bool spm_engine_first_touch_fast(struct spm_engine *e, uint32_t pid);

/* ---- the epoch and its plan ---- */

struct spm_move {
        uint32_t pid;
        uint64_t job_id;
        uint64_t start;
        uint64_t length;
        uint8_t from;
        uint8_t to;
        enum spm_reason reason;
        double benefit_usec;  /* expected saving over the amortisation horizon */
        double cost_usec;     /* modelled migration cost */
};

struct spm_plan {
        usec_t now;
        struct spm_move *moves;
        size_t n_moves;
        size_t n_alloc;
        uint64_t bytes_planned;
        uint64_t bytes_deferred;  /* wanted, but over the bandwidth budget */
        unsigned n_quarantined;   /* regions quarantined this epoch */
        /* Ranges the ping-pong detector quarantined this epoch: from == to == where they are,
         * reason SPM_REASON_QUARANTINE, benefit 0. Nothing moves; a mover may pin them there
         * (PREFERRED_LOC) so the driver stops moving them too. */
        struct spm_move *held;
        size_t n_held;
        size_t n_held_alloc;
};

void spm_plan_init(struct spm_plan *p);
void spm_plan_done(struct spm_plan *p);

/* Runs one policy epoch at time `now` (monotonic; an earlier time counts as no time passing)
 * and fills *plan (emptied first). Moves are ordered by benefit density, adjacent moves
 * coalesced, and a move into a full GPU comes after the evictions that make its room, so
 * running the plan in order never overfills VRAM. Per link and direction the moves stay within
 * the migration budget; every move not forced by a pin, hint, quota, drain or quarantine has
 * benefit_usec >= cost_usec. Planned moves are taken as done: their regions are at the
 * destination for the engine until spm_engine_move_result() says otherwise. Returns the number
 * of moves, -EINVAL or -ENOMEM. */
int spm_engine_epoch(struct spm_engine *e, usec_t now, struct spm_plan *plan);

/* Plans moving everything of job (or every job, job_id 0) on GPU gpu back to system RAM, ignoring
 * the bandwidth budget, and sets those jobs' quota on that GPU to 0 so placement does not bring
 * anything back (spm_engine_job_set() restores it). Returns the number of moves, -EINVAL (no
 * such GPU), -ENOENT (no such job) or -ENOMEM. */
int spm_engine_drain(struct spm_engine *e, unsigned gpu, uint64_t job_id, struct spm_plan *plan);

/* ---- introspection ---- */

struct spm_region_info {
        uint32_t pid;
        uint64_t job_id;
        uint64_t start;
        uint64_t length;
        uint8_t loc;
        float heat[SPM_MAX_ACCESSORS];   /* decayed accesses per epoch, per accessor (a steady
                                          * rate x reads x after a decay step: x 2^-(1/h)) */
        usec_t last_move_usec;           /* 0 = never moved (epoch resolution) */
        unsigned moves;
        bool quarantined;
        enum spm_hint_kind hint;         /* SPM_HINT_NONE when none */
};

/* Calls cb for every region in (pid, start) order; pid 0 = all processes. A negative return
 * from cb stops the walk and is returned. */
int spm_engine_foreach_region(const struct spm_engine *e, uint32_t pid,
                              int (*cb)(const struct spm_region_info *r, void *userdata),
                              void *userdata);

struct spm_engine_stats {
        uint64_t n_regions;
        uint64_t n_processes;
        uint64_t n_jobs;
        uint64_t epochs;
        uint64_t observations;
        uint64_t observations_ignored;
        uint64_t moves_planned;
        uint64_t moves_failed;
        uint64_t bytes_to_gpu;
        uint64_t bytes_to_ram;
        uint64_t quarantines;
        uint64_t used[SPM_MAX_LOCS];     /* bytes of tracked regions at each location */
        uint64_t memory_bytes;           /* the engine's own heap use */
};
void spm_engine_get_stats(const struct spm_engine *e, struct spm_engine_stats *ret);
