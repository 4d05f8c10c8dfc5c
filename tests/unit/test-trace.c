/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "spmtier/macro.h"
#include "spmtier/trace.h"
#include "test.h"

static const char header_text[] =
        "# spmtier-trace 1\n"
        "# epoch_usec=10000\n"
        "# page_size=4096\n"
        "epoch,pid,addr,pages,accessor,reads,writes\n";

/* Writes text to a new temporary file (gzip'd when gz) and returns its path in buf. */
static void write_temp(char *buf, size_t size, const char *text, bool gz) {
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        int fd;

        snprintf(buf, size, "%s/test-trace-XXXXXX", dir);
        fd = mkstemp(buf);
        ASSERT_GE(fd, 0);
        if (gz) {
                gzFile z = gzdopen(fd, "wb9");
                ASSERT_NOT_NULL(z);
                ASSERT_EQ(gzwrite(z, text, strlen(text)), (int) strlen(text));
                ASSERT_EQ(gzclose(z), Z_OK);
        } else {
                ASSERT_EQ(write(fd, text, strlen(text)), (ssize_t) strlen(text));
                ASSERT_EQ(close(fd), 0);
        }
}

TEST(parse_good_lines) {
        static const struct {
                const char *line;
                enum spm_trace_kind kind;
        } cases[] = {
                { "", SPM_TRACE_NOTHING },
                { "\r\n", SPM_TRACE_NOTHING },
                { "# free comment, with commas", SPM_TRACE_NOTHING },
                { "# source=damon", SPM_TRACE_NOTHING },
                { "#", SPM_TRACE_NOTHING },
                { "# spmtier-trace 1", SPM_TRACE_HEADER },
                { "# epoch_usec=5000\n", SPM_TRACE_HEADER },
                { "# page_size=4096", SPM_TRACE_HEADER },
                { "epoch,pid,addr,pages,accessor,reads,writes", SPM_TRACE_COLUMNS },
                { "epoch,pid,addr,pages,accessor,reads,writes\r\n", SPM_TRACE_COLUMNS },
                { "0,4242,0x7f3a40000000,512,gpu0,81920,0", SPM_TRACE_ROW },
                { "3,1,4096,1,cpu,0,0\n", SPM_TRACE_ROW },
                { "7,1,0X7F3A40000000,1,gpu7,1,18446744073709551615", SPM_TRACE_ROW },
                { "#hint 0,4242,0x7f3a40000000,2097152,pin-gpu,0,0", SPM_TRACE_HINT },
                { "#hint 5,4242,0x1000,4096,cold", SPM_TRACE_HINT },
                { "#hint 5,4242,0x1000,4096,hot,3", SPM_TRACE_HINT },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct spm_trace_header hdr;
                struct spm_trace_record rec;
                const char *e = NULL;

                spm_trace_header_init(&hdr);
                if (spm_trace_parse_line(cases[i].line, &hdr, &rec, &e) < 0)
                        test_fail(__FILE__, __LINE__, "'%s' rejected: %s", cases[i].line, e);
                ASSERT_EQ(rec.kind, cases[i].kind);
        }
}

