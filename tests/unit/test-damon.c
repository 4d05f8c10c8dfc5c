/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The damon collector on a fake DAMON sysfs tree: what it writes, how it recovers or refuses
 * running kdamonds, how it reads tried_regions and turns them into observations. The real
 * kernel side is exercised in the vm suite.
 */

#include <errno.h>
#include <unistd.h>

#include "damon.h"
#include "fake-damon.h"
#include "fake-tree.h"
#include "spmtier/macro.h"
#include "sysfs-io.h"
#include "test.h"

static struct spm_damon *collector(const char *root, const char *state_file) {
        struct spm_damon_config c;
        struct spm_damon *d = NULL;

        spm_damon_config_defaults(&c);
        c.admin_root = root;
        c.state_file = state_file;
        c.sample_usec = 2000;
        c.aggr_usec = 40000;
        c.update_usec = 500000;
        c.min_regions = 5;
        c.max_regions = 200;
        c.warmup_usec = 0;
        ASSERT_OK(spm_damon_new(&c, &d));
        return d;
}

static char *state_path(const char *root) {
        char *p;

        ASSERT_TRUE(asprintf(&p, "%s/spmtierd.kdamond", root) > 0);
        return p;
}

TEST(config_validation) {
        struct spm_damon_config c;
        struct spm_damon *d = NULL;

        spm_damon_config_defaults(&c);
        ASSERT_EQ_U(c.sample_usec, 5000);
        ASSERT_EQ_U(c.aggr_usec, 100000);
        c.aggr_usec = 1000; /* shorter than a sample */
        ASSERT_ERROR(spm_damon_new(&c, &d), EINVAL);
        spm_damon_config_defaults(&c);
        c.min_regions = 2;
        ASSERT_ERROR(spm_damon_new(&c, &d), EINVAL);
        spm_damon_config_defaults(&c);
        c.max_regions = 5;
        ASSERT_ERROR(spm_damon_new(&c, &d), EINVAL);
        spm_damon_config_defaults(&c);
        c.page_size = 1000;
        ASSERT_ERROR(spm_damon_new(&c, &d), EINVAL);
        ASSERT_NULL(d);
        ASSERT_OK(spm_damon_new(NULL, &d));
        ASSERT_FALSE(spm_damon_running(d));
        ASSERT_EQ(spm_damon_kdamond_pid(d), -1);
        spm_damon_free(d);
}

TEST(probe_says_what_is_missing) {
        char *root = fake_tree_new(), why[512];

        ASSERT_ERROR(spm_damon_probe(root, why, sizeof(why)), ENOENT);
        ASSERT_NOT_NULL(strstr(why, "CONFIG_DAMON_SYSFS"));
        ASSERT_NOT_NULL(strstr(why, "6.1"));
        fake_tree_free(root);

        root = fake_damon(true);
        ASSERT_OK(spm_damon_probe(root, why, sizeof(why)));
        fake_file(root, "1\n", "kdamonds/nr_kdamonds");
        ASSERT_OK(spm_damon_probe(root, NULL, 0));
        fake_file(root, "paddr\n", CTX "/avail_operations");
        ASSERT_ERROR(spm_damon_probe(root, why, sizeof(why)), EOPNOTSUPP);
        ASSERT_NOT_NULL(strstr(why, "CONFIG_DAMON_VADDR"));
        ASSERT_NOT_NULL(strstr(why, "paddr"));

        /* start says the same when it finds no vaddr. */
        struct spm_damon *d = collector(root, NULL);
        uint32_t pid = (uint32_t) getpid();
        ASSERT_ERROR(spm_damon_start(d, &pid, 1), EOPNOTSUPP);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "vaddr"));
        ASSERT_FALSE(spm_damon_running(d));
        spm_damon_free(d);
        fake_tree_free(root);
}

