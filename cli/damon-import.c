/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DAMON JSON records -> trace rows. Written from damo's documented output (USAGE.md, the
 * record kvpairs): [{"target_id", "intervals": {"sample_us", "aggr_us", ...} | null,
 * "snapshots": [{"start_time" (ns), "end_time" (ns), "regions": [{"start", "end",
 * "nr_accesses": {"samples", "percent"} | N, "age": ...}]}]}]. With raw numbers damo writes
 * numbers as decimal strings; older versions write JSON integers and a plain nr_accesses
 * integer. Both are accepted; human-formatted values ("5 ms", "1.2 GiB") are not.
 *
 * Scaling: nr_accesses counts the sampling intervals (of one aggregation interval) in which
 * DAMON found the region's sampled page accessed. One such hit is taken as one pass over the
 * region: reads = samples x bytes / 64 x scale, split over the spans the region covers in
 * proportion to the bytes. Writes are 0: DAMON does not tell reads from writes.
 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "damon-import.h"
#include "spmtier/json-util.h"
#include "spmtier/machine.h"

void spm_damon_options_defaults(struct spm_damon_options *ret) {
        *ret = (struct spm_damon_options) {
                .accessor = SPM_ACC_CPU,
                .span = 2ULL << 20,
                .page_size = 4096,
                .scale = 1.0,
                .max_rows = 64ULL << 20,
        };
}

struct ctx {
        const char *path;
        char *err;
        size_t errsize;
        unsigned record, snapshot;
        uint64_t region;
        int depth;   /* 0: file, 1: record, 2: snapshot, 3: region */
};

