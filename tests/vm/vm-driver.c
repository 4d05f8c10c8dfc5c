/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spm-vmtest: runs inside the QEMU guest (tests/vm) as spmtierd's modules alone: the sysfs
 * topology gives the machine, the damon collector gives CPU observations, the real engine
 * (libpolicy) decides, the numa mover moves with move_pages(2). It checks the outcome
 * on the real kernel and prints one line per check,
 *     CHECK <name> PASS|FAIL <details>
 * then TIMING lines and the verdict the host asserts on:
 *     VMTEST-VERDICT pass=<n> fail=<n>
 *
 * The workload (spm-vm-workload) keeps part A of its buffer hot, then part B after SIGUSR1;
 * part C stays cold throughout. Everything starts on the slow node.
 *
 * "spm-vmtest --daemon" runs the same workload under the real spmtierd instead (vm-daemon.c);
 * "spm-vmtest --no-damon" is the run on a kernel without DAMON.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "damon.h"
#include "numa-mover.h"
#include "spmtier/macro.h"
#include "spmtier/policy.h"
#include "sysfs-io.h"
#include "topology.h"
#include "vm-test.h"

#define EPOCH_USEC 200000ULL          /* engine epoch; DAMON aggregates every 100 ms */
#define MOVE_BUDGET (32 * MiB)        /* mover bytes per epoch */
#define MAX_EPOCHS 60                 /* per phase: 60 x (collect + plan + move) */
#define STATE_FILE "/run/spmtier-kdamond"

static unsigned n_pass, n_fail;

void check(const char *name, bool ok, const char *fmt, ...) {
        va_list ap;

        printf("CHECK %s %s ", name, ok ? "PASS" : "FAIL");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        if (ok)
                n_pass++;
        else
                n_fail++;
}

int verdict(const char *tag) {
        printf("%s pass=%u fail=%u\n", tag, n_pass, n_fail);
        return n_fail ? 1 : 0;
}

double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

struct part {
        char name;
        uint64_t start, len;
};

struct run {
        pid_t pid, sleeper;
        struct part part[3];
        uint64_t buf, len;
        int fast_node, slow_node;
        unsigned slow_loc;
        struct spm_engine *engine;
        struct spm_numa_mover *mover;
        struct spm_damon *damon;
        unsigned moves_ok, moves_failed, epochs;
        uint64_t bytes_moved;
};

double share_of(pid_t pid, uint64_t start, uint64_t len, int node,
                struct spm_numa_placement *ret) {
        struct spm_numa_placement pl;
        uint64_t present;

        if (spm_numa_query(pid, start, len, PAGE, &pl) < 0)
                return -1;
        if (ret)
                *ret = pl;
        present = pl.pages - pl.absent - pl.errors;
        return present ? (double) pl.on_node[node] / (double) present : 0;
}

/* Fraction of the part's present pages on node. */
static double share_on(const struct run *r, const struct part *p, int node,
                       struct spm_numa_placement *ret) {
        return share_of(r->pid, p->start, p->len, node, ret);
}

int numa_maps(pid_t pid, uint64_t addr, long *n0, long *n1) {
        char path[64], line[1024], want[32];
        FILE *f;
        int r = -ENOENT;

        snprintf(path, sizeof(path), "/proc/%d/numa_maps", pid);
        snprintf(want, sizeof(want), "%" PRIx64 " ", addr);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char *p;

                if (strncmp(line, want, strlen(want)) != 0)
                        continue;
                *n0 = (p = strstr(line, " N0=")) ? atol(p + 4) : 0;
                *n1 = (p = strstr(line, " N1=")) ? atol(p + 4) : 0;
                r = 0;
                break;
        }
        fclose(f);
        return r;
}

static void on_result(const struct spm_numa_move_result *res, void *userdata) {
        struct run *r = userdata;

        printf("  RESULT %#" PRIx64 "+%" PRIu64 "K -> node%d: status=%d moved=%" PRIu64
               "K pages=%" PRIu64 " moved=%" PRIu64 " absent=%" PRIu64 " busy=%" PRIu64
               " nomem=%" PRIu64 " acces=%" PRIu64 " fault=%" PRIu64 " other=%" PRIu64
               " calls=%u %.1fms\n",
               res->move.start, res->move.length >> 10, res->move.to == 0 ? r->fast_node
                                                                          : r->slow_node,
               res->status, res->moved_bytes >> 10, res->pages, res->pages_moved,
               res->pages_absent, res->pages_busy, res->pages_nomem, res->pages_acces,
               res->pages_fault, res->pages_other, res->calls, res->usec / 1000.0);
        if (res->status == 0 && res->moved_bytes == res->move.length)
                r->moves_ok++;
        else
                r->moves_failed++;
        r->bytes_moved += res->pages_moved * PAGE;
        if (r->engine)
                (void) spm_engine_move_result(r->engine, &res->move, res->status,
                                              res->moved_bytes);
}

