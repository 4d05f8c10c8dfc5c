/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "spmtier/macro.h"
#include "spmtier/workload.h"
#include "test.h"

#define MiB (1ULL << 20)

static struct spm_workload *parse_ok(const char *text) {
        struct spm_workload *w = NULL;
        char err[512] = "";
        FILE *f = fmemopen((void *) text, strlen(text), "r");
        int r;

        ASSERT_NOT_NULL(f);
        r = spm_workload_parse(f, "test.conf", &w, err, sizeof(err));
        fclose(f);
        if (r < 0)
                test_fail(__FILE__, __LINE__, "config rejected: %s", err);
        return w;
}

/* Every record generated, in order. */
struct recs {
        struct spm_trace_record *r;
        size_t n;
};

static int collect(const struct spm_trace_record *rec, void *userdata) {
        struct recs *c = userdata;
        struct spm_trace_record *q = realloc(c->r, (c->n + 1) * sizeof(*q));

        if (!q)
                return -ENOMEM;
        c->r = q;
        c->r[c->n++] = *rec;
        return 0;
}

static struct recs generate(const char *text) {
        _cleanup_(spm_workload_freep) struct spm_workload *w = parse_ok(text);
        struct recs c = {};

        ASSERT_OK(spm_workload_generate(w, collect, &c));
        return c;
}

/* Sum of reads+writes of rows matching epoch (or all, UINT64_MAX) and accessor. */
static uint64_t traffic(const struct recs *c, uint64_t epoch, int accessor) {
        uint64_t s = 0;

        for (size_t i = 0; i < c->n; i++)
                if (c->r[i].kind == SPM_TRACE_ROW &&
                    (epoch == UINT64_MAX || c->r[i].epoch == epoch) &&
                    (accessor < 0 || c->r[i].access.accessor == accessor))
                        s += c->r[i].access.reads + c->r[i].access.writes;
        return s;
}