_printf_(2, 3)
static int fail(struct ctx *c, const char *fmt, ...) {
        va_list ap;
        int k = 0;

        switch (c->depth) {
        case 0: k = snprintf(c->err, c->errsize, "%s: ", c->path); break;
        case 1: k = snprintf(c->err, c->errsize, "%s: record %u: ", c->path, c->record); break;
        case 2: k = snprintf(c->err, c->errsize, "%s: record %u, snapshot %u: ", c->path,
                             c->record, c->snapshot); break;
        default: k = snprintf(c->err, c->errsize, "%s: record %u, snapshot %u, region %" PRIu64
                              ": ", c->path, c->record, c->snapshot, c->region); break;
        }
        if (k < 0 || (size_t) k >= c->errsize)
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errsize - k, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A non-negative integer: a JSON integer, or a decimal string (thousands commas allowed, as
 * damo prints them without --raw_number). */
static int get_u64(struct ctx *c, struct json_object *parent, const char *key, bool optional,
                   uint64_t *ret) {
        struct json_object *o;

        if (!json_object_object_get_ex(parent, key, &o) || json_object_is_type(o, json_type_null)) {
                if (optional)
                        return 0;
                return fail(c, "'%s' is missing", key);
        }
        if (json_object_is_type(o, json_type_int)) {
                if (json_object_get_int64(o) < 0)
                        return fail(c, "'%s' is negative", key);
                *ret = json_object_get_uint64(o);
                return 1;
        }
        if (json_object_is_type(o, json_type_string)) {
                const char *s = json_object_get_string(o);
                uint64_t v = 0;
                bool digit = false;

                for (const char *q = s; *q; q++) {
                        if (*q == ',' && digit)
                                continue;
                        if (*q < '0' || *q > '9')
                                return fail(c, "'%s' is \"%s\", not a raw number (export with "
                                            "damo's raw numbers)", key, s);
                        if (!MUL_SAFE(&v, v, 10) || !ADD_SAFE(&v, v, (uint64_t) (*q - '0')))
                                return fail(c, "'%s' overflows 64 bits", key);
                        digit = true;
                }
                if (!digit)
                        return fail(c, "'%s' is an empty string", key);
                *ret = v;
                return 1;
        }
        return fail(c, "'%s' is a %s, not a number", key,
                    json_type_to_name(json_object_get_type(o)));
}

static int get_array(struct ctx *c, struct json_object *parent, const char *key,
                     struct json_object **ret) {
        struct json_object *o;

        if (!json_object_object_get_ex(parent, key, &o))
                return fail(c, "'%s' is missing", key);
        if (!json_object_is_type(o, json_type_array))
                return fail(c, "'%s' is not an array", key);
        *ret = o;
        return 0;
}

static int cmp_row(const void *a, const void *b) {
        const struct spm_damon_row *x = a, *y = b;

        if (x->epoch != y->epoch)
                return x->epoch < y->epoch ? -1 : 1;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct rows {
        struct spm_damon_row *v;
        size_t n, cap;
};

static int rows_add(struct rows *r, const struct spm_damon_row *row, uint64_t max_rows) {
        if (r->n >= max_rows)
                return -E2BIG;
        if (r->n == r->cap) {
                size_t cap = MIN(MAX(r->cap * 2, 1024), max_rows);
                struct spm_damon_row *q;

                q = realloc(r->v, cap * sizeof(*q));
                if (!q)
                        return -ENOMEM;
                r->v = q;
                r->cap = cap;
        }
        r->v[r->n++] = *row;
        return 0;
}

/* The number of sampling intervals with an access: {"samples": N, ...} or plain N. */
static int get_samples(struct ctx *c, struct json_object *region, uint64_t *ret) {
        struct json_object *o;

        if (!json_object_object_get_ex(region, "nr_accesses", &o))
                return fail(c, "'nr_accesses' is missing (a record without access data?)");
        if (json_object_is_type(o, json_type_object)) {
                int r = get_u64(c, o, "samples", false, ret);

                return r < 0 ? r : 0;
        }
        int r = get_u64(c, region, "nr_accesses", false, ret);
        return r < 0 ? r : 0;
}

/* Walks the records once: finds t0 and the epoch length. */
static int scan_times(struct ctx *c, struct json_object *records, uint64_t *ret_t0,
                      uint64_t *ret_epoch_ns) {
        uint64_t t0 = UINT64_MAX, epoch_ns = 0;
        size_t n = json_object_array_length(records);
        int r;

        for (size_t i = 0; i < n; i++) {
                struct json_object *rec = json_object_array_get_idx(records, i), *snaps, *iv;
                uint64_t aggr_us = 0;

                c->depth = 1;
                c->record = i;
                if (!json_object_is_type(rec, json_type_object))
                        return fail(c, "not an object");
                if ((r = get_array(c, rec, "snapshots", &snaps)) < 0)
                        return r;
                if (json_object_object_get_ex(rec, "intervals", &iv) &&
                    !json_object_is_type(iv, json_type_null)) {
                        if (!json_object_is_type(iv, json_type_object))
                                return fail(c, "'intervals' is not an object");
                        if ((r = get_u64(c, iv, "aggr_us", false, &aggr_us)) < 0)
                                return r;
                        if (aggr_us == 0)
                                return fail(c, "'intervals.aggr_us' is 0");
                        if (epoch_ns == 0)
                                epoch_ns = aggr_us * 1000;
                }
                for (size_t j = 0; j < json_object_array_length(snaps); j++) {
                        struct json_object *s = json_object_array_get_idx(snaps, j);
                        uint64_t start, end;

                        c->depth = 2;
                        c->snapshot = j;
                        if (!json_object_is_type(s, json_type_object))
                                return fail(c, "not an object");
                        if ((r = get_u64(c, s, "start_time", false, &start)) < 0 ||
                            (r = get_u64(c, s, "end_time", false, &end)) < 0)
                                return r;
                        if (end <= start)
                                return fail(c, "end_time %" PRIu64 " is not after start_time %"
                                            PRIu64, end, start);
                        t0 = MIN(t0, start);
                        if (epoch_ns == 0)
                                /* No intervals: the first snapshot's length is the epoch. */
                                epoch_ns = end - start;
                }
        }
        c->depth = 0;
        if (t0 == UINT64_MAX)
                return fail(c, "no snapshots in any record");
        *ret_t0 = t0;
        *ret_epoch_ns = MAX(epoch_ns / 1000 * 1000, 1000);
        return 0;
}

static int import_region(struct ctx *c, const struct spm_damon_options *o,
                         struct json_object *g, uint64_t epoch, uint32_t pid,
                         uint64_t *prev_end, struct rows *out) {
        uint64_t start, end, samples;
        int r;

        if (!json_object_is_type(g, json_type_object))
                return fail(c, "not an object");
        if ((r = get_u64(c, g, "start", false, &start)) < 0 ||
            (r = get_u64(c, g, "end", false, &end)) < 0 || (r = get_samples(c, g, &samples)) < 0)
                return r;
        if (end <= start)
                return fail(c, "end 0x%" PRIx64 " is not after start 0x%" PRIx64, end, start);
        if (start % o->page_size || end % o->page_size)
                return fail(c, "0x%" PRIx64 "-0x%" PRIx64 " is not page aligned", start, end);
        if (start < *prev_end)
                return fail(c, "0x%" PRIx64 "-0x%" PRIx64 " overlaps the previous region "
                            "(regions are sorted and disjoint)", start, end);
        *prev_end = end;
        if (samples == 0)
                return 0;

        for (uint64_t a = start, next; a < end; a = next) {
                next = MIN(ALIGN_DOWN(a, o->span) + o->span, end);
                double reads = (double) samples * (double) (next - a) / SPM_ACCESS_BYTES *
                               o->scale;
                struct spm_damon_row row = {
                        .epoch = epoch, .pid = pid, .addr = a, .len = next - a,
                        .reads = (uint64_t) llround(reads),
                };

                if (row.reads == 0)
                        continue;
                r = rows_add(out, &row, o->max_rows);
                if (r == -E2BIG)
                        return fail(c, "more than %" PRIu64 " rows: use a larger --span",
                                    o->max_rows);
                if (r < 0)
                        return r;
        }
        return 0;
}

int spm_damon_import(const char *path, const char *text, size_t len,
                     const struct spm_damon_options *o, struct spm_damon_trace *ret,
                     char *err, size_t errsize) {
        _cleanup_json_ struct json_object *root = NULL;
        struct ctx c = { .path = path, .err = err, .errsize = errsize };
        struct rows out = {};
        struct json_tokener *tok;
        uint64_t t0 = 0, epoch_ns = 1, first_target = 0, n_regions = 0;
        unsigned n_snapshots = 0;
        size_t n;
        int r;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int) MIN(len, (size_t) INT32_MAX));
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success) {
                /* Name the line and column where the tokenizer stopped. */
                size_t line = 1, col = 1;

                for (size_t i = 0; i < end && i < len; i++, col++)
                        if (text[i] == '\n') {
                                line++;
                                col = 0;
                        }
                snprintf(err, errsize, "%s:%zu:%zu: JSON syntax error: %s", path, line, col,
                         jerr == json_tokener_continue ? "unexpected end of input"
                                                       : json_tokener_error_desc(jerr));
                return -EINVAL;
        }
        for (size_t i = end; i < len; i++)
                if (text[i] == '\0' || !strchr(" \t\r\n", text[i]))
                        return fail(&c, "trailing data after the JSON value at byte %zu", i);
        if (!json_object_is_type(root, json_type_array))
                return fail(&c, "the top level is not an array of DAMON records");
        n = json_object_array_length(root);
        if (n == 0)
                return fail(&c, "no records");
        if ((r = scan_times(&c, root, &t0, &epoch_ns)) < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                struct json_object *rec = json_object_array_get_idx(root, i), *snaps;
                uint64_t target = 0;
                uint32_t pid = o->pid;

                c.depth = 1;
                c.record = i;
                if ((r = get_u64(&c, rec, "target_id", o->pid != 0, &target)) < 0)
                        goto fail;
                if (o->pid != 0) {
                        if (i == 0)
                                first_target = target;
                        else if (target != first_target) {
                                r = fail(&c, "a second target (target_id %" PRIu64 "): --pid "
                                         "maps a single-target record file only", target);
                                goto fail;
                        }
                } else if (target == 0 || target > UINT32_MAX) {
                        r = fail(&c, "target_id %" PRIu64 " is not a pid; pass --pid", target);
                        goto fail;
                } else
                        pid = (uint32_t) target;

                (void) get_array(&c, rec, "snapshots", &snaps);  /* checked by scan_times */
                for (size_t j = 0; j < json_object_array_length(snaps); j++) {
                        struct json_object *s = json_object_array_get_idx(snaps, j), *regions;
                        uint64_t start = 0, prev_end = 0;

                        c.depth = 2;
                        c.snapshot = j;
                        (void) get_u64(&c, s, "start_time", false, &start);
                        if ((r = get_array(&c, s, "regions", &regions)) < 0)
                                goto fail;
                        uint64_t epoch = (start - t0 + epoch_ns / 2) / epoch_ns;
                        n_snapshots++;
                        for (size_t k = 0; k < json_object_array_length(regions); k++) {
                                c.depth = 3;
                                c.region = k;
                                r = import_region(&c, o, json_object_array_get_idx(regions, k),
                                                  epoch, pid, &prev_end, &out);
                                if (r < 0)
                                        goto fail;
                                n_regions++;
                        }
                }
        }
        if (out.n > 0)
                qsort(out.v, out.n, sizeof(*out.v), cmp_row);
        *ret = (struct spm_damon_trace) {
                .epoch_usec = epoch_ns / 1000,
                .rows = out.v,
                .n_rows = out.n,
                .n_records = n,
                .n_snapshots = n_snapshots,
                .n_regions = n_regions,
        };
        return 0;
fail:
        free(out.v);
        return r;
}
