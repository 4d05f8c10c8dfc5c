/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libspmtier-agent.so: one worker thread that connects to spmtierd, announces the process
 * (pid, job, GPUs by gpu_id, migratable ranges), receives moves as a streamed reply, carries
 * them out with agent-core and reports them on a second connection.
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hsakmt.h>

#include "agent-core.h"
#include "spmtier-agent.h"
#include "spmtier/json-util.h"
#include "spmtier/macro.h"
#include "varlink.h"

#define EXPORT __attribute__((visibility("default")))
#define DEFAULT_SOCKET "/run/spmtierd/io.spmtier.daemon"
#define MAX_RANGES 4096
#define BACKOFF_MIN_USEC 100000ULL
#define BACKOFF_MAX_USEC 30000000ULL

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_running;

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

struct ranges {
        struct spm_agent_range v[MAX_RANGES];
        int n;
        bool more;
};

struct session {
        struct varlink_client *stream, *calls;
        struct spm_agent_topology topo;
        char root[PATH_MAX];
        const char *address;
        struct ranges ranges;
};

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { (time_t) (usec / 1000000), (long) (usec % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int read_ranges(struct ranges *r) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return -errno;
        int n = spm_agent_parse_maps(f, r->v, MAX_RANGES, &r->more);
        if (n < 0)
                return n;
        r->n = n;
        return 0;
}

static struct json_object *ranges_json(const struct ranges *r) {
        struct json_object *a = json_object_new_array();
        for (int i = 0; a && i < r->n; i++) {
                struct json_object *o = json_object_new_object();
                json_object_object_add(o, "start", json_object_new_int64((int64_t) r->v[i].start));
                json_object_object_add(o, "length", json_object_new_int64((int64_t) (r->v[i].end - r->v[i].start)));
                json_object_object_add(o, "file", json_object_new_boolean(r->v[i].file));
                json_object_array_add(a, o);
        }
        return a;
}

/* A call on the second connection (opened on first use). Returns 0 or a negative errno. */
static int call(struct session *s, const char *method, struct json_object *params) {
        const char *error = NULL;
        int r;

        if (!s->calls && (r = varlink_client_connect(s->address, 5000000, &s->calls)) < 0)
                return r;
        _cleanup_json_ struct json_object *reply = NULL;
        r = varlink_client_call(s->calls, method, params, &reply, &error);
        if (r < 0) {
                s->calls = varlink_client_free(s->calls);
                return r;
        }
        return error ? -EPROTO : 0;
}

static int64_t json_int(struct json_object *o, const char *key, bool *ok) {
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int)) {
                *ok = false;
                return 0;
        }
        return json_object_get_int64(v);
}

static int64_t gpu_or_undefined(uint32_t id) {
        return id == UINT32_MAX ? -1 : (int64_t) id;
}

static int run_command(struct session *s, struct json_object *cmd) {
        bool ok = true;
        struct spm_agent_move m = {
                .start = (uint64_t) json_int(cmd, "start", &ok),
                .length = (uint64_t) json_int(cmd, "length", &ok),
                .to_gpu_id = (uint32_t) json_int(cmd, "to_gpu", &ok),
                .access_gpu_id = (uint32_t) json_int(cmd, "access_gpu", &ok),
        };
        bool present = true;
        /* Optional (older daemons send neither): preferred -1 = leave it undefined, prefetch
         * false = pin where it is. */
        if (json_int(cmd, "preferred", &present) < 0 && present)
                m.preferred = SPM_AGENT_PREFER_NONE;
        struct json_object *pf;
        if (json_object_object_get_ex(cmd, "prefetch", &pf) && json_object_is_type(pf, json_type_boolean))
                m.pin_only = !json_object_get_boolean(pf);
        int64_t id = json_int(cmd, "id", &ok);
        struct spm_agent_outcome o = {};

        int r = ok ? spm_agent_move(&s->topo, s->root, &m, &o) : -EINVAL;
        if (r < 0)
                o = (struct spm_agent_outcome) { .status = r, .preferred_gpu_id = UINT32_MAX,
                                                 .prefetch_gpu_id = UINT32_MAX };
        _cleanup_json_ struct json_object *p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "pid", json_object_new_int64(getpid()));
        json_object_object_add(p, "id", json_object_new_int64(id));
        json_object_object_add(p, "status", json_object_new_int64(o.status));
        json_object_object_add(p, "moved_bytes", json_object_new_int64((int64_t) o.moved_bytes));
        json_object_object_add(p, "preferred", json_object_new_int64(gpu_or_undefined(o.preferred_gpu_id)));
        json_object_object_add(p, "prefetch", json_object_new_int64(gpu_or_undefined(o.prefetch_gpu_id)));
        return call(s, "io.spmtier.agent.Report", p);
}