TEST(config_errors_name_file_and_line) {
        static const struct {
                const char *text;
                unsigned line;
                const char *error;
        } cases[] = {
                { "", 1, "no 'trace' line" },
                { "# only a comment\n", 2, "no 'trace' line" },
                { "trace epochs=10\n", 2, "at least one region" },
                { "region a pid=1 size=2M\n", 1, "'trace' must come first" },
                { "trace epochs=0\n", 1, "epochs=N with N > 0" },
                { "trace\n", 1, "epochs=N" },
                { "trace epochs=10\ntrace epochs=10\n", 2, "second 'trace'" },
                { "trace epochs=10 colour=red\n", 1, "unknown key 'colour'" },
                { "trace epochs=10 epochs=11\n", 1, "given twice" },
                { "trace epochs=ten\n", 1, "epochs=ten: expected" },
                { "trace epochs=10 span=3M\n", 1, "span must be a power of two" },
                { "trace epochs=10 page_size=1000\n", 1, "page_size must be" },
                { "trace epochs=10\nregion a size=2M\n", 2, "needs pid" },
                { "trace epochs=10\nregion a pid=1 size=3M\n", 2, "multiple of the span" },
                { "trace epochs=10\nregion a pid=1 size=2X\n", 2, "size=2X: expected a size" },
                { "trace epochs=10\nregion a pid=1 size=2M\nregion a pid=2 size=2M\n", 3,
                  "declared twice" },
                { "trace epochs=10\nregion a pid=1 size=4M addr=0x200000\n"
                  "region b pid=1 size=2M addr=0x400000\n", 3, "overlaps region 'a'" },
                { "trace epochs=10\nregion a pid=1 size=2M addr=0x1000\n", 2, "span aligned" },
                { "trace epochs=10\nregion a pid=1 size=2M\naccess a gpu0 seq bytes=1M\n", 3,
                  "must follow a 'phase'" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p\n", 3, "epochs=N" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p epochs=1\n"
                  "access b gpu0 seq bytes=1M\n", 4, "unknown region 'b'" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p epochs=1\n"
                  "access a gpu9 seq bytes=1M\n", 4, "accessor 'gpu9'" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p epochs=1\n"
                  "access a gpu0 spiral bytes=1M\n", 4, "unknown pattern 'spiral'" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p epochs=1\n"
                  "access a gpu0 seq\n", 4, "needs bytes=" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p epochs=1\n"
                  "access a gpu0 seq bytes=1M write=1.5\n", 4, "write=1.5" },
                { "trace epochs=10\nregion a pid=1 size=2M\nphase p epochs=1\n"
                  "access a gpu0 seq bytes=1M theta=1\n", 4, "unknown key 'theta'" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "access a gpu0 seq bytes=1M offset=2M size=4M\n", 4, "inside region 'a'" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "access a gpu0 stride bytes=1M stride=3\n", 4, "stride must be" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "access a gpu0 a b c bytes=1M\n", 4, "too many words" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "access a gpu0 bytes=1M\n", 4, "usage: access" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "hint epoch=10 region=a kind=hot\n", 4, "epoch=N with N < the trace's 10" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "hint epoch=1 region=a kind=lukewarm\n", 4, "kind=hot|cold" },
                { "trace epochs=10\nregion a pid=1 size=4M\nphase p epochs=1\n"
                  "hint epoch=1 region=z kind=hot\n", 4, "region=NAME" },
                { "trace epochs=10\nregion a pid=1 size=4M\nfrobnicate x=1\n", 3,
                  "unknown directive 'frobnicate'" },
                { "trace epochs=10\nregion a pid=1 x=1 size=4M extra\n", 2,
                  "'extra' after key=value" },
                { "trace epochs=10\nregion a pid= size=4M\n", 2, "empty key or value" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct spm_workload *w = NULL;
                char err[512] = "", want[64];
                FILE *f = fmemopen((void *) cases[i].text, MAX(strlen(cases[i].text), 1), "r");
                int r;

                ASSERT_NOT_NULL(f);
                if (!cases[i].text[0])  /* fmemopen needs a size > 0: read nothing */
                        fseek(f, 0, SEEK_END);
                r = spm_workload_parse(f, "test.conf", &w, err, sizeof(err));
                fclose(f);
                ASSERT_NULL(w);
                if (r != -EINVAL)
                        test_fail(__FILE__, __LINE__, "case %zu: r=%d, err '%s'", i, r, err);
                snprintf(want, sizeof(want), "test.conf:%u: ", cases[i].line);
                if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, cases[i].error))
                        test_fail(__FILE__, __LINE__, "case %zu: '%s', wanted '%s%s'", i, err,
                                  want, cases[i].error);
        }
}

TEST(seq_sweeps_a_window) {
        /* 8 spans, 2 per epoch, 4 MiB of traffic per epoch = 1 MiB/64 = 16384 per span. */
        struct recs c = generate("trace epochs=8\nregion a pid=5 size=16M\n"
                                 "phase p epochs=8\naccess a gpu1 seq bytes=4M extent=4M\n");

        ASSERT_EQ_U(c.n, 16);
        for (size_t i = 0; i < c.n; i++) {
                const struct spm_trace_record *r = &c.r[i];

                ASSERT_EQ(r->kind, SPM_TRACE_ROW);
                ASSERT_EQ_U(r->epoch, i / 2);
                ASSERT_EQ_U(r->access.pid, 5);
                ASSERT_EQ(r->access.accessor, SPM_ACC_GPU(1));
                ASSERT_EQ_U(r->access.len, 2 * MiB);
                /* The window advances 2 spans per epoch and wraps after 4 epochs. */
                ASSERT_EQ_U((r->access.addr - 0x7f0000000000ULL) / (2 * MiB), i % 8);
                ASSERT_EQ_U(r->access.reads, 2 * MiB / 64);
                ASSERT_EQ_U(r->access.writes, 0);
        }
        free(c.r);
}

TEST(stride_rotates) {
        struct recs c = generate("trace epochs=3\nregion a pid=5 size=16M\n"
                                 "phase p epochs=3\n"
                                 "access a cpu stride bytes=8M stride=4 write=1\n");

        ASSERT_EQ_U(c.n, 6);   /* spans {0,4}, {1,5}, {2,6} */
        for (size_t i = 0; i < c.n; i++) {
                uint64_t span = (c.r[i].access.addr - 0x7f0000000000ULL) / (2 * MiB);

                ASSERT_EQ_U(span % 4, c.r[i].epoch);
                ASSERT_EQ_U(c.r[i].access.reads, 0);
                ASSERT_EQ_U(c.r[i].access.writes, 4 * MiB / 64);
        }
        free(c.r);
}

