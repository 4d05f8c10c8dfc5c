/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmimport: converts other tools' access records into a spmtier trace on stdout.
 *
 *     spmimport --damon FILE [--pid PID] [--accessor cpu|gpuN] [--span SIZE] [--scale F]
 *
 * FILE is damo's JSON: plain, gzip'd, or zlib-compressed as `damo record` writes it by
 * default (json_compressed); "-" = stdin. docs/workloads.md describes the
 * mapping. Exit 0 on success, 1 on bad input (the message names the file and the line or the
 * record), 2 on usage.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "damon-import.h"
#include "spmtier/macro.h"
#include "spmtier/trace.h"

#define INPUT_MAX_BYTES (1ULL << 30)

static void gzclosep(gzFile *z) {
        if (*z)
                (void) gzclose(*z);
}

/* Reads all of path (gzip'd or not) into a NUL-terminated buffer. */
static int read_all(const char *path, char **ret, size_t *ret_len) {
        _cleanup_(gzclosep) gzFile z = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        z = strcmp(path, "-") == 0 ? gzdopen(dup(STDIN_FILENO), "rb") : gzopen(path, "rb");
        if (!z)
                return errno > 0 ? -errno : -ENOMEM;
        for (;;) {
                if (cap - len < 65536) {
                        char *q;

                        cap = MAX(cap * 2, 1 << 20);
                        if (cap > INPUT_MAX_BYTES)
                                return -EFBIG;
                        q = realloc(buf, cap + 1);
                        if (!q)
                                return -ENOMEM;
                        buf = q;
                }
                int k = gzread(z, buf + len, (unsigned) (cap - len));
                if (k < 0) {
                        int zerr;
                        (void) gzerror(z, &zerr);
                        return zerr == Z_ERRNO ? -errno : -EIO;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* damo record's default output type, json_compressed, is one zlib stream (RFC 1950): a
 * header byte 0x78 (deflate, 32 KiB window) and a check value making the first two bytes a
 * multiple of 31. JSON text never starts like that. */
static bool is_zlib(const char *buf, size_t len) {
        const unsigned char *b = (const unsigned char *) buf;

        return len >= 2 && b[0] == 0x78 && (b[0] * 256 + b[1]) % 31 == 0;
}

/* Inflates a zlib stream into a new NUL-terminated buffer. Returns 0, -EINVAL (corrupt),
 * -EFBIG, -ENOMEM. */
static int inflate_all(const char *in, size_t in_len, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = NULL;
        size_t cap = MAX(in_len * 8, (size_t) 1 << 20);
        z_stream z = {};
        int zr;

        if (inflateInit(&z) != Z_OK)
                return -ENOMEM;
        z.next_in = (unsigned char *) in;
        z.avail_in = (unsigned) in_len;
        for (;;) {
                char *q = realloc(out, cap + 1);

                if (!q) {
                        inflateEnd(&z);
                        return -ENOMEM;
                }
                out = q;
                z.next_out = (unsigned char *) out + z.total_out;
                z.avail_out = (unsigned) (cap - z.total_out);
                zr = inflate(&z, Z_FINISH);
                if (zr == Z_STREAM_END)
                        break;
                if ((zr != Z_BUF_ERROR && zr != Z_OK) || z.avail_in == 0) {
                        inflateEnd(&z);
                        return -EINVAL;
                }
                cap *= 2;
                if (cap > INPUT_MAX_BYTES) {
                        inflateEnd(&z);
                        return -EFBIG;
                }
        }
        *ret_len = z.total_out;
        out[z.total_out] = '\0';
        inflateEnd(&z);
        *ret = TAKE_PTR(out);
        return 0;
}

static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-')
                return -EINVAL;
        switch (*end) {
        case '\0': break;
        case 'K': v <<= 10; end++; break;
        case 'M': v <<= 20; end++; break;
        case 'G': v <<= 30; end++; break;
        default: return -EINVAL;
        }
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: spmimport --damon FILE [--pid PID] [--accessor cpu|gpuN] "
                   "[--span SIZE] [--scale F]\n"
                   "Converts damo's JSON records (damo record, damo report raw --json) into a "
                   "spmtier trace on stdout.\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "damon", required_argument, NULL, 'd' },
                { "pid", required_argument, NULL, 'p' },
                { "accessor", required_argument, NULL, 'a' },
                { "span", required_argument, NULL, 's' },
                { "scale", required_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_free_ char *text = NULL;
        struct spm_damon_options o;
        struct spm_damon_trace t;
        struct spm_trace_header hdr;
        const char *damon = NULL;
        char err[1024], *end;
        size_t len = 0;
        int c, r;

        spm_damon_options_defaults(&o);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'd':
                        damon = optarg;
                        break;
                case 'p': {
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || end == optarg || v == 0 || v > UINT32_MAX ||
                            optarg[0] == '-') {
                                fprintf(stderr, "spmimport: --pid %s: not a pid\n", optarg);
                                return 2;
                        }
                        o.pid = (uint32_t) v;
                        break;
                }
                case 'a':
                        r = spm_accessor_from_name(optarg, SPM_MAX_GPUS);
                        if (r < 0) {
                                fprintf(stderr, "spmimport: --accessor %s: not cpu or gpuN\n",
                                        optarg);
                                return 2;
                        }
                        o.accessor = (uint8_t) r;
                        break;
                case 's':
                        if (parse_size(optarg, &o.span) < 0 || !IS_POWER_OF_2(o.span) ||
                            o.span < o.page_size) {
                                fprintf(stderr, "spmimport: --span %s: not a power of two "
                                        ">= 4K\n", optarg);
                                return 2;
                        }
                        break;
                case 'S':
                        errno = 0;
                        o.scale = strtod(optarg, &end);
                        if (errno || *end || end == optarg || !(o.scale > 0 && o.scale < 1e9)) {
                                fprintf(stderr, "spmimport: --scale %s: not a positive "
                                        "number\n", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (!damon || optind != argc) {
                usage(stderr);
                return 2;
        }

        r = read_all(damon, &text, &len);
        if (r < 0) {
                fprintf(stderr, "spmimport: %s: %s\n", damon, strerror(-r));
                return 1;
        }
        if (is_zlib(text, len)) {
                char *plain;

                r = inflate_all(text, len, &plain, &len);
                if (r < 0) {
                        fprintf(stderr, "spmimport: %s: %s\n", damon, r == -EINVAL ?
                                "corrupt zlib stream (damo's json_compressed)" : strerror(-r));
                        return 1;
                }
                free(text);
                text = plain;
        }
        r = spm_damon_import(strcmp(damon, "-") == 0 ? "<stdin>" : damon, text, len, &o, &t,
                             err, sizeof(err));
        if (r == -EINVAL) {
                fprintf(stderr, "spmimport: %s\n", err);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "spmimport: %s: %s\n", damon, strerror(-r));
                return 1;
        }

        spm_trace_header_init(&hdr);
        hdr.epoch_usec = t.epoch_usec;
        hdr.page_size = o.page_size;
        spm_trace_write_header(stdout, &hdr);
        printf("# source=damon records=%u snapshots=%u regions=%" PRIu64 " scale=%g\n",
               t.n_records, t.n_snapshots, t.n_regions, o.scale);
        for (size_t i = 0; i < t.n_rows; i++) {
                const struct spm_damon_row *row = &t.rows[i];
                struct spm_access a = {
                        .pid = row->pid, .accessor = o.accessor, .addr = row->addr,
                        .len = row->len, .reads = row->reads,
                };

                spm_trace_write_row(stdout, &hdr, row->epoch, &a);
        }
        free(t.rows);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "spmimport: writing stdout: %s\n", strerror(errno));
                return 1;
        }
        return 0;
}
