/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The numa mover against this host's real move_pages(2), on a child process (the daemon moves
 * other processes' pages). The host has one NUMA node, so moves to node 0 succeed (pages are
 * already there), moves to a node without memory fail with -ENODEV; the VM suite covers real
 * moves between two nodes.
 */

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "numa-mover.h"
#include "spmtier/macro.h"
#include "test.h"

#define PAGE 4096UL
#define TOUCHED 48    /* pages 0..47 written */
#define UNTOUCHED 16  /* pages 48..63 mapped, never touched */
#define HOLE 16       /* pages 64..79 unmapped again */
#define MISSING_NODE 63 /* below MAX_NUMNODES on Debian kernels, never online here */

struct child {
        pid_t pid;
        uint64_t addr;
        int cmd_fd;
};

static struct child child_start(void) {
        int to_child[2], to_parent[2];
        struct child c = {};

        ASSERT_EQ(pipe(to_child), 0);
        ASSERT_EQ(pipe(to_parent), 0);
        c.pid = fork();
        ASSERT_GE(c.pid, 0);
        if (c.pid == 0) {
                size_t len = (TOUCHED + UNTOUCHED + HOLE) * PAGE;
                char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);
                uint64_t a = (uint64_t) (uintptr_t) p;
                char x;

                close(to_child[1]);
                close(to_parent[0]);
                if (p == MAP_FAILED)
                        _exit(1);
                /* 4 KiB pages, so every page has its own status. */
                (void) madvise(p, len, MADV_NOHUGEPAGE);
                for (size_t i = 0; i < TOUCHED; i++)
                        p[i * PAGE] = (char) i;
                munmap(p + (TOUCHED + UNTOUCHED) * PAGE, HOLE * PAGE);
                if (write(to_parent[1], &a, sizeof(a)) != sizeof(a))
                        _exit(1);
                /* Wait until the parent closes its end, then check the data survived. */
                while (read(to_child[0], &x, 1) > 0)
                        ;
                for (size_t i = 0; i < TOUCHED; i++)
                        if (p[i * PAGE] != (char) i)
                                _exit(2);
                _exit(0);
        }
        close(to_child[0]);
        close(to_parent[1]);
        ASSERT_EQ(read(to_parent[0], &c.addr, sizeof(c.addr)), (ssize_t) sizeof(c.addr));
        close(to_parent[0]);
        c.cmd_fd = to_child[1];
        return c;
}

/* Ends the child; asserts it saw its data intact. */
static void child_stop(struct child *c) {
        int st;

        close(c->cmd_fd);
        ASSERT_EQ(waitpid(c->pid, &st, 0), c->pid);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 0);
}

static struct spm_numa_mover *mover(size_t batch) {
        struct spm_numa_mover_config c = {
                .n_locs = 2, .loc_node = { 0, MISSING_NODE }, .batch_pages = batch,
                .page_size = PAGE,
        };
        struct spm_numa_mover *m = NULL;

        ASSERT_OK(spm_numa_mover_new(&c, &m));
        return m;
}

static struct spm_move move_of(pid_t pid, uint64_t start, uint64_t pages, unsigned to) {
        return (struct spm_move) { .pid = (uint32_t) pid, .job_id = 1, .start = start,
                                   .length = pages * PAGE, .from = 0, .to = (uint8_t) to };
}

struct results {
        struct spm_numa_move_result r[8];
        size_t n;
};

static void collect(const struct spm_numa_move_result *r, void *userdata) {
        struct results *rs = userdata;

        ASSERT_LT(rs->n, ELEMENTSOF(rs->r));
        rs->r[rs->n++] = *r;
}

static void require_move_pages(void) {
        void *p = &p;
        int status;

        p = (void *) ((uintptr_t) p & ~(PAGE - 1));
        if (syscall(SYS_move_pages, 0, 1, &p, NULL, &status, 0) < 0 &&
            (errno == ENOSYS || errno == EPERM))
                test_skip("move_pages(2) is not available here: %s", strerror(errno));
}

