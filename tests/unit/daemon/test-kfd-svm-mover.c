/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kfd-svm mover alone: a recording agent link, a topology in a temp dir. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mover.h"
#include "spmtier/macro.h"
#include "test.h"

#define MiB (1024ULL * 1024)

static struct {
        struct spm_agent_command sent[64];
        unsigned n_sent;
        int send_result;
        struct spm_move done[64];
        int status[64];
        uint64_t moved[64];
        unsigned n_done;
} rec;

static int rec_send(void *u, const struct spm_agent_command *c) {
        if (rec.send_result < 0)
                return rec.send_result;
        ASSERT_LT(rec.n_sent, 64);
        rec.sent[rec.n_sent++] = *c;
        return 0;
}

static void rec_done(void *u, const struct spm_move *m, int status, uint64_t moved) {
        ASSERT_LT(rec.n_done, 64);
        rec.done[rec.n_done] = *m;
        rec.status[rec.n_done] = status;
        rec.moved[rec.n_done++] = moved;
}

static char sysroot[256];

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

/* Node 0 the CPU (gpu_id 0), nodes 1 and 2 GPUs 4369 and 4642. */
static void make_topology(void) {
        static const char *const ids[] = { "0\n", "4369\n", "4642\n" };
        char p[512];

        snprintf(sysroot, sizeof(sysroot), "/tmp/test-kfd-svm.XXXXXX");
        ASSERT_NOT_NULL(mkdtemp(sysroot));
        for (unsigned n = 0; n < 3; n++) {
                snprintf(p, sizeof(p), "%s/class/kfd/kfd/topology/nodes/%u", sysroot, n);
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "mkdir -p %s", p);
                ASSERT_EQ(system(cmd), 0);
                strcat(p, "/gpu_id");
                write_file(p, ids[n]);
        }
}

static void *new_mover(uint64_t budget, uint64_t timeout_usec) {
        static struct spm_agent_link link = { NULL, rec_send };
        struct spm_mover_args a = {
                .sys_root = sysroot, .agents = &link, .budget_bytes = budget,
                .epoch_usec = 1000000, .timeout_usec = timeout_usec,
        };
        char msg[256] = "";
        void *k = NULL;

        memset(&rec, 0, sizeof(rec));
        ASSERT_OK(spm_mover_kfd_svm.init(&a, &k, msg, sizeof(msg)));
        return k;
}

static struct spm_move mv(uint32_t pid, uint64_t start, uint64_t len, uint8_t from, uint8_t to) {
        return (struct spm_move) { .pid = pid, .job_id = 7, .start = start, .length = len,
                                   .from = from, .to = to };
}

static void report(void *k, const struct spm_agent_command *c, int status, uint64_t moved,
                   int64_t preferred) {
        struct spm_agent_report r = { .pid = c->pid, .id = c->id, .status = status,
                                      .moved_bytes = moved, .preferred = preferred,
                                      .prefetch = preferred };
        spm_mover_kfd_svm.report(k, &r);
}

TEST(needs_a_topology) {
        struct spm_agent_link link = { NULL, rec_send };
        struct spm_mover_args a = { .sys_root = "/nonexistent", .agents = &link };
        char msg[256] = "";
        void *k = NULL;

        ASSERT_LT(spm_mover_kfd_svm.init(&a, &k, msg, sizeof(msg)), 0);
        ASSERT_TRUE(strstr(msg, "no KFD GPU") != NULL);
        a.agents = NULL;
        ASSERT_EQ(spm_mover_kfd_svm.init(&a, &k, msg, sizeof(msg)), -EINVAL);
}