TEST(start_writes_the_setup) {
        char *root = fake_damon(true), *sf = state_path(root);
        struct spm_damon *d = collector(root, sf);
        uint32_t pids[2] = { (uint32_t) getpid(), (uint32_t) getppid() };
        char b[32];

        ASSERT_OK(spm_damon_start(d, pids, 2));
        ASSERT_TRUE(spm_damon_running(d));
        ASSERT_EQ(spm_damon_kdamond_pid(d), 4242);
        ASSERT_STREQ(spm_damon_error(d), "");
        ASSERT_STREQ(fake_read(root, "kdamonds/nr_kdamonds"), "1\n");
        ASSERT_STREQ(fake_read(root, "kdamonds/0/contexts/nr_contexts"), "1\n");
        ASSERT_STREQ(fake_read(root, CTX "/operations"), "vaddr\n");
        ASSERT_STREQ(fake_read(root, CTX "/monitoring_attrs/intervals/sample_us"), "2000\n");
        ASSERT_STREQ(fake_read(root, CTX "/monitoring_attrs/intervals/aggr_us"), "40000\n");
        ASSERT_STREQ(fake_read(root, CTX "/monitoring_attrs/intervals/update_us"), "500000\n");
        ASSERT_STREQ(fake_read(root, CTX "/monitoring_attrs/nr_regions/min"), "5\n");
        ASSERT_STREQ(fake_read(root, CTX "/monitoring_attrs/nr_regions/max"), "200\n");
        ASSERT_STREQ(fake_read(root, CTX "/targets/nr_targets"), "2\n");
        ASSERT_STREQ(fake_read(root, CTX "/schemes/nr_schemes"), "2\n");
        for (int i = 0; i < 2; i++) {
                snprintf(b, sizeof(b), "%u\n", pids[i]);
                ASSERT_STREQ(fake_read(root, CTX "/targets/%d/pid_target", i), b);
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/action", i), "stat\n");
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/access_pattern/sz/min", i), "0\n");
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/access_pattern/sz/max", i),
                             "18446744073709551615\n");
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/access_pattern/nr_accesses/max", i),
                             "4294967295\n");
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/access_pattern/age/max", i),
                             "4294967295\n");
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/filters/nr_filters", i), "1\n");
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/filters/0/type", i), "target\n");
                snprintf(b, sizeof(b), "%d\n", i);
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/filters/0/damon_target_idx", i), b);
                ASSERT_STREQ(fake_read(root, CTX "/schemes/%d/filters/0/matching", i), "N\n");
        }
        ASSERT_STREQ(fake_read(root, "kdamonds/0/state"), "on\n");
        ASSERT_STREQ(fake_read(root, "spmtierd.kdamond"), "4242\n");

        ASSERT_OK(spm_damon_stop(d));
        ASSERT_FALSE(spm_damon_running(d));
        ASSERT_STREQ(fake_read(root, "kdamonds/0/state"), "off\n");
        ASSERT_STREQ(fake_read(root, "kdamonds/nr_kdamonds"), "0\n");
        ASSERT_TRUE(access(sf, F_OK) < 0);
        ASSERT_OK(spm_damon_stop(d)); /* idempotent */
        spm_damon_free(d);
        free(sf);
        fake_tree_free(root);
}

