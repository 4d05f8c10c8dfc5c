/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmtierd's numa mover ops ([Move] Mover=numa) over this host's real move_pages(2), on the
 * test's own pages: one NUMA node here, so a move to node 0 completes and one to node 1 fails
 * with -ENODEV. numa-mover.c itself is tested in tests/unit/test-numa-mover.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mover.h"
#include "spmtier/macro.h"
#include "test.h"

struct results {
        unsigned n;
        int status[4];
        uint64_t moved[4];
};

static void done(void *u, const struct spm_move *m, int status, uint64_t moved) {
        struct results *r = u;

        ASSERT_LT(r->n, 4);
        r->status[r->n] = status;
        r->moved[r->n] = moved;
        r->n++;
}

TEST(needs_a_numa_machine) {
        struct spm_machine m;
        struct spm_mover_args args = { .machine = &m };
        char msg[256] = "";
        void *s = NULL;

        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        ASSERT_ERROR(spm_mover_numa.init(&args, &s, msg, sizeof(msg)), EINVAL);
        ASSERT_NOT_NULL(strstr(msg, "NUMA machine"));
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        snprintf(m.loc_name[2], sizeof(m.loc_name[2]), "hbm2");
        ASSERT_ERROR(spm_mover_numa.init(&args, &s, msg, sizeof(msg)), EINVAL);
        ASSERT_NOT_NULL(strstr(msg, "hbm2"));
        ASSERT_NULL(s);
}

TEST(moves_own_pages) {
        struct spm_machine m;
        struct spm_mover_args args = { .machine = &m };
        struct results r = {};
        size_t page = (size_t) sysconf(_SC_PAGESIZE), len = 8 * page;
        char msg[256] = "", desc[256];
        void *s = NULL;
        char *buf;

        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        ASSERT_OK(spm_mover_numa.init(&args, &s, msg, sizeof(msg)));
        buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_TRUE(buf != MAP_FAILED);
        (void) madvise(buf, len, MADV_NOHUGEPAGE);
        memset(buf, 1, len);
        struct spm_move mv[] = {
                { .pid = (uint32_t) getpid(), .start = (uint64_t) (uintptr_t) buf,
                  .length = len, .from = 1, .to = 0 },
                { .pid = (uint32_t) getpid(), .start = (uint64_t) (uintptr_t) buf,
                  .length = len, .from = 0, .to = 1 },
        };
        if (access("/sys/devices/system/node/node1", F_OK) == 0)
                test_skip("this host has a node 1: the failing move would succeed");
        ASSERT_EQ(spm_mover_numa.submit(s, mv, 2, done, &r), 2);
        ASSERT_EQ(r.n, 2);
        if (r.status[0] == -EPERM || r.status[0] == -ENOSYS)
                test_skip("move_pages(2) is not permitted here: %s", strerror(-r.status[0]));
        ASSERT_EQ(r.status[0], 0);
        ASSERT_EQ_U(r.moved[0], len);
        ASSERT_EQ(r.status[1], -ENODEV);
        ASSERT_EQ_U(r.moved[1], 0);
        spm_mover_numa.describe(s, desc, sizeof(desc));
        ASSERT_NOT_NULL(strstr(desc, "2 moves"));
        ASSERT_NOT_NULL(strstr(desc, "1 failed"));
        /* A move the mover cannot take is refused whole. */
        mv[0].start += 1;
        ASSERT_ERROR(spm_mover_numa.submit(s, mv, 1, done, &r), EINVAL);
        ASSERT_EQ(r.n, 2);
        munmap(buf, len);
        spm_mover_numa.free(s);
}

TEST_MAIN()