TEST(commands_name_gpu_ids_and_results_reach_the_engine) {
        make_topology();
        void *k = new_mover(0, 0);
        struct spm_move m[3] = {
                mv(10, 0x100000, 4 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(1)),
                mv(10, 0x900000, 2 * MiB, SPM_LOC_GPU(0), SPM_LOC_SYSMEM),
                mv(11, 0x100000, 2 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(0)),
        };

        ASSERT_EQ(spm_mover_kfd_svm.submit(k, m, 3, rec_done, NULL), 3);
        /* Demotions first (room before promotions), one command per process at a time: pid
         * 10's promotion waits for its demotion. The GPU it leaves keeps its mapping. */
        ASSERT_EQ(rec.n_sent, 2);
        ASSERT_EQ(rec.sent[0].start, 0x900000);
        ASSERT_EQ(rec.sent[0].to_gpu_id, 0);
        ASSERT_EQ(rec.sent[0].access_gpu_id, 4369);
        ASSERT_EQ(rec.sent[1].pid, 11);
        ASSERT_EQ(rec.sent[1].to_gpu_id, 4369);
        ASSERT_EQ(spm_mover_kfd_svm.gpu_id(k, 1), 4642);
        ASSERT_EQ(spm_mover_kfd_svm.gpu_id(k, 5), 0);

        /* A report of someone else's id (an earlier daemon) changes nothing. */
        struct spm_agent_command bogus = { .id = 999, .pid = 10 };
        report(k, &bogus, 0, 4 * MiB, 4642);
        ASSERT_EQ(rec.n_done, 0);

        /* A demotion GET confirms counts whole even when the counters saw nothing. */
        report(k, &rec.sent[0], 0, 0, 0);
        ASSERT_EQ(rec.n_done, 1);
        ASSERT_EQ(rec.status[0], 0);
        ASSERT_EQ(rec.moved[0], 2 * MiB);
        /* pid 10's promotion leaves now. */
        ASSERT_EQ(rec.n_sent, 3);
        ASSERT_EQ(rec.sent[2].to_gpu_id, 4642);
        ASSERT_EQ(rec.sent[2].access_gpu_id, 4642);
        report(k, &rec.sent[2], 0, 3 * MiB, 4642); /* partial */
        ASSERT_EQ(rec.status[1], 0);
        ASSERT_EQ(rec.moved[1], 3 * MiB);
        /* A VRAM prefetch that "succeeded" with nothing moved: not resident. */
        report(k, &rec.sent[1], 0, 0, 4369);
        ASSERT_EQ(rec.status[2], -EAGAIN);
        ASSERT_EQ(rec.moved[2], 0);
        /* VRAM was full, or the range was there already (the engine would never learn it):
         * it goes home unpinned, which makes "not resident" true either way. That move is
         * the mover's own: the engine hears nothing of it. */
        ASSERT_EQ(rec.n_sent, 4);
        ASSERT_EQ(rec.sent[3].pid, 11);
        ASSERT_EQ(rec.sent[3].start, 0x100000);
        ASSERT_EQ(rec.sent[3].length, 2 * MiB);
        ASSERT_EQ(rec.sent[3].to_gpu_id, 0);
        ASSERT_EQ(rec.sent[3].mode, SPM_MOVE_HOME);
        /* Reported twice: the second is ignored. */
        report(k, &rec.sent[1], 0, 2 * MiB, 4369);
        ASSERT_EQ(rec.n_done, 3);
        report(k, &rec.sent[3], 0, 2 * MiB, 0);
        ASSERT_EQ(rec.n_done, 3);
        char buf[512];
        spm_mover_kfd_svm.describe(k, buf, sizeof(buf));
        ASSERT_TRUE(strstr(buf, "1 not-resident ranges brought home") != NULL);
        /* The same promotion is held back a while instead of retried. */
        ASSERT_EQ(spm_mover_kfd_svm.submit(k, &m[2], 1, rec_done, NULL), 1);
        ASSERT_EQ(rec.n_sent, 4);
        ASSERT_EQ(rec.status[3], -EAGAIN);
        ASSERT_EQ(rec.n_done, 4);
        /* A demotion or a pin that reports nothing moved brings nothing home. */
        struct spm_move down = mv(12, 0x100000, 2 * MiB, SPM_LOC_GPU(0), SPM_LOC_SYSMEM);
        ASSERT_EQ(spm_mover_kfd_svm.submit(k, &down, 1, rec_done, NULL), 1);
        report(k, &rec.sent[4], 0, 0, 0);
        ASSERT_EQ(rec.n_sent, 5);
        spm_mover_kfd_svm.free(k);
        ASSERT_EQ(rec.n_done, 5);
}