TEST(config_and_submit_validation) {
        struct spm_numa_mover_config c = { .n_locs = 0 };
        struct spm_numa_mover *m = NULL;
        struct spm_move bad[] = {
                move_of(1, 0x1000, 1, 0),
                { .pid = 1, .start = 0x1001, .length = PAGE, .to = 0 },
        };
        uint64_t bytes;

        ASSERT_ERROR(spm_numa_mover_new(&c, &m), EINVAL);
        c = (struct spm_numa_mover_config) { .n_locs = 1, .loc_node = { -1 } };
        ASSERT_ERROR(spm_numa_mover_new(&c, &m), EINVAL);
        c = (struct spm_numa_mover_config) { .n_locs = 1, .page_size = 3000 };
        ASSERT_ERROR(spm_numa_mover_new(&c, &m), EINVAL);
        ASSERT_NULL(m);

        m = mover(0);
        ASSERT_ERROR(spm_numa_mover_submit(m, bad, 2), EINVAL);
        bad[1] = move_of(1, 0x1000, 1, 2); /* location 2 has no node */
        ASSERT_ERROR(spm_numa_mover_submit(m, bad, 2), EINVAL);
        bad[1] = move_of(1, 0x1000, 0, 0); /* empty */
        ASSERT_ERROR(spm_numa_mover_submit(m, bad, 2), EINVAL);
        ASSERT_EQ(spm_numa_mover_pending(m, &bytes), 0); /* nothing queued on error */
        ASSERT_OK(spm_numa_mover_submit(m, bad, 1));
        ASSERT_EQ(spm_numa_mover_pending(m, &bytes), 1);
        ASSERT_EQ_U(bytes, PAGE);
        spm_numa_mover_free(m);
}

TEST(moves_to_node0_and_reads_back) {
        struct child c;
        struct spm_numa_mover *m;
        struct results rs = {};
        struct spm_move mv;
        struct spm_numa_placement p;

        require_move_pages();
        c = child_start();
        m = mover(0);
        mv = move_of(c.pid, c.addr, TOUCHED + UNTOUCHED, 0);
        ASSERT_OK(spm_numa_mover_submit(m, &mv, 1));
        ASSERT_EQ(spm_numa_mover_run(m, 0, collect, &rs), (TOUCHED + UNTOUCHED) * PAGE);
        ASSERT_EQ(rs.n, 1);
        ASSERT_EQ(rs.r[0].status, 0);
        ASSERT_EQ_U(rs.r[0].pages, TOUCHED + UNTOUCHED);
        ASSERT_EQ_U(rs.r[0].pages_moved, TOUCHED);
        ASSERT_EQ_U(rs.r[0].pages_absent, UNTOUCHED);
        ASSERT_EQ_U(rs.r[0].moved_bytes, mv.length); /* absent pages count as moved */
        ASSERT_EQ(rs.r[0].call_error, 0);
        ASSERT_EQ(rs.r[0].calls, 1);
        ASSERT_EQ_U(rs.r[0].move.start, c.addr);
        ASSERT_EQ(spm_numa_mover_pending(m, NULL), 0);

        ASSERT_OK(spm_numa_query(c.pid, c.addr, (TOUCHED + UNTOUCHED) * PAGE, PAGE, &p));
        ASSERT_EQ_U(p.pages, TOUCHED + UNTOUCHED);
        ASSERT_EQ_U(p.on_node[0], TOUCHED);
        ASSERT_EQ_U(p.absent, UNTOUCHED);
        ASSERT_EQ_U(p.errors, 0);
        ASSERT_EQ(spm_numa_placement_majority(&p), 0);
        ASSERT_ERROR(spm_numa_query(c.pid, c.addr + 1, PAGE, PAGE, &p), EINVAL);

        /* Sampled: pages 0, 8, ..., 56; 0-40 touched, 48 and 56 not. */
        ASSERT_OK(spm_numa_query_sample(c.pid, c.addr, (TOUCHED + UNTOUCHED) * PAGE, PAGE, 8, &p));
        ASSERT_EQ_U(p.pages, 8);
        ASSERT_EQ_U(p.on_node[0], 6);
        ASSERT_EQ_U(p.absent, 2);
        ASSERT_OK(spm_numa_query_sample(c.pid, c.addr, 4 * PAGE, PAGE, 8, &p));
        ASSERT_EQ_U(p.pages, 4); /* small spans are read whole */
        ASSERT_ERROR(spm_numa_query_sample(c.pid, c.addr, 4 * PAGE, PAGE, 0, &p), EINVAL);
        spm_numa_mover_free(m);
        child_stop(&c);
}