TEST(collect_reads_tried_regions_per_target) {
        char *root = fake_damon(true);
        struct spm_damon *d = collector(root, NULL);
        uint32_t pids[2] = { (uint32_t) getppid(), (uint32_t) getpid() };
        struct spm_damon_region *r = NULL;
        struct spm_access *a = NULL;
        size_t n = 0;
        int na;

        ASSERT_ERROR(spm_damon_collect(d, &r, &n), ENOTCONN);
        ASSERT_OK(spm_damon_start(d, pids, 2));
        /* Directory names in an order readdir will not sort for us (10 before 2). */
        add_region(root, 0, 0, 0x400000, 0x500000, 0, 12);
        add_region(root, 0, 10, 0x7f0000000000, 0x7f0000400000, 20, 3);
        add_region(root, 0, 2, 0x7f0000400000, 0x7f0003000000, 1, 7);
        add_region(root, 1, 0, 0x10000, 0x11000, 5, 1);
        ASSERT_OK(spm_damon_collect(d, &r, &n));
        ASSERT_STREQ(fake_read(root, "kdamonds/0/state"), "update_schemes_tried_regions\n");
        ASSERT_EQ(n, 4);
        /* Sorted by pid, then start; scheme i's regions belong to pids[i]. */
        uint32_t lo = MIN(pids[0], pids[1]), hi = MAX(pids[0], pids[1]);
        ASSERT_EQ(r[0].pid, lo);
        ASSERT_EQ(r[3].pid, hi);
        for (size_t i = 0; i < n; i++)
                if (r[i].pid == pids[1]) {
                        ASSERT_EQ_U(r[i].start, 0x10000);
                        ASSERT_EQ_U(r[i].end, 0x11000);
                        ASSERT_EQ(r[i].nr_accesses, 5);
                }
        for (size_t i = 0; i + 1 < n; i++)
                if (r[i].pid == r[i + 1].pid)
                        ASSERT_TRUE(r[i].start < r[i + 1].start);

        na = spm_damon_to_accesses(d, r, n, &a);
        ASSERT_EQ(na, 3); /* the region with nr_accesses 0 gives no observation */
        for (int i = 0; i < na; i++) {
                ASSERT_EQ(a[i].accessor, SPM_ACC_CPU);
                ASSERT_EQ_U(a[i].writes, 0);
                if (a[i].addr == 0x7f0000000000) {
                        ASSERT_EQ(a[i].pid, pids[0]);
                        ASSERT_EQ_U(a[i].len, 4 << 20);
                        ASSERT_EQ_U(a[i].reads, 20ULL * 1024 * 64); /* 20 x 1024 pages x 64 */
                }
                if (a[i].addr == 0x10000)
                        ASSERT_EQ_U(a[i].reads, 5ULL * 1 * 64);
        }
        free(a);
        free(r);

        /* A region that is not one, and one that does not parse: named in the error. */
        /* The kernel's state file reads "on" again; the fake's must be told. */
        fake_file(root, "on\n", "kdamonds/0/state");
        add_region(root, 1, 1, 0x20000, 0x20000, 1, 1);
        ASSERT_ERROR(spm_damon_collect(d, &r, &n), EBADMSG);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "tried_regions/1"));
        add_region(root, 1, 1, 0x20000, 0x21000, 1, 1);
        fake_file(root, "lots\n", CTX "/schemes/1/tried_regions/1/nr_accesses");
        fake_file(root, "on\n", "kdamonds/0/state");
        ASSERT_ERROR(spm_damon_collect(d, &r, &n), EBADMSG);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "nr_accesses"));

        /* The kdamond ends by itself when its targets exit. */
        fake_file(root, "off\n", "kdamonds/0/state");
        ASSERT_ERROR(spm_damon_collect(d, &r, &n), ESRCH);
        ASSERT_FALSE(spm_damon_running(d));
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "targets exited"));
        /* ... and its directories go with it. */
        {
                uint64_t nk = 99;

                ASSERT_OK(sysfs_read_u64(&nk, root, "kdamonds/nr_kdamonds"));
                ASSERT_EQ_U(nk, 0);
        }
        spm_damon_free(d);
        fake_tree_free(root);
}

TEST(recovers_own_leftover_refuses_foreign) {
        char *root = fake_damon(true), *sf = state_path(root);
        struct spm_damon *d;
        uint32_t pid = (uint32_t) getpid();

        /* A previous life of ours crashed: kdamond 1 runs with the pid in our state file. */
        fake_file(root, "2\n", "kdamonds/nr_kdamonds");
        fake_file(root, "on\n", "kdamonds/1/state");
        fake_file(root, "777\n", "kdamonds/1/pid");
        fake_file(root, "777\n", "spmtierd.kdamond");
        d = collector(root, sf);
        ASSERT_OK(spm_damon_start(d, &pid, 1));
        ASSERT_STREQ(fake_read(root, "kdamonds/1/state"), "off\n");
        ASSERT_STREQ(fake_read(root, "kdamonds/nr_kdamonds"), "1\n");
        ASSERT_STREQ(fake_read(root, "spmtierd.kdamond"), "4242\n");
        /* One pid, filters present: the single scheme is filtered to target 0 as well. */
        ASSERT_STREQ(fake_read(root, CTX "/schemes/0/filters/0/type"), "target\n");

        /* Changing targets restarts our own kdamond rather than calling it foreign. */
        uint32_t two[2] = { pid, (uint32_t) getppid() };
        ASSERT_OK(spm_damon_set_targets(d, two, 2));
        ASSERT_STREQ(fake_read(root, CTX "/targets/nr_targets"), "2\n");
        ASSERT_OK(spm_damon_set_targets(d, NULL, 0));
        ASSERT_FALSE(spm_damon_running(d));
        spm_damon_free(d);

        /* Someone else's kdamond: refused, nothing touched. */
        fake_file(root, "1\n", "kdamonds/nr_kdamonds");
        fake_file(root, "on\n", "kdamonds/0/state");
        fake_file(root, "999\n", "kdamonds/0/pid");
        fake_file(root, "paddr\n", CTX "/operations");
        d = collector(root, sf);
        ASSERT_ERROR(spm_damon_start(d, &pid, 1), EBUSY);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "not started by us"));
        ASSERT_STREQ(fake_read(root, "kdamonds/0/state"), "on\n");
        ASSERT_STREQ(fake_read(root, CTX "/operations"), "paddr\n");
        ASSERT_FALSE(spm_damon_running(d));
        spm_damon_free(d);
        /* Without a state file every running kdamond is foreign. */
        d = collector(root, NULL);
        ASSERT_ERROR(spm_damon_start(d, &pid, 1), EBUSY);
        spm_damon_free(d);
        free(sf);
        fake_tree_free(root);
}

