/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "spmtier/macro.h"
#include "test.h"

struct record {
        unsigned processes, ranges, observations, hints;
        uint32_t last_pid;
        uint64_t range_start[16], range_len[16];
        uint64_t reads;
        enum spm_hint_kind last_hint;
        int fail_observe; /* return this from observe */
};

static int rec_process(void *u, uint32_t pid) {
        struct record *r = u;
        r->processes++;
        r->last_pid = pid;
        return 0;
}
static int rec_range(void *u, uint32_t pid, uint64_t start, uint64_t len) {
        struct record *r = u;
        ASSERT_LT(r->ranges, 16);
        r->range_start[r->ranges] = start;
        r->range_len[r->ranges] = len;
        r->ranges++;
        return 0;
}
static int rec_observe(void *u, const struct spm_access *a) {
        struct record *r = u;
        if (r->fail_observe)
                return r->fail_observe;
        r->observations++;
        r->reads += a->reads;
        return 0;
}
static int rec_hint(void *u, const struct spm_hint *h) {
        struct record *r = u;
        r->hints++;
        r->last_hint = h->kind;
        return 0;
}

static char path[] = "/tmp/test-replay-XXXXXX";

static void write_trace(const char *body) {
        FILE *f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs("# spmtier-trace 1\n# epoch_usec=10000\n# page_size=4096\n"
              "epoch,pid,addr,pages,accessor,reads,writes\n", f);
        fputs(body, f);
        ASSERT_EQ(fclose(f), 0);
}

static const char *trace =
        "0,4242,0x7f0000000000,512,gpu0,100,0\n"
        "0,4242,0x7f0000200000,512,cpu,7,1\n"    /* touches the first span: merged */
        "1,4242,0x7f0000000000,256,gpu0,50,0\n"  /* covered: not declared again */
        "#hint 1,4242,0x7f0000000000,2097152,pin-gpu,0,0\n"
        "3,4243,0x1000,1,gpu1,5,0\n";             /* epoch 2 is empty */

TEST(feeds_epoch_by_epoch) {
        struct spm_collector_args args = { .trace_path = path, .n_gpus = 2 };
        struct record r = {};
        struct spm_collector_sink sink = { .userdata = &r, .process = rec_process, .range = rec_range,
                                           .observe = rec_observe, .hint = rec_hint };
        char msg[256] = "", desc[256];
        void *state;

        int fd = mkstemp(path);
        ASSERT_GE(fd, 0);
        close(fd);
        write_trace(trace);
        ASSERT_OK(spm_collector_replay.init(&args, &state, msg, sizeof(msg)));

        ASSERT_EQ(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), 2);
        ASSERT_EQ(r.processes, 1);
        ASSERT_EQ(r.ranges, 2);   /* the second span was new, then merged into the first */
        ASSERT_EQ(r.observations, 2);
        ASSERT_EQ_U(r.reads, 107);

        ASSERT_EQ(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), 2);
        ASSERT_EQ(r.ranges, 2);
        ASSERT_EQ(r.hints, 1);
        ASSERT_EQ(r.last_hint, SPM_HINT_PIN_GPU);

        ASSERT_EQ(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), 0); /* epoch 2 */
        ASSERT_EQ(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), 1); /* epoch 3 */
        ASSERT_EQ(r.processes, 2);
        ASSERT_EQ_U(r.last_pid, 4243);
        ASSERT_EQ_U(r.range_start[2], 0x1000);
        ASSERT_EQ_U(r.range_len[2], 4096);
        ASSERT_ERROR(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), ENODATA);
        ASSERT_ERROR(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), ENODATA);
        spm_collector_replay.describe(state, desc, sizeof(desc));
        ASSERT_NOT_NULL(strstr(desc, "finished"));
        ASSERT_NOT_NULL(strstr(desc, "5 observations"));
        spm_collector_replay.free(state);
}

TEST(loops_and_filters_accessors) {
        struct spm_collector_args args = { .trace_path = path, .n_gpus = 1, .loop = true };
        struct record r = {};
        struct spm_collector_sink sink = { .userdata = &r, .process = rec_process, .range = rec_range,
                                           .observe = rec_observe, .hint = rec_hint };
        char msg[256] = "";
        void *state;
        int total = 0;

        ASSERT_OK(spm_collector_replay.init(&args, &state, msg, sizeof(msg)));
        /* Two laps of 4 epochs each (the end of the file is noticed in the last epoch's
         * call). gpu1 rows are dropped on a one-GPU node; processes and spans are announced
         * once, not per lap. */
        for (int i = 0; i < 8; i++) {
                int k = spm_collector_replay.collect(state, &sink, msg, sizeof(msg));
                ASSERT_GE(k, 0);
                total += k;
        }
        ASSERT_EQ(total, 8);
        ASSERT_EQ(r.observations, 6);
        ASSERT_EQ(r.hints, 2);
        ASSERT_EQ(r.processes, 1);
        ASSERT_EQ(r.ranges, 2);
        spm_collector_replay.free(state);
}

TEST(sink_errors) {
        struct spm_collector_args args = { .trace_path = path, .n_gpus = 2 };
        struct record r = { .fail_observe = -ENOENT };
        struct spm_collector_sink sink = { .userdata = &r, .process = rec_process, .range = rec_range,
                                           .observe = rec_observe, .hint = rec_hint };
        char msg[256] = "";
        void *state;

        ASSERT_OK(spm_collector_replay.init(&args, &state, msg, sizeof(msg)));
        /* One bad item is skipped (R8)... */
        ASSERT_EQ(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), 0);
        /* ...but running out of memory stops the epoch. */
        r.fail_observe = -ENOMEM;
        ASSERT_ERROR(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), ENOMEM);
        spm_collector_replay.free(state);
}

TEST(bad_traces) {
        struct spm_collector_args args = { .trace_path = "/nonexistent/x.trace", .n_gpus = 2 };
        struct record r = {};
        struct spm_collector_sink sink = { .userdata = &r, .process = rec_process, .range = rec_range,
                                           .observe = rec_observe, .hint = rec_hint };
        char msg[256] = "";
        void *state;

        ASSERT_ERROR(spm_collector_replay.init(&args, &state, msg, sizeof(msg)), ENOENT);
        ASSERT_NOT_NULL(strstr(msg, "/nonexistent/x.trace"));
        args.trace_path = NULL;
        ASSERT_ERROR(spm_collector_replay.init(&args, &state, msg, sizeof(msg)), EINVAL);
        ASSERT_NOT_NULL(strstr(msg, "Trace="));

        args.trace_path = path;
        write_trace("0,4242,0x1000,1,gpu0,1,0\n1,4242,0x1000,zz,gpu0,1,0\n");
        ASSERT_OK(spm_collector_replay.init(&args, &state, msg, sizeof(msg)));
        ASSERT_EQ(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), 1);
        msg[0] = '\0';
        ASSERT_ERROR(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), EINVAL);
        ASSERT_NOT_NULL(strstr(msg, ":6")); /* names the line */
        ASSERT_ERROR(spm_collector_replay.collect(state, &sink, msg, sizeof(msg)), ENODATA);
        spm_collector_replay.free(state);
        unlink(path);
}

TEST_MAIN()