TEST(zipf_is_skewed_and_hot_window_takes_its_share) {
        /* scatter=0: rank = address order, span 0 the hottest. */
        struct recs c = generate("trace epochs=1\nregion a pid=5 size=256M\n"
                                 "phase p epochs=1\n"
                                 "access a gpu0 zipf bytes=1G theta=1.2 scatter=0 noise=0\n");
        ASSERT_EQ_U(c.n, 128);
        for (size_t i = 1; i < c.n; i++)
                ASSERT_TRUE(c.r[i].access.reads <= c.r[i - 1].access.reads);
        ASSERT_GT(c.r[0].access.reads, 100 * c.r[127].access.reads);
        /* Rounding aside, the traffic is conserved. */
        ASSERT_LE(llabs((long long) traffic(&c, 0, -1) - (long long) ((1ULL << 30) / 64)), 128);
        free(c.r);

        /* hot=0.25 of 16 spans = 4 spans with 80% of the traffic, moving 1 span per epoch. */
        c = generate("trace epochs=3\nregion a pid=5 size=32M\nphase p epochs=3\n"
                     "access a gpu0 hot bytes=64M hot=0.25 share=0.8 move=2M noise=0\n");
        for (uint64_t e = 0; e < 3; e++) {
                uint64_t hot = 0, all = traffic(&c, e, -1);

                for (size_t i = 0; i < c.n; i++) {
                        uint64_t span = (c.r[i].access.addr - 0x7f0000000000ULL) / (2 * MiB);

                        if (c.r[i].epoch == e && span >= e && span < e + 4)
                                hot += c.r[i].access.reads;
                }
                ASSERT_NEAR((double) hot / (double) all, 0.8, 1e-4);
        }
        free(c.r);
}

TEST(prob_and_touch_thin_out) {
        struct recs c = generate("trace epochs=400 seed=9\nregion a pid=5 size=2M\n"
                                 "phase p epochs=1\naccess a cpu uniform bytes=1M prob=0.3\n");
        /* One span: one row per active epoch. Binomial(400, 0.3): mean 120, sd 9.2. */
        ASSERT_GT(c.n, 80);
        ASSERT_LT(c.n, 160);
        free(c.r);

        c = generate("trace epochs=4 seed=9\nregion a pid=5 size=2G\n"
                     "phase p epochs=1\naccess a cpu uniform bytes=1G touch=0.25\n");
        /* 1024 spans x 4 epochs x 0.25: mean 1024, sd 27.7. */
        ASSERT_GT(c.n, 900);
        ASSERT_LT(c.n, 1150);
        free(c.r);
}

