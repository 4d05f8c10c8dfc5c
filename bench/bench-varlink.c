/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libspmvarlink throughput and latency: a server thread (its own sd-event loop) serves a
 * trivial method on a unix socket; 1, 16 and 64 client threads, each on its own connection,
 * call it back to back with the blocking client for a fixed time. Prints calls/s and the
 * p50/p99 latency per concurrency, and, as a same-run reference, a raw NUL-framed echo over
 * the same kind of socket (no JSON, no dispatch) with one client:
 *
 *   BENCH varlink_calls_per_s_c1 ...     BENCH varlink_p99_us_c1 ...
 *   BENCH varlink_vs_raw_echo_c1 <ratio of calls/s>
 *
 *   bench-varlink [SECONDS_PER_RUN]    (default 1)
 */

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "spmtier/json-util.h"
#include "varlink.h"

static const char bench_idl[] =
        "interface io.spmtier.bench\n"
        "method Ping(seq: int) -> (seq: int)\n";

static int method_ping(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct args {
                int64_t seq;
        } a = {};
        static const struct varlink_field fields[] = {
                { "seq", VARLINK_INT, 0, offsetof(struct args, seq) },
                {}
        };
        _cleanup_json_ struct json_object *out = NULL;
        int r = varlink_call_dispatch(call, parameters, fields, 0, &a);
        if (r < 0)
                return r;
        out = json_object_new_object();
        json_object_object_add(out, "seq", json_object_new_int64(a.seq));
        return varlink_call_reply(call, out);
}

static const struct varlink_method bench_methods[] = { { "Ping", method_ping, 0 }, {} };
static const struct varlink_interface bench_interface = {
        .name = "io.spmtier.bench", .description = bench_idl, .methods = bench_methods,
};

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

struct server_thread {
        char path[108];
        sd_event *event;
        int stop_fd[2];
        int ready;
};

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *server_main(void *arg) {
        struct server_thread *t = arg;
        struct varlink_server *s = NULL;
        int r;

        r = sd_event_new(&t->event);
        if (r >= 0)
                r = varlink_server_new(t->event, NULL, &s);
        if (r >= 0)
                r = varlink_server_add_interface(s, &bench_interface, NULL);
        if (r >= 0)
                r = varlink_server_listen_path(s, t->path, 0600);
        if (r >= 0)
                r = sd_event_add_io(t->event, NULL, t->stop_fd[0], EPOLLIN, on_stop, NULL);
        __atomic_store_n(&t->ready, r < 0 ? -1 : 1, __ATOMIC_SEQ_CST);
        if (r >= 0)
                (void) sd_event_loop(t->event);
        varlink_server_free(s);
        sd_event_unref(t->event);
        return NULL;
}

/* The raw reference: echo every byte back, one thread per connection. */
static void *raw_echo_main(void *arg) {
        int fd = (int) (intptr_t) arg;
        char buf[4096];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                        break;
                if (send(fd, buf, (size_t) n, MSG_NOSIGNAL) != n)
                        break;
        }
        close(fd);
        return NULL;
}

struct client_thread {
        pthread_t tid;
        const char *path;
        int raw_fd;             /* >= 0: raw echo mode */
        uint64_t deadline_ns;
        uint64_t *lat_ns;       /* per-call latencies */
        size_t n, cap;
        int error;
};

static void record(struct client_thread *c, uint64_t ns) {
        if (c->n == c->cap) {
                size_t cap = c->cap ? 2 * c->cap : 4096;
                uint64_t *l = realloc(c->lat_ns, cap * sizeof(*l));
                if (!l) {
                        c->error = -ENOMEM;
                        return;
                }
                c->lat_ns = l;
                c->cap = cap;
        }
        c->lat_ns[c->n++] = ns;
}

