/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmgen: turns a workload config (docs/workloads.md) into a trace, deterministically.
 *
 *     spmgen [-o OUT] [--stats] CONFIG
 *
 * Writes the trace (plain text) to OUT or stdout; --stats prints rows, hints, epochs and the
 * footprint to stderr. Exit 0 on success, 1 on a bad config or a write error, 2 on usage.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/workload.h"

struct writer {
        FILE *f;
        struct spm_trace_header hdr;
        uint64_t rows;
        uint64_t hints;
};

static int emit(const struct spm_trace_record *rec, void *userdata) {
        struct writer *w = userdata;

        if (rec->kind == SPM_TRACE_HINT) {
                spm_trace_write_hint(w->f, rec->epoch, &rec->hint);
                w->hints++;
        } else {
                spm_trace_write_row(w->f, &w->hdr, rec->epoch, &rec->access);
                w->rows++;
        }
        return ferror(w->f) ? -EIO : 0;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: spmgen [-o OUT] [--stats] CONFIG\n"
                   "Generates a spmtier trace from a workload config (docs/workloads.md).\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "stats", no_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(spm_workload_freep) struct spm_workload *wl = NULL;
        _cleanup_fclose_ FILE *in = NULL;
        const char *out = NULL;
        struct spm_workload_info info;
        struct writer w = {};
        bool stats = false;
        char err[512];
        int c, r;

        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) >= 0)
                switch (c) {
                case 'o': out = optarg; break;
                case 's': stats = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        if (optind != argc - 1) {
                usage(stderr);
                return 2;
        }

        in = fopen(argv[optind], "re");
        if (!in) {
                fprintf(stderr, "spmgen: %s: %s\n", argv[optind], strerror(errno));
                return 1;
        }
        r = spm_workload_parse(in, argv[optind], &wl, err, sizeof(err));
        if (r == -EINVAL) {
                fprintf(stderr, "spmgen: %s\n", err);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "spmgen: %s: %s\n", argv[optind], strerror(-r));
                return 1;
        }

        w.f = out ? fopen(out, "we") : stdout;
        if (!w.f) {
                fprintf(stderr, "spmgen: %s: %s\n", out, strerror(errno));
                return 1;
        }
        spm_workload_header(wl, &w.hdr);
        spm_trace_write_header(w.f, &w.hdr);
        r = spm_workload_generate(wl, emit, &w);
        if (fflush(w.f) != 0 || ferror(w.f))
                r = r < 0 ? r : -EIO;
        if (out && fclose(w.f) != 0 && r >= 0)
                r = -errno;
        if (r < 0) {
                fprintf(stderr, "spmgen: writing %s: %s\n", out ?: "stdout", strerror(-r));
                return 1;
        }
        if (stats) {
                spm_workload_get_info(wl, &info);
                fprintf(stderr, "%s: %" PRIu64 " rows, %" PRIu64 " hints, %" PRIu64
                        " epochs, footprint %" PRIu64 " MiB, %u regions, %u phases, "
                        "%u streams\n", argv[optind], w.rows, w.hints, info.epochs,
                        info.footprint >> 20, info.n_regions, info.n_phases, info.n_streams);
        }
        return 0;
}
