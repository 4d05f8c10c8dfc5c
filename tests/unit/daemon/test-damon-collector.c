/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmtierd's damon collector ops ([Collect] Collectors=damon) on a fake DAMON tree and this
 * process's real /proc and move_pages: it follows the tracked pids, declares their anonymous
 * mappings where the kernel placed them, and feeds DAMON's regions as CPU observations.
 * damon.c itself is tested in tests/unit/test-damon.c, the real kernel in the vm suite.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "collector.h"
#include "spmtier/macro.h"
#include "test.h"
#include "unit/fake-damon.h"

struct rec {
        unsigned ranges, located, observed;
        bool saw_buffer, buffer_loc0, observed_buffer;
        uint64_t buf, len;
};

static int rec_process(void *u, uint32_t pid) {
        return 0;
}

static int rec_range(void *u, uint32_t pid, uint64_t start, uint64_t length) {
        struct rec *r = u;

        ASSERT_EQ(pid, (uint32_t) getpid());
        r->ranges++;
        if (start <= r->buf && r->buf + r->len <= start + length)
                r->saw_buffer = true;
        return 0;
}

static int rec_observe(void *u, const struct spm_access *a) {
        struct rec *r = u;

        ASSERT_EQ(a->pid, (uint32_t) getpid());
        ASSERT_EQ(a->accessor, SPM_ACC_CPU);
        r->observed++;
        if (a->addr == r->buf && a->len == r->len && a->reads == 10ULL * (r->len / 4096) * 64)
                r->observed_buffer = true;
        return 1;
}

static int rec_hint(void *u, const struct spm_hint *h) {
        return 0;
}

static int rec_locate(void *u, uint32_t pid, uint64_t start, uint64_t length, unsigned loc) {
        struct rec *r = u;

        r->located++;
        if (start <= r->buf && r->buf + r->len <= start + length && loc == 0)
                r->buffer_loc0 = true; /* one NUMA node here: node0 is location 0 */
        return 0;
}

TEST(needs_numa_machine_and_damon) {
        char *root = fake_tree_new(), msg[512] = "";
        struct spm_machine m;
        struct spm_collector_args args = { .sys_root = root, .proc_root = "/proc", .machine = &m };
        void *s = NULL;

        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        ASSERT_ERROR(spm_collector_damon.init(&args, &s, msg, sizeof(msg)), EINVAL);
        ASSERT_NOT_NULL(strstr(msg, "NUMA machine"));
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        ASSERT_ERROR(spm_collector_damon.init(&args, &s, msg, sizeof(msg)), ENOENT);
        ASSERT_NOT_NULL(strstr(msg, "CONFIG_DAMON_SYSFS"));
        ASSERT_NULL(s);
        fake_tree_free(root);
}

TEST(follows_declares_observes) {
        char *root = fake_tree_new(), *admin, msg[512] = "", desc[512];
        struct spm_machine m;
        struct spm_collector_args args = { .sys_root = root, .proc_root = "/proc", .machine = &m };
        struct rec r = {};
        struct spm_collector_sink sink = { .userdata = &r, .process = rec_process,
                                           .range = rec_range, .observe = rec_observe,
                                           .hint = rec_hint, .locate = rec_locate };
        uint32_t self = (uint32_t) getpid();
        char pidstr[32];
        void *s = NULL;
        char *buf;

        ASSERT_TRUE(asprintf(&admin, "%s/kernel/mm/damon/admin", root) > 0);
        fake_damon_in(admin, true);
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        ASSERT_OK(spm_collector_damon.init(&args, &s, msg, sizeof(msg)));
        r.len = 16 * 4096;
        buf = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_TRUE(buf != MAP_FAILED);
        memset(buf, 1, r.len);
        r.buf = (uint64_t) (uintptr_t) buf;

        /* Nothing tracked: nothing declared or fed. */
        ASSERT_EQ(spm_collector_damon.collect(s, &sink, msg, sizeof(msg)), 0);
        ASSERT_EQ(r.ranges, 0);

        ASSERT_OK(spm_collector_damon.track(s, &self, 1, msg, sizeof(msg)));
        snprintf(pidstr, sizeof(pidstr), "%u\n", self);
        ASSERT_STREQ(fake_read(admin, CTX "/targets/0/pid_target"), pidstr);
        ASSERT_STREQ(fake_read(admin, "kdamonds/0/state"), "on\n");
        /* DAMON is warming up: the ranges are declared and located, no observation yet. */
        ASSERT_EQ(spm_collector_damon.collect(s, &sink, msg, sizeof(msg)), 0);
        ASSERT_TRUE(r.saw_buffer);
        ASSERT_TRUE(r.buffer_loc0 || access("/sys/devices/system/node/node0", F_OK) < 0);
        ASSERT_GE(r.located, 1);
        unsigned declared = r.ranges;
        ASSERT_EQ(spm_collector_damon.collect(s, &sink, msg, sizeof(msg)), 0);
        ASSERT_EQ(r.ranges, declared); /* declared once */

        /* After the warm-up, DAMON's regions become observations of the tracked pid. */
        add_region(admin, 0, 0, r.buf, r.buf + r.len, 10, 3);
        add_region(admin, 0, 1, r.buf + r.len, r.buf + 2 * r.len, 0, 3);
        usleep(1100 * 1000);
        ASSERT_EQ(spm_collector_damon.collect(s, &sink, msg, sizeof(msg)), 1);
        ASSERT_TRUE(r.observed_buffer);
        spm_collector_damon.describe(s, desc, sizeof(desc));
        ASSERT_NOT_NULL(strstr(desc, "1 processes"));

        /* The same pids again change nothing (a restart would rewrite the target); none
         * stops DAMON. */
        fake_file(admin, "on\n", "kdamonds/0/state");
        fake_file(admin, "777\n", CTX "/targets/0/pid_target");
        ASSERT_OK(spm_collector_damon.track(s, &self, 1, msg, sizeof(msg)));
        ASSERT_STREQ(fake_read(admin, CTX "/targets/0/pid_target"), "777\n");
        ASSERT_OK(spm_collector_damon.track(s, NULL, 0, msg, sizeof(msg)));
        ASSERT_STREQ(fake_read(admin, "kdamonds/nr_kdamonds"), "0\n");
        ASSERT_EQ(spm_collector_damon.collect(s, &sink, msg, sizeof(msg)), 0);
        spm_collector_damon.free(s);
        munmap(buf, r.len);
        free(admin);
        fake_tree_free(root);
}

TEST_MAIN()