struct damon_seen {
        uint32_t hot_max, cold_max, other_pid_max;
        unsigned regions;
};

/* How DAMON saw the epoch: the hottest region inside the hot part, inside the cold parts
 * (regions at least 90 % inside, DAMON edges are approximate), and in the other target. */
static void damon_account(const struct run *r, const struct spm_damon_region *v, size_t n,
                          const struct part *hot, struct damon_seen *s) {
        for (size_t i = 0; i < n; i++) {
                uint64_t len = v[i].end - v[i].start;

                s->regions++;
                if (v[i].pid != (uint32_t) r->pid) {
                        s->other_pid_max = MAX(s->other_pid_max, v[i].nr_accesses);
                        continue;
                }
                for (unsigned k = 0; k < 3; k++) {
                        const struct part *p = &r->part[k];
                        uint64_t lo = MAX(v[i].start, p->start);
                        uint64_t hi = MIN(v[i].end, p->start + p->len);

                        if (hi <= lo || (hi - lo) * 10 < len * 9)
                                continue;
                        if (p == hot)
                                s->hot_max = MAX(s->hot_max, v[i].nr_accesses);
                        else
                                s->cold_max = MAX(s->cold_max, v[i].nr_accesses);
                }
        }
}

/* Epochs until the hot part is on the fast node and the cold ones on the slow node. Returns
 * the seconds it took, or -1. */
static double run_phase(struct run *r, const char *name, const struct part *hot,
                        struct damon_seen *seen) {
        double t0 = now_s();
        struct spm_plan plan;

        spm_plan_init(&plan);
        for (unsigned ep = 0, waits = 0; ep < MAX_EPOCHS && waits < MAX_EPOCHS;) {
                _cleanup_free_ struct spm_damon_region *v = NULL;
                _cleanup_free_ struct spm_access *acc = NULL;
                size_t n = 0, na;
                double tc = now_s(), shares[3];
                bool done = true;
                int k;

                k = spm_damon_collect(r->damon, &v, &n);
                if (k == -EAGAIN) {
                        /* Warm-up: no figures yet, and no epoch without them. */
                        usleep(100000);
                        waits++;
                        continue;
                }
                if (k < 0) {
                        printf("  collect failed: %s\n", spm_damon_error(r->damon));
                        break;
                }
                damon_account(r, v, n, hot, seen);
                for (size_t i = 0; i < n; i++)
                        if (v[i].pid == (uint32_t) r->pid && v[i].end > r->buf &&
                            v[i].start < r->buf + r->len)
                                printf("  REGION %+.2fM..%+.2fM nr_accesses=%u age=%u\n",
                                       ((double) v[i].start - (double) r->buf) / MiB,
                                       ((double) v[i].end - (double) r->buf) / MiB,
                                       v[i].nr_accesses, v[i].age);
                k = spm_damon_to_accesses(r->damon, v, n, &acc);
                if (k < 0)
                        break;
                na = spm_damon_clip(acc, (size_t) k, (uint32_t) r->pid, r->buf, r->buf + r->len);
                (void) spm_engine_observe_batch(r->engine, acc, na);
                tc = now_s() - tc;

                k = spm_engine_epoch(r->engine, (usec_t) (now_s() * 1e6), &plan);
                if (k < 0)
                        break;
                r->epochs++;
                for (size_t i = 0; i < plan.n_moves; i++) {
                        const struct spm_move *m = &plan.moves[i];

                        printf("  MOVE %#" PRIx64 "+%" PRIu64 "K loc%u->loc%u %s benefit=%.0fus "
                               "cost=%.0fus\n",
                               m->start, m->length >> 10, m->from, m->to,
                               spm_reason_to_string(m->reason), m->benefit_usec, m->cost_usec);
                }
                if (plan.n_moves && spm_numa_mover_submit(r->mover, plan.moves, plan.n_moves) < 0)
                        printf("  submit failed\n");
                (void) spm_numa_mover_run(r->mover, MOVE_BUDGET, on_result, r);

                for (unsigned p = 0; p < 3; p++) {
                        const struct part *x = &r->part[p];
                        int node = x == hot ? r->fast_node : r->slow_node;

                        shares[p] = share_on(r, x, r->fast_node, NULL);
                        /* Phase 2 leaves the old hot part alone (see the report below). */
                        if (hot != &r->part[0] && x == &r->part[0])
                                continue;
                        if (share_on(r, x, node, NULL) < (x == hot ? CONVERGED : COLD_KEPT))
                                done = false;
                }
                printf("EPOCH %s %u t=%.2fs collect=%.0fms regions=%zu obs=%zu moves=%zu "
                       "fast-share A=%.2f B=%.2f C=%.2f\n",
                       name, ep, now_s() - t0, tc * 1000, n, na, plan.n_moves, shares[0],
                       shares[1], shares[2]);
                if (done && spm_numa_mover_pending(r->mover, NULL) == 0) {
                        spm_plan_done(&plan);
                        return now_s() - t0;
                }
                ep++;
        }
        spm_plan_done(&plan);
        return -1;
}

