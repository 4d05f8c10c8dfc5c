/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The spmtier trace format (DESIGN.md "Traces"), read and written by spmsim, the replay
 * collector and every importer:
 *
 *     # spmtier-trace 1
 *     # epoch_usec=10000
 *     # page_size=4096
 *     epoch,pid,addr,pages,accessor,reads,writes
 *     0,4242,0x7f3a40000000,512,gpu0,81920,0
 *     #hint 0,4242,0x7f3a40000000,2097152,pin-gpu,0,0
 *
 * epoch counts from 0 and never decreases; addr is page aligned; accessor is cpu or gpuN;
 * reads/writes count 64-byte accesses to the span in that epoch. Lines starting with '#' are
 * headers or comments, except "#hint EPOCH,PID,ADDR,BYTES,KIND[,GPU[,TTL_USEC]]" which carries
 * a job hint (KIND: hot, cold, pin-gpu, pin-ram, streaming, none) taking effect at EPOCH.
 * A trace may be gzip'd (read transparently).
 *
 * The parser is pure (spm_trace_parse_line); the reader adds file I/O (zlib).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "spmtier/policy.h"

struct spm_trace_header {
        unsigned version;
        usec_t epoch_usec;    /* default 10000 */
        uint64_t page_size;   /* default 4096 */
};

enum spm_trace_kind {
        SPM_TRACE_ROW,
        SPM_TRACE_HINT,
        SPM_TRACE_NOTHING,    /* blank line, comment or header */
};

struct spm_trace_record {
        enum spm_trace_kind kind;
        uint64_t epoch;
        struct spm_access access;  /* kind ROW: addr/len in bytes (pages x page_size) */
        struct spm_hint hint;      /* kind HINT */
};

/* Parses one line (no trailing newline needed) into *ret, updating *hdr from header lines.
 * Returns 0, or -EINVAL with a static description of what is wrong in *ret_error. */
int spm_trace_parse_line(const char *line, struct spm_trace_header *hdr,
                         struct spm_trace_record *ret, const char **ret_error);

struct spm_trace_reader;

/* Opens a trace (plain or gzip'd; "-" = stdin). Returns 0, or a negative errno. */
int spm_trace_open(const char *path, struct spm_trace_reader **ret);
struct spm_trace_reader *spm_trace_close(struct spm_trace_reader *r);
static inline void spm_trace_closep(struct spm_trace_reader **r) {
        if (*r)
                *r = spm_trace_close(*r);
}

/* Reads the next row or hint. Returns 1 (a record), 0 (end of file), -EINVAL (malformed: see
 * spm_trace_error(), which names file:line and the problem), or another negative errno. */
int spm_trace_next(struct spm_trace_reader *r, struct spm_trace_record *ret);
const struct spm_trace_header *spm_trace_header(const struct spm_trace_reader *r);
const char *spm_trace_error(const struct spm_trace_reader *r);
unsigned long spm_trace_line(const struct spm_trace_reader *r);

/* Writes the header lines of a trace. */
void spm_trace_write_header(FILE *f, const struct spm_trace_header *hdr);
/* Writes one row; accessor names come from spm_accessor_name(). */
void spm_trace_write_row(FILE *f, const struct spm_trace_header *hdr, uint64_t epoch,
                         const struct spm_access *a);
void spm_trace_write_hint(FILE *f, uint64_t epoch, const struct spm_hint *h);

/* "cpu", "gpu0", ... into buf (>= 8 bytes); returns buf. */
const char *spm_accessor_name(unsigned accessor, char *buf, size_t size);
