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
 * Validation is strict: the first line must be "# spmtier-trace 1"; "# epoch_usec=N" (N > 0)
 * and "# page_size=N" (a power of two, 512 B..1 GiB) may follow, before the column header
 * line, which must be exactly the one above and come before the first row or hint; numbers
 * are plain decimal (addr: 0x hex or decimal), pid > 0, pages > 0, no spaces. Other "# ..."
 * lines are comments (free-form metadata such as "# source=damon" included). docs/workloads.md
 * describes the format in full.
 *
 * The parser is pure (spm_trace_parse_line: one line, no context beyond the header values);
 * the reader adds file I/O (zlib) and the rules that span lines (line order, epochs never
 * decrease).
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
        SPM_TRACE_NOTHING,    /* blank line or comment */
        SPM_TRACE_HEADER,     /* "# spmtier-trace 1" or "# key=value" of a known key */
        SPM_TRACE_COLUMNS,    /* the column header line */
};

struct spm_trace_record {
        enum spm_trace_kind kind;
        uint64_t epoch;
        struct spm_access access;  /* kind ROW: addr/len in bytes (pages x page_size) */
        struct spm_hint hint;      /* kind HINT */
};

/* Parses one line (a trailing "\n" or "\r\n" is ignored) into *ret, updating *hdr from
 * header lines. Returns 0, or -EINVAL with a static description of what is wrong in
 * *ret_error (*ret is then unspecified). Rows need hdr->page_size to be set (see
 * spm_trace_header_init()). */
int spm_trace_parse_line(const char *line, struct spm_trace_header *hdr,
                         struct spm_trace_record *ret, const char **ret_error);

/* The header values a trace has before its header lines: version 0 (no magic line seen yet),
 * epoch_usec 10000, page_size 4096. */
void spm_trace_header_init(struct spm_trace_header *ret);

struct spm_trace_reader;

/* Opens a trace (plain or gzip'd; "-" = stdin) and reads its header lines, so that
 * spm_trace_header() is valid once this returns. Returns 0, or a negative errno when the file
 * cannot be opened (-ENOENT, -EACCES, ...). A malformed header does not fail the open: the
 * first spm_trace_next() returns -EINVAL with the error. */
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

/* Writes the header lines of a trace, the column line included. The writers never fail by
 * themselves: check ferror()/fclose() of f. */
void spm_trace_write_header(FILE *f, const struct spm_trace_header *hdr);
/* Writes one row (a->len must be a multiple of hdr->page_size); accessor names come from
 * spm_accessor_name(). */
void spm_trace_write_row(FILE *f, const struct spm_trace_header *hdr, uint64_t epoch,
                         const struct spm_access *a);
void spm_trace_write_hint(FILE *f, uint64_t epoch, const struct spm_hint *h);

/* "cpu", "gpu0", ... into buf (>= 8 bytes); returns buf. */
const char *spm_accessor_name(unsigned accessor, char *buf, size_t size);

/* Hint kind names as the trace spells them ("hot", "pin-gpu", ...): NULL for an invalid kind;
 * the parse returns _SPM_HINT_KIND_INVALID for an unknown name. These live here so trace I/O
 * does not need the engine. */
const char *spm_trace_hint_kind_name(enum spm_hint_kind k);
enum spm_hint_kind spm_trace_hint_kind_parse(const char *s, size_t n);