pid_t start_workload(int slow, uint64_t *addr, uint64_t *len, uint64_t *part) {
        int fd[2];
        pid_t pid;
        char line[128] = "";
        FILE *f;

        if (pipe(fd) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char arg[16];

                dup2(fd[1], STDOUT_FILENO);
                close(fd[0]);
                close(fd[1]);
                snprintf(arg, sizeof(arg), "%d", slow);
                execl("/bin/spm-vm-workload", "spm-vm-workload", arg, (char *) NULL);
                _exit(127);
        }
        close(fd[1]);
        f = fdopen(fd[0], "r");
        if (!f || !fgets(line, sizeof(line), f) ||
            sscanf(line, "READY %" SCNx64 " %" SCNu64 " %" SCNu64, addr, len, part) != 3) {
                if (f)
                        fclose(f);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -EIO;
        }
        fclose(f);
        return pid;
}

static pid_t start_sleeper(void) {
        pid_t pid = fork();

        if (pid == 0) {
                for (;;)
                        pause();
        }
        return pid;
}

/* A previous daemon life that crashed with its kdamond on: started in a child that is then
 * killed without cleaning up. */
static int crash_with_kdamond(pid_t target) {
        pid_t pid = fork();
        int st;

        if (pid == 0) {
                struct spm_damon_config c;
                struct spm_damon *d = NULL;
                uint32_t t = (uint32_t) target;

                spm_damon_config_defaults(&c);
                c.state_file = STATE_FILE;
                if (spm_damon_new(&c, &d) < 0 || spm_damon_start(d, &t, 1) < 0)
                        _exit(1);
                raise(SIGKILL);
        }
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
                return -ECHILD;
        return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : -EIO;
}

static void on_shared_result(const struct spm_numa_move_result *res, void *userdata) {
        int *status = userdata;

        printf("  RESULT shared %" PRIu64 " pages: status=%d moved=%" PRIu64 " acces=%" PRIu64
               " other=%" PRIu64 "\n", res->pages, res->status, res->pages_moved,
               res->pages_acces, res->pages_other);
        *status = res->status;
}

/*
 * Pages mapped by two processes: without move_all (MPOL_MF_MOVE) the kernel refuses each with
 * -EACCES and the move fails with it; with move_all (MPOL_MF_MOVE_ALL, root) they move.
 */
