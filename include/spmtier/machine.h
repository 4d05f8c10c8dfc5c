/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The machine model: which memory locations exist, who accesses them, and what every access,
 * fault and migration costs. Shared by the policy engine (to score placements), the simulator
 * (to time a trace) and the fake KFD (capacities, granule). Pure data and arithmetic.
 *
 * Locations and accessors are small indices. On a discrete/coherent-VRAM machine (mi250x-gcd)
 * location 0 is system RAM and location n+1 is GPU n's VRAM; accessor 0 is the CPU and accessor
 * n+1 is GPU n. On a NUMA machine (mi300a-node) every location is a NUMA node; home[] says which
 * location is local to which accessor. Numbers and their sources: shared/reference/cost-model.md;
 * each profile marks its assumed ([A]) numbers.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SPM_MAX_GPUS 8
#define SPM_MAX_LOCS (SPM_MAX_GPUS + 1)
#define SPM_MAX_ACCESSORS (SPM_MAX_GPUS + 1)

#define SPM_LOC_SYSMEM 0
#define SPM_LOC_GPU(n) ((n) + 1)
#define SPM_ACC_CPU 0
#define SPM_ACC_GPU(n) ((n) + 1)
#define SPM_ACCESS_BYTES 64 /* a trace's reads/writes count 64-byte accesses */

enum spm_memory_kind {
        SPM_MEM_DEVICE_COHERENT, /* MI250X + coherent IF: CPU reads VRAM in place */
        SPM_MEM_DEVICE_PRIVATE,  /* PCIe: a CPU touch of a VRAM page migrates it back */
        SPM_MEM_NUMA,            /* MI300A, CXL: every location is a NUMA node, move_pages */
        _SPM_MEM_KIND_MAX,
        _SPM_MEM_KIND_INVALID = -22,
};

struct spm_machine {
        char name[32];
        enum spm_memory_kind kind;
        unsigned n_gpus;
        unsigned n_locs;              /* locations in use, <= SPM_MAX_LOCS */
        unsigned n_accessors;         /* 1 + n_gpus */
        char loc_name[SPM_MAX_LOCS][16];
        uint8_t home[SPM_MAX_ACCESSORS]; /* the location local to each accessor */
        uint64_t capacity[SPM_MAX_LOCS]; /* bytes */
        uint64_t granule;             /* migration/fault granule, bytes (2 MiB on KFD) */

        /* Sustained bandwidth of accessor a reading location l, GB/s (= bytes/ns). */
        double bw_gbps[SPM_MAX_ACCESSORS][SPM_MAX_LOCS];
        /* Idle load latency, ns. */
        double lat_ns[SPM_MAX_ACCESSORS][SPM_MAX_LOCS];
        /* Fraction of an accessor's accesses that are latency-bound (dependent loads) [A]. */
        double dep_fraction[SPM_MAX_ACCESSORS];

        double migrate_gbps;          /* copy bandwidth per device and direction (SDMA) */
        double migrate_call_usec;     /* fixed cost per migration call */
        double fault_usec;            /* fixed cost of one GPU fault (XNACK on) */
        double epoch_usec;            /* default epoch length */
        bool xnack;                   /* GPU faults migrate (true) or only map (false) */
};

/* Fills *ret with the named built-in profile ("mi250x-gcd", "mi300a-node"). Returns 0, or
 * -ENOENT for an unknown name. */
int spm_machine_profile(const char *name, struct spm_machine *ret);

/* Names of the built-in profiles, NULL-terminated. */
extern const char *const spm_machine_profile_names[];

/* Checks a machine for consistency (indices, capacities, positive bandwidths). Returns 0 or
 * -EINVAL. */
int spm_machine_validate(const struct spm_machine *m);

/* Cost in ns of one 64-byte access by accessor a to a page at location l: a bandwidth term
 * (64 B / bw) plus the latency term (dep_fraction * lat). */
double spm_machine_access_ns(const struct spm_machine *m, unsigned a, unsigned l);

/* Cost in usec of migrating `bytes` in one call (fixed call cost + copy time). */
double spm_machine_migrate_usec(const struct spm_machine *m, uint64_t bytes);

/* Cost in usec of a GPU fault that migrates `bytes` (fault + copy); bytes = 0 for map-only. */
double spm_machine_fault_usec(const struct spm_machine *m, uint64_t bytes);

/* Location index for a name ("ram", "gpu0", "node1", ...). Returns the index or -ENOENT. */
int spm_machine_loc_from_name(const struct spm_machine *m, const char *name);

/* Accessor index for a trace accessor name ("cpu", "gpu0", ...). Returns it or -EINVAL. */
int spm_accessor_from_name(const char *name, unsigned n_gpus);

/* ---- profiles as text (machine-file.c): every number can be overridden ---- */

/* Sets one key (see machine-file.c for the keys: base, name, kind, xnack, n_gpus, granule,
 * migrate_gbps, migrate_call_usec, fault_usec, epoch_usec, capacity.LOC, bw.ACC.LOC,
 * lat.ACC.LOC, dep_fraction.ACC, home.ACC). Returns 0, or -EINVAL with a static reason in
 * *ret_error. The machine is not re-validated: call spm_machine_validate() after the last. */
int spm_machine_set(struct spm_machine *m, const char *key, const char *value,
                    const char **ret_error);
/* "KEY=VALUE" (blanks around either are ignored). */
int spm_machine_set_assignment(struct spm_machine *m, const char *assignment,
                               const char **ret_error);
/* Applies a profile file (key = value lines, '#' comments) on top of *m, usually starting with
 * "base = NAME". On error *m is untouched and error names file:line. Returns 0, -EINVAL,
 * -errno. */
int spm_machine_load(const char *path, struct spm_machine *m, char *error, size_t error_size);
/* Writes every key of m, one per line (loadable by spm_machine_load()). */
void spm_machine_dump(FILE *f, const struct spm_machine *m);
