/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Hint throughput and latency of the real spmtierd: starts the daemon (argv[1]) on a private
 * socket and state directory with a one-GPU machine model, registers a job with 64 processes
 * and one 64 MiB range each, then runs 1, 16 and 64 concurrent clients (one connection and
 * one thread each), each sending Hint calls back to back for a fixed time. Every Hint is
 * persisted before its reply (state file replaced atomically), so the figures include that.
 * The same run measures GetPolicy (a read-only call) as the reference for the ratio.
 *
 *   BENCH hint_calls_per_sec_c1 N calls/s
 *   BENCH hint_p99_usec_c1 N usec
 *   BENCH hint_vs_getpolicy_c1 R ratio   (Hint calls/s / GetPolicy calls/s)
 *
 * Usage: bench-hint PATH-TO-SPMTIERD [SECONDS-PER-LEVEL]
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spmtier/json-util.h"
#include "varlink.h"

#define MAX_CLIENTS 64
#define MiB (UINT64_C(1) << 20)
#define BASE_PID 100000U
#define RANGE_START UINT64_C(0x7f0000000000)

static char dir[] = "/tmp/bench-hint-XXXXXX";
static char sock_path[256];
static double seconds = 1.5;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static int call(struct varlink_client *c, const char *method, struct json_object *params) {
        _cleanup_json_ struct json_object *reply = NULL;
        const char *error = NULL;
        int r = varlink_client_call(c, method, params, &reply, &error);

        if (r < 0)
                return r;
        if (error) {
                fprintf(stderr, "%s: %s %s\n", method, error, json_object_to_json_string(reply));
                return -EIO;
        }
        return 0;
}

static _printf_(1, 2) struct json_object *parse(const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        return json_tokener_parse(buf);
}

struct worker {
        pthread_t thread;
        unsigned index;
        bool hint; /* else GetPolicy */
        uint64_t deadline;
        uint64_t *lat;
        size_t n, alloc;
        int error;
};