TEST(parse_row_fields) {
        struct spm_trace_header hdr;
        struct spm_trace_record rec;
        const char *e;

        spm_trace_header_init(&hdr);
        ASSERT_OK(spm_trace_parse_line("12,4242,0x7f3a40200000,512,gpu3,81920,77\n", &hdr,
                                       &rec, &e));
        ASSERT_EQ(rec.kind, SPM_TRACE_ROW);
        ASSERT_EQ_U(rec.epoch, 12);
        ASSERT_EQ_U(rec.access.pid, 4242);
        ASSERT_EQ_U(rec.access.addr, 0x7f3a40200000ULL);
        ASSERT_EQ_U(rec.access.len, 512 * 4096);
        ASSERT_EQ(rec.access.accessor, SPM_ACC_GPU(3));
        ASSERT_EQ_U(rec.access.reads, 81920);
        ASSERT_EQ_U(rec.access.writes, 77);

        /* The page size comes from the header: 64 KiB pages make a 1-page row 64 KiB long. */
        ASSERT_OK(spm_trace_parse_line("# page_size=65536", &hdr, &rec, &e));
        ASSERT_EQ_U(hdr.page_size, 65536);
        ASSERT_OK(spm_trace_parse_line("0,1,0x10000,1,cpu,1,0", &hdr, &rec, &e));
        ASSERT_EQ_U(rec.access.len, 65536);
        ASSERT_ERROR(spm_trace_parse_line("0,1,0x1000,1,cpu,1,0", &hdr, &rec, &e), EINVAL);

        ASSERT_OK(spm_trace_parse_line("#hint 9,77,0x200000,4194304,pin-gpu,2,5000", &hdr, &rec,
                                       &e));
        ASSERT_EQ(rec.kind, SPM_TRACE_HINT);
        ASSERT_EQ_U(rec.epoch, 9);
        ASSERT_EQ_U(rec.hint.pid, 77);
        ASSERT_EQ_U(rec.hint.start, 0x200000);
        ASSERT_EQ_U(rec.hint.len, 4194304);
        ASSERT_EQ(rec.hint.kind, SPM_HINT_PIN_GPU);
        ASSERT_EQ(rec.hint.gpu, 2);
        ASSERT_EQ_U(rec.hint.ttl_usec, 5000);

        ASSERT_OK(spm_trace_parse_line("# epoch_usec=2500", &hdr, &rec, &e));
        ASSERT_EQ_U(hdr.epoch_usec, 2500);
        ASSERT_OK(spm_trace_parse_line("# spmtier-trace 1", &hdr, &rec, &e));
        ASSERT_EQ(hdr.version, 1u);
}

