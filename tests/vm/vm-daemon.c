/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spm-vmtest --daemon: the real spmtierd in the QEMU guest, as a plain process (no systemd:
 * sd-event needs none and sd_notify is a no-op without NOTIFY_SOCKET), configured with
 * Profile=numa-sysfs, Collectors=damon, Mover=numa. The workload starts on the slow node and is
 * handed to the daemon the way an admin or a Slurm prolog would, with spmctl job-start and
 * attach; from then on the daemon alone decides and moves. Placement is checked from outside
 * the daemon (move_pages queries and /proc/PID/numa_maps) and against the daemon's own view
 * (spmctl ranges/status --json). Prints CHECK lines and
 *     DAEMON-VERDICT pass=<n> fail=<n>
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sysfs-io.h"
#include "vm-test.h"

#define RUN_DIR "/run/spmtier"
#define SOCKET RUN_DIR "/io.spmtier.daemon"
#define STATE_DIR "/run/spmtier-state"
#define CONFIG "/run/spmtierd.conf"
#define DAMON_ADMIN "/sys/kernel/mm/damon/admin"
#define FAST_NODE 0 /* run-vm.sh: node 0 has the CPUs and HMAT's best figures */
#define SLOW_NODE 1
#define PHASE_LIMIT_S 45.0 /* typically 2-3 s; QEMU gets 240 s for the whole boot */
#define POLL_USEC 250000

/* The fast node may hold one 16 MiB part and a 2 MiB granule ([Machine] NodeCapacity=): in
 * phase 2 the new hot part gets in only when the daemon demotes the old one. A 200 ms epoch
 * (two DAMON aggregations) keeps the emulated CPUs for the workload. */
static const char config_text[] =
        "[Machine]\n"
        "Profile=numa-sysfs\n"
        "NodeCapacity=0:18M\n"
        "[Policy]\n"
        "EpochSec=200ms\n"
        "[Collect]\n"
        "Collectors=damon\n"
        "[Move]\n"
        "Mover=numa\n";

struct view {
        double fast[3];     /* engine: share of each part located on node0 */
        double heat[3];     /* engine: hottest CPU heat in each part */
};

static pid_t daemon_pid = -1;
static int daemon_status = -1; /* wait status once it exited */

static bool daemon_alive(void) {
        int st;

        if (daemon_pid > 0 && daemon_status < 0 && waitpid(daemon_pid, &st, WNOHANG) == daemon_pid)
                daemon_status = st;
        return daemon_pid > 0 && daemon_status < 0;
}

static int write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fputs(text, f);
        return fclose(f) == 0 ? 0 : -EIO;
}

static pid_t start_daemon(void) {
        pid_t pid;

        (void) mkdir(RUN_DIR, 0755);
        (void) mkdir(STATE_DIR, 0700);
        if (write_text(CONFIG, config_text) < 0)
                return -EIO;
        pid = fork();
        if (pid == 0) {
                /* Where the damon collector keeps its kdamond's state, as under systemd. */
                setenv("RUNTIME_DIRECTORY", RUN_DIR, 1);
                execl("/bin/spmtierd", "spmtierd", "--socket", SOCKET, "--state-dir", STATE_DIR,
                      "--config", CONFIG, (char *) NULL);
                perror("exec /bin/spmtierd");
                _exit(127);
        }
        return pid < 0 ? -errno : pid;
}

/* Seconds until the daemon accepts connections, or -1 (it exited, or limit passed). */
static double wait_socket(double limit) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = SOCKET };
        double t0 = now_s();

        while (now_s() - t0 < limit && daemon_alive()) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int r = fd < 0 ? -1 : connect(fd, (struct sockaddr *) &sa, sizeof(sa));

                if (fd >= 0)
                        close(fd);
                if (r == 0)
                        return now_s() - t0;
                usleep(100000);
        }
        return -1;
}

/*
 * Runs /bin/spmctl --socket SOCKET ARGS... (NULL-terminated) with its stdout in out (cut at
 * size) and its stderr on the console. Returns its exit status, or -1.
 */