TEST(modes_pin_home_and_cold_demotions) {
        make_topology();
        void *k = new_mover(1 * MiB, 0);
        struct spm_move held = mv(10, 0x100000, 2 * MiB, SPM_LOC_GPU(0), SPM_LOC_GPU(0));
        struct spm_move cold = mv(11, 0x100000, 2 * MiB, SPM_LOC_GPU(0), SPM_LOC_SYSMEM);
        struct spm_move pinned = mv(12, 0x100000, 2 * MiB, SPM_LOC_GPU(0), SPM_LOC_SYSMEM);

        held.reason = SPM_REASON_QUARANTINE;
        cold.reason = SPM_REASON_COLD;
        pinned.reason = SPM_REASON_PIN;
        ASSERT_EQ(spm_mover_kfd_svm.submit_mode(k, &held, 1, _SPM_MOVE_MODE_MAX, rec_done, NULL),
                  -EINVAL);
        /* A pin moves nothing: it leaves at once, whatever the budget. */
        ASSERT_EQ(spm_mover_kfd_svm.submit_mode(k, &held, 1, SPM_MOVE_PIN, rec_done, NULL), 1);
        ASSERT_EQ(rec.n_sent, 1);
        ASSERT_EQ(rec.sent[0].mode, SPM_MOVE_PIN);
        ASSERT_EQ(rec.sent[0].to_gpu_id, 4369);
        report(k, &rec.sent[0], 0, 4 * MiB, 4369); /* GPU faults moved something meanwhile */
        ASSERT_EQ(rec.n_done, 1);
        ASSERT_EQ(rec.status[0], 0);
        ASSERT_EQ(rec.moved[0], 0);
        /* A range that cooled down goes home unpinned; a hint's demotion is pinned. The 1 MiB
         * budget lets a 2 MiB move leave only when the bucket is full. */
        ASSERT_EQ(spm_mover_kfd_svm.submit(k, &cold, 1, rec_done, NULL), 1);
        ASSERT_EQ(rec.n_sent, 2);
        ASSERT_EQ(rec.sent[1].mode, SPM_MOVE_HOME);
        ASSERT_EQ(rec.sent[1].to_gpu_id, 0);
        ASSERT_EQ(spm_mover_kfd_svm.submit(k, &pinned, 1, rec_done, NULL), 1);
        report(k, &rec.sent[1], 0, 2 * MiB, -1); /* PREFERRED_LOC undefined, PREFETCH_LOC 0 */
        ASSERT_EQ(rec.status[1], 0);
        ASSERT_EQ(rec.moved[1], 2 * MiB);
        for (unsigned i = 0; i < 200 && rec.n_sent < 3; i++) {
                usleep(20000);
                spm_mover_kfd_svm.tick(k);
        }
        ASSERT_EQ(rec.n_sent, 3);
        ASSERT_EQ(rec.sent[2].mode, SPM_MOVE_PLACE);
        ASSERT_EQ(rec.sent[2].pid, 12);
        /* A reset goes home unpinned by request. */
        ASSERT_EQ(spm_mover_kfd_svm.submit_mode(k, &pinned, 1, SPM_MOVE_HOME, rec_done, NULL), 1);
        spm_mover_kfd_svm.free(k);
        ASSERT_EQ(rec.n_done, 4);
        ASSERT_EQ(rec.status[2], -ECANCELED);
        ASSERT_EQ(rec.status[3], -ECANCELED);
}

TEST(failures_timeouts_and_dead_agents) {
        void *k = new_mover(0, 1000);
        struct spm_move m[3] = {
                mv(20, 0x100000, 2 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(0)),
                mv(20, 0x300000, 2 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(0)),
                mv(21, 0x100000, 2 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(0)),
        };

        ASSERT_EQ(spm_mover_kfd_svm.submit(k, m, 3, rec_done, NULL), 3);
        ASSERT_EQ(rec.n_sent, 2);
        report(k, &rec.sent[0], -ESTALE, 0, -1);
        ASSERT_EQ(rec.status[0], -ESTALE);
        ASSERT_EQ(rec.n_sent, 3);
        /* pid 20 dies with a command running: it fails -ESRCH, pid 21 is untouched. */
        spm_mover_kfd_svm.process_gone(k, 20);
        ASSERT_EQ(rec.n_done, 2);
        ASSERT_EQ(rec.status[1], -ESRCH);
        ASSERT_EQ(rec.done[1].start, 0x300000);
        /* pid 21's agent never answers. */
        usleep(5000);
        spm_mover_kfd_svm.tick(k);
        ASSERT_EQ(rec.n_done, 3);
        ASSERT_EQ(rec.status[2], -ETIMEDOUT);
        char buf[256];
        spm_mover_kfd_svm.describe(k, buf, sizeof(buf));
        ASSERT_TRUE(strstr(buf, "0 waiting") != NULL);
        ASSERT_TRUE(strstr(buf, "1 timed out") != NULL);
        /* No agent at all: the move fails at once. */
        rec.send_result = -ESRCH;
        ASSERT_EQ(spm_mover_kfd_svm.submit(k, m, 1, rec_done, NULL), 1);
        ASSERT_EQ(rec.status[3], -ESRCH);
        /* A move to a GPU the node lacks. */
        rec.send_result = 0;
        struct spm_move bad = mv(22, 0x100000, 2 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(5));
        ASSERT_EQ(spm_mover_kfd_svm.submit(k, &bad, 1, rec_done, NULL), 1);
        ASSERT_EQ(rec.status[4], -EINVAL);
        spm_mover_kfd_svm.free(k);
}

TEST(paced_by_the_budget) {
        void *k = new_mover(4 * MiB, 0);
        struct spm_move m[4];
        for (unsigned i = 0; i < 4; i++)
                m[i] = mv(30 + i, 0x100000, 4 * MiB, SPM_LOC_SYSMEM, SPM_LOC_GPU(0));

        ASSERT_EQ(spm_mover_kfd_svm.submit(k, m, 4, rec_done, NULL), 4);
        /* 4 MiB per second: the first leaves, the rest wait for the budget to refill. */
        ASSERT_EQ(rec.n_sent, 1);
        spm_mover_kfd_svm.tick(k);
        ASSERT_EQ(rec.n_sent, 1);
        /* Freeing the mover fails what still waits, so no caller waits forever. */
        spm_mover_kfd_svm.free(k);
        ASSERT_EQ(rec.n_done, 4);
        for (unsigned i = 0; i < 4; i++)
                ASSERT_EQ(rec.status[i], -ECANCELED);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", sysroot);
        ASSERT_EQ(system(cmd), 0);
}

TEST_MAIN()
