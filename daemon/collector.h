/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Collectors: where observations come from (DESIGN.md "Collectors"). Each is an ops table,
 * in the manner of DAMON's struct damon_operations, selected by name from the config
 * ([Collect] Collectors=). Once per policy epoch the manager asks every collector to feed
 * what it saw into a sink; the sink hands it to the policy engine. A collector never talks
 * to the engine, the event loop or the registry directly, so each is tested alone with a
 * recording sink.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/policy.h"

/* kfd-sysfs: what /sys/class/kfd/kfd/proc/<pid>/ says of one process on one GPU over one
 * epoch. Counts are deltas since the previous epoch; after a reset (the pid now names another
 * KFD process, or a counter went backwards) they count from the new process's zero. */
struct spm_kfd_sample {
        uint32_t pid;
        unsigned gpu;          /* engine GPU index */
        bool svm;              /* counters_<gpuid>/ exists (an SVM-capable GPU) */
        bool reset;
        uint64_t faults;       /* retry faults (pdd->faults) */
        uint64_t pages_in;     /* pages migrated to this GPU's VRAM */
        uint64_t pages_out;    /* pages migrated out of it */
        uint64_t vram_bytes;   /* vram_<gpuid> now (a level, not a delta) */
};

/* Where a collector's observations go. Every callback returns 0 or a negative errno; a
 * collector stops feeding on -ENOMEM and skips the item on any other error (STYLE R8). */
struct spm_collector_sink {
        void *userdata;
        /* A process the collector saw; the manager attaches it to a job (replay: the
         * replay job). */
        int (*process)(void *userdata, uint32_t pid);
        /* A span of pid worth tracking (declared once; spans only grow). */
        int (*range)(void *userdata, uint32_t pid, uint64_t start, uint64_t length);
        int (*observe)(void *userdata, const struct spm_access *a);
        int (*hint)(void *userdata, const struct spm_hint *h);
        /* kfd-smi: a GPU fault of pid on [addr, addr+len) by engine GPU gpu; migrated: the
         * driver moved the data to that GPU. -ENOENT: no such process or range. */
        int (*gpu_fault)(void *userdata, uint32_t pid, uint64_t addr, uint64_t len, unsigned gpu,
                         bool migrated);
        /* kfd-smi: the driver moved a span (fault, TTM eviction) to engine location loc. */
        int (*locate)(void *userdata, uint32_t pid, uint64_t addr, uint64_t len, unsigned loc);
        /* kfd-sysfs (optional, NULL: not wanted): one epoch of a process's KFD counters on
         * one GPU. */
        int (*kfd_counters)(void *userdata, const struct spm_kfd_sample *s);
        /* kfd-sysfs (optional): the driver's VRAM use of engine GPU gpu, in bytes
         * (mem_info_vram_used and _total: every BO, ours and everyone else's). */
        int (*vram)(void *userdata, unsigned gpu, uint64_t used, uint64_t total);
};

struct spm_collector_args {
        const char *trace_path;  /* replay */
        bool loop;               /* replay: start over at the end */
        const char *proc_root;
        const char *sys_root;
        unsigned n_gpus;         /* accessors beyond these are ignored */
        const struct spm_machine *machine; /* the daemon's machine model */
        const char *kfd_device;  /* kfd-smi: /dev/kfd */
        const char *fake_kfd_root; /* kfd-smi: a fake node's root (its run/smi FIFOs), or NULL */
};

struct spm_collector_ops {
        const char *name;
        /* Creates the collector's state. Returns 0 or a negative errno with a message in
         * msg (e.g. "cannot open trace …"). */
        int (*init)(const struct spm_collector_args *args, void **ret_state, char *msg,
                    size_t msg_size);
        void (*free)(void *state);
        /* Feeds one epoch's observations. Returns how many it fed (>= 0), or -ENODATA
         * once it has nothing more to give (replay at the end of a trace without Loop=),
         * or another negative errno with a message in msg. */
        int (*collect)(void *state, const struct spm_collector_sink *sink, char *msg,
                       size_t msg_size);
        /* Optional: the pids attached to jobs, sorted, before every collect. Collectors that
         * watch given processes (damon) follow them. Returns 0 or a negative errno with a
         * message in msg (logged; the collector keeps running). */
        int (*track)(void *state, const uint32_t *pids, size_t n, char *msg, size_t msg_size);
        /* One line for GetStatus ("replay: epoch 12 of demo.trace.gz"). */
        void (*describe)(void *state, char *buf, size_t size);
};

extern const struct spm_collector_ops spm_collector_replay;
extern const struct spm_collector_ops spm_collector_damon;
extern const struct spm_collector_ops spm_collector_kfd_smi;
extern const struct spm_collector_ops spm_collector_kfd_sysfs;

/* The ops of a named collector, or NULL. */
const struct spm_collector_ops *spm_collector_find(const char *name);