static int ctl(char *out, size_t size, ...) {
        const char *argv[16] = { "spmctl", "--socket", SOCKET };
        size_t n = 3, got = 0;
        va_list ap;
        int fd[2], st;
        pid_t pid;

        va_start(ap, size);
        while (n < ELEMENTSOF(argv) - 1 && (argv[n] = va_arg(ap, const char *)))
                n++;
        va_end(ap);
        argv[n] = NULL;
        if (pipe2(fd, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                dup2(fd[1], STDOUT_FILENO);
                execv("/bin/spmctl", (char *const *) argv);
                _exit(127);
        }
        close(fd[1]);
        for (ssize_t k = 1; pid > 0 && k > 0 && got + 1 < size; got += (size_t) k)
                if ((k = read(fd[0], out + got, size - 1 - got)) < 0)
                        k = 0;
        out[got] = '\0';
        close(fd[0]);
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
                return -1;
        return WEXITSTATUS(st);
}

static struct json_object *ctl_json(const char *verb, const char *opt, const char *val) {
        static char out[1 << 20];

        if (ctl(out, sizeof(out), verb, "--json", opt, val, (char *) NULL) != 0)
                return NULL;
        return json_tokener_parse(out);
}

static int64_t j_int(struct json_object *o, const char *k) {
        struct json_object *v;

        return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static const char *j_str(struct json_object *o, const char *k) {
        struct json_object *v;

        return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* The daemon's view of the parts, from spmctl ranges --json --pid PID. Returns the number of
 * ranges, or -1. */
static int daemon_view(pid_t pid, const uint64_t start[3], uint64_t part, struct view *v) {
        struct json_object *o, *ranges;
        char p[16];
        int n;

        *v = (struct view) {};
        snprintf(p, sizeof(p), "%d", pid);
        o = ctl_json("ranges", "--pid", p);
        if (!o || !json_object_object_get_ex(o, "ranges", &ranges)) {
                json_object_put(o);
                return -1;
        }
        n = (int) json_object_array_length(ranges);
        for (int i = 0; i < n; i++) {
                struct json_object *r = json_object_array_get_idx(ranges, i), *heat, *cpu;
                uint64_t lo = (uint64_t) j_int(r, "start"), hi = lo + (uint64_t) j_int(r, "length");
                double h = json_object_object_get_ex(r, "heat", &heat) &&
                           json_object_object_get_ex(heat, "cpu", &cpu)
                                   ? json_object_get_double(cpu) : 0;

                for (unsigned k = 0; k < 3; k++) {
                        uint64_t a = MAX(lo, start[k]), b = MIN(hi, start[k] + part);

                        if (b <= a)
                                continue;
                        if (strcmp(j_str(r, "location"), "node0") == 0)
                                v->fast[k] += (double) (b - a) / (double) part;
                        v->heat[k] = MAX(v->heat[k], h);
                }
        }
        json_object_put(o);
        return n;
}

/*
 * Polls until part `hot` is on the fast node and the parts in cold_mask on the slow node, as
 * move_pages sees them. Returns the seconds it took, or -1 (time limit, the daemon died).
 */
static double wait_placement(const char *name, pid_t pid, const uint64_t start[3], uint64_t part,
                             unsigned hot, unsigned cold_mask) {
        double t0 = now_s();

        for (unsigned poll = 0;; poll++) {
                double fast[3];
                bool done = true;

                for (unsigned k = 0; k < 3; k++) {
                        fast[k] = share_of(pid, start[k], part, FAST_NODE, NULL);
                        if (k == hot && fast[k] < CONVERGED)
                                done = false;
                        if ((cold_mask & (1U << k)) &&
                            share_of(pid, start[k], part, SLOW_NODE, NULL) < COLD_KEPT)
                                done = false;
                }
                if (done || poll % 4 == 0)
                        printf("POLL %s t=%.2fs fast-share A=%.2f B=%.2f C=%.2f\n", name,
                               now_s() - t0, fast[0], fast[1], fast[2]);
                if (done)
                        return now_s() - t0;
                if (!daemon_alive() || now_s() - t0 > PHASE_LIMIT_S)
                        return -1;
                usleep(POLL_USEC);
        }
}

/* The checks after a phase converged: placement from move_pages and numa_maps, and the
 * daemon's own view of it. */
static void check_phase(const char *name, pid_t pid, uint64_t buf, const uint64_t start[3],
                        uint64_t part, unsigned hot, unsigned cold_mask, unsigned demoted) {
        struct spm_numa_placement pl = {};
        struct view v;
        char what[64];
        double kernel[3], s, min_cold = 1;
        long n0 = -1, n1 = -1;
        int r, q, nr;

        for (unsigned k = 0; k < 3; k++) {
                kernel[k] = share_of(pid, start[k], part, FAST_NODE, NULL);
                if (cold_mask & (1U << k) && k != demoted)
                        min_cold = MIN(min_cold, share_of(pid, start[k], part, SLOW_NODE, NULL));
        }
        snprintf(what, sizeof(what), "daemon_%s_hot_on_fast_node", name);
        check(what, kernel[hot] >= CONVERGED, "%c %.3f on node%d", 'A' + hot, kernel[hot],
              FAST_NODE);
        snprintf(what, sizeof(what), "daemon_%s_cold_on_slow_node", name);
        check(what, min_cold >= COLD_KEPT, "cold parts >= %.3f on node%d", min_cold, SLOW_NODE);
        if (demoted < 3) {
                s = share_of(pid, start[demoted], part, SLOW_NODE, NULL);
                snprintf(what, sizeof(what), "daemon_%s_old_hot_part_demoted", name);
                check(what, s >= COLD_KEPT, "%c %.3f on node%d (NodeCapacity=0:18M)",
                      'A' + demoted, s, SLOW_NODE);
        }
        r = numa_maps(pid, buf, &n0, &n1);
        q = spm_numa_query(pid, buf, 3 * part, PAGE, &pl) < 0;
        snprintf(what, sizeof(what), "daemon_%s_numa_maps_agrees", name);
        check(what, r == 0 && !q && n0 == (long) pl.on_node[FAST_NODE] &&
              n1 == (long) pl.on_node[SLOW_NODE] && n0 >= (long) ((double) part / PAGE * CONVERGED),
              "numa_maps N0=%ld N1=%ld, move_pages query node0=%" PRIu64 " node1=%" PRIu64, n0, n1,
              pl.on_node[FAST_NODE], pl.on_node[SLOW_NODE]);

        /* The daemon's ranges say the same as the kernel, within a granule per part (its
         * regions are 2 MiB granules, DAMON's edges are approximate), and the hot part is the
         * hottest. */
        nr = daemon_view(pid, start, part, &v);
        snprintf(what, sizeof(what), "daemon_%s_ranges_agree", name);
        check(what, nr > 0 && fabs(v.fast[0] - kernel[0]) <= 0.13 &&
              fabs(v.fast[1] - kernel[1]) <= 0.13 && fabs(v.fast[2] - kernel[2]) <= 0.13,
              "%d ranges; node0 share daemon/kernel A %.2f/%.2f B %.2f/%.2f C %.2f/%.2f", nr,
              v.fast[0], kernel[0], v.fast[1], kernel[1], v.fast[2], kernel[2]);
        /* The part that was hot before fades with the half-life: the sooner placement
         * converged, the more of its heat is left, so the daemon's view is polled until the
         * hot part leads by 2x (the limit of a phase). */
        snprintf(what, sizeof(what), "daemon_%s_heat", name);
        for (double t0 = now_s();;) {
                s = MAX(v.heat[(hot + 1) % 3], v.heat[(hot + 2) % 3]);
                if ((nr > 0 && v.heat[hot] > 0 && v.heat[hot] > 2 * s) || !daemon_alive() ||
                    now_s() - t0 > PHASE_LIMIT_S)
                        break;
                usleep(POLL_USEC);
                nr = daemon_view(pid, start, part, &v);
        }
        check(what, nr > 0 && v.heat[hot] > 0 && v.heat[hot] > 2 * s,
              "cpu heat A %.1f B %.1f C %.1f", v.heat[0], v.heat[1], v.heat[2]);
}

static void check_status(void) {
        struct json_object *o = ctl_json("status", NULL, NULL), *s = NULL, *c = NULL;
        const char *machine = "", *collector = "", *mover = "";

        if (o && json_object_object_get_ex(o, "status", &s)) {
                machine = j_str(s, "machine");
                collector = j_str(s, "collector");
                mover = j_str(s, "mover");
                (void) json_object_object_get_ex(s, "counters", &c);
        }
        check("daemon_status", strcmp(machine, "numa-sysfs") == 0 &&
              strncmp(collector, "damon", 5) == 0 && strncmp(mover, "numa", 4) == 0 &&
              j_int(c, "observations") > 0 && j_int(c, "migrations") > 0 &&
              j_int(c, "failures") == 0,
              "machine %s; collector \"%s\"; mover \"%s\"; observations %" PRIi64 " migrations %"
              PRIi64 " failures %" PRIi64, machine, collector, mover, j_int(c, "observations"),
              j_int(c, "migrations"), j_int(c, "failures"));
        json_object_put(o);
}

int main_daemon(void) {
        uint64_t buf = 0, len = 0, part = 0, start[3], nk = 99;
        double t0 = now_s(), t_sock, t1 = -1, t2 = -1;
        char out[4096], p[16];
        pid_t pid = -1;
        int r, st;

        setvbuf(stdout, NULL, _IOLBF, 0);
        daemon_pid = start_daemon();
        t_sock = daemon_pid > 0 ? wait_socket(60) : -1;
        check("daemon_started", t_sock >= 0, "pid %d listening on %s after %.2fs", daemon_pid,
              SOCKET, t_sock);
        if (t_sock < 0)
                goto verdict;

        pid = start_workload(SLOW_NODE, &buf, &len, &part);
        if (pid < 0) {
                check("daemon_workload_start", false, "%s", strerror((int) -pid));
                goto verdict;
        }
        for (unsigned k = 0; k < 3; k++)
                start[k] = buf + k * part;
        check("daemon_workload_on_slow_node", share_of(pid, buf, len, SLOW_NODE, NULL) == 1.0,
              "pid %d buffer %#" PRIx64 " %" PRIu64 " MiB", pid, buf, len / MiB);

        /* What a Slurm prolog does: a job lease (no GPUs on this machine), then the process. */
        snprintf(p, sizeof(p), "%d", pid);
        r = ctl(out, sizeof(out), "job-start", "1", "--gpus", "", (char *) NULL);
        fputs(out, stdout);
        st = ctl(out, sizeof(out), "attach", "1", p, (char *) NULL);
        fputs(out, stdout);
        check("daemon_job_attached", r == 0 && st == 0, "spmctl job-start: %d, attach: %d", r, st);

        /* Phase 1: A hot; B and C stay on the slow node. */
        t1 = wait_placement("phase1", pid, start, part, 0, 1U << 1 | 1U << 2);
        check("daemon_phase1_converged", t1 >= 0, "%.2fs", t1);
        check_phase("phase1", pid, buf, start, part, 0, 1U << 1 | 1U << 2, 3);

        /* Phase 2: B hot; A must make room (NodeCapacity), C stays. */
        kill(pid, SIGUSR1);
        t2 = wait_placement("phase2", pid, start, part, 1, 1U << 0 | 1U << 2);
        check("daemon_phase2_converged", t2 >= 0, "%.2fs", t2);
        check_phase("phase2", pid, buf, start, part, 1, 1U << 0 | 1U << 2, 0);
        check_status();

        /* The workload ends with its data intact; the daemon outlives its pid and ends the job. */
        kill(pid, SIGTERM);
        r = waitpid(pid, &st, 0);
        check("daemon_workload_data_intact", r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        pid = -1;
        usleep(500000);
        r = ctl(out, sizeof(out), "job-end", "1", (char *) NULL);
        fputs(out, stdout);
        check("daemon_job_end", r == 0 && daemon_alive(), "spmctl job-end: %d", r);

verdict:
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        if (daemon_alive()) {
                double ts = now_s();

                kill(daemon_pid, SIGTERM);
                while (daemon_alive() && now_s() - ts < 20)
                        usleep(50000);
                (void) sysfs_read_u64(&nk, DAMON_ADMIN, "kdamonds/nr_kdamonds");
                check("daemon_stops_cleanly", daemon_status >= 0 && WIFEXITED(daemon_status) &&
                      WEXITSTATUS(daemon_status) == 0 && nk == 0 &&
                      access(RUN_DIR "/damon.kdamond", F_OK) < 0,
                      "exit status %d after %.2fs, nr_kdamonds=%" PRIu64,
                      daemon_status >= 0 && WIFEXITED(daemon_status) ? WEXITSTATUS(daemon_status)
                                                                     : -1, now_s() - ts, nk);
        } else {
                check("daemon_alive_throughout", false, "spmtierd exited early (wait status %#x)",
                      daemon_status);
        }
        if (daemon_alive()) {
                kill(daemon_pid, SIGKILL);
                waitpid(daemon_pid, NULL, 0);
        }
        printf("TIMING daemon_socket_s %.2f\nTIMING daemon_phase1_s %.2f\n"
               "TIMING daemon_phase2_s %.2f\nTIMING daemon_test_s %.2f\n", t_sock, t1, t2,
               now_s() - t0);
        return verdict("DAEMON-VERDICT");
}