static void *worker_run(void *userdata) {
        struct worker *w = userdata;
        _cleanup_(varlink_client_freep) struct varlink_client *c = NULL;
        static const char *const kinds[] = { "hot", "cold", "pin_gpu", "streaming" };
        uint32_t pid = BASE_PID + w->index;
        int r;

        r = varlink_client_connect(sock_path, 10 * 1000000ULL, &c);
        if (r < 0) {
                w->error = r;
                return NULL;
        }
        for (uint64_t i = 0; now_usec() < w->deadline; i++) {
                _cleanup_json_ struct json_object *p = NULL;
                /* 16 spans of 2 MiB per process, kinds rotating: hints replace each other, so
                 * the state stays the same size however long the bench runs. */
                if (w->hint)
                        p = parse("{\"pid\":%u,\"start\":%" PRIu64 ",\"length\":%" PRIu64 ","
                                  "\"kind\":\"%s\",\"gpu\":0}", pid,
                                  RANGE_START + (i % 16) * 2 * MiB, 2 * MiB, kinds[i % 4]);
                else
                        p = json_object_new_object();
                uint64_t t0 = now_usec();
                r = call(c, w->hint ? "io.spmtier.daemon.Hint" : "io.spmtier.daemon.GetPolicy", p);
                uint64_t t1 = now_usec();
                if (r < 0) {
                        w->error = r;
                        return NULL;
                }
                if (w->n == w->alloc) {
                        w->alloc = w->alloc ? 2 * w->alloc : 4096;
                        w->lat = realloc(w->lat, w->alloc * sizeof(*w->lat));
                        if (!w->lat) {
                                w->error = -ENOMEM;
                                return NULL;
                        }
                }
                w->lat[w->n++] = t1 - t0;
        }
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Runs one level; returns calls/s and fills the p50/p99 latency. */
static double run_level(unsigned clients, bool hint, uint64_t *ret_p50, uint64_t *ret_p99) {
        struct worker w[MAX_CLIENTS] = {};
        uint64_t start = now_usec(), deadline = start + (uint64_t) (seconds * 1e6);
        size_t total = 0, k = 0;
        uint64_t *all;

        for (unsigned i = 0; i < clients; i++) {
                w[i] = (struct worker) { .index = i, .hint = hint, .deadline = deadline };
                if (pthread_create(&w[i].thread, NULL, worker_run, &w[i]) != 0)
                        abort();
        }
        for (unsigned i = 0; i < clients; i++) {
                pthread_join(w[i].thread, NULL);
                if (w[i].error < 0) {
                        fprintf(stderr, "client %u failed: %s\n", i, strerror(-w[i].error));
                        exit(1);
                }
                total += w[i].n;
        }
        double elapsed = (double) (now_usec() - start) / 1e6;
        all = malloc((total + 1) * sizeof(*all));
        for (unsigned i = 0; i < clients; i++) {
                memcpy(all + k, w[i].lat, w[i].n * sizeof(*all));
                k += w[i].n;
                free(w[i].lat);
        }
        qsort(all, total, sizeof(*all), cmp_u64);
        *ret_p50 = total ? all[total / 2] : 0;
        *ret_p99 = total ? all[(size_t) ((double) (total - 1) * 0.99)] : 0;
        free(all);
        return (double) total / elapsed;
}

int main(int argc, char **argv) {
        _cleanup_(varlink_client_freep) struct varlink_client *admin = NULL;
        char conf[300], state[300], cmd[400];
        pid_t daemon;
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: bench-hint PATH-TO-SPMTIERD [SECONDS]\n");
                return 2;
        }
        if (argc > 2)
                seconds = atof(argv[2]);
        if (!mkdtemp(dir))
                return 1;
        snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
        snprintf(state, sizeof(state), "%s/state", dir);
        snprintf(conf, sizeof(conf), "%s/spmtierd.conf", dir);
        FILE *f = fopen(conf, "we");
        fputs("[Daemon]\nLogLevel=warning\n[Machine]\nProfile=mi250x-gcd\nGPUs=1\n"
              "[Policy]\nEpochSec=100ms\n", f);
        fclose(f);

        daemon = fork();
        if (daemon == 0) {
                execl(argv[1], argv[1], "--config", conf, "--socket", sock_path, "--state-dir",
                      state, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 100; i++) {
                if (varlink_client_connect(sock_path, 1000000, &admin) >= 0)
                        break;
                usleep(50000);
        }
        if (!admin) {
                fprintf(stderr, "spmtierd did not come up\n");
                kill(daemon, SIGTERM);
                return 1;
        }
        _cleanup_json_ struct json_object *reg = parse(
                "{\"id\":1,\"uid\":%u,\"gpus\":[0],\"ttl_usec\":3600000000}", (unsigned) getuid());
        r = call(admin, "io.spmtier.daemon.RegisterJob", reg);
        for (unsigned i = 0; r >= 0 && i < MAX_CLIENTS; i++) {
                _cleanup_json_ struct json_object *a = parse("{\"job\":1,\"pid\":%u}", BASE_PID + i);
                _cleanup_json_ struct json_object *g = parse(
                        "{\"pid\":%u,\"start\":%" PRIu64 ",\"length\":%" PRIu64 "}", BASE_PID + i,
                        RANGE_START, 64 * MiB);
                r = call(admin, "io.spmtier.daemon.AttachProcess", a);
                if (r >= 0)
                        r = call(admin, "io.spmtier.daemon.AddRange", g);
        }
        if (r < 0) {
                fprintf(stderr, "setup failed: %s\n", strerror(-r));
                kill(daemon, SIGTERM);
                return 1;
        }

        printf("# spmtierd Hint bench: %.1fs per level, 1-GPU mi250x-gcd model, state in %s\n",
               seconds, dir);
        static const unsigned levels[] = { 1, 16, 64 };
        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
                uint64_t p50, p99, rp50, rp99;
                double hint = run_level(levels[i], true, &p50, &p99);
                double ref = run_level(levels[i], false, &rp50, &rp99);
                printf("BENCH hint_calls_per_sec_c%u %.0f calls/s\n", levels[i], hint);
                printf("BENCH hint_p50_usec_c%u %" PRIu64 " usec\n", levels[i], p50);
                printf("BENCH hint_p99_usec_c%u %" PRIu64 " usec\n", levels[i], p99);
                printf("BENCH getpolicy_calls_per_sec_c%u %.0f calls/s\n", levels[i], ref);
                printf("BENCH getpolicy_p99_usec_c%u %" PRIu64 " usec\n", levels[i], rp99);
                printf("BENCH hint_vs_getpolicy_c%u %.3f ratio\n", levels[i], hint / ref);
                fflush(stdout);
        }

        kill(daemon, SIGTERM);
        waitpid(daemon, NULL, 0);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : 1;
}
