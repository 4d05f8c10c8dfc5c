/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "mover.h"
#include "spmtier/macro.h"
#include "test.h"

#define MiB (1ULL << 20)

struct results {
        unsigned n;
        int status[16];
        uint64_t moved[16];
};

static void done(void *u, const struct spm_move *m, int status, uint64_t moved) {
        struct results *r = u;
        ASSERT_LT(r->n, 16);
        r->status[r->n] = status;
        r->moved[r->n] = moved;
        r->n++;
}

static struct spm_machine small_machine(void) {
        struct spm_machine m;
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        m.capacity[SPM_LOC_GPU(0)] = 8 * MiB; /* four granules */
        return m;
}

TEST(moves_fill_vram_then_partial_then_enomem) {
        struct spm_machine m = small_machine();
        struct spm_mover_args args = { .machine = &m };
        struct results r = {};
        char msg[128], desc[256];
        void *s;
        uint64_t used[SPM_MAX_LOCS] = { [SPM_LOC_SYSMEM] = 64 * MiB };

        ASSERT_OK(spm_mover_sim.init(&args, &s, msg, sizeof(msg)));
        spm_mover_sim.set_used(s, used);
        struct spm_move mv[] = {
                { .pid = 1, .start = 0, .length = 4 * MiB, .from = 0, .to = SPM_LOC_GPU(0) },
                { .pid = 1, .start = 4 * MiB, .length = 6 * MiB, .from = 0, .to = SPM_LOC_GPU(0) },
                { .pid = 1, .start = 16 * MiB, .length = 2 * MiB, .from = 0, .to = SPM_LOC_GPU(0) },
                { .pid = 1, .start = 0, .length = 2 * MiB, .from = SPM_LOC_GPU(0), .to = 0 },
                { .pid = 1, .start = 16 * MiB, .length = 2 * MiB, .from = 0, .to = SPM_LOC_GPU(0) },
                { .pid = 1, .start = 0, .length = 2 * MiB, .from = 0, .to = 0 },
                { .pid = 1, .start = 0, .length = 2 * MiB, .from = 0, .to = 42 },
        };
        ASSERT_EQ(spm_mover_sim.submit(s, mv, ELEMENTSOF(mv), done, &r), (int) ELEMENTSOF(mv));
        ASSERT_EQ(r.n, ELEMENTSOF(mv));
        ASSERT_EQ(r.status[0], 0);
        ASSERT_EQ_U(r.moved[0], 4 * MiB);
        ASSERT_EQ(r.status[1], 0);                    /* partial: 4 MiB of 6 fit */
        ASSERT_EQ_U(r.moved[1], 4 * MiB);
        ASSERT_EQ(r.status[2], -ENOMEM);              /* full */
        ASSERT_EQ_U(r.moved[2], 0);
        ASSERT_EQ(r.status[3], 0);                    /* make room... */
        ASSERT_EQ(r.status[4], 0);                    /* ...and it fits again */
        ASSERT_EQ_U(r.moved[4], 2 * MiB);
        ASSERT_EQ(r.status[5], -EINVAL);
        ASSERT_EQ(r.status[6], -EINVAL);
        spm_mover_sim.describe(s, desc, sizeof(desc));
        ASSERT_NOT_NULL(strstr(desc, "7 moves"));
        ASSERT_NOT_NULL(strstr(desc, "3 failed, 1 partial"));
        spm_mover_sim.free(s);
}

TEST(fail_every_nth) {
        struct spm_machine m = small_machine();
        struct spm_mover_args args = { .machine = &m, .fail_every = 3 };
        struct results r = {};
        char msg[128];
        void *s;

        ASSERT_OK(spm_mover_sim.init(&args, &s, msg, sizeof(msg)));
        struct spm_move mv = { .pid = 1, .length = 4096, .from = SPM_LOC_GPU(0), .to = 0 };
        for (int i = 0; i < 6; i++)
                ASSERT_EQ(spm_mover_sim.submit(s, &mv, 1, done, &r), 1);
        ASSERT_EQ(r.status[0], 0);
        ASSERT_EQ(r.status[1], 0);
        ASSERT_EQ(r.status[2], -EBUSY);
        ASSERT_EQ(r.status[5], -EBUSY);
        spm_mover_sim.free(s);

        args.machine = NULL;
        ASSERT_ERROR(spm_mover_sim.init(&args, &s, msg, sizeof(msg)), EINVAL);
}

TEST_MAIN()