static bool ranges_equal(const struct ranges *a, const struct ranges *b) {
        return a->n == b->n && a->more == b->more && !memcmp(a->v, b->v, sizeof(a->v[0]) * (size_t) a->n);
}

/* Re-reads the mappings and tells the daemon when they changed. */
static int rescan(struct session *s) {
        static struct ranges now; /* only the agent thread runs this */
        int r = read_ranges(&now);
        if (r < 0 || ranges_equal(&now, &s->ranges))
                return r;
        s->ranges = now;
        _cleanup_json_ struct json_object *p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "pid", json_object_new_int64(getpid()));
        json_object_object_add(p, "ranges", ranges_json(&s->ranges));
        json_object_object_add(p, "truncated", json_object_new_boolean(s->ranges.more));
        return call(s, "io.spmtier.agent.SetRanges", p);
}

/* Opens KFD (ref-counted in libhsakmt, so the application's own use is unaffected; never
 * closed) and learns this process's GPUs. */
static int kfd_setup(struct session *s) {
        HsaSystemProperties sp;
        HSAKMT_STATUS st = hsaKmtOpenKFD();
        if (st != HSAKMT_STATUS_SUCCESS && st != HSAKMT_STATUS_KERNEL_ALREADY_OPENED)
                return spm_agent_errno(st);
        if ((st = hsaKmtAcquireSystemProperties(&sp)) != HSAKMT_STATUS_SUCCESS)
                return spm_agent_errno(st);
        int r = spm_agent_topology_read(s->root, &s->topo);
        if (r < 0)
                return r;
        /* User node ids equal sysfs ones only when every node is visible. */
        return sp.NumNodes == s->topo.n_nodes ? 0 : -EXDEV;
}

/* One connection's life. Returns 1 when the daemon accepted us (the backoff restarts), 0 or a
 * negative errno when it did not. */
static int session_run(struct session *s, uint64_t rescan_usec) {
        const char *error = NULL;
        int r;

        if ((r = varlink_client_connect(s->address, 2000000, &s->stream)) < 0)
                return r;
        if ((r = kfd_setup(s)) < 0 || (r = read_ranges(&s->ranges)) < 0)
                return r;

        _cleanup_json_ struct json_object *p = json_object_new_object();
        struct json_object *gpus = json_object_new_array();
        if (!p || !gpus) {
                json_object_put(gpus);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < s->topo.n_gpus; i++)
                json_object_array_add(gpus, json_object_new_int64(s->topo.gpu_id[i]));
        json_object_object_add(p, "pid", json_object_new_int64(getpid()));
        const char *job = getenv("SLURM_JOB_ID");
        json_object_object_add(p, "job", job ? json_object_new_int64(strtoll(job, NULL, 10)) : NULL);
        json_object_object_add(p, "gpus", gpus);
        json_object_object_add(p, "ranges", ranges_json(&s->ranges));
        json_object_object_add(p, "truncated", json_object_new_boolean(s->ranges.more));
        if ((r = varlink_client_send(s->stream, "io.spmtier.agent.Connect", p, VARLINK_CALL_MORE)) < 0)
                return r;

        bool accepted = false;
        varlink_client_set_timeout(s->stream, rescan_usec);
        for (;;) {
                _cleanup_json_ struct json_object *reply = NULL;
                r = varlink_client_read(s->stream, &reply, &error);
                if (r == -ETIMEDOUT) {
                        if (accepted)
                                (void) rescan(s); /* a failed SetRanges is retried next time */
                        continue;
                }
                if (r < 0 || error)
                        return accepted ? 1 : (r < 0 ? r : -EPROTO);
                accepted = true;
                struct json_object *cmd;
                if (json_object_object_get_ex(reply, "command", &cmd) && json_object_is_type(cmd, json_type_object) &&
                    run_command(s, cmd) == -ENOMEM)
                        return 1;
                if (r == 0) /* the daemon ended the stream */
                        return 1;
        }
}