TEST(refusals) {
        char *root = fake_damon(false);
        struct spm_damon *d = collector(root, NULL);
        uint32_t pids[2] = { (uint32_t) getpid(), (uint32_t) getppid() };
        uint32_t gone = 0x7ffffff0;

        /* Without target filters two targets' regions cannot be told apart. */
        ASSERT_ERROR(spm_damon_start(d, pids, 2), EOPNOTSUPP);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "filters"));
        /* One target needs no filter. */
        ASSERT_OK(spm_damon_start(d, pids, 1));
        ASSERT_STREQ(fake_read(root, CTX "/targets/nr_targets"), "1\n");
        ASSERT_ERROR(spm_damon_set_targets(d, &gone, 1), ESRCH);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "no such process"));
        ASSERT_TRUE(spm_damon_running(d)); /* a bad pid leaves monitoring as it was */
        ASSERT_ERROR(spm_damon_start(d, pids, 0), EINVAL);
        spm_damon_free(d);
        fake_tree_free(root);

        /* No DAMON at all. */
        root = fake_tree_new();
        d = collector(root, NULL);
        ASSERT_ERROR(spm_damon_start(d, pids, 1), ENOENT);
        ASSERT_NOT_NULL(strstr(spm_damon_error(d), "CONFIG_DAMON_SYSFS"));
        spm_damon_free(d);
        fake_tree_free(root);
}

TEST(warmup_then_empty_retry) {
        char *root = fake_damon(true);
        struct spm_damon_config c;
        struct spm_damon *d = NULL;
        struct spm_damon_region *r = NULL;
        uint32_t pid = (uint32_t) getpid();
        size_t n = 7;

        spm_damon_config_defaults(&c);
        ASSERT_EQ_U(c.warmup_usec, 1000000);
        c.admin_root = root;
        c.warmup_usec = 3600ULL * 1000000;
        ASSERT_OK(spm_damon_new(&c, &d));
        ASSERT_OK(spm_damon_start(d, &pid, 1));
        ASSERT_ERROR(spm_damon_collect(d, &r, &n), EAGAIN);
        ASSERT_EQ(n, 7); /* untouched */
        ASSERT_STREQ(fake_read(root, "kdamonds/0/state"), "on\n"); /* nothing asked yet */
        spm_damon_free(d);

        /* No region at all: asked twice, then an empty answer is an answer. */
        d = collector(root, NULL);
        ASSERT_OK(spm_damon_start(d, &pid, 1));
        ASSERT_OK(spm_damon_collect(d, &r, &n));
        ASSERT_EQ(n, 0);
        free(r);
        spm_damon_free(d);
        fake_tree_free(root);
}

TEST(clip_to_a_range) {
        struct spm_access a[] = {
                { .pid = 7, .addr = 0x1000, .len = 0x4000, .reads = 400, .writes = 40 },
                { .pid = 7, .addr = 0x8000, .len = 0x1000, .reads = 9 },   /* outside */
                { .pid = 8, .addr = 0x8000, .len = 0x1000, .reads = 5 },   /* other pid */
                { .pid = 7, .addr = 0x2000, .len = 0x1000, .reads = 3 },   /* inside */
                { .pid = 7, .addr = 0x0, .len = 0x1000, .reads = 3 },      /* ends at lo */
        };
        size_t n = spm_damon_clip(a, ELEMENTSOF(a), 7, 0x2000, 0x4000);

        ASSERT_EQ(n, 3);
        ASSERT_EQ_U(a[0].addr, 0x2000);
        ASSERT_EQ_U(a[0].len, 0x2000);
        ASSERT_EQ_U(a[0].reads, 200); /* half the span, half the accesses */
        ASSERT_EQ_U(a[0].writes, 20);
        ASSERT_EQ(a[1].pid, 8);
        ASSERT_EQ_U(a[1].reads, 5);
        ASSERT_EQ_U(a[2].addr, 0x2000);
        ASSERT_EQ_U(a[2].reads, 3);
}

TEST_MAIN()
