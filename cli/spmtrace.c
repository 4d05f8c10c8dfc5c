/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmtrace: checks traces and summarises them.
 *
 *     spmtrace stat FILE...
 *
 * Reads every FILE fully (plain or gzip'd, "-" = stdin) with the strict reader and prints one
 * line each: rows, hints, epochs, processes, accessors, footprint (the union of all spans),
 * reads and writes. Exit 0 when every trace parses, 1 otherwise (the error names file:line),
 * 2 on usage.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/trace.h"

struct span {
        uint32_t pid;
        uint64_t start;
        uint64_t end;
};

static int cmp_span(const void *a, const void *b) {
        const struct span *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

struct stat_result {
        uint64_t rows, hints, epochs, reads, writes, footprint;
        unsigned pids;
        uint32_t accessors;   /* bit per accessor */
};

/* Unions the spans (sorted in place); counts processes too. */
static void union_spans(struct span *s, size_t n, struct stat_result *st) {
        qsort(s, n, sizeof(*s), cmp_span);
        for (size_t i = 0; i < n;) {
                struct span cur = s[i++];

                if (i == 1 || s[i - 2].pid != cur.pid)
                        st->pids++;
                for (; i < n && s[i].pid == cur.pid && s[i].start <= cur.end; i++)
                        cur.end = MAX(cur.end, s[i].end);
                st->footprint += cur.end - cur.start;
        }
}

static int stat_one(const char *path, struct stat_result *st) {
        _cleanup_(spm_trace_closep) struct spm_trace_reader *r = NULL;
        _cleanup_free_ struct span *spans = NULL;
        size_t n = 0, cap = 0;
        int k;

        k = spm_trace_open(path, &r);
        if (k < 0) {
                fprintf(stderr, "spmtrace: %s: %s\n", path, strerror(-k));
                return k;
        }
        *st = (struct stat_result) {};
        for (;;) {
                struct spm_trace_record rec;

                k = spm_trace_next(r, &rec);
                if (k == 0)
                        break;
                if (k < 0) {
                        fprintf(stderr, "spmtrace: %s\n", spm_trace_error(r) ?: strerror(-k));
                        return k;
                }
                st->epochs = MAX(st->epochs, rec.epoch + 1);
                if (rec.kind == SPM_TRACE_HINT) {
                        st->hints++;
                        continue;
                }
                st->rows++;
                st->reads += rec.access.reads;
                st->writes += rec.access.writes;
                st->accessors |= 1u << rec.access.accessor;
                if (n == cap) {
                        struct span *q = realloc(spans, (cap = MAX(cap * 2, 4096)) *
                                                 sizeof(*q));
                        if (!q)
                                return -ENOMEM;
                        spans = q;
                }
                spans[n++] = (struct span) { rec.access.pid, rec.access.addr,
                                             rec.access.addr + rec.access.len };
        }
        union_spans(spans, n, st);
        return 0;
}

int main(int argc, char **argv) {
        int ret = 0;

        if (argc < 3 || strcmp(argv[1], "stat") != 0) {
                fprintf(stderr, "Usage: spmtrace stat FILE...\n");
                return 2;
        }
        for (int i = 2; i < argc; i++) {
                struct stat_result st;
                char acc[64] = "", name[16];

                if (stat_one(argv[i], &st) < 0) {
                        ret = 1;
                        continue;
                }
                for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++)
                        if (st.accessors & (1u << a))
                                snprintf(acc + strlen(acc), sizeof(acc) - strlen(acc), "%s%s",
                                         acc[0] ? "," : "", spm_accessor_name(a, name,
                                                                              sizeof(name)));
                printf("%s: rows=%" PRIu64 " hints=%" PRIu64 " epochs=%" PRIu64 " pids=%u "
                       "accessors=%s footprint_mib=%" PRIu64 " reads=%" PRIu64 " writes=%"
                       PRIu64 "\n", argv[i], st.rows, st.hints, st.epochs, st.pids,
                       acc[0] ? acc : "-", st.footprint >> 20, st.reads, st.writes);
        }
        return ret;
}