TEST(unmapped_pages_fail_with_efault) {
        struct child c;
        struct spm_numa_mover *m;
        struct results rs = {};
        struct spm_move mv[2];
        struct spm_numa_placement p;

        require_move_pages();
        c = child_start();
        m = mover(0);
        /* The hole alone fails; straddling the hole is partial. */
        mv[0] = move_of(c.pid, c.addr + (TOUCHED + UNTOUCHED) * PAGE, HOLE, 0);
        mv[1] = move_of(c.pid, c.addr + (TOUCHED - 4) * PAGE, 4 + UNTOUCHED + HOLE, 0);
        ASSERT_OK(spm_numa_mover_submit(m, mv, 2));
        spm_numa_mover_run(m, 0, collect, &rs);
        ASSERT_EQ(rs.n, 2);
        ASSERT_EQ(rs.r[0].status, -EFAULT);
        ASSERT_EQ_U(rs.r[0].pages_fault, HOLE);
        ASSERT_EQ_U(rs.r[0].moved_bytes, 0);
        ASSERT_EQ(rs.r[1].status, 0);
        ASSERT_EQ_U(rs.r[1].pages_moved, 4);
        ASSERT_EQ_U(rs.r[1].pages_absent, UNTOUCHED);
        ASSERT_EQ_U(rs.r[1].pages_fault, HOLE);
        ASSERT_EQ_U(rs.r[1].moved_bytes, (4 + UNTOUCHED) * PAGE);

        ASSERT_OK(spm_numa_query(c.pid, c.addr + (TOUCHED + UNTOUCHED) * PAGE, HOLE * PAGE, PAGE,
                                 &p));
        ASSERT_EQ_U(p.errors, HOLE);
        ASSERT_ERROR(spm_numa_placement_majority(&p), ENOENT);
        spm_numa_mover_free(m);
        child_stop(&c);
}

TEST(missing_node_fails_with_enodev) {
        struct child c;
        struct spm_numa_mover *m;
        struct results rs = {};
        struct spm_move mv;

        require_move_pages();
        if (access("/sys/devices/system/node/node63", F_OK) == 0)
                test_skip("this host has a node 63: no missing node to move to");
        c = child_start();
        m = mover(8);
        mv = move_of(c.pid, c.addr, TOUCHED, 1);
        ASSERT_OK(spm_numa_mover_submit(m, &mv, 1));
        ASSERT_EQ(spm_numa_mover_run(m, 0, collect, &rs), 8 * PAGE); /* stops after a batch */
        ASSERT_EQ(rs.n, 1);
        ASSERT_EQ(rs.r[0].status, -ENODEV);
        ASSERT_EQ(rs.r[0].call_error, -ENODEV);
        ASSERT_EQ_U(rs.r[0].pages_moved, 0);
        ASSERT_EQ_U(rs.r[0].pages_other, TOUCHED); /* 8 failed, 40 never tried */
        ASSERT_EQ_U(rs.r[0].moved_bytes, 0);
        ASSERT_EQ(rs.r[0].calls, 1);
        spm_numa_mover_free(m);
        child_stop(&c);
}