static void *client_main(void *arg) {
        struct client_thread *c = arg;
        struct varlink_client *vc = NULL;
        int r;

        if (c->raw_fd >= 0) {
                static const char msg[] = "{\"method\":\"io.spmtier.bench.Ping\",\"parameters\":{\"seq\":1}}";
                char buf[256];
                while (now_ns() < c->deadline_ns && !c->error) {
                        uint64_t t0 = now_ns();
                        size_t got = 0;
                        if (send(c->raw_fd, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t) sizeof(msg)) {
                                c->error = -EIO;
                                break;
                        }
                        while (got < sizeof(msg)) {   /* until the NUL comes back */
                                ssize_t n = recv(c->raw_fd, buf, sizeof(buf), 0);
                                if (n <= 0) {
                                        c->error = -EIO;
                                        break;
                                }
                                got += (size_t) n;
                        }
                        record(c, now_ns() - t0);
                }
                return NULL;
        }

        r = varlink_client_connect(c->path, 10 * 1000000ULL, &vc);
        if (r < 0) {
                c->error = r;
                return NULL;
        }
        for (int64_t seq = 0; now_ns() < c->deadline_ns && !c->error; seq++) {
                _cleanup_json_ struct json_object *in = json_object_new_object(), *out = NULL;
                const char *error = NULL;
                struct json_object *v;
                uint64_t t0;

                json_object_object_add(in, "seq", json_object_new_int64(seq));
                t0 = now_ns();
                r = varlink_client_call(vc, "io.spmtier.bench.Ping", in, &out, &error);
                if (r < 0 || error || !json_object_object_get_ex(out, "seq", &v) ||
                    json_object_get_int64(v) != seq) {
                        c->error = r < 0 ? r : -EBADMSG;
                        break;
                }
                record(c, now_ns() - t0);
        }
        varlink_client_free(vc);
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Runs `n` clients for `secs`; returns calls/s and fills the latency percentiles (us). */
static double run(const char *path, unsigned n, double secs, bool raw, double *ret_p50,
                  double *ret_p99) {
        struct client_thread *c = calloc(n, sizeof(*c));
        pthread_t echo_tid = 0;
        uint64_t start, end, total = 0;
        size_t k = 0;
        uint64_t *all;

        if (!c)
                return -1;
        start = now_ns();
        for (unsigned i = 0; i < n; i++) {
                c[i].path = path;
                c[i].raw_fd = -1;
                c[i].deadline_ns = start + (uint64_t) (secs * 1e9);
                if (raw) {
                        int sv[2];
                        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
                            pthread_create(&echo_tid, NULL, raw_echo_main, (void *) (intptr_t) sv[1]) != 0)
                                return -1;
                        c[i].raw_fd = sv[0];
                }
                if (pthread_create(&c[i].tid, NULL, client_main, &c[i]) != 0)
                        return -1;
        }
        for (unsigned i = 0; i < n; i++) {
                pthread_join(c[i].tid, NULL);
                if (c[i].error) {
                        fprintf(stderr, "client %u failed: %s\n", i, strerror(-c[i].error));
                        exit(1);
                }
                total += c[i].n;
                if (raw)
                        close(c[i].raw_fd);
        }
        if (raw)
                pthread_join(echo_tid, NULL);
        end = now_ns();
        all = malloc((total ? total : 1) * sizeof(*all));
        if (!all)
                exit(1);
        for (unsigned i = 0; i < n; i++) {
                memcpy(all + k, c[i].lat_ns, c[i].n * sizeof(*all));
                k += c[i].n;
                free(c[i].lat_ns);
        }
        qsort(all, total, sizeof(*all), cmp_u64);
        *ret_p50 = total ? (double) all[total / 2] / 1e3 : 0;
        *ret_p99 = total ? (double) all[(size_t) ((double) (total - 1) * 0.99)] / 1e3 : 0;
        free(all);
        free(c);
        return (double) total / ((double) (end - start) / 1e9);
}

int main(int argc, char **argv) {
        static const unsigned concurrency[] = { 1, 16, 64 };
        struct server_thread st = {};
        pthread_t tid;
        char dir[] = "/tmp/bench-varlink-XXXXXX";
        double secs = argc > 1 ? atof(argv[1]) : 1.0, p50, p99, raw, c1 = 0;

        if (secs <= 0 || !mkdtemp(dir) || pipe(st.stop_fd) < 0)
                return 1;
        snprintf(st.path, sizeof(st.path), "%s/sock", dir);
        if (pthread_create(&tid, NULL, server_main, &st) != 0)
                return 1;
        while (__atomic_load_n(&st.ready, __ATOMIC_SEQ_CST) == 0)
                usleep(1000);
        if (st.ready < 0) {
                fprintf(stderr, "server setup failed\n");
                return 1;
        }

        printf("# libspmvarlink: trivial method (Ping), %g s per run, server on one thread\n", secs);
        for (size_t i = 0; i < ELEMENTSOF(concurrency); i++) {
                double cps = run(st.path, concurrency[i], secs, false, &p50, &p99);
                if (cps < 0)
                        return 1;
                if (concurrency[i] == 1)
                        c1 = cps;
                printf("BENCH varlink_calls_per_s_c%u %.0f calls/s\n", concurrency[i], cps);
                printf("BENCH varlink_p50_us_c%u %.1f us\n", concurrency[i], p50);
                printf("BENCH varlink_p99_us_c%u %.1f us\n", concurrency[i], p99);
                fflush(stdout);
        }
        raw = run(NULL, 1, secs, true, &p50, &p99);
        printf("BENCH raw_echo_calls_per_s_c1 %.0f calls/s\n", raw);
        printf("BENCH varlink_vs_raw_echo_c1 %.3f ratio\n", raw > 0 ? c1 / raw : 0);

        if (write(st.stop_fd[1], "x", 1) != 1)
                return 1;
        pthread_join(tid, NULL);
        unlink(st.path);
        rmdir(dir);
        return 0;
}