static void session_done(struct session *s) {
        s->stream = varlink_client_free(s->stream);
        s->calls = varlink_client_free(s->calls);
}

static uint64_t env_usec(const char *name, uint64_t def_msec) {
        const char *v = getenv(name);
        char *end;
        unsigned long long ms = v ? strtoull(v, &end, 10) : 0;
        return (v && *v && !*end && ms > 0 ? ms : def_msec) * 1000;
}

/* Whether the application itself opened KFD (/dev/kfd, or the fake's per-process file). The
 * agent never opens KFD first: on hardware that would create GPU VMs in every process of a job,
 * shells included. */
static bool kfd_in_use(const char *fake_root) {
        _cleanup_(closedirp) DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        char fake[PATH_MAX];

        snprintf(fake, sizeof(fake), "%s/run/fakekfd/kfd.", fake_root ? fake_root : "");
        while (d && (de = readdir(d))) {
                char link[300], target[PATH_MAX];
                snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = 0;
                if (!strcmp(target, "/dev/kfd") || (fake_root && !strncmp(target, fake, strlen(fake))))
                        return true;
        }
        return false;
}

static void *agent_main(void *arg) {
        static struct session s; /* one agent thread per process */
        uint64_t backoff = BACKOFF_MIN_USEC, rescan_usec = env_usec("SPMTIER_AGENT_RESCAN_MS", 5000);
        const char *root = getenv("SPMTIER_SYSFS_ROOT");

        if (!root)
                root = getenv("FAKEKFD_ROOT");
        session_done(&s); /* a forked child drops its copies of the parent's connections */
        memset(&s, 0, sizeof(s));
        snprintf(s.root, sizeof(s.root), "%s", root && *root ? root : "");
        s.address = getenv("SPMTIER_SOCKET");
        if (!s.address || !*s.address)
                s.address = DEFAULT_SOCKET;
        const char *fake_root = getenv("FAKEKFD_ROOT");
        for (;;) {
                if (!kfd_in_use(fake_root && *fake_root ? fake_root : NULL)) {
                        sleep_usec(rescan_usec);
                        continue;
                }
                int r = session_run(&s, rescan_usec);
                session_done(&s);
                if (r > 0)
                        backoff = BACKOFF_MIN_USEC; /* it was up: retry soon after a restart */
                sleep_usec(backoff);
                backoff = MIN(backoff * 2, BACKOFF_MAX_USEC);
        }
        return NULL;
}

static int start_thread(void) {
        pthread_attr_t attr;
        pthread_t t;
        sigset_t all, old;
        int r;

        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* the app's signals never land on us */
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        r = -pthread_create(&t, &attr, agent_main, NULL);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

static void atfork_child(void) {
        /* Threads do not survive fork: the child's agent starts over (libhsakmt refuses the
         * parent's KFD fd, so it re-opens its own). */
        pthread_mutex_init(&g_lock, NULL);
        g_running = false;
        if (spmtier_agent_init() < 0)
                return; /* the child runs without an agent */
}

EXPORT int spmtier_agent_init(void) {
        static bool atfork_done;
        int r = 0;

        pthread_mutex_lock(&g_lock);
        if (!atfork_done) {
                pthread_atfork(NULL, NULL, atfork_child);
                atfork_done = true;
        }
        if (!g_running) {
                r = start_thread();
                g_running = r == 0;
        }
        pthread_mutex_unlock(&g_lock);
        return r;
}

__attribute__((constructor)) static void agent_autostart(void) {
        const char *v = getenv("SPMTIER_AGENT");
        if (v && !strcmp(v, "0"))
                return;
        (void) spmtier_agent_init();
}
