/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Import of DAMON access records as damo exports them in JSON (`damo record` with the json
 * output type, or `damo report raw --json --raw_number`): a list of records, one per
 * monitoring target, each with snapshots (one per aggregation interval) of regions and their
 * nr_accesses. docs/workloads.md "Importing DAMON records" says how they become trace rows.
 */

#include <stddef.h>
#include <stdint.h>

struct spm_damon_options {
        uint32_t pid;       /* 0: each record's target_id is its pid */
        uint8_t accessor;   /* SPM_ACC_CPU unless told otherwise */
        uint64_t span;      /* rows are cut at this alignment; power of two >= page */
        uint64_t page_size; /* DAMON regions must be aligned to it */
        double scale;       /* reads per observed access per 64-byte line */
        uint64_t max_rows;  /* a bound on memory: more rows is an error */
};

struct spm_damon_row {
        uint64_t epoch;
        uint32_t pid;
        uint64_t addr;
        uint64_t len;
        uint64_t reads;
};

struct spm_damon_trace {
        uint64_t epoch_usec;
        struct spm_damon_row *rows;  /* sorted by epoch, pid, addr */
        size_t n_rows;
        unsigned n_records;
        unsigned n_snapshots;
        uint64_t n_regions;
};

void spm_damon_options_defaults(struct spm_damon_options *ret);

/* Converts the JSON text (len bytes, from `path`, used in messages) into rows. Returns 0,
 * -ENOMEM, or -EINVAL with "path:line:col: ..." (syntax) or "path: record R, snapshot S,
 * region G: ..." (content) in err. *ret is written only on success; free rows with free(). */
int spm_damon_import(const char *path, const char *text, size_t len,
                     const struct spm_damon_options *o, struct spm_damon_trace *ret,
                     char *err, size_t errsize);
