/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace I/O: a pure line parser, a zlib reader (plain and gzip'd alike) and writers. The parser
 * knows one line at a time; the reader enforces what spans lines: the magic line first, header
 * keys before the column line, the column line before data, epochs never decreasing.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "spmtier/macro.h"
#include "spmtier/trace.h"

#define TRACE_MAGIC "# spmtier-trace "
#define TRACE_COLUMNS "epoch,pid,addr,pages,accessor,reads,writes"
#define TRACE_HINT "#hint"
#define TRACE_MAX_LINE 4096     /* a row is < 120 bytes; longer lines are garbage */
#define TRACE_MAX_FIELDS 8

const char *spm_trace_hint_kind_name(enum spm_hint_kind k) {
        return spm_hint_kind_to_string(k);
}

enum spm_hint_kind spm_trace_hint_kind_parse(const char *s, size_t n) {
        for (int k = 0; k < _SPM_HINT_KIND_MAX; k++) {
                const char *name = spm_hint_kind_to_string((enum spm_hint_kind) k);

                if (strlen(name) == n && memcmp(name, s, n) == 0)
                        return (enum spm_hint_kind) k;
        }
        return _SPM_HINT_KIND_INVALID;
}

const char *spm_accessor_name(unsigned accessor, char *buf, size_t size) {
        if (accessor == SPM_ACC_CPU)
                snprintf(buf, size, "cpu");
        else
                snprintf(buf, size, "gpu%u", accessor - SPM_ACC_GPU(0));
        return buf;
}

void spm_trace_header_init(struct spm_trace_header *ret) {
        *ret = (struct spm_trace_header) {
                .version = 0,
                .epoch_usec = 10000,
                .page_size = 4096,
        };
}

/* A field of a line: not NUL-terminated. */
struct field {
        const char *p;
        size_t n;
};

/* Plain decimal, no sign, no spaces, no leading zeros beyond "0" itself: a trace has one
 * spelling per number, so byte-identical comparisons mean something. */
static int parse_dec(const struct field *f, uint64_t *ret) {
        uint64_t v = 0;

        if (f->n == 0 || (f->n > 1 && f->p[0] == '0'))
                return -EINVAL;
        for (size_t i = 0; i < f->n; i++) {
                char c = f->p[i];

                if (c < '0' || c > '9')
                        return -EINVAL;
                if (!MUL_SAFE(&v, v, 10) || !ADD_SAFE(&v, v, (uint64_t) (c - '0')))
                        return -ERANGE;
        }
        *ret = v;
        return 0;
}

/* 0x-prefixed hex (lower or upper case digits) or plain decimal. */
static int parse_addr(const struct field *f, uint64_t *ret) {
        uint64_t v = 0;

        if (f->n < 2 || f->p[0] != '0' || (f->p[1] != 'x' && f->p[1] != 'X'))
                return parse_dec(f, ret);
        if (f->n == 2 || f->n > 18)
                return f->n == 2 ? -EINVAL : -ERANGE;
        for (size_t i = 2; i < f->n; i++) {
                char c = f->p[i];
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = c - '0';
                else if (c >= 'a' && c <= 'f')
                        d = c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                        d = c - 'A' + 10;
                else
                        return -EINVAL;
                v = v << 4 | d;
        }
        *ret = v;
        return 0;
}

/* "cpu" or "gpuN" with N < SPM_MAX_GPUS, spelled without sign, space or leading zero. */
static int parse_accessor(const struct field *f) {
        char name[8];

        if (f->n < 3 || f->n >= sizeof(name))
                return -EINVAL;
        memcpy(name, f->p, f->n);
        name[f->n] = '\0';
        if (strncmp(name, "gpu", 3) == 0) {
                struct field digits = { f->p + 3, f->n - 3 };
                uint64_t g;

                if (parse_dec(&digits, &g) < 0)
                        return -EINVAL;
        }
        return spm_accessor_from_name(name, SPM_MAX_GPUS);
}

/* Splits [p, p+n) at commas into at most max fields; returns the count or -E2BIG. */
static int split_fields(const char *p, size_t n, struct field *fields, unsigned max) {
        unsigned k = 0;
        const char *start = p, *end = p + n;

        for (const char *q = p;; q++) {
                if (q == end || *q == ',') {
                        if (k == max)
                                return -E2BIG;
                        fields[k++] = (struct field) { start, (size_t) (q - start) };
                        if (q == end)
                                break;
                        start = q + 1;
                }
        }
        return (int) k;
}

/* The parsers' way out: a static description of the problem in *ret_error. */
#define FAIL(msg)                               \
        do {                                    \
                *ret_error = (msg);             \
                return -EINVAL;                 \
        } while (0)

/* Checks addr/len against the page size and the address space. */
static const char *check_span(uint64_t addr, uint64_t len, uint64_t page_size) {
        uint64_t end;

        if (addr % page_size != 0)
                return "addr is not page aligned";
        if (len == 0)
                return "span is empty";
        if (!ADD_SAFE(&end, addr, len))
                return "span wraps around the address space";
        return NULL;
}

static int parse_row(const char *p, size_t n, const struct spm_trace_header *hdr,
                     struct spm_trace_record *ret, const char **ret_error) {
        struct field f[TRACE_MAX_FIELDS];
        uint64_t epoch, pid, addr, pages, reads, writes, len;
        int k, acc;

        k = split_fields(p, n, f, TRACE_MAX_FIELDS);
        if (k != 7)
                FAIL("a row has 7 fields: epoch,pid,addr,pages,accessor,reads,writes");
        if (parse_dec(&f[0], &epoch) < 0)
                FAIL("epoch is not a non-negative decimal integer");
        if (parse_dec(&f[1], &pid) < 0 || pid == 0 || pid > UINT32_MAX)
                FAIL("pid is not a decimal integer in 1..4294967295");
        if (parse_addr(&f[2], &addr) < 0)
                FAIL("addr is not a 0x-hex or decimal 64-bit address");
        if (parse_dec(&f[3], &pages) < 0 || pages == 0)
                FAIL("pages is not a positive decimal integer");
        if (!MUL_SAFE(&len, pages, hdr->page_size))
                FAIL("pages x page_size overflows");
        acc = parse_accessor(&f[4]);
        if (acc < 0)
                FAIL("accessor is not cpu or gpuN (N < 8)");
        if (parse_dec(&f[5], &reads) < 0)
                FAIL("reads is not a non-negative decimal integer");
        if (parse_dec(&f[6], &writes) < 0)
                FAIL("writes is not a non-negative decimal integer");
        const char *e = check_span(addr, len, hdr->page_size);
        if (e)
                FAIL(e);

        *ret = (struct spm_trace_record) {
                .kind = SPM_TRACE_ROW,
                .epoch = epoch,
                .access = {
                        .pid = (uint32_t) pid,
                        .accessor = (uint8_t) acc,
                        .addr = addr,
                        .len = len,
                        .reads = reads,
                        .writes = writes,
                },
        };
        return 0;
}

/* "#hint EPOCH,PID,ADDR,BYTES,KIND[,GPU[,TTL_USEC]]" */
static int parse_hint(const char *p, size_t n, const struct spm_trace_header *hdr,
                      struct spm_trace_record *ret, const char **ret_error) {
        struct field f[TRACE_MAX_FIELDS];
        uint64_t epoch, pid, addr, bytes, gpu = 0, ttl = 0;
        enum spm_hint_kind kind;
        int k;

        if (n <= strlen(TRACE_HINT) || p[strlen(TRACE_HINT)] != ' ')
                FAIL("#hint needs one space, then EPOCH,PID,ADDR,BYTES,KIND[,GPU[,TTL_USEC]]");
        p += strlen(TRACE_HINT) + 1;
        n -= strlen(TRACE_HINT) + 1;
        k = split_fields(p, n, f, TRACE_MAX_FIELDS);
        if (k < 5 || k > 7)
                FAIL("a hint has 5 to 7 fields: EPOCH,PID,ADDR,BYTES,KIND[,GPU[,TTL_USEC]]");
        if (parse_dec(&f[0], &epoch) < 0)
                FAIL("hint epoch is not a non-negative decimal integer");
        if (parse_dec(&f[1], &pid) < 0 || pid == 0 || pid > UINT32_MAX)
                FAIL("hint pid is not a decimal integer in 1..4294967295");
        if (parse_addr(&f[2], &addr) < 0)
                FAIL("hint addr is not a 0x-hex or decimal 64-bit address");
        if (parse_dec(&f[3], &bytes) < 0 || bytes == 0)
                FAIL("hint bytes is not a positive decimal integer");
        if (bytes % hdr->page_size != 0)
                FAIL("hint bytes is not a multiple of the page size");
        kind = spm_trace_hint_kind_parse(f[4].p, f[4].n);
        if (kind < 0)
                FAIL("hint kind is not one of hot, cold, pin-gpu, pin-ram, streaming, none");
        if (k > 5 && (parse_dec(&f[5], &gpu) < 0 || gpu >= SPM_MAX_GPUS))
                FAIL("hint gpu is not a GPU index in 0..7");
        if (k > 6 && parse_dec(&f[6], &ttl) < 0)
                FAIL("hint ttl_usec is not a non-negative decimal integer");
        const char *e = check_span(addr, bytes, hdr->page_size);
        if (e)
                FAIL(e);

        *ret = (struct spm_trace_record) {
                .kind = SPM_TRACE_HINT,
                .epoch = epoch,
                .hint = {
                        .pid = (uint32_t) pid,
                        .start = addr,
                        .len = bytes,
                        .kind = kind,
                        .gpu = (uint8_t) gpu,
                        .ttl_usec = ttl,
                },
        };
        return 0;
}

/* "# spmtier-trace N", "# epoch_usec=N", "# page_size=N"; anything else is a comment. */
static int parse_comment(const char *p, size_t n, struct spm_trace_header *hdr,
                         struct spm_trace_record *ret, const char **ret_error) {
        struct field value;
        uint64_t v;

        *ret = (struct spm_trace_record) { .kind = SPM_TRACE_NOTHING };
        if (n >= strlen(TRACE_MAGIC) && memcmp(p, TRACE_MAGIC, strlen(TRACE_MAGIC)) == 0) {
                value = (struct field) { p + strlen(TRACE_MAGIC), n - strlen(TRACE_MAGIC) };
                if (parse_dec(&value, &v) < 0 || v != 1)
                        FAIL("unsupported trace version (this reader knows version 1)");
                hdr->version = 1;
                ret->kind = SPM_TRACE_HEADER;
                return 0;
        }
        static const char k_epoch[] = "# epoch_usec=", k_page[] = "# page_size=";
        if (n >= strlen(k_epoch) && memcmp(p, k_epoch, strlen(k_epoch)) == 0) {
                value = (struct field) { p + strlen(k_epoch), n - strlen(k_epoch) };
                if (parse_dec(&value, &v) < 0 || v == 0)
                        FAIL("epoch_usec is not a positive decimal integer");
                hdr->epoch_usec = v;
                ret->kind = SPM_TRACE_HEADER;
                return 0;
        }
        if (n >= strlen(k_page) && memcmp(p, k_page, strlen(k_page)) == 0) {
                value = (struct field) { p + strlen(k_page), n - strlen(k_page) };
                if (parse_dec(&value, &v) < 0 || !IS_POWER_OF_2(v) || v < 512 ||
                    v > (1ULL << 30))
                        FAIL("page_size is not a power of two in 512..1073741824");
                hdr->page_size = v;
                ret->kind = SPM_TRACE_HEADER;
                return 0;
        }
        return 0;
}

int spm_trace_parse_line(const char *line, struct spm_trace_header *hdr,
                         struct spm_trace_record *ret, const char **ret_error) {
        size_t n = strlen(line);

        if (n > 0 && line[n - 1] == '\n')
                n--;
        if (n > 0 && line[n - 1] == '\r')
                n--;
        if (n == 0) {
                *ret = (struct spm_trace_record) { .kind = SPM_TRACE_NOTHING };
                return 0;
        }
        if (memchr(line, '\0', n) || memchr(line, '\n', n) || memchr(line, '\r', n))
                FAIL("stray control character in the line");
        if (n >= strlen(TRACE_HINT) && memcmp(line, TRACE_HINT, strlen(TRACE_HINT)) == 0)
                return parse_hint(line, n, hdr, ret, ret_error);
        if (line[0] == '#')
                return parse_comment(line, n, hdr, ret, ret_error);
        if (n == strlen(TRACE_COLUMNS) && memcmp(line, TRACE_COLUMNS, n) == 0) {
                *ret = (struct spm_trace_record) { .kind = SPM_TRACE_COLUMNS };
                return 0;
        }
        if (line[0] < '0' || line[0] > '9')
                FAIL("not a row, a '#' line or the column line '" TRACE_COLUMNS "'");
        return parse_row(line, n, hdr, ret, ret_error);
#undef FAIL
}

/* ---- the reader ---- */

enum reader_stage {
        STAGE_MAGIC,    /* nothing read yet */
        STAGE_HEADER,   /* magic seen, header keys allowed */
        STAGE_DATA,     /* column line seen */
};

struct spm_trace_reader {
        gzFile gz;
        char *path;
        struct spm_trace_header hdr;
        enum reader_stage stage;
        unsigned long line;
        uint64_t last_epoch;
        bool pending;                    /* rec holds a record read by the open */
        int pending_error;               /* an error found by the open, for the first next() */
        bool eof;
        struct spm_trace_record rec;
        char error[TRACE_MAX_LINE / 4];
        char buf[TRACE_MAX_LINE + 2];
};

struct spm_trace_reader *spm_trace_close(struct spm_trace_reader *r) {
        if (!r)
                return NULL;
        if (r->gz)
                (void) gzclose(r->gz);
        free(r->path);
        free(r);
        return NULL;
}

_printf_(2, 3)
static int reader_fail(struct spm_trace_reader *r, const char *fmt, ...) {
        va_list ap;
        int k;

        k = snprintf(r->error, sizeof(r->error), "%s:%lu: ", r->path, r->line);
        va_start(ap, fmt);
        vsnprintf(r->error + k, sizeof(r->error) - k, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* Reads one line into r->buf. Returns 1, 0 at the end, -EINVAL (too long), -EIO. */
static int reader_getline(struct spm_trace_reader *r) {
        int zerr;

        if (!gzgets(r->gz, r->buf, sizeof(r->buf))) {
                const char *msg = gzerror(r->gz, &zerr);

                if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
                        r->line++;
                        snprintf(r->error, sizeof(r->error), "%s:%lu: read error: %s",
                                 r->path, r->line, zerr == Z_ERRNO ? strerror(errno) : msg);
                        return zerr == Z_ERRNO && errno > 0 ? -errno : -EIO;
                }
                /* A gzip stream cut short also ends here: gzgets reports it as Z_BUF_ERROR. */
                if (zerr == Z_BUF_ERROR) {
                        r->line++;
                        return reader_fail(r, "truncated gzip stream");
                }
                return 0;
        }
        r->line++;
        size_t n = strlen(r->buf);
        if (n == sizeof(r->buf) - 1 && r->buf[n - 1] != '\n')
                return reader_fail(r, "line longer than %d bytes", TRACE_MAX_LINE);
        if (n == 0 || (r->buf[n - 1] != '\n' && !gzeof(r->gz)))
                /* gzgets stopped short of a newline without filling the buffer: a NUL byte. */
                return reader_fail(r, "NUL byte in the line");
        return 1;
}

/* Reads up to the next row or hint, enforcing the line order. Returns 1, 0 (end), < 0. */
static int reader_advance(struct spm_trace_reader *r, struct spm_trace_record *ret) {
        for (;;) {
                struct spm_trace_record rec;
                const char *e;
                int k;

                k = reader_getline(r);
                if (k <= 0) {
                        if (k == 0 && r->stage == STAGE_MAGIC)
                                return reader_fail(r, "empty trace: no '# spmtier-trace 1' line");
                        return k;
                }
                if (spm_trace_parse_line(r->buf, &r->hdr, &rec, &e) < 0)
                        return reader_fail(r, "%s", e);

                if (r->stage == STAGE_MAGIC) {
                        if (rec.kind != SPM_TRACE_HEADER || r->hdr.version == 0)
                                return reader_fail(r, "not a spmtier trace: the first line "
                                                   "must be '# spmtier-trace 1'");
                        r->stage = STAGE_HEADER;
                        continue;
                }
                switch (rec.kind) {
                case SPM_TRACE_NOTHING:
                        continue;
                case SPM_TRACE_HEADER:
                        if (r->stage == STAGE_DATA)
                                return reader_fail(r, "header line after the column line");
                        continue;
                case SPM_TRACE_COLUMNS:
                        if (r->stage == STAGE_DATA)
                                return reader_fail(r, "second column line");
                        r->stage = STAGE_DATA;
                        continue;
                case SPM_TRACE_ROW:
                case SPM_TRACE_HINT:
                        if (r->stage != STAGE_DATA)
                                return reader_fail(r, "data before the column line '%s'",
                                                   TRACE_COLUMNS);
                        if (rec.epoch < r->last_epoch)
                                return reader_fail(r, "epoch %" PRIu64 " after epoch %" PRIu64
                                                   ": epochs never decrease",
                                                   rec.epoch, r->last_epoch);
                        r->last_epoch = rec.epoch;
                        *ret = rec;
                        return 1;
                }
        }
}

int spm_trace_open(const char *path, struct spm_trace_reader **ret) {
        _cleanup_(spm_trace_closep) struct spm_trace_reader *r = NULL;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->path = strdup(strcmp(path, "-") == 0 ? "<stdin>" : path);
        if (!r->path)
                return -ENOMEM;
        spm_trace_header_init(&r->hdr);

        if (strcmp(path, "-") == 0) {
                _cleanup_close_ int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);

                if (fd < 0)
                        return -errno;
                r->gz = gzdopen(fd, "rb");
                if (r->gz)
                        TAKE_FD(fd);
        } else {
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

                if (fd < 0)
                        return -errno;
                r->gz = gzdopen(fd, "rb");
                if (r->gz)
                        TAKE_FD(fd);
        }
        if (!r->gz)
                return -ENOMEM;
        (void) gzbuffer(r->gz, 128 * 1024);

        /* Read the header now so spm_trace_header() is valid; keep the first record. */
        k = reader_advance(r, &r->rec);
        if (k > 0)
                r->pending = true;
        else if (k == 0)
                r->eof = true;
        else
                r->pending_error = k;
        *ret = TAKE_PTR(r);
        return 0;
}

int spm_trace_next(struct spm_trace_reader *r, struct spm_trace_record *ret) {
        int k;

        if (r->pending_error)
                return r->pending_error;
        if (r->pending) {
                r->pending = false;
                *ret = r->rec;
                return 1;
        }
        if (r->eof)
                return 0;
        k = reader_advance(r, ret);
        if (k == 0)
                r->eof = true;
        else if (k < 0)
                r->pending_error = k;    /* stay failed: the rest of the file is suspect */
        return k;
}

const struct spm_trace_header *spm_trace_header(const struct spm_trace_reader *r) {
        return &r->hdr;
}

const char *spm_trace_error(const struct spm_trace_reader *r) {
        return r->error[0] ? r->error : NULL;
}

unsigned long spm_trace_line(const struct spm_trace_reader *r) {
        return r->line;
}

/* ---- writers ---- */

void spm_trace_write_header(FILE *f, const struct spm_trace_header *hdr) {
        fprintf(f, "# spmtier-trace 1\n# epoch_usec=%" PRIu64 "\n# page_size=%" PRIu64 "\n%s\n",
                (uint64_t) hdr->epoch_usec, hdr->page_size, TRACE_COLUMNS);
}

void spm_trace_write_row(FILE *f, const struct spm_trace_header *hdr, uint64_t epoch,
                         const struct spm_access *a) {
        char acc[16];

        fprintf(f, "%" PRIu64 ",%" PRIu32 ",0x%" PRIx64 ",%" PRIu64 ",%s,%" PRIu64 ",%" PRIu64 "\n",
                epoch, a->pid, a->addr, a->len / hdr->page_size,
                spm_accessor_name(a->accessor, acc, sizeof(acc)), a->reads, a->writes);
}

void spm_trace_write_hint(FILE *f, uint64_t epoch, const struct spm_hint *h) {
        const char *kind = spm_trace_hint_kind_name(h->kind);

        fprintf(f, "#hint %" PRIu64 ",%" PRIu32 ",0x%" PRIx64 ",%" PRIu64 ",%s,%u,%" PRIu64 "\n",
                epoch, h->pid, h->start, h->len, kind ? kind : "none", h->gpu,
                (uint64_t) h->ttl_usec);
}