TEST(parse_malformed_lines) {
        static const struct {
                const char *line;
                const char *error;  /* a substring of the expected description */
        } cases[] = {
                { "0,1,0x1000,1,cpu,1", "7 fields" },
                { "0,1,0x1000,1,cpu,1,0,9", "7 fields" },
                { "0,1,0x1000,1,cpu,1,", "writes" },
                { "-1,1,0x1000,1,cpu,1,0", "not a row" },
                { "x,1,0x1000,1,cpu,1,0", "not a row" },
                { "0x1,1,0x1000,1,cpu,1,0", "epoch" },
                { "01,1,0x1000,1,cpu,1,0", "epoch" },
                { "0,0,0x1000,1,cpu,1,0", "pid" },
                { "0,4294967296,0x1000,1,cpu,1,0", "pid" },
                { "0, 1,0x1000,1,cpu,1,0", "pid" },
                { "0,1,0x1001,1,cpu,1,0", "page aligned" },
                { "0,1,4097,1,cpu,1,0", "page aligned" },
                { "0,1,0x,1,cpu,1,0", "addr" },
                { "0,1,0x1g00,1,cpu,1,0", "addr" },
                { "0,1,0x10000000000000000,1,cpu,1,0", "addr" },
                { "0,1,0x1000,0,cpu,1,0", "pages" },
                { "0,1,0x1000,-2,cpu,1,0", "pages" },
                { "0,1,0xfffffffffffff000,2,cpu,1,0", "wraps" },
                { "0,1,0x1000,4503599627370496,cpu,1,0", "overflows" },
                { "0,1,0x1000,1,CPU,1,0", "accessor" },
                { "0,1,0x1000,1,gpu8,1,0", "accessor" },
                { "0,1,0x1000,1,gpu01,1,0", "accessor" },
                { "0,1,0x1000,1,gpu+1,1,0", "accessor" },
                { "0,1,0x1000,1,gpu 1,1,0", "accessor" },
                { "0,1,0x1000,1,gpu,1,0", "accessor" },
                { "0,1,0x1000,1,npu0,1,0", "accessor" },
                { "0,1,0x1000,1,cpu,-1,0", "reads" },
                { "0,1,0x1000,1,cpu,1.5,0", "reads" },
                { "0,1,0x1000,1,cpu,18446744073709551616,0", "reads" },
                { "0,1,0x1000,1,cpu,1,-3", "writes" },
                { "0,1,0x1000,1,cpu,1,0 ", "writes" },
                { "epoch,pid,addr,pages,accessor,reads", "column line" },
                { "Epoch,pid,addr,pages,accessor,reads,writes", "column line" },
                { " 0,1,0x1000,1,cpu,1,0", "not a row" },
                { "# spmtier-trace 2", "version" },
                { "# spmtier-trace x", "version" },
                { "# epoch_usec=0", "epoch_usec" },
                { "# epoch_usec=10ms", "epoch_usec" },
                { "# page_size=3000", "page_size" },
                { "# page_size=256", "page_size" },
                { "#hint", "#hint needs" },
                { "#hints 0,1,0x1000,4096,hot", "#hint needs" },
                { "#hint 0,1,0x1000,4096", "5 to 7 fields" },
                { "#hint 0,1,0x1000,4096,hot,0,0,0", "5 to 7 fields" },
                { "#hint 0,1,0x1000,4096,warm", "hint kind" },
                { "#hint 0,1,0x1000,100,hot", "multiple of the page size" },
                { "#hint 0,1,0x1000,0,hot", "hint bytes" },
                { "#hint 0,1,0x1001,4096,hot", "page aligned" },
                { "#hint 0,1,0x1000,4096,pin-gpu,8", "hint gpu" },
                { "#hint 0,1,0x1000,4096,pin-gpu,gpu1", "hint gpu" },
                { "#hint 0,1,0x1000,4096,hot,0,-5", "ttl_usec" },
                { "#hint x,1,0x1000,4096,hot", "hint epoch" },
                { "#hint 0,0,0x1000,4096,hot", "hint pid" },
                { "#hint 0,1,zz,4096,hot", "hint addr" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct spm_trace_header hdr;
                struct spm_trace_record rec;
                const char *e = NULL;
                int r;

                spm_trace_header_init(&hdr);
                r = spm_trace_parse_line(cases[i].line, &hdr, &rec, &e);
                if (r != -EINVAL)
                        test_fail(__FILE__, __LINE__, "'%s' accepted", cases[i].line);
                ASSERT_NOT_NULL(e);
                if (!strstr(e, cases[i].error))
                        test_fail(__FILE__, __LINE__, "'%s': error '%s' lacks '%s'",
                                  cases[i].line, e, cases[i].error);
        }
}

/* Reads a whole trace; returns the first error, or the record count. */
static int read_all(const char *path, struct spm_trace_record *recs, size_t max,
                    char *err, size_t errsize) {
        _cleanup_(spm_trace_closep) struct spm_trace_reader *r = NULL;
        int k, n = 0;

        k = spm_trace_open(path, &r);
        if (k < 0)
                return k;
        for (;;) {
                struct spm_trace_record rec;

                k = spm_trace_next(r, &rec);
                if (k == 0)
                        return n;
                if (k < 0) {
                        snprintf(err, errsize, "%s", spm_trace_error(r) ?: "(none)");
                        /* A failed reader stays failed. */
                        ASSERT_EQ(spm_trace_next(r, &rec), k);
                        return k;
                }
                if ((size_t) n < max)
                        recs[n] = rec;
                n++;
        }
}

static const struct spm_access sample_rows[] = {
        { .pid = 4242, .accessor = SPM_ACC_GPU(0), .addr = 0x7f3a40000000ULL, .len = 2 << 20,
          .reads = 81920, .writes = 0 },
        { .pid = 4242, .accessor = SPM_ACC_CPU, .addr = 0x7f3a40200000ULL, .len = 2 << 20,
          .reads = 1200, .writes = 300 },
        { .pid = 17, .accessor = SPM_ACC_GPU(7), .addr = 0x1000, .len = 4096,
          .reads = 0, .writes = UINT64_MAX },
};

/* Writes a header, the sample rows at epochs 0, 0, 2 and a hint at epoch 1 to a string. */
static char *sample_trace(size_t *ret_size) {
        struct spm_trace_header hdr;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct spm_hint h = { .pid = 4242, .start = 0x7f3a40000000ULL, .len = 4 << 20,
                              .kind = SPM_HINT_PIN_GPU, .gpu = 1, .ttl_usec = 30000 };

        ASSERT_NOT_NULL(f);
        spm_trace_header_init(&hdr);
        hdr.epoch_usec = 5000;
        spm_trace_write_header(f, &hdr);
        spm_trace_write_row(f, &hdr, 0, &sample_rows[0]);
        spm_trace_write_row(f, &hdr, 0, &sample_rows[1]);
        spm_trace_write_hint(f, 1, &h);
        spm_trace_write_row(f, &hdr, 2, &sample_rows[2]);
        ASSERT_EQ(fclose(f), 0);
        *ret_size = size;
        return buf;
}

static void check_sample(const char *path) {
        _cleanup_(spm_trace_closep) struct spm_trace_reader *r = NULL;
        struct spm_trace_record rec;

        ASSERT_OK(spm_trace_open(path, &r));
        /* The header is known right after the open. */
        ASSERT_EQ_U(spm_trace_header(r)->epoch_usec, 5000);
        ASSERT_EQ_U(spm_trace_header(r)->page_size, 4096);
        ASSERT_EQ(spm_trace_header(r)->version, 1u);

        static const uint64_t epochs[] = { 0, 0, 1, 2 };
        for (unsigned i = 0, row = 0; i < 4; i++) {
                ASSERT_EQ(spm_trace_next(r, &rec), 1);
                ASSERT_EQ_U(rec.epoch, epochs[i]);
                if (i == 2) {
                        ASSERT_EQ(rec.kind, SPM_TRACE_HINT);
                        ASSERT_EQ(rec.hint.kind, SPM_HINT_PIN_GPU);
                        ASSERT_EQ(rec.hint.gpu, 1);
                        ASSERT_EQ_U(rec.hint.len, 4 << 20);
                        ASSERT_EQ_U(rec.hint.ttl_usec, 30000);
                        continue;
                }
                ASSERT_EQ(rec.kind, SPM_TRACE_ROW);
                const struct spm_access *w = &sample_rows[row];
                ASSERT_EQ_U(rec.access.pid, w->pid);
                ASSERT_EQ(rec.access.accessor, w->accessor);
                ASSERT_EQ_U(rec.access.addr, w->addr);
                ASSERT_EQ_U(rec.access.len, w->len);
                ASSERT_EQ_U(rec.access.reads, w->reads);
                ASSERT_EQ_U(rec.access.writes, w->writes);
                row++;
        }
        ASSERT_EQ(spm_trace_next(r, &rec), 0);
        ASSERT_EQ(spm_trace_next(r, &rec), 0);
        ASSERT_NULL(spm_trace_error(r));
        ASSERT_EQ(spm_trace_line(r), 8u);
}

TEST(round_trip_plain_and_gzip) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        char path[256];

        text = sample_trace(&size);
        ASSERT_TRUE(strstr(text, "0,4242,0x7f3a40000000,512,gpu0,81920,0\n") != NULL);
        ASSERT_TRUE(strstr(text, "#hint 1,4242,0x7f3a40000000,4194304,pin-gpu,1,30000\n"));

        write_temp(path, sizeof(path), text, false);
        check_sample(path);
        ASSERT_EQ(unlink(path), 0);

        write_temp(path, sizeof(path), text, true);
        check_sample(path);

        /* Standard input, gzip'd. */
        int saved = dup(STDIN_FILENO), fd = open(path, O_RDONLY);
        ASSERT_GE(saved, 0);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(dup2(fd, STDIN_FILENO), STDIN_FILENO);
        close(fd);
        check_sample("-");
        ASSERT_EQ(dup2(saved, STDIN_FILENO), STDIN_FILENO);
        close(saved);
        ASSERT_EQ(unlink(path), 0);
}