TEST(budget_paces_and_batches_split) {
        struct child c;
        struct spm_numa_mover *m;
        struct results rs = {};
        struct spm_move mv[2];
        uint64_t bytes;
        int64_t spent;
        unsigned runs = 0;

        require_move_pages();
        c = child_start();
        m = mover(4);
        mv[0] = move_of(c.pid, c.addr, 30, 0);
        mv[1] = move_of(c.pid, c.addr + 30 * PAGE, 18, 0);
        ASSERT_OK(spm_numa_mover_submit(m, mv, 2));
        ASSERT_EQ(spm_numa_mover_pending(m, &bytes), 2);
        ASSERT_EQ_U(bytes, 48 * PAGE);
        /* 10 pages + 100 bytes per run: the budget is used in whole pages, never exceeded. */
        do {
                spent = spm_numa_mover_run(m, 10 * PAGE + 100, collect, &rs);
                ASSERT_LE(spent, 10 * PAGE);
                runs++;
                if (runs == 1) {
                        ASSERT_EQ(spent, 10 * PAGE);
                        ASSERT_EQ(rs.n, 0); /* the first move is not finished yet */
                        ASSERT_EQ(spm_numa_mover_pending(m, &bytes), 2);
                        ASSERT_EQ_U(bytes, 38 * PAGE);
                }
        } while (spm_numa_mover_pending(m, NULL) > 0 && runs < 20);
        ASSERT_EQ(runs, 5);
        ASSERT_EQ(rs.n, 2);
        ASSERT_EQ(rs.r[0].status, 0);
        ASSERT_EQ_U(rs.r[0].pages_moved, 30);
        ASSERT_EQ(rs.r[0].calls, 9);  /* 10 pages = 4+4+2 per run, three runs */
        ASSERT_EQ_U(rs.r[1].pages_moved, 18);
        /* A budget below one page still moves a page per run. */
        mv[0] = move_of(c.pid, c.addr, 2, 0);
        ASSERT_OK(spm_numa_mover_submit(m, mv, 1));
        ASSERT_EQ(spm_numa_mover_run(m, 1, collect, &rs), PAGE);
        ASSERT_EQ(spm_numa_mover_run(m, 1, collect, &rs), PAGE);
        ASSERT_EQ(rs.n, 3);
        spm_numa_mover_free(m);
        child_stop(&c);
}

TEST(vanished_pid_fails_with_esrch) {
        struct child c;
        struct spm_numa_mover *m;
        struct results rs = {};
        struct spm_move mv[3];
        struct spm_numa_placement p;
        int st;

        require_move_pages();
        c = child_start();
        m = mover(0);
        mv[0] = move_of(c.pid, c.addr, TOUCHED, 0);
        mv[1] = move_of(c.pid, c.addr, 4, 0);
        mv[2] = move_of(c.pid + 100000, c.addr, 4, 0);
        ASSERT_OK(spm_numa_mover_submit(m, mv, 3));
        kill(c.pid, SIGKILL);
        ASSERT_EQ(waitpid(c.pid, &st, 0), c.pid);
        close(c.cmd_fd);
        spm_numa_mover_run(m, 0, collect, &rs);
        ASSERT_EQ(rs.n, 3);
        for (size_t i = 0; i < rs.n; i++) {
                ASSERT_EQ(rs.r[i].status, -ESRCH);
                ASSERT_EQ(rs.r[i].call_error, -ESRCH);
                ASSERT_EQ_U(rs.r[i].moved_bytes, 0);
        }
        ASSERT_ERROR(spm_numa_query(c.pid, c.addr, PAGE, PAGE, &p), ESRCH);

        /* Cancelling reports the queued moves of a pid as -ESRCH and keeps the others. */
        rs.n = 0;
        ASSERT_OK(spm_numa_mover_submit(m, mv, 3));
        ASSERT_EQ(spm_numa_mover_cancel_pid(m, c.pid, collect, &rs), 2);
        ASSERT_EQ(rs.n, 2);
        ASSERT_EQ(rs.r[1].status, -ESRCH);
        ASSERT_EQ_U(rs.r[1].pages_other, 4);
        ASSERT_EQ(spm_numa_mover_pending(m, NULL), 1);
        spm_numa_mover_free(m);
}

TEST_MAIN()
