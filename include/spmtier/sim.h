/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The simulator: replays a trace, epoch by epoch, on a machine model under a placement policy
 * and times it. Pure C (no I/O except through the explain callback), deterministic.
 *
 * Model (the additive cost model of cost-model.md §2/§6, the official score):
 *   - the trace is cut into regions of the machine's granule (2 MiB); a row spanning several
 *     granules spreads its accesses over them by overlap;
 *   - a region starts unpopulated; its first touch populates it (CPU: system RAM; GPU under
 *     XNACK: the GPU's VRAM, a fault without copy, unless PREFERRED_LOC says otherwise);
 *   - the accesses of an epoch are concurrent: the driver handles all of them first (faults,
 *     evictions), then every access of epoch e is charged at where its region is then:
 *     ops x spm_machine_access_ns(accessor, location);
 *   - moves a policy plans at the start of epoch e take effect for all of e; a fault that
 *     migrates takes effect for the faulting epoch (unless evicted again within it);
 *   - a migration costs migrate_call_usec + granule / migrate_gbps (explicit) or fault_usec +
 *     granule / migrate_gbps (fault); populating an unpopulated region costs the call (explicit)
 *     or fault_usec (fault), no copy; mapping-only faults cost nothing (all policies take them);
 *   - migrations are serialised per device: in the additive view they simply add up, in the
 *     roofline view they load the device's copy engine.
 * T = sum of access, fault and migration costs. The roofline view reports, per epoch, the most
 * loaded resource (HBM or DDR per location, link per GPU, copy engine per device, CPU latency)
 * and sums over epochs.
 *
 * Capacities: with vram_fraction > 0 every capacity-limited ("fast") location holds
 * floor(fraction x footprint of the regions its local accessors touch) granules (at least 1);
 * otherwise the machine's capacity. Fast locations are the homes of the trace's accessors,
 * except the backing location (system RAM; on a NUMA machine the highest node that is no
 * accessor's home), which is unbounded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/machine.h"
#include "spmtier/policy.h"

#define SPM_SIM_UNPOPULATED 0xffu
#define SPM_SIM_NO_PREF 0xffu

/* ---- a trace in memory, cut into regions ---- */

struct spm_sim_region {
        uint32_t pid;
        uint64_t addr;            /* granule aligned */
        uint32_t first_epoch;     /* first epoch with an access */
        uint32_t accessor_mask;   /* accessors that ever touch it */
};

struct spm_sim_access {
        uint32_t region;
        uint8_t accessor;
        double ops;               /* 64-byte reads + writes in the epoch */
};

struct spm_sim_hint {
        uint32_t epoch;
        struct spm_hint hint;
};

struct spm_simtrace {
        uint64_t granule;
        usec_t epoch_usec;
        uint32_t n_epochs;
        uint32_t n_regions;
        struct spm_sim_region *regions;   /* sorted by (pid, addr) */
        size_t n_acc;
        struct spm_sim_access *acc;       /* sorted by (epoch, region, accessor), merged */
        size_t *epoch_start;              /* n_epochs + 1 offsets into acc */
        size_t n_hints;
        struct spm_sim_hint *hints;       /* in epoch order */
        uint32_t accessor_mask;
        uint64_t rows;

        /* builder state, freed by spm_simtrace_finish() */
        struct spm_simtrace_raw *raw;
        size_t n_raw, n_raw_alloc;
        size_t n_hints_alloc;
        bool finished;
};

/* An empty trace cut at granule (power of two >= 4 KiB). Returns 0, -EINVAL, -ENOMEM. */
int spm_simtrace_new(uint64_t granule, usec_t epoch_usec, struct spm_simtrace **ret);
struct spm_simtrace *spm_simtrace_free(struct spm_simtrace *t);
static inline void spm_simtrace_freep(struct spm_simtrace **t) {
        if (*t)
                *t = spm_simtrace_free(*t);
}
/* Adds one row of epoch. Returns 0, -EINVAL (accessor >= SPM_MAX_ACCESSORS, empty span, epoch
 * too large, or the trace is finished), -ENOMEM. */
int spm_simtrace_add(struct spm_simtrace *t, uint64_t epoch, const struct spm_access *a);
int spm_simtrace_add_hint(struct spm_simtrace *t, uint64_t epoch, const struct spm_hint *h);
/* Cuts the rows into regions and epochs. Returns 0, -ENOMEM, -EINVAL (already finished). */
int spm_simtrace_finish(struct spm_simtrace *t);
/* Loads a trace file (sim-load.c, links libspmtrace). On failure writes a message naming
 * file:line into error. Returns 0, -EINVAL (malformed, or no rows), -ENOMEM, -errno. */
int spm_simtrace_load(const char *path, uint64_t granule, struct spm_simtrace **ret,
                      char *error, size_t error_size);
/* Index of the region (pid, granule address addr), or UINT32_MAX. */
uint32_t spm_simtrace_find(const struct spm_simtrace *t, uint32_t pid, uint64_t addr);
/* Bytes of distinct regions touched by any accessor in mask. */
uint64_t spm_simtrace_footprint(const struct spm_simtrace *t, uint32_t accessor_mask);

/* ---- the simulation ---- */

struct spm_sim;
struct spm_sim_policy;
struct spm_sim_optimum;
struct spm_sim_driver;

typedef void (*spm_sim_explain_fn)(void *userdata, const char *line);

struct spm_sim_config {
        double vram_fraction;       /* 0: the machine's capacities */
        unsigned pingpong_window;   /* epochs; a move that is a region's 3rd within it counts */
        bool record_placement;      /* keep location per region per epoch (for --svg) */
        spm_sim_explain_fn explain; /* optional: policies describe their decisions */
        void *explain_userdata;
        /* The schedule spm_sim_policy_exact replays (from spm_sim_optimum(), exact only). */
        const struct spm_sim_optimum *optimum;
        const struct spm_sim_driver *driver;  /* NULL: spm_sim_kfd_driver */
        /* Above this many (entries x capacity) the optimum falls back to a Lagrangian lower
         * bound instead of the flow; 0 = 3e8 (about two minutes on one core). */
        double oracle_max_work;
};

void spm_sim_config_defaults(struct spm_sim_config *ret);

/* Where data can live in a run: the unbounded backing location and the capacity-limited ones
 * (see the capacity rule above). */
struct spm_sim_layout {
        unsigned backing;
        unsigned n_fast;
        bool fast[SPM_MAX_LOCS];
        uint64_t cap[SPM_MAX_LOCS];   /* granules; UINT64_MAX for the backing location */
};
void spm_sim_layout(const struct spm_machine *m, const struct spm_simtrace *t,
                    const struct spm_sim_config *c, struct spm_sim_layout *ret);

struct spm_sim_result {
        char policy[32];
        double time_usec;          /* additive model: access + fault + migration */
        double access_usec;
        double fault_usec;         /* fixed fault costs */
        double migrate_usec;       /* copies and call costs */
        double roofline_usec;
        double fast_ops, total_ops;/* ops served from the accessor's home location */
        uint64_t bytes_to_fast;    /* migrated towards a capacity-limited location */
        uint64_t bytes_to_slow;    /* migrated to the backing location */
        uint64_t migrations;
        uint64_t pingpongs;
        uint64_t faults;           /* faults that populated or migrated */
        uint64_t evictions;        /* driver (TTM) evictions */
        uint64_t prefetch_failed;  /* explicit moves that silently did nothing (no room) */
        uint8_t *placement;        /* n_regions x n_epochs, when recorded; location or 0xff */
        uint32_t n_regions, n_epochs;
};

void spm_sim_result_done(struct spm_sim_result *r);

static inline double spm_sim_result_fast_hit(const struct spm_sim_result *r) {
        return r->total_ops > 0 ? r->fast_ops / r->total_ops : 0;
}

/* Runs policy p over trace t on machine m. Returns 0 and fills *ret (spm_sim_result_done()
 * frees it), -EINVAL (bad machine or a trace accessor the machine lacks), -ENOMEM, or the
 * policy's error. */
int spm_sim_run(const struct spm_machine *m, const struct spm_simtrace *t,
                const struct spm_sim_config *c, const struct spm_sim_policy *p,
                struct spm_sim_result *ret);

/* ---- what policies see and do (valid inside policy callbacks) ---- */

const struct spm_machine *spm_sim_machine(const struct spm_sim *s);
const struct spm_simtrace *spm_sim_trace(const struct spm_sim *s);
const struct spm_sim_config *spm_sim_config(const struct spm_sim *s);
uint32_t spm_sim_epoch(const struct spm_sim *s);
/* The modelled time so far (additive model), in usec. */
double spm_sim_elapsed_usec(const struct spm_sim *s);
unsigned spm_sim_loc(const struct spm_sim *s, uint32_t region);        /* or UNPOPULATED */
unsigned spm_sim_backing(const struct spm_sim *s);
/* The accessor's home location if it is capacity-limited here, else the backing location. */
unsigned spm_sim_fast_loc(const struct spm_sim *s, unsigned accessor);
bool spm_sim_is_fast(const struct spm_sim *s, unsigned loc);
uint64_t spm_sim_capacity(const struct spm_sim *s, unsigned loc);       /* granules */
uint64_t spm_sim_used(const struct spm_sim *s, unsigned loc);           /* granules */
/* Cost in usec of one migration of a populated region (explicit). */
double spm_sim_move_cost(const struct spm_sim *s);
/* Benefit in usec of serving `ops` of accessor a from loc instead of the backing location. */
double spm_sim_benefit(const struct spm_sim *s, unsigned accessor, unsigned loc, double ops);

/* PREFERRED_LOC of a region (SPM_SIM_NO_PREF: none, the driver migrates to the faulting GPU). */
void spm_sim_set_preferred(struct spm_sim *s, uint32_t region, unsigned loc);
unsigned spm_sim_preferred(const struct spm_sim *s, uint32_t region);

/* An explicit migration (SET_ATTR PREFETCH_LOC, also setting PREFERRED_LOC = to; move_pages on
 * NUMA machines). Returns 1 moved, 0 already there, -ENOSPC when the destination is full: the
 * real call reports success, the data stays (counted as prefetch_failed). */
int spm_sim_move(struct spm_sim *s, uint32_t region, unsigned to);

/* Free granules at loc. */
static inline uint64_t spm_sim_free(const struct spm_sim *s, unsigned loc) {
        uint64_t c = spm_sim_capacity(s, loc), u = spm_sim_used(s, loc);
        return c > u ? c - u : 0;
}

/* Describes a decision (explain mode only; cheap no-op otherwise). */
void spm_sim_explain(struct spm_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool spm_sim_explaining(const struct spm_sim *s);

/* ---- policies ---- */

struct spm_sim_policy {
        const char *name;
        const char *description;
        /* Sets up policy state. NULL = stateless. */
        int (*init)(struct spm_sim *s, void **ret_state);
        void (*done)(void *state);
        /* Before epoch e's accesses: plan and issue explicit moves. */
        int (*epoch_begin)(struct spm_sim *s, void *state, uint32_t epoch);
        /* A GPU touches a region that is not at its home and whose PREFERRED_LOC does not keep
         * it away: return 1 after handling the fault yourself (spm_sim_fault_migrate), 0 to let
         * the driver do it. NULL = the driver. */
        int (*gpu_fault)(struct spm_sim *s, void *state, uint32_t region, unsigned gpu);
        /* After each access was charged (loc = where it was served). */
        void (*observe)(struct spm_sim *s, void *state, const struct spm_sim_access *a,
                        unsigned loc);
        /* The driver moved a region on its own (fault migration, eviction, migrate-back). */
        void (*driver_moved)(struct spm_sim *s, void *state, uint32_t region, unsigned from,
                             unsigned to, bool fault, unsigned gpu);
        /* After epoch e's accesses. */
        int (*epoch_end)(struct spm_sim *s, void *state, uint32_t epoch);
};

/* ---- the driver (KFD behaviour, kfd-svm.md §4); sim-kfd.c ---- */

/*
 * What the kernel does on its own. Kept behind this small table so that a faithful KFD model
 * (libpolicy/kfd-model.c) can back it later. The default table models KFD SVM with XNACK on.
 */
struct spm_sim_driver {
        /* GPU gpu touches region r. Populates or migrates per the fault rules. */
        void (*gpu_touch)(struct spm_sim *s, uint32_t r, unsigned gpu);
        /* The CPU touches region r: populate in RAM; migrate back on DEVICE_PRIVATE. */
        void (*cpu_touch)(struct spm_sim *s, uint32_t r);
        /* Make one granule of room at loc (TTM eviction). Returns 0, or -ENOSPC. */
        int (*make_room)(struct spm_sim *s, unsigned loc);
};

extern const struct spm_sim_driver spm_sim_kfd_driver;

/* Building blocks for drivers and fault-handling policies. */
/* Migrates (or populates) r to `to` as a fault of gpu (accessor index) costs. Evicts with
 * the driver when evict is true and `to` is full; otherwise fails with -ENOSPC. Returns 1
 * moved, 0 already there, -ENOSPC. */
int spm_sim_fault_migrate(struct spm_sim *s, uint32_t r, unsigned to, unsigned accessor,
                          bool evict);
/* Moves r to `to` as a driver-initiated copy (eviction); no fault cost. Returns 1 or 0. */
int spm_sim_driver_move(struct spm_sim *s, uint32_t r, unsigned to);
/* Populates r at loc without cost (CPU first touch, mapping fault). */
void spm_sim_populate(struct spm_sim *s, uint32_t r, unsigned loc);
/* The region that entered loc earliest (TTM's LRU order is by BO validation), or UINT32_MAX. */
uint32_t spm_sim_oldest_at(const struct spm_sim *s, unsigned loc);
/* Lets the policy handle a GPU fault first (its gpu_fault hook). Returns 1 when it did. */
int spm_sim_policy_fault(struct spm_sim *s, uint32_t r, unsigned gpu);
/* Last epoch any accessor touched r (UINT32_MAX: never). */
uint32_t spm_sim_last_touch(const struct spm_sim *s, uint32_t r);

/* ---- the policy registry (sim-policies.c, sim-oracle.c) ---- */

extern const struct spm_sim_policy spm_sim_policy_default;
extern const struct spm_sim_policy spm_sim_policy_sysmem;
extern const struct spm_sim_policy spm_sim_policy_first_touch;
extern const struct spm_sim_policy spm_sim_policy_uvm_like;
extern const struct spm_sim_policy spm_sim_policy_counters;
extern const struct spm_sim_policy spm_sim_policy_tpp_like;
extern const struct spm_sim_policy spm_sim_policy_damos_like;
extern const struct spm_sim_policy spm_sim_policy_static_opt;
extern const struct spm_sim_policy spm_sim_policy_clairvoyant;
extern const struct spm_sim_policy spm_sim_policy_exact;
/* The engine (sim-spmtier.c, in libspmsimengine: links libspmpolicy). */
extern const struct spm_sim_policy spm_sim_policy_spmtier;

/* Baselines and heuristic oracles, NULL-terminated (spmtier is registered by spmsim when the
 * engine is linked). */
extern const struct spm_sim_policy *const spm_sim_baselines[];
const struct spm_sim_policy *spm_sim_policy_find(const char *name);

/* ---- the exact offline optimum (sim-oracle.c) ---- */

struct spm_sim_optimum {
        double time_usec;       /* the optimum (exact) or a lower bound */
        bool exact;             /* false: a relaxation (several capacity-limited locations
                                 * pooled, a region may switch between them for free; or the
                                 * Lagrangian bound when the flow is too big) */
        const char *method;     /* "independent", "min-cost-flow", "pooled-relaxation",
                                 * "lagrangian-bound" (no schedule) */
        uint64_t migrations;
        uint64_t moved_bytes;
        uint64_t flow_nodes, flow_arcs, flow_phases;  /* solver effort (0 without a flow) */
        /* when exact: the schedule, a residency location per region per epoch (backing =
         * not resident); n_regions x n_epochs */
        uint8_t *schedule;
};
void spm_sim_optimum_done(struct spm_sim_optimum *o);

/* Computes the offline optimum of the additive model by min-cost flow (cost-model.md §6.4).
 * Returns 0, -EINVAL, -ENOMEM. */
int spm_sim_optimum(const struct spm_machine *m, const struct spm_simtrace *t,
                    const struct spm_sim_config *c, struct spm_sim_optimum *ret);