TEST(reader_errors_name_file_and_line) {
        static const struct {
                const char *text;
                bool gz;
                unsigned line;
                const char *error;
        } cases[] = {
                { "", false, 0, "empty trace" },
                { "\n\n", false, 1, "first line" },
                { "epoch,pid,addr,pages,accessor,reads,writes\n", false, 1, "first line" },
                { "0,1,0x1000,1,cpu,1,0\n", true, 1, "first line" },
                { "# a comment\n", false, 1, "first line" },
                { "# spmtier-trace 1\n0,1,0x1000,1,cpu,1,0\n", false, 2, "before the column" },
                { "# spmtier-trace 1\n#hint 0,1,0x1000,4096,hot\n", false, 2,
                  "before the column" },
                { "HEADER" "# page_size=8192\n", false, 5, "after the column line" },
                { "HEADER" "epoch,pid,addr,pages,accessor,reads,writes\n", false, 5,
                  "second column line" },
                { "HEADER" "3,1,0x1000,1,cpu,1,0\n2,1,0x1000,1,cpu,1,0\n", false, 6,
                  "epoch 2 after epoch 3" },
                { "HEADER" "3,1,0x1000,1,cpu,1,0\n#hint 1,1,0x1000,4096,hot\n", true, 6,
                  "epoch 1 after epoch 3" },
                { "HEADER" "\n# x\n0,1,0x1000,1,gpu9,1,0\n", true, 7, "accessor" },
                { "HEADER" "0,1,0x1000,1,cpu,1,0", false, 5, NULL },  /* no final newline */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[1024], path[256], err[512] = "", want[512];
                struct spm_trace_record recs[4];
                const char *h = strstr(cases[i].text, "HEADER");
                int k;

                snprintf(text, sizeof(text), "%s%s", h ? header_text : "",
                         h ? h + strlen("HEADER") : cases[i].text);
                write_temp(path, sizeof(path), text, cases[i].gz);
                k = read_all(path, recs, ELEMENTSOF(recs), err, sizeof(err));
                if (!cases[i].error) {
                        ASSERT_EQ(k, 1);
                        ASSERT_EQ_U(recs[0].access.reads, 1);
                } else {
                        ASSERT_EQ(k, -EINVAL);
                        snprintf(want, sizeof(want), "%s:%u: ", path, cases[i].line);
                        if (strncmp(err, want, strlen(want)) != 0 ||
                            !strstr(err, cases[i].error))
                                test_fail(__FILE__, __LINE__, "case %zu: '%s', wanted '%s%s'",
                                          i, err, want, cases[i].error);
                }
                ASSERT_EQ(unlink(path), 0);
        }
}

