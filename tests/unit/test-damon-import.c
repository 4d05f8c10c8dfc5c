/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "damon-import.h"
#include "spmtier/macro.h"
#include "spmtier/machine.h"
#include "test.h"

static int import(const char *json, const struct spm_damon_options *o,
                  struct spm_damon_trace *ret, char *err, size_t errsize) {
        return spm_damon_import("t.json", json, strlen(json), o, ret, err, errsize);
}

TEST(scaling_and_span_cut) {
        /* One region of 3 MiB starting 1 MiB into a 2 MiB span, 7 sampling hits: pieces of
         * 1 MiB and 2 MiB, reads = 7 x bytes / 64 each. */
        static const char json[] =
                "[{\"target_id\": 42, \"intervals\": {\"sample_us\": \"5000\", "
                "\"aggr_us\": \"100000\"}, \"snapshots\": [{\"start_time\": \"1000\", "
                "\"end_time\": \"100001000\", \"regions\": [{\"start\": \"1048576\", "
                "\"end\": \"4194304\", \"nr_accesses\": {\"samples\": 7, \"percent\": 35}}]}]}]";
        struct spm_damon_options o;
        struct spm_damon_trace t;
        char err[256];

        spm_damon_options_defaults(&o);
        ASSERT_OK(import(json, &o, &t, err, sizeof(err)));
        ASSERT_EQ_U(t.epoch_usec, 100000);
        ASSERT_EQ_U(t.n_rows, 2);
        ASSERT_EQ_U(t.rows[0].addr, 1 << 20);
        ASSERT_EQ_U(t.rows[0].len, 1 << 20);
        ASSERT_EQ_U(t.rows[0].reads, 7 * (1 << 20) / 64);
        ASSERT_EQ_U(t.rows[1].addr, 2 << 20);
        ASSERT_EQ_U(t.rows[1].len, 2 << 20);
        ASSERT_EQ_U(t.rows[1].reads, 7 * (2 << 20) / 64);
        ASSERT_EQ_U(t.rows[0].pid, 42);
        free(t.rows);

        /* --scale 0.5 halves the reads; --pid overrides the target. */
        o.scale = 0.5;
        o.pid = 9;
        ASSERT_OK(import(json, &o, &t, err, sizeof(err)));
        ASSERT_EQ_U(t.rows[1].reads, 7 * (2 << 20) / 128);
        ASSERT_EQ_U(t.rows[1].pid, 9);
        free(t.rows);
}

TEST(epochs_across_targets_are_merged_and_sorted) {
        /* Two targets, no intervals: the epoch is the first snapshot's length (50 ms); target
         * 200's snapshots start 20 ms late and round to the nearest epoch; a region with
         * no access gives no row. */
        static const char json[] =
                "[{\"target_id\": 200, \"intervals\": null, \"snapshots\": ["
                "{\"start_time\": 70000000, \"end_time\": 120000000, \"regions\": ["
                "{\"start\": 8192, \"end\": 12288, \"nr_accesses\": 1}]},"
                "{\"start_time\": 120000000, \"end_time\": 170000000, \"regions\": ["
                "{\"start\": 8192, \"end\": 12288, \"nr_accesses\": 0}]}]},"
                "{\"target_id\": 100, \"snapshots\": ["
                "{\"start_time\": 50000000, \"end_time\": 100000000, \"regions\": ["
                "{\"start\": 4096, \"end\": 8192, \"nr_accesses\": 2}]},"
                "{\"start_time\": 100000000, \"end_time\": 150000000, \"regions\": ["
                "{\"start\": 4096, \"end\": 8192, \"nr_accesses\": 3}]}]}]";
        struct spm_damon_options o;
        struct spm_damon_trace t;
        char err[256];

        spm_damon_options_defaults(&o);
        o.accessor = SPM_ACC_GPU(1);
        ASSERT_OK(import(json, &o, &t, err, sizeof(err)));
        ASSERT_EQ_U(t.epoch_usec, 50000);
        ASSERT_EQ(t.n_records, 2u);
        ASSERT_EQ(t.n_snapshots, 4u);
        ASSERT_EQ_U(t.n_regions, 4);
        ASSERT_EQ_U(t.n_rows, 3);
        /* t0 = 50 ms: target 100 at epochs 0 and 1; target 200's 70 ms rounds to epoch 0. */
        ASSERT_EQ_U(t.rows[0].epoch, 0);
        ASSERT_EQ_U(t.rows[0].pid, 100);
        ASSERT_EQ_U(t.rows[0].reads, 2 * 4096 / 64);
        ASSERT_EQ_U(t.rows[1].epoch, 0);
        ASSERT_EQ_U(t.rows[1].pid, 200);
        ASSERT_EQ_U(t.rows[2].epoch, 1);
        ASSERT_EQ_U(t.rows[2].pid, 100);
        ASSERT_EQ_U(t.rows[2].reads, 3 * 4096 / 64);
        free(t.rows);
}

TEST(errors_leave_nothing_behind) {
        static const struct {
                const char *json;
                const char *error;
        } cases[] = {
                { "[1,", "t.json:1:4: JSON syntax error" },
                { "[\n\n  {\"target_id\": 1, \"snapshots\": [}]", "t.json:3:" },
                { "[{\"target_id\": \"0x10\", \"snapshots\": [{\"start_time\": 0, "
                  "\"end_time\": 10, \"regions\": []}]}]", "record 0: 'target_id' is \"0x10\"" },
                { "[{\"target_id\": 5, \"snapshots\": [{\"start_time\": 0, \"end_time\": 10, "
                  "\"regions\": [{\"start\": 0, \"end\": 4194304, \"nr_accesses\": 1}]}]}]",
                  "more than 1 rows" },
        };
        struct spm_damon_options o;

        spm_damon_options_defaults(&o);
        o.max_rows = 1;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct spm_damon_trace t = { .n_rows = 12345 };
                char err[256] = "";

                ASSERT_ERROR(import(cases[i].json, &o, &t, err, sizeof(err)), EINVAL);
                ASSERT_EQ_U(t.n_rows, 12345);   /* *ret untouched */
                if (!strstr(err, cases[i].error) || strncmp(err, "t.json", 6) != 0)
                        test_fail(__FILE__, __LINE__, "case %zu: '%s' lacks '%s'", i, err,
                                  cases[i].error);
        }
}

TEST_MAIN()