static void check_shared_pages(void) {
        const size_t n = 16, len = n * PAGE;
        struct spm_numa_mover_config mc = { .n_locs = 2, .loc_node = { 0, 1 }, .page_size = PAGE };
        int status[2] = { 1, 1 };
        int fd[2];
        pid_t pid;
        char *p, c = 0;

        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || pipe(fd) < 0) {
                check("mover_shared_pages", false, "mmap/pipe: %s", strerror(errno));
                return;
        }
        memset(p, 1, len);
        pid = fork();
        if (pid == 0) {
                for (size_t i = 0; i < n; i++)
                        c += *(volatile char *) (p + i * PAGE);
                if (write(fd[1], &c, 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(fd[1]);
        if (pid < 0 || read(fd[0], &c, 1) != 1) {
                check("mover_shared_pages", false, "the child did not map the pages");
                close(fd[0]);
                return;
        }
        close(fd[0]);
        /* Node 0 -> 1 without move_all, then 0 -> 1 again with it. */
        for (int all = 0; all < 2; all++) {
                struct spm_numa_mover *mover = NULL;
                struct spm_move mv = { .pid = (uint32_t) pid, .start = (uint64_t) (uintptr_t) p,
                                       .length = len, .from = 0, .to = 1 };

                mc.move_all = all;
                if (spm_numa_mover_new(&mc, &mover) < 0)
                        break;
                (void) spm_numa_mover_submit(mover, &mv, 1);
                (void) spm_numa_mover_run(mover, 0, on_shared_result, &status[all]);
                spm_numa_mover_free(mover);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        munmap(p, len);
        check("mover_shared_pages", status[0] == -EACCES && status[1] == 0,
              "MPOL_MF_MOVE: status %d; MPOL_MF_MOVE_ALL: status %d", status[0], status[1]);
}

/*
 * On a kernel without DAMON (Debian 12's 6.1): the collector must say so clearly, and the rest
 * (topology, the numa mover) must work without it. No engine run: without observations it has
 * nothing to decide, so the mover is driven directly.
 */
static int main_no_damon(void) {
        struct spm_topology topo;
        struct spm_damon *d = NULL;
        struct spm_numa_mover *mover = NULL;
        struct spm_numa_mover_config mc = { .n_locs = 2, .loc_node = { 0, 1 }, .page_size = PAGE };
        struct spm_numa_placement pl;
        uint64_t buf = 0, len = 0, part = 0;
        char why[512];
        long mn0 = -1, mn1 = -1;
        pid_t pid;
        int rc, st;

        rc = spm_topology_read(NULL, &topo);
        check("nodamon_topology", rc == 0 && spm_topology_fast_node(&topo) == 0 &&
              spm_topology_node(&topo, 1) && !spm_topology_node(&topo, 1)->has_cpu &&
              spm_topology_node(&topo, 1)->access0.present,
              "rc=%d fast node %d", rc, rc == 0 ? spm_topology_fast_node(&topo) : -1);
        rc = spm_damon_probe(NULL, why, sizeof(why));
        check("nodamon_probe_says_why", rc == -ENOENT && strstr(why, "CONFIG_DAMON_SYSFS"),
              "rc=%d: %s", rc, why);
        rc = spm_damon_new(NULL, &d);
        if (rc == 0) {
                uint32_t self = (uint32_t) getpid();

                rc = spm_damon_start(d, &self, 1);
                check("nodamon_collector_refuses", rc == -ENOENT &&
                      strstr(spm_damon_error(d), "CONFIG_DAMON_SYSFS"), "rc=%d: %s", rc,
                      spm_damon_error(d));
                spm_damon_free(d);
        }
        pid = start_workload(1, &buf, &len, &part);
        if (pid < 0) {
                check("nodamon_workload", false, "%s", strerror((int) -pid));
                return 1;
        }
        rc = spm_numa_mover_new(&mc, &mover);
        if (rc == 0) {
                struct run r = { .fast_node = 0, .slow_node = 1 };
                struct spm_move mv = { .pid = (uint32_t) pid, .start = buf, .length = part,
                                       .from = 1, .to = 0 };

                (void) spm_numa_mover_submit(mover, &mv, 1);
                (void) spm_numa_mover_run(mover, 0, on_result, &r);
                rc = spm_numa_query(pid, buf, len, PAGE, &pl);
                (void) numa_maps(pid, buf, &mn0, &mn1);
                check("nodamon_mover_moves", r.moves_ok == 1 && rc == 0 &&
                      pl.on_node[0] == part / PAGE && pl.on_node[1] == (len - part) / PAGE &&
                      mn0 == (long) pl.on_node[0] && mn1 == (long) pl.on_node[1],
                      "query node0=%" PRIu64 " node1=%" PRIu64 ", numa_maps N0=%ld N1=%ld",
                      pl.on_node[0], pl.on_node[1], mn0, mn1);
                spm_numa_mover_free(mover);
        }
        check_shared_pages();
        kill(pid, SIGTERM);
        rc = waitpid(pid, &st, 0);
        check("nodamon_data_intact", rc == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return verdict("VMTEST-VERDICT");
}

int main(int argc, char **argv) {
        struct spm_topology topo;
        struct spm_topology_overrides ov;
        struct spm_machine m;
        struct spm_engine_config ec;
        struct spm_damon_config dc;
        struct spm_numa_mover_config mc = {};
        struct run r = {};
        struct damon_seen seen1 = {}, seen2 = {};
        const struct spm_numa_node *n0, *n1;
        int loc_node[SPM_MAX_LOCS];
        char why[512], state[32];
        double t_start = now_s(), t1, t2, share;
        uint64_t part, nk;
        long mn0 = -1, mn1 = -1;
        int st, rc;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc > 1 && strcmp(argv[1], "--no-damon") == 0)
                return main_no_damon();
        if (argc > 1 && strcmp(argv[1], "--daemon") == 0)
                return main_daemon();

        /* 1. The machine from sysfs. */
        rc = spm_topology_read(NULL, &topo);
        n0 = rc == 0 ? spm_topology_node(&topo, 0) : NULL;
        n1 = rc == 0 ? spm_topology_node(&topo, 1) : NULL;
        check("topology_cpuless_node", n0 && n1 && topo.n_nodes == 2 && n0->has_cpu &&
              !n1->has_cpu && n1->has_memory, "rc=%d nodes=%u node1 cpu=%d mem=%" PRIu64 "MiB",
              rc, rc == 0 ? topo.n_nodes : 0, n1 ? n1->has_cpu : -1,
              n1 ? n1->mem_total / MiB : 0);
        if (!n0 || !n1)
                goto verdict;
        check("topology_hmat_access0", n0->access0.present && n1->access0.present &&
              n1->access0.read_latency_ns == 500 && n1->access0.read_bandwidth_mbps == 32768 &&
              n0->access0.read_bandwidth_mbps == 102400,
              "node0 %uns %uMB/s, node1 %uns %uMB/s", n0->access0.read_latency_ns,
              n0->access0.read_bandwidth_mbps, n1->access0.read_latency_ns,
              n1->access0.read_bandwidth_mbps);
        check("topology_memory_tiers", topo.have_tiers && n0->tier >= 0 && n1->tier > n0->tier,
              "node0 tier %d, node1 tier %d", n0->tier, n1->tier);
        r.fast_node = spm_topology_fast_node(&topo);
        check("topology_fast_node", r.fast_node == 0, "fast node %d (HMAT)", r.fast_node);
        spm_topology_overrides_init(&ov);
        ov.name = "qemu-vm";
        ov.epoch_usec = EPOCH_USEC;
        rc = spm_topology_to_machine(&topo, &ov, &m, loc_node);
        check("topology_machine", rc == 0 && m.n_locs == 2 && loc_node[0] == 0 && loc_node[1] == 1,
              "rc=%d locs=%u cpu bw %.1f/%.1f GB/s", rc, m.n_locs, m.bw_gbps[0][0],
              m.bw_gbps[0][1]);
        if (rc < 0)
                goto verdict;
        r.slow_node = loc_node[1];
        r.slow_loc = 1;

        /* 2. DAMON is there (or says clearly why not). */
        rc = spm_damon_probe(NULL, why, sizeof(why));
        check("damon_probe", rc == 0, "%s", why);
        if (rc < 0)
                goto verdict;

        /* 3. The workload, all on the slow node. */
        r.pid = start_workload(r.slow_node, &r.buf, &r.len, &part);
        if (r.pid < 0) {
                check("workload_start", false, "%s", strerror((int) -r.pid));
                goto verdict;
        }
        for (unsigned k = 0; k < 3; k++)
                r.part[k] = (struct part) { (char) ('A' + k), r.buf + k * part, part };
        share = share_on(&r, &(struct part) { 'W', r.buf, r.len }, r.slow_node, NULL);
        check("workload_on_slow_node", share == 1.0, "pid %d buffer %#" PRIx64 " %" PRIu64
              "MiB, %.3f on node%d", r.pid, r.buf, r.len / MiB, share, r.slow_node);

        /* 4. Crash recovery: a leftover kdamond of ours is reclaimed, a foreign one refused. */
        r.sleeper = start_sleeper();
        rc = crash_with_kdamond(r.sleeper);
        rc = rc < 0 ? rc : sysfs_read(state, sizeof(state), SPM_DAMON_ADMIN_ROOT,
                                      "kdamonds/0/state");
        check("damon_leftover_running", rc >= 0 && strcmp(state, "on") == 0,
              "kdamond after the crash: %s", rc >= 0 ? state : strerror(-rc));
        spm_damon_config_defaults(&dc);
        /* DAMON never merges a region beyond 1/min_regions of what it monitors (about 1 GiB
         * here, mostly the gap below the stack): with its default 10, one region can span
         * 30 MiB of the buffer, hot and cold parts mixed right after a phase change, and the
         * engine moves all of it. 200 keeps regions within a few MiB. */
        dc.min_regions = 200;
        dc.max_regions = 2000;
        {
                struct spm_damon *foreign = NULL;
                uint32_t t = (uint32_t) r.pid;

                rc = spm_damon_new(&dc, &foreign);
                rc = rc < 0 ? rc : spm_damon_start(foreign, &t, 1);
                check("damon_refuses_foreign_kdamond", rc == -EBUSY, "rc=%d: %s", rc,
                      foreign ? spm_damon_error(foreign) : "");
                spm_damon_free(foreign);
        }
        dc.state_file = STATE_FILE;
        rc = spm_damon_new(&dc, &r.damon);
        if (rc < 0)
                goto verdict;
        {
                /* Two targets: the workload and a process that never touches memory; the
                 * per-target filters must keep their regions apart. */
                uint32_t t[2] = { (uint32_t) r.sleeper, (uint32_t) r.pid };
                double ts = now_s();

                rc = spm_damon_start(r.damon, t, 2);
                check("damon_recovers_own_kdamond", rc == 0, "rc=%d %s kdamond pid %d (%.0fms)",
                      rc, spm_damon_error(r.damon), spm_damon_kdamond_pid(r.damon),
                      (now_s() - ts) * 1000);
                if (rc < 0)
                        goto verdict;
        }

        /* 5. The real engine decides, the numa mover moves. */
        spm_engine_config_defaults(&m, &ec);
        rc = spm_engine_new(&m, &ec, &r.engine);
        if (rc < 0) {
                check("engine_new", false, "rc=%d", rc);
                goto verdict;
        }
        rc = spm_engine_job_set(r.engine, &(struct spm_job) { .id = 1, .uid = 0 });
        rc = rc < 0 ? rc : spm_engine_process_add(r.engine, 1, (uint32_t) r.pid);
        rc = rc < 0 ? rc : spm_engine_range_add(r.engine, (uint32_t) r.pid, r.buf, r.len,
                                                r.slow_loc);
        /* The fast node holds one hot part and a granule to spare (its 768 MiB would hold the
         * whole buffer): in phase 2 the new hot part gets in only by demoting the old one. */
        rc = rc < 0 ? rc : spm_engine_set_capacity(r.engine, 0, part + ec.granule);
        check("engine_tracks_workload", rc == 0, "rc=%d granule %" PRIu64 "K epoch %" PRIu64
              "ms", rc, ec.granule >> 10, (uint64_t) ec.epoch_usec / 1000);
        mc.n_locs = m.n_locs;
        memcpy(mc.loc_node, loc_node, sizeof(mc.loc_node));
        mc.page_size = PAGE;
        rc = spm_numa_mover_new(&mc, &r.mover);
        if (rc < 0)
                goto verdict;

        /* Phase 1: A hot. */
        t1 = run_phase(&r, "phase1", &r.part[0], &seen1);
        check("phase1_converged", t1 >= 0, "%.2fs, %u epochs", t1, r.epochs);
        share = share_on(&r, &r.part[0], r.fast_node, NULL);
        check("phase1_hot_on_fast_node", share >= CONVERGED, "A %.3f on node%d", share,
              r.fast_node);
        share = MIN(share_on(&r, &r.part[1], r.slow_node, NULL),
                    share_on(&r, &r.part[2], r.slow_node, NULL));
        check("phase1_cold_on_slow_node", share >= COLD_KEPT, "B, C >= %.3f on node%d", share,
              r.slow_node);
        rc = numa_maps(r.pid, r.buf, &mn0, &mn1);
        {
                struct spm_numa_placement pl;
                int q = spm_numa_query(r.pid, r.buf, r.len, PAGE, &pl);

                check("phase1_numa_maps_agrees", rc == 0 && q == 0 &&
                      mn0 == (long) pl.on_node[0] && mn1 == (long) pl.on_node[1] &&
                      mn0 >= (long) ((double) part / PAGE * CONVERGED),
                      "numa_maps N0=%ld N1=%ld, move_pages query node0=%" PRIu64 " node1=%" PRIu64,
                      mn0, mn1, pl.on_node[0], pl.on_node[1]);
        }
        check("damon_sees_hot_and_cold", seen1.hot_max >= 5 && seen1.cold_max <= 2,
              "max nr_accesses hot part %u, cold parts %u (of %" PRIu64 ")", seen1.hot_max,
              seen1.cold_max, dc.aggr_usec / dc.sample_usec);
        check("damon_targets_apart", seen1.other_pid_max <= 2 && seen1.hot_max >= 5,
              "idle target max nr_accesses %u while the workload's hot part had %u",
              seen1.other_pid_max, seen1.hot_max);

        /* Phase 2: B hot, A cold. */
        kill(r.pid, SIGUSR1);
        r.epochs = 0;
        t2 = run_phase(&r, "phase2", &r.part[1], &seen2);
        check("phase2_converged", t2 >= 0, "%.2fs, %u epochs", t2, r.epochs);
        share = share_on(&r, &r.part[1], r.fast_node, NULL);
        check("phase2_new_hot_on_fast_node", share >= CONVERGED, "B %.3f on node%d", share,
              r.fast_node);
        share = share_on(&r, &r.part[2], r.slow_node, NULL);
        check("phase2_cold_on_slow_node", share >= COLD_KEPT, "C %.3f on node%d", share,
              r.slow_node);
        share = share_on(&r, &r.part[0], r.slow_node, NULL);
        check("phase2_old_hot_part_demoted", share >= COLD_KEPT, "A %.3f on node%d", share,
              r.slow_node);
        rc = numa_maps(r.pid, r.buf, &mn0, &mn1);
        printf("INFO numa_maps after phase 2: N0=%ld N1=%ld\n", mn0, mn1);
        check("damon_follows_phase", seen2.hot_max >= 5, "max nr_accesses of part B %u",
              seen2.hot_max);
        check("mover_results", r.moves_failed == 0 && r.moves_ok > 0,
              "%u moves done, %u failed, %" PRIu64 " MiB moved", r.moves_ok, r.moves_failed,
              r.bytes_moved / MiB);

        check_shared_pages();

        /* 6. The workload's data survived, and a vanished pid fails cleanly. */
        kill(r.pid, SIGTERM);
        rc = waitpid(r.pid, &st, 0);
        check("workload_data_intact", rc == r.pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        {
                struct spm_move mv = { .pid = (uint32_t) r.pid, .start = r.buf, .length = part,
                                       .from = 1, .to = 0 };
                unsigned failed = r.moves_failed;

                spm_engine_freep(&r.engine); /* no engine feedback for this one */
                (void) spm_numa_mover_submit(r.mover, &mv, 1);
                (void) spm_numa_mover_run(r.mover, 0, on_result, &r);
                check("mover_vanished_pid", r.moves_failed == failed + 1, "see RESULT above");
        }
        rc = spm_damon_stop(r.damon);
        nk = 99;
        (void) sysfs_read_u64(&nk, SPM_DAMON_ADMIN_ROOT, "kdamonds/nr_kdamonds");
        check("damon_stop_cleans_up", rc == 0 && nk == 0 && access(STATE_FILE, F_OK) < 0,
              "rc=%d nr_kdamonds=%" PRIu64, rc, nk);
        printf("TIMING phase1_s %.2f\nTIMING phase2_s %.2f\nTIMING vmtest_s %.2f\n", t1, t2,
               now_s() - t_start);

verdict:
        if (r.sleeper > 0) {
                kill(r.sleeper, SIGKILL);
                waitpid(r.sleeper, NULL, 0);
        }
        if (r.pid > 0 && kill(r.pid, SIGKILL) == 0)
                waitpid(r.pid, NULL, 0);
        spm_damon_freep(&r.damon);
        spm_numa_mover_freep(&r.mover);
        spm_engine_freep(&r.engine);
        return verdict("VMTEST-VERDICT");
}