TEST(reader_truncated_gzip_and_garbage) {
        char path[256], err[512] = "";
        struct spm_trace_record recs[1];
        _cleanup_free_ char *text = NULL;
        size_t size;
        int fd;

        /* A gzip'd trace cut in half is an error, never a silently short trace. */
        text = sample_trace(&size);
        write_temp(path, sizeof(path), text, true);
        off_t len = lseek(fd = open(path, O_RDWR), 0, SEEK_END);
        ASSERT_GT(len, 20);
        ASSERT_EQ(ftruncate(fd, len - 12), 0);
        close(fd);
        ASSERT_EQ(read_all(path, recs, 1, err, sizeof(err)), -EINVAL);
        ASSERT_TRUE(strstr(err, path) == err);
        ASSERT_TRUE(strstr(err, "truncated gzip") || strstr(err, "gzip"));
        ASSERT_EQ(unlink(path), 0);

        /* A NUL byte inside a line. */
        write_temp(path, sizeof(path), header_text, false);
        fd = open(path, O_WRONLY | O_APPEND);
        ASSERT_EQ(write(fd, "0,1,0x1000\0,1,cpu,1,0\n", 22), 22);
        close(fd);
        ASSERT_EQ(read_all(path, recs, 1, err, sizeof(err)), -EINVAL);
        ASSERT_TRUE(strstr(err, ":5: ") != NULL);
        ASSERT_EQ(unlink(path), 0);

        /* An overlong line. */
        char big[6000];
        size_t n = snprintf(big, sizeof(big), "%s# ", header_text);
        memset(big + n, 'x', sizeof(big) - n - 2);
        big[sizeof(big) - 2] = '\n';
        big[sizeof(big) - 1] = '\0';
        write_temp(path, sizeof(path), big, false);
        ASSERT_EQ(read_all(path, recs, 1, err, sizeof(err)), -EINVAL);
        ASSERT_TRUE(strstr(err, ":5: line longer than") != NULL);
        ASSERT_EQ(unlink(path), 0);

        /* Missing files are errno errors, not parse errors. */
        ASSERT_EQ(read_all("/nonexistent/trace.gz", recs, 1, err, sizeof(err)), -ENOENT);
}

TEST(names) {
        char buf[16];

        ASSERT_STREQ(spm_accessor_name(SPM_ACC_CPU, buf, sizeof(buf)), "cpu");
        ASSERT_STREQ(spm_accessor_name(SPM_ACC_GPU(5), buf, sizeof(buf)), "gpu5");
        for (int k = 0; k < _SPM_HINT_KIND_MAX; k++) {
                const char *s = spm_trace_hint_kind_name(k);
                ASSERT_NOT_NULL(s);
                ASSERT_EQ(spm_trace_hint_kind_parse(s, strlen(s)), k);
        }
        ASSERT_NULL(spm_trace_hint_kind_name(_SPM_HINT_KIND_MAX));
        ASSERT_EQ(spm_trace_hint_kind_parse("ho", 2), _SPM_HINT_KIND_INVALID);
}

TEST_MAIN()
