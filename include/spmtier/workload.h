/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Synthetic workloads, masim-style: regions x phases x accessor x pattern, described by a
 * small line-oriented config (docs/workloads.md) and turned into a trace deterministically —
 * a fixed-seed PRNG, so the same config gives a byte-identical trace.
 *
 *     trace epochs=100 seed=7
 *     region table pid=100 size=1G
 *     phase warm epochs=10
 *     access table gpu0 zipf bytes=4G theta=0.9
 *
 * Pure apart from reading the config from a FILE.
 */

#include <stdint.h>
#include <stdio.h>

#include "spmtier/trace.h"

struct spm_workload;

/* Parses a workload config from f (path names it in errors). Returns 0, -ENOMEM, or -EINVAL
 * with "path:line: problem" in err (a buffer of errsize bytes). */
int spm_workload_parse(FILE *f, const char *path, struct spm_workload **ret, char *err,
                       size_t errsize);
struct spm_workload *spm_workload_free(struct spm_workload *w);
static inline void spm_workload_freep(struct spm_workload **w) {
        if (*w)
                *w = spm_workload_free(*w);
}

struct spm_workload_info {
        uint64_t epochs;
        uint64_t footprint;      /* bytes of all regions */
        unsigned n_regions;
        unsigned n_phases;
        unsigned n_streams;
        unsigned n_hints;
};
void spm_workload_get_info(const struct spm_workload *w, struct spm_workload_info *ret);

/* The trace header the workload asks for (epoch_usec, page_size). */
void spm_workload_header(const struct spm_workload *w, struct spm_trace_header *ret);

/* Generates the trace: calls emit for every hint and row, in trace order (epoch ascending;
 * within an epoch the hints first, then rows by pid, address and accessor). A negative return
 * from emit stops the generation and is returned. Returns 0 or -ENOMEM. */
int spm_workload_generate(const struct spm_workload *w,
                          int (*emit)(const struct spm_trace_record *rec, void *userdata),
                          void *userdata);