TEST(phases_cycle_and_hints_come_first) {
        struct recs c = generate(
                "trace epochs=10\n"
                "region b pid=9 size=2M\n"
                "region a pid=3 size=2M\n"
                "hint epoch=4 region=b kind=cold\n"
                "hint epoch=1 region=a kind=pin-gpu gpu=2 ttl=500\n"
                "hint epoch=4 region=a kind=streaming\n"
                "phase one epochs=2\n"
                "access a gpu0 seq bytes=2M\n"
                "access b cpu seq bytes=2M\n"
                "phase two epochs=3\n"
                "access a gpu3 seq bytes=2M\n");
        uint64_t last_epoch = 0;
        int hints = 0;

        for (size_t i = 0; i < c.n; i++) {
                const struct spm_trace_record *r = &c.r[i];

                ASSERT_GE(r->epoch, last_epoch);
                if (r->epoch > last_epoch && i > 0)
                        /* A new epoch starts with its hints. */
                        ASSERT_TRUE(r->kind == SPM_TRACE_HINT || r->epoch != 4 ||
                                    c.r[i - 1].kind == SPM_TRACE_HINT);
                last_epoch = r->epoch;
                if (r->kind == SPM_TRACE_HINT) {
                        hints++;
                        continue;
                }
                /* Phase one: epochs 0-1, 5-6; phase two: 2-4, 7-9. */
                bool one = r->epoch % 5 < 2;
                if (r->access.pid == 3)
                        ASSERT_EQ(r->access.accessor, one ? SPM_ACC_GPU(0) : SPM_ACC_GPU(3));
                else
                        ASSERT_TRUE(one && r->access.accessor == SPM_ACC_CPU);
                /* pid 3 before pid 9 within an epoch, whatever the declaration order. */
                if (i + 1 < c.n && c.r[i + 1].epoch == r->epoch &&
                    c.r[i + 1].kind == SPM_TRACE_ROW)
                        ASSERT_LT(r->access.pid, c.r[i + 1].access.pid);
        }
        ASSERT_EQ(hints, 3);
        /* Hints: epoch 1 first; then epoch 4 in file order (b cold, then a streaming). */
        size_t h[3], k = 0;
        for (size_t i = 0; i < c.n; i++)
                if (c.r[i].kind == SPM_TRACE_HINT)
                        h[k++] = i;
        ASSERT_EQ_U(c.r[h[0]].epoch, 1);
        ASSERT_EQ(c.r[h[0]].hint.kind, SPM_HINT_PIN_GPU);
        ASSERT_EQ(c.r[h[0]].hint.gpu, 2);
        ASSERT_EQ_U(c.r[h[0]].hint.ttl_usec, 500);
        ASSERT_EQ_U(c.r[h[0]].hint.pid, 3);
        ASSERT_EQ(c.r[h[1]].hint.kind, SPM_HINT_COLD);
        ASSERT_EQ_U(c.r[h[1]].hint.pid, 9);
        ASSERT_EQ(c.r[h[2]].hint.kind, SPM_HINT_STREAMING);
        free(c.r);
}

static uint64_t hash_recs(const struct recs *c) {
        uint64_t h = 1469598103934665603ULL;

        for (size_t i = 0; i < c->n; i++) {
                const struct spm_trace_record *r = &c->r[i];
                uint64_t v[] = { r->kind, r->epoch, r->access.pid, r->access.accessor,
                                 r->access.addr, r->access.len, r->access.reads,
                                 r->access.writes };

                for (size_t j = 0; j < ELEMENTSOF(v); j++)
                        h = (h ^ v[j]) * 1099511628211ULL;
        }
        return h;
}

TEST(deterministic_by_seed) {
        static const char base[] =
                "region a pid=5 size=64M\nregion b pid=6 size=64M\n"
                "phase p epochs=3\n"
                "access a gpu0 zipf bytes=1G touch=0.5\n"
                "access b gpu1 uniform bytes=1G prob=0.5\n"
                "access a cpu hot bytes=64M move=4M touch=0.3\n";
        char text[1024];
        uint64_t h[3];

        for (int i = 0; i < 3; i++) {
                snprintf(text, sizeof(text), "trace epochs=20 seed=%d\n%s", i < 2 ? 7 : 8, base);
                struct recs c = generate(text);
                ASSERT_GT(c.n, 100);
                h[i] = hash_recs(&c);
                free(c.r);
        }
        ASSERT_EQ_U(h[0], h[1]);
        ASSERT_TRUE(h[0] != h[2]);
}

TEST(info_and_header) {
        _cleanup_(spm_workload_freep) struct spm_workload *w = parse_ok(
                "trace epochs=7 epoch_usec=2500 page_size=64K span=1M\n"
                "region a pid=5 size=3M\nregion b pid=5 size=1M\n"
                "phase p epochs=1\naccess a gpu0 seq bytes=1M\n"
                "hint epoch=2 region=b kind=hot\n");
        struct spm_workload_info info;
        struct spm_trace_header hdr;

        spm_workload_get_info(w, &info);
        ASSERT_EQ_U(info.epochs, 7);
        ASSERT_EQ_U(info.footprint, 4 * MiB);
        ASSERT_EQ(info.n_regions, 2u);
        ASSERT_EQ(info.n_phases, 1u);
        ASSERT_EQ(info.n_streams, 1u);
        ASSERT_EQ(info.n_hints, 1u);
        spm_workload_header(w, &hdr);
        ASSERT_EQ_U(hdr.epoch_usec, 2500);
        ASSERT_EQ_U(hdr.page_size, 65536);
        ASSERT_EQ(hdr.version, 1u);
}

TEST_MAIN()
