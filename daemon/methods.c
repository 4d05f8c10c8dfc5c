/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "manager.h"
#include "methods.h"
#include "spmtier/json-util.h"

#define ERR(name) SPMTIERD_INTERFACE "." name
#define UNSET UINT64_MAX

/* ---- small JSON helpers ---- */

static void put_int(struct json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
}
static void put_u64(struct json_object *o, const char *k, uint64_t v) {
        /* varlink ints are int64: clamp the "never"/"unlimited" sentinels. */
        json_object_object_add(o, k, json_object_new_int64(v > INT64_MAX ? INT64_MAX
                                                                         : (int64_t) v));
}
static void put_str(struct json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v ? v : ""));
}
static void put_bool(struct json_object *o, const char *k, bool v) {
        json_object_object_add(o, k, json_object_new_boolean(v));
}
static void put_double(struct json_object *o, const char *k, double v) {
        json_object_object_add(o, k, json_object_new_double(v));
}

static int reply_one(struct varlink_call *call, const char *key, struct json_object *v) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        if (!o || !v) {
                json_object_put(v);
                return -ENOMEM;
        }
        json_object_object_add(o, key, v);
        return varlink_call_reply(call, o);
}

/* ---- typed errors ---- */

static int error_permission(struct varlink_call *call, const char *reason) {
        _cleanup_json_ struct json_object *o = json_object_new_object();
        const char *method = strrchr(varlink_call_method(call), '.');

        put_str(o, "method", method ? method + 1 : varlink_call_method(call));
        put_str(o, "reason", reason);
        return varlink_call_error(call, ERR("PermissionDenied"), o);
}

static int error_int(struct varlink_call *call, const char *error, const char *key, int64_t v) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        put_int(o, key, v);
        return varlink_call_error(call, error, o);
}

static int error_no_such_job(struct varlink_call *call, uint64_t id) {
        return error_int(call, ERR("NoSuchJob"), "id", (int64_t) id);
}
static int error_no_such_process(struct varlink_call *call, uint32_t pid) {
        return error_int(call, ERR("NoSuchProcess"), "pid", pid);
}
static int error_no_such_gpu(struct varlink_call *call, int64_t gpu) {
        return error_int(call, ERR("NoSuchGpu"), "gpu", gpu);
}

static int error_invalid_value(struct varlink_call *call, const char *parameter,
                               const char *message) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        put_str(o, "parameter", parameter);
        put_str(o, "message", message);
        return varlink_call_error(call, ERR("InvalidValue"), o);
}

static int error_limit(struct varlink_call *call, const char *what, uint64_t limit) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        put_str(o, "what", what);
        put_u64(o, "limit", limit);
        return varlink_call_error(call, ERR("LimitExceeded"), o);
}

static int error_no_gpu(struct varlink_call *call) {
        return varlink_call_error(call, ERR("NoGpu"), NULL);
}

static int error_internal(struct varlink_call *call, int r) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        put_int(o, "errno", r < 0 ? -r : r);
        put_str(o, "message", strerror(r < 0 ? -r : r));
        return varlink_call_error(call, ERR("InternalError"), o);
}

static int error_unknown_policy(struct varlink_call *call, const char *name) {
        _cleanup_json_ struct json_object *o = json_object_new_object();
        struct json_object *a = json_object_new_array();

        put_str(o, "name", name);
        for (const char *const *n = spmtierd_policy_names; *n; n++)
                json_object_array_add(a, json_object_new_string(*n));
        json_object_object_add(o, "available", a);
        return varlink_call_error(call, ERR("UnknownPolicy"), o);
}

/* ---- builders (pure: state in, JSON out) ---- */

struct json_object *methods_build_job_counters(const struct job_counters *c) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        put_u64(o, "migrations", c->migrations);
        put_u64(o, "failures", c->failures);
        put_u64(o, "bytes_to_gpu", c->bytes_to_gpu);
        put_u64(o, "bytes_to_ram", c->bytes_to_ram);
        put_double(o, "benefit_usec", c->benefit_usec);
        put_u64(o, "hints", c->hints);
        return o;
}

/* The fields a job and its summary share: id, uid, gpus, vram_quota, policy. */
static struct json_object *build_job_identity(const struct job *j) {
        struct json_object *o = json_object_new_object(), *a;

        if (!o)
                return NULL;
        put_u64(o, "id", j->id);
        put_u64(o, "uid", j->uid);
        a = json_object_new_array();
        for (unsigned g = 0; g < SPM_MAX_GPUS; g++)
                if (j->gpu_mask & (1U << g))
                        json_object_array_add(a, json_object_new_int(g));
        json_object_object_add(o, "gpus", a);
        if (j->vram_quota != JOB_QUOTA_UNLIMITED)
                put_u64(o, "vram_quota", j->vram_quota);
        put_str(o, "policy", j->policy);
        return o;
}

struct json_object *methods_build_job_summary(const struct job *j, const char *ended,
                                              uint64_t now) {
        struct json_object *o = build_job_identity(j);

        if (!o)
                return NULL;
        put_str(o, "ended", ended);
        put_u64(o, "registered_realtime_usec", j->registered_usec);
        put_u64(o, "ended_realtime_usec", now);
        put_u64(o, "duration_usec", now > j->registered_usec ? now - j->registered_usec : 0);
        json_object_object_add(o, "counters", methods_build_job_counters(&j->counters));
        return o;
}

static struct json_object *build_job(const struct job *j) {
        struct json_object *o = build_job_identity(j), *a;

        if (!o)
                return NULL;
        put_bool(o, "frozen", j->frozen);
        put_u64(o, "ttl_usec", j->ttl_usec);
        put_u64(o, "expires_realtime_usec", j->expires_usec);
        put_u64(o, "registered_realtime_usec", j->registered_usec);
        a = json_object_new_array();
        for (size_t i = 0; i < j->n_pids; i++)
                json_object_array_add(a, json_object_new_int64(j->pids[i]));
        json_object_object_add(o, "pids", a);
        json_object_object_add(o, "counters", methods_build_job_counters(&j->counters));
        return o;
}

static const char *location_name(const struct manager *m, unsigned loc) {
        return loc < m->machine.n_locs ? m->machine.loc_name[loc] : "unknown";
}

struct json_object *methods_build_move(const struct manager *m, const struct spm_move *mv) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        put_u64(o, "pid", mv->pid);
        put_u64(o, "job", mv->job_id);
        put_u64(o, "start", mv->start);
        put_u64(o, "length", mv->length);
        put_str(o, "from", location_name(m, mv->from));
        put_str(o, "to", location_name(m, mv->to));
        put_str(o, "reason", spm_reason_to_string(mv->reason));
        put_double(o, "benefit_usec", mv->benefit_usec);
        put_double(o, "cost_usec", mv->cost_usec);
        return o;
}

static struct json_object *build_hint(const struct job_hint *h) {
        struct json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        put_u64(o, "pid", h->pid);
        put_u64(o, "start", h->start);
        put_u64(o, "length", h->length);
        put_str(o, "kind", job_hint_kind_to_string(h->kind));
        if (h->gpu >= 0)
                put_int(o, "gpu", h->gpu);
        if (h->expires_usec)
                put_u64(o, "expires_realtime_usec", h->expires_usec);
        return o;
}

static struct json_object *build_status(struct manager *m) {
        struct json_object *o = json_object_new_object(), *c, *a;
        struct spm_engine_stats st = {};
        size_t jobs = m->registry.n_jobs;
        const struct job *replay = registry_find(&m->registry, SPMTIERD_REPLAY_JOB);
        char buf[512];

        if (!o)
                return NULL;
        if (m->engine)
                spm_engine_get_stats(m->engine, &st);
        if (replay && replay->internal)
                jobs--;
        put_str(o, "version", "0.1.0");
        put_str(o, "status", manager_status_line(m));
        put_str(o, "machine", m->has_gpu ? m->machine.name : "none");
        put_bool(o, "has_gpu", m->has_gpu);
        buf[0] = '\0';
        for (size_t i = 0; i < m->n_collectors; i++) {
                char d[256];
                m->collectors[i].ops->describe(m->collectors[i].state, d, sizeof(d));
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? "; " : "", d);
        }
        put_str(o, "collector", m->n_collectors ? buf : "none");
        if (m->mover)
                m->mover_ops->describe(m->mover, buf, sizeof(buf));
        put_str(o, "mover", m->mover ? buf : "none");
        put_bool(o, "frozen", m->registry.frozen);
        put_u64(o, "epoch", m->epoch);
        put_u64(o, "epoch_usec", m->registry.policy.set & POLICY_SET_EPOCH
                                         ? m->registry.policy.epoch_usec
                                         : m->settings.epoch_usec);
        put_u64(o, "uptime_usec", manager_uptime_usec(m));
        put_u64(o, "jobs", jobs);
        put_u64(o, "processes", registry_n_pids(&m->registry));
        put_u64(o, "regions", st.n_regions);
        put_u64(o, "hints", registry_n_hints(&m->registry));
        a = json_object_new_array();
        for (unsigned g = 0; m->has_gpu && g < m->machine.n_gpus; g++) {
                struct json_object *x = json_object_new_object();
                put_int(x, "index", g);
                put_str(x, "location", m->machine.loc_name[SPM_LOC_GPU(g)]);
                put_u64(x, "capacity", m->machine.capacity[SPM_LOC_GPU(g)]);
                put_u64(x, "used", st.used[SPM_LOC_GPU(g)]);
                put_u64(x, "bytes_in", m->counters.bytes_in[g]);
                put_u64(x, "bytes_out", m->counters.bytes_out[g]);
                if (m->kfd[g].seen) {
                        put_u64(x, "driver_vram_used", m->kfd[g].driver_used);
                        put_u64(x, "driver_vram_total", m->kfd[g].driver_total);
                        put_u64(x, "fill_limit", m->kfd[g].fill_limit);
                        put_u64(x, "kfd_faults", m->kfd[g].faults);
                        put_u64(x, "kfd_pages_in", m->kfd[g].pages_in);
                        put_u64(x, "kfd_pages_out", m->kfd[g].pages_out);
                }
                json_object_array_add(a, x);
        }
        json_object_object_add(o, "gpus", a);
        c = json_object_new_object();
        put_u64(c, "epochs", st.epochs);
        put_u64(c, "observations", m->counters.observations);
        put_u64(c, "observations_ignored", m->counters.observations_ignored);
        put_u64(c, "migrations", m->counters.migrations);
        put_u64(c, "failures", m->counters.failures);
        put_u64(c, "bytes_to_gpu", m->counters.bytes_to_gpu);
        put_u64(c, "bytes_to_ram", m->counters.bytes_to_ram);
        put_u64(c, "quarantines", st.quarantines);
        put_double(c, "benefit_usec", m->counters.benefit_usec);
        json_object_object_add(o, "counters", c);
        a = json_object_new_array();
        for (char **f = m->config_files; f && *f; f++)
                json_object_array_add(a, json_object_new_string(*f));
        json_object_object_add(o, "config_files", a);
        put_str(o, "last_reload", m->last_reload);
        put_str(o, "state_error", m->state_error);
        return o;
}

static struct json_object *build_policy(const struct manager *m, const struct job *j) {
        struct json_object *o = json_object_new_object(), *s, *a;
        struct spm_engine_config c;

        if (!o)
                return NULL;
        manager_engine_config(m, &c);
        put_str(o, "name", j ? j->policy : m->settings.default_policy);
        put_bool(o, "frozen", j ? j->frozen || m->registry.frozen : m->registry.frozen);
        s = json_object_new_object();
        put_u64(s, "epoch_usec", c.epoch_usec);
        put_u64(s, "half_life_usec", c.half_life_usec);
        put_double(s, "hysteresis", c.hysteresis);
        put_u64(s, "min_residency_epochs", c.min_residency_epochs);
        put_u64(s, "pingpong_trips", c.pingpong_trips);
        put_u64(s, "pingpong_window_epochs", c.pingpong_window_epochs);
        put_u64(s, "quarantine_epochs", c.quarantine_epochs);
        put_u64(s, "migrate_budget_bytes", c.migrate_budget_bytes);
        json_object_object_add(o, "settings", s);
        a = json_object_new_array();
        for (const char *const *n = spmtierd_policy_names; *n; n++)
                json_object_array_add(a, json_object_new_string(*n));
        json_object_object_add(o, "available", a);
        return o;
}

/* ---- authorisation ---- */

static struct manager *peer_of(struct varlink_call *call, void *userdata,
                               struct auth_peer *ret) {
        struct manager *m = userdata;
        const struct ucred *u = varlink_call_peer(call);

        auth_peer_init(u->uid, u->gid, (uint32_t) u->pid, m->admin_gid, m->settings.proc_root,
                       ret);
        return m;
}

static int require_admin(struct varlink_call *call, const struct auth_peer *p) {
        if (auth_check_admin(p) < 0)
                return error_permission(call, "only root or the admin group may do this"),
                       -EPERM;
        return 0;
}

/* Looks up a job the peer may act on; replies the error itself. */
static int get_job(struct varlink_call *call, struct manager *m, const struct auth_peer *p,
                   uint64_t id, struct job **ret) {
        struct job *j = registry_find(&m->registry, id);

        if (!j || (j->internal && !p->admin))
                return error_no_such_job(call, id), -ENOENT;
        if (auth_check_job(p, j->uid) < 0)
                return error_permission(call, "the job belongs to another user"), -EPERM;
        *ret = j;
        return 0;
}

/* Looks up the job of an attached pid and checks the peer may act on that process. */
static int get_process(struct varlink_call *call, struct manager *m, const struct auth_peer *p,
                       uint32_t pid, struct job **ret) {
        struct job *j = registry_find_pid(&m->registry, pid);
        int r;

        if (!j || (j->internal && !p->admin))
                return error_no_such_process(call, pid), -ESRCH;
        r = auth_check_process(p, j->uid, m->settings.proc_root, pid);
        if (r == -ESRCH)
                return error_no_such_process(call, pid), r;
        if (r < 0)
                return error_permission(call, "not your process, or not your job"), r;
        *ret = j;
        return 0;
}

/* For methods whose only parameter is an optional job: dispatches, and when a job is named
 * looks it up for the peer (replying the error itself). *ret_id is UNSET without one. */
static int dispatch_optional_job(struct varlink_call *call, struct manager *m,
                                 const struct auth_peer *p, struct json_object *params,
                                 uint64_t *ret_id, struct job **ret_job) {
        static const struct varlink_field fields[] = {
                { "job", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, 0 },
                {}
        };
        uint64_t id = UNSET;
        int r;

        *ret_job = NULL;
        r = varlink_call_dispatch(call, params, fields, 0, &id);
        if (r >= 0 && id != UNSET)
                r = get_job(call, m, p, id, ret_job);
        *ret_id = id;
        return r;
}

/* ---- methods ---- */

static int method_get_status(struct varlink_call *call, struct json_object *params, void *ud) {
        struct manager *m = ud;
        int r = varlink_call_dispatch(call, params, (const struct varlink_field[]) { {} }, 0, NULL);

        if (r < 0)
                return r;
        return reply_one(call, "status", build_status(m));
}

static int check_gpus(struct varlink_call *call, struct manager *m, struct json_object *gpus,
                      uint32_t *ret_mask) {
        size_t n = json_object_array_length(gpus);
        uint32_t mask = 0;

        for (size_t i = 0; i < n; i++) {
                struct json_object *g = json_object_array_get_idx(gpus, i);
                if (!json_object_is_type(g, json_type_int))
                        return varlink_call_error_invalid_parameter(call, "gpus"), -EINVAL;
                int64_t v = json_object_get_int64(g);
                unsigned max = m->has_gpu ? m->machine.n_gpus : SPM_MAX_GPUS;
                if (v < 0 || v >= max)
                        return error_no_such_gpu(call, v), -EXDEV;
                mask |= 1U << v;
        }
        *ret_mask = mask;
        return 0;
}

static bool name_known(const char *const *names, const char *n) {
        for (; *names; names++)
                if (strcmp(*names, n) == 0)
                        return true;
        return false;
}

static int method_register_job(struct varlink_call *call, struct json_object *params, void *ud) {
        struct {
                uint64_t id;
                uint32_t uid;
                struct json_object *gpus;
                uint64_t vram_quota;
                const char *policy;
                uint64_t ttl_usec;
        } a = { .vram_quota = JOB_QUOTA_UNLIMITED, .ttl_usec = 0 };
        static const struct varlink_field fields[] = {
                { "id", VARLINK_UINT, 0, offsetof(__typeof__(a), id) },
                { "uid", VARLINK_UINT32, 0, offsetof(__typeof__(a), uid) },
                { "gpus", VARLINK_ARRAY, 0, offsetof(__typeof__(a), gpus) },
                { "vram_quota", VARLINK_UINT, VARLINK_FIELD_OPTIONAL,
                  offsetof(__typeof__(a), vram_quota) },
                { "policy", VARLINK_STRING, VARLINK_FIELD_OPTIONAL, offsetof(__typeof__(a), policy) },
                { "ttl_usec", VARLINK_UINT, VARLINK_FIELD_OPTIONAL,
                  offsetof(__typeof__(a), ttl_usec) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job_spec spec;
        struct job *j;
        bool created;
        int r;

        r = varlink_call_dispatch(call, params, fields, 0, &a);
        if (r < 0)
                return r;
        if ((r = require_admin(call, &p)) < 0)
                return r;
        if (a.id == 0 || a.id >= SPMTIERD_REPLAY_JOB)
                return error_invalid_value(call, "id", "job ids are 1..2^63-2 (2^63-1 is the "
                                                       "replay collector's)");
        if (a.policy && !name_known(spmtierd_policy_names, a.policy))
                return error_unknown_policy(call, a.policy);
        spec = (struct job_spec) {
                .id = a.id, .uid = a.uid, .vram_quota = a.vram_quota,
                .policy = a.policy ? a.policy : m->settings.default_policy,
                .ttl_usec = a.ttl_usec ? a.ttl_usec : m->settings.lease_usec,
        };
        if ((r = check_gpus(call, m, a.gpus, &spec.gpu_mask)) < 0)
                return r;
        r = manager_register_job(m, &spec, &j, &created);
        if (r == -ENOSPC)
                return error_limit(call, "jobs", m->settings.max_jobs);
        if (r < 0)
                return error_internal(call, r);
        _cleanup_json_ struct json_object *o = json_object_new_object();
        json_object_object_add(o, "job", build_job(j));
        put_bool(o, "created", created);
        return varlink_call_reply(call, o);
}

static const struct varlink_field job_id_field[] = {
        { "id", VARLINK_UINT, 0, 0 },
        {}
};

static int method_unregister_job(struct varlink_call *call, struct json_object *params,
                                 void *ud) {
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct json_object *summary = NULL;
        uint64_t id;
        struct job *j;
        int r;

        r = varlink_call_dispatch(call, params, job_id_field, 0, &id);
        if (r < 0)
                return r;
        if ((r = get_job(call, m, &p, id, &j)) < 0)
                return r;
        r = manager_end_job(m, id, "unregistered", &summary);
        if (r == -EPERM)
                return error_permission(call, "the replay job ends with its collector");
        if (r < 0)
                return error_internal(call, r);
        return reply_one(call, "summary", summary);
}

static int method_renew_job(struct varlink_call *call, struct json_object *params, void *ud) {
        struct {
                uint64_t id, ttl_usec;
        } a = {};
        static const struct varlink_field fields[] = {
                { "id", VARLINK_UINT, 0, offsetof(__typeof__(a), id) },
                { "ttl_usec", VARLINK_UINT, VARLINK_FIELD_OPTIONAL,
                  offsetof(__typeof__(a), ttl_usec) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0 ||
            (r = get_job(call, m, &p, a.id, &j)) < 0)
                return r;
        registry_renew(j, a.ttl_usec, manager_now_realtime());
        (void) manager_save_state(m);
        return reply_one(call, "job", build_job(j));
}

static int method_list_jobs(struct varlink_call *call, struct json_object *params, void *ud) {
        uint64_t uid = UNSET;
        static const struct varlink_field fields[] = {
                { "uid", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, 0 },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        _cleanup_json_ struct json_object *reply = NULL;
        struct json_object *a, *f;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &uid)) < 0)
                return r;
        reply = json_object_new_object();
        if (!reply)
                return -ENOMEM;
        json_object_object_add(reply, "jobs", a = json_object_new_array());
        json_object_object_add(reply, "finished", f = json_object_new_array());
        if (!a || !f)
                return -ENOMEM;
        for (size_t i = 0; i < m->registry.n_jobs; i++) {
                const struct job *j = m->registry.jobs[i];
                if (!p.admin && (j->uid != p.uid || j->internal))
                        continue;
                if (uid != UNSET && j->uid != uid)
                        continue;
                json_object_array_add(a, build_job(j));
        }
        for (size_t i = 0; i < json_object_array_length(m->finished); i++) {
                struct json_object *s = json_object_array_get_idx(m->finished, i);
                int64_t owner = json_object_get_int64(json_object_object_get(s, "uid"));
                if (!p.admin && owner != (int64_t) p.uid)
                        continue;
                if (uid != UNSET && owner != (int64_t) uid)
                        continue;
                json_object_array_add(f, json_object_get(s));
        }
        return varlink_call_reply(call, reply);
}

struct pid_args {
        uint64_t job;
        uint32_t pid;
};

static int method_attach_process(struct varlink_call *call, struct json_object *params,
                                 void *ud) {
        struct pid_args a = {};
        static const struct varlink_field fields[] = {
                { "job", VARLINK_UINT, 0, offsetof(struct pid_args, job) },
                { "pid", VARLINK_UINT32, 0, offsetof(struct pid_args, pid) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j, *other = NULL;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0 ||
            (r = get_job(call, m, &p, a.job, &j)) < 0)
                return r;
        if (a.pid == 0)
                return error_invalid_value(call, "pid", "pid 0 is not a process");
        r = auth_check_process(&p, j->uid, m->settings.proc_root, a.pid);
        if (r == -ESRCH)
                return error_no_such_process(call, a.pid);
        if (r < 0)
                return error_permission(call, "the process is not yours");
        r = manager_attach(m, j, a.pid, &other);
        if (r == -EEXIST) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                put_u64(o, "pid", a.pid);
                /* Only say which job when the peer may know it. */
                put_u64(o, "job", p.admin || other->uid == p.uid ? other->id : 0);
                return varlink_call_error(call, ERR("ProcessAttached"), o);
        }
        if (r == -ENOSPC)
                return error_limit(call, "processes per job", m->settings.max_pids_per_job);
        if (r < 0)
                return error_internal(call, r);
        return varlink_call_reply(call, NULL);
}

static const struct varlink_field pid_field[] = {
        { "pid", VARLINK_UINT32, 0, 0 },
        {}
};

static int method_detach_process(struct varlink_call *call, struct json_object *params,
                                 void *ud) {
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        uint32_t pid;
        struct job *j;
        int r;

        if ((r = varlink_call_dispatch(call, params, pid_field, 0, &pid)) < 0)
                return r;
        j = registry_find_pid(&m->registry, pid);
        if (!j || (j->internal && !p.admin))
                return error_no_such_process(call, pid);
        r = auth_check_process(&p, j->uid, m->settings.proc_root, pid);
        /* The owner may detach a process that already exited. */
        if (r == -ESRCH && p.uid == j->uid)
                r = 0;
        if (r < 0)
                return error_permission(call, "not your process, or not your job");
        r = manager_detach(m, pid);
        if (r < 0)
                return error_internal(call, r);
        return varlink_call_reply(call, NULL);
}

struct range_args {
        uint32_t pid;
        uint64_t start, length;
        const char *location;
};

/* The largest user address any Linux we run on hands out: 57 bits (x86-64 with 5-level
 * paging; arm64 stops at 52). A span past it names memory no process can have. */
#define USER_ADDR_LIMIT (UINT64_C(1) << 57)

static int check_span(struct varlink_call *call, uint64_t start, uint64_t length) {
        uint64_t end;

        if (length == 0 || start % 4096 || length % 4096 || !ADD_SAFE(&end, start, length) ||
            end > USER_ADDR_LIMIT)
                return error_invalid_value(call, "length",
                                           "start and length must be 4 KiB aligned, length > 0, "
                                           "and the span must lie below 2^57"), -EINVAL;
        return 0;
}

static int method_add_range(struct varlink_call *call, struct json_object *params, void *ud) {
        struct range_args a = {};
        static const struct varlink_field fields[] = {
                { "pid", VARLINK_UINT32, 0, offsetof(struct range_args, pid) },
                { "start", VARLINK_UINT, 0, offsetof(struct range_args, start) },
                { "length", VARLINK_UINT, 0, offsetof(struct range_args, length) },
                { "location", VARLINK_STRING, VARLINK_FIELD_OPTIONAL,
                  offsetof(struct range_args, location) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j;
        int loc = SPM_LOC_SYSMEM, r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0 ||
            (r = get_process(call, m, &p, a.pid, &j)) < 0 ||
            (r = check_span(call, a.start, a.length)) < 0)
                return r;
        if (!m->engine)
                return error_no_gpu(call);
        if (a.location) {
                loc = spm_machine_loc_from_name(&m->machine, a.location);
                if (loc < 0)
                        return error_invalid_value(call, "location", "no such location");
        }
        r = manager_add_range(m, a.pid, a.start, a.length, (unsigned) loc);
        if (r == -ENOENT)
                return error_no_such_process(call, a.pid);
        if (r == -EINVAL)
                return error_invalid_value(call, "length", "the engine refused the span");
        if (r < 0)
                return error_internal(call, r);
        manager_touch_job(m, j);
        return varlink_call_reply(call, NULL);
}

static int method_remove_range(struct varlink_call *call, struct json_object *params, void *ud) {
        struct range_args a = {};
        static const struct varlink_field fields[] = {
                { "pid", VARLINK_UINT32, 0, offsetof(struct range_args, pid) },
                { "start", VARLINK_UINT, 0, offsetof(struct range_args, start) },
                { "length", VARLINK_UINT, 0, offsetof(struct range_args, length) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0 ||
            (r = get_process(call, m, &p, a.pid, &j)) < 0 ||
            (r = check_span(call, a.start, a.length)) < 0)
                return r;
        if (!m->engine)
                return error_no_gpu(call);
        r = manager_remove_range(m, a.pid, a.start, a.length);
        if (r == -ENOENT) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                put_u64(o, "pid", a.pid);
                put_u64(o, "start", a.start);
                put_u64(o, "length", a.length);
                return varlink_call_error(call, ERR("NoSuchRange"), o);
        }
        if (r < 0)
                return error_internal(call, r);
        return varlink_call_reply(call, NULL);
}

static int method_hint(struct varlink_call *call, struct json_object *params, void *ud) {
        struct {
                uint32_t pid;
                uint64_t start, length;
                const char *kind;
                uint64_t gpu, ttl_usec;
        } a = { .gpu = UNSET };
        static const struct varlink_field fields[] = {
                { "pid", VARLINK_UINT32, 0, offsetof(__typeof__(a), pid) },
                { "start", VARLINK_UINT, 0, offsetof(__typeof__(a), start) },
                { "length", VARLINK_UINT, 0, offsetof(__typeof__(a), length) },
                { "kind", VARLINK_STRING, 0, offsetof(__typeof__(a), kind) },
                { "gpu", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, offsetof(__typeof__(a), gpu) },
                { "ttl_usec", VARLINK_UINT, VARLINK_FIELD_OPTIONAL,
                  offsetof(__typeof__(a), ttl_usec) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job_hint h;
        struct job *j;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0)
                return r;
        h = (struct job_hint) { .pid = a.pid, .start = a.start, .length = a.length,
                                .kind = job_hint_kind_from_string(a.kind), .gpu = -1 };
        if (h.kind < 0)
                return varlink_call_error_invalid_parameter(call, "kind");
        if ((r = get_process(call, m, &p, a.pid, &j)) < 0 ||
            (r = check_span(call, a.start, a.length)) < 0)
                return r;
        bool wants_gpu = h.kind == SPM_HINT_HOT || h.kind == SPM_HINT_PIN_GPU;
        if (wants_gpu && a.gpu == UNSET)
                return error_invalid_value(call, "gpu", "hot and pin_gpu hints name a GPU");
        if (a.gpu != UNSET) {
                if (a.gpu >= (m->has_gpu ? m->machine.n_gpus : SPM_MAX_GPUS))
                        return error_no_such_gpu(call, (int64_t) MIN(a.gpu, (uint64_t) INT64_MAX));
                if (!(j->gpu_mask & (1U << a.gpu)))
                        return error_permission(call, "the GPU is not one of the job's");
                if (wants_gpu)
                        h.gpu = (int) a.gpu;
        }
        r = manager_hint(m, &h, a.ttl_usec);
        if (r == -ENOSPC)
                return error_limit(call, "hints per job", m->settings.max_hints_per_job);
        if (r == -EPERM)
                return error_permission(call, "the hint is beyond the job's rights");
        if (r == -EINVAL)
                return error_invalid_value(call, "length", "the engine refused the hint");
        if (r == -ENOENT)
                return error_no_such_process(call, a.pid);
        if (r < 0)
                return error_internal(call, r);
        return varlink_call_reply(call, NULL);
}

struct filter_args {
        uint64_t pid, job;
};

static const struct varlink_field filter_fields[] = {
        { "pid", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, offsetof(struct filter_args, pid) },
        { "job", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, offsetof(struct filter_args, job) },
        {}
};

static bool may_see_job(const struct auth_peer *p, const struct job *j) {
        return j && (p->admin || (j->uid == p->uid && !j->internal));
}

static int method_list_hints(struct varlink_call *call, struct json_object *params, void *ud) {
        struct filter_args a = { UNSET, UNSET };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct json_object *arr;
        int r;

        if ((r = varlink_call_dispatch(call, params, filter_fields, 0, &a)) < 0)
                return r;
        arr = json_object_new_array();
        for (size_t i = 0; arr && i < m->registry.n_jobs; i++) {
                const struct job *j = m->registry.jobs[i];
                if (!may_see_job(&p, j) || (a.job != UNSET && j->id != a.job))
                        continue;
                for (size_t k = 0; k < j->n_hints; k++)
                        if (a.pid == UNSET || j->hints[k].pid == a.pid)
                                json_object_array_add(arr, build_hint(&j->hints[k]));
        }
        return reply_one(call, "hints", arr);
}

struct ranges_walk {
        struct manager *m;
        const struct auth_peer *peer;
        uint64_t job;
        struct json_object *arr;
};

static int build_range(const struct spm_region_info *ri, void *userdata) {
        struct ranges_walk *w = userdata;
        const struct job *j = registry_find(&w->m->registry, ri->job_id);
        struct json_object *o, *heat;
        char name[16];

        if (!may_see_job(w->peer, j) || (w->job != UNSET && ri->job_id != w->job))
                return 0;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        put_u64(o, "pid", ri->pid);
        put_u64(o, "job", ri->job_id);
        put_u64(o, "start", ri->start);
        put_u64(o, "length", ri->length);
        put_str(o, "location", location_name(w->m, ri->loc));
        /* What the agent's last command set (PREFERRED_LOC, read back with GET); else the
         * hint's wish. */
        int64_t pref = agents_preferred(w->m, ri->pid, ri->start, ri->length);
        int pref_loc = pref == 0 ? SPM_LOC_SYSMEM : -1;
        const struct manager *mm = w->m;
        for (unsigned g = 0; pref > 0 && mm->mover && mm->mover_ops->gpu_id && g < mm->machine.n_gpus; g++)
                if (mm->mover_ops->gpu_id(mm->mover, g) == (uint32_t) pref)
                        pref_loc = (int) SPM_LOC_GPU(g);
        if (pref_loc >= 0)
                put_str(o, "preferred", location_name(w->m, (unsigned) pref_loc));
        else if (ri->hint == SPM_HINT_PIN_RAM)
                put_str(o, "preferred", location_name(w->m, SPM_LOC_SYSMEM));
        else if (ri->hint == SPM_HINT_PIN_GPU || ri->hint == SPM_HINT_HOT) {
                /* The hint's GPU is the registry's; the engine reports the kind. */
                int gpu = -1;
                for (size_t i = 0; j && i < j->n_hints; i++)
                        if (j->hints[i].pid == ri->pid && j->hints[i].start < ri->start + ri->length &&
                            ri->start < j->hints[i].start + j->hints[i].length)
                                gpu = j->hints[i].gpu;
                if (gpu >= 0)
                        put_str(o, "preferred", location_name(w->m, SPM_LOC_GPU(gpu)));
        }
        put_str(o, "hint", job_hint_kind_to_string(ri->hint) ? job_hint_kind_to_string(ri->hint)
                                                              : "none");
        heat = json_object_new_object();
        for (unsigned a = 0; a < w->m->machine.n_accessors; a++) {
                snprintf(name, sizeof(name), a == 0 ? "cpu" : "gpu%u", a - 1);
                put_double(heat, name, ri->heat[a]);
        }
        json_object_object_add(o, "heat", heat);
        put_u64(o, "moves", ri->moves);
        if (ri->last_move_usec)
                put_u64(o, "last_move_usec", ri->last_move_usec);
        put_bool(o, "quarantined", ri->quarantined);
        json_object_array_add(w->arr, o);
        return 0;
}

static int method_list_ranges(struct varlink_call *call, struct json_object *params, void *ud) {
        struct filter_args a = { UNSET, UNSET };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct ranges_walk w = { m, &p, UNSET, NULL };
        int r;

        if ((r = varlink_call_dispatch(call, params, filter_fields, 0, &a)) < 0)
                return r;
        if (a.pid != UNSET && (a.pid == 0 || a.pid > UINT32_MAX))
                return varlink_call_error_invalid_parameter(call, "pid");
        w.job = a.job;
        w.arr = json_object_new_array();
        if (!w.arr)
                return -ENOMEM;
        if (m->engine) {
                r = spm_engine_foreach_region(m->engine, a.pid == UNSET ? 0 : (uint32_t) a.pid,
                                              build_range, &w);
                if (r < 0) {
                        json_object_put(w.arr);
                        return error_internal(call, r);
                }
        }
        return reply_one(call, "ranges", w.arr);
}

static int method_get_policy(struct varlink_call *call, struct json_object *params, void *ud) {
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j;
        uint64_t job;
        int r;

        if ((r = dispatch_optional_job(call, m, &p, params, &job, &j)) < 0)
                return r;
        return reply_one(call, "policy", build_policy(m, j));
}

/* Reads SetPolicy's settings object, each value range-checked like its spmtierd.conf key. */
static int parse_policy_settings(struct varlink_call *call, struct json_object *o,
                                 struct policy_overrides *p) {
        static const struct {
                const char *field, *key;
                unsigned bit;
                bool is_double;
        } map[] = {
                { "epoch_usec", "EpochSec", POLICY_SET_EPOCH, false },
                { "half_life_usec", "HalfLifeSec", POLICY_SET_HALF_LIFE, false },
                { "hysteresis", "Hysteresis", POLICY_SET_HYSTERESIS, true },
                { "min_residency_epochs", "MinResidencyEpochs", POLICY_SET_MIN_RESIDENCY, false },
                { "pingpong_trips", "PingPongTrips", POLICY_SET_PINGPONG_TRIPS, false },
                { "pingpong_window_epochs", "PingPongWindowEpochs", POLICY_SET_PINGPONG_WINDOW,
                  false },
                { "quarantine_epochs", "QuarantineEpochs", POLICY_SET_QUARANTINE, false },
                { "migrate_budget_bytes", "MigrateBudget", POLICY_SET_BUDGET, false },
        };

        json_object_object_foreach(o, key, val) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(map); i++)
                        if (strcmp(key, map[i].field) == 0)
                                break;
                if (i == ELEMENTSOF(map))
                        return varlink_call_error_invalid_parameter(call, "settings"), -EINVAL;
                if (!val)
                        continue;
                const struct config_item *it = config_find(spmtierd_config_table, "Policy",
                                                           map[i].key);
                bool numeric = json_object_is_type(val, json_type_int) ||
                               (map[i].is_double && json_object_is_type(val, json_type_double));
                double d = json_object_get_double(val);
                if (!numeric || json_object_get_int64(val) < 0 ||
                    (!(it->min == 0 && it->max == 0) && (d < it->min || d > it->max))) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "%s must be a number in %g..%g", key, it->min,
                                 it->max);
                        return error_invalid_value(call, key, msg), -EINVAL;
                }
                uint64_t u = json_object_get_uint64(val);
                p->set |= map[i].bit;
                switch (map[i].bit) {
                case POLICY_SET_EPOCH: p->epoch_usec = u; break;
                case POLICY_SET_HALF_LIFE: p->half_life_usec = u; break;
                case POLICY_SET_HYSTERESIS: p->hysteresis = d; break;
                case POLICY_SET_MIN_RESIDENCY: p->min_residency_epochs = (unsigned) u; break;
                case POLICY_SET_PINGPONG_TRIPS: p->pingpong_trips = (unsigned) u; break;
                case POLICY_SET_PINGPONG_WINDOW: p->pingpong_window_epochs = (unsigned) u; break;
                case POLICY_SET_QUARANTINE: p->quarantine_epochs = (unsigned) u; break;
                case POLICY_SET_BUDGET: p->migrate_budget = u; break;
                }
        }
        return 0;
}

static int method_set_policy(struct varlink_call *call, struct json_object *params, void *ud) {
        struct {
                uint64_t job;
                const char *name;
                struct json_object *settings;
        } a = { .job = UNSET };
        static const struct varlink_field fields[] = {
                { "job", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, offsetof(__typeof__(a), job) },
                { "name", VARLINK_STRING, VARLINK_FIELD_OPTIONAL, offsetof(__typeof__(a), name) },
                { "settings", VARLINK_OBJECT, VARLINK_FIELD_OPTIONAL,
                  offsetof(__typeof__(a), settings) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j = NULL;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0)
                return r;
        if (a.job != UNSET) {
                if ((r = get_job(call, m, &p, a.job, &j)) < 0)
                        return r;
                if (a.settings)
                        return error_invalid_value(call, "settings",
                                                   "engine settings apply node-wide (job: null)");
                if (!a.name)
                        return error_invalid_value(call, "name", "name the job's policy");
                if (!name_known(spmtierd_policy_names, a.name))
                        return error_unknown_policy(call, a.name);
                r = manager_set_job_policy(m, j, a.name);
                if (r < 0)
                        return error_internal(call, r);
                return reply_one(call, "policy", build_policy(m, j));
        }
        if ((r = require_admin(call, &p)) < 0)
                return r;
        if (a.name)
                return error_invalid_value(call, "name", "the default policy is [Policy] "
                                                         "Default= in spmtierd.conf");
        struct policy_overrides o = m->registry.policy;
        if (a.settings && (r = parse_policy_settings(call, a.settings, &o)) < 0)
                return r;
        r = manager_set_policy_overrides(m, &o);
        if (r == -EINVAL)
                return error_invalid_value(call, "settings", "the engine refused the settings");
        if (r < 0)
                return error_internal(call, r);
        return reply_one(call, "policy", build_policy(m, NULL));
}

static int method_drain(struct varlink_call *call, struct json_object *params, void *ud) {
        struct {
                uint64_t gpu, job;
        } a = { .job = UNSET };
        static const struct varlink_field fields[] = {
                { "gpu", VARLINK_UINT, 0, offsetof(__typeof__(a), gpu) },
                { "job", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, offsetof(__typeof__(a), job) },
                {}
        };
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        unsigned moves, failures;
        uint64_t bytes;
        struct job *j;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &a)) < 0 ||
            (r = require_admin(call, &p)) < 0)
                return r;
        if (a.job != UNSET && (r = get_job(call, m, &p, a.job, &j)) < 0)
                return r;
        if (!m->engine)
                return error_no_gpu(call);
        if (a.gpu >= m->machine.n_gpus)
                return error_no_such_gpu(call, (int64_t) MIN(a.gpu, (uint64_t) INT64_MAX));
        r = manager_drain(m, (unsigned) a.gpu, a.job == UNSET ? 0 : a.job, &moves, &bytes,
                          &failures);
        if (r < 0)
                return error_internal(call, r);
        _cleanup_json_ struct json_object *o = json_object_new_object();
        put_u64(o, "moves", moves);
        put_u64(o, "bytes", bytes);
        put_u64(o, "failures", failures);
        return varlink_call_reply(call, o);
}

static int freeze_thaw(struct varlink_call *call, struct json_object *params, void *ud,
                       bool freeze) {
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j;
        uint64_t job;
        int r;

        if ((r = dispatch_optional_job(call, m, &p, params, &job, &j)) < 0)
                return r;
        /* Freezing the node is an admin's call; a job's owner may freeze the job. */
        if (job == UNSET && (r = require_admin(call, &p)) < 0)
                return r;
        r = manager_freeze(m, j, freeze);
        if (r < 0)
                return error_internal(call, r);
        return varlink_call_reply(call, NULL);
}

static int method_freeze(struct varlink_call *call, struct json_object *params, void *ud) {
        return freeze_thaw(call, params, ud, true);
}

static int method_thaw(struct varlink_call *call, struct json_object *params, void *ud) {
        return freeze_thaw(call, params, ud, false);
}

static int method_reload(struct varlink_call *call, struct json_object *params, void *ud) {
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct config_error err = {};
        struct json_object *a;
        int r;

        if ((r = varlink_call_dispatch(call, params, (const struct varlink_field[]) { {} }, 0,
                                       NULL)) < 0 ||
            (r = require_admin(call, &p)) < 0)
                return r;
        r = manager_reload(m, &err);
        if (r == -EINVAL) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                put_str(o, "file", err.file);
                put_int(o, "line", err.line);
                put_str(o, "message", err.message);
                return varlink_call_error(call, ERR("InvalidConfig"), o);
        }
        if (r < 0)
                return error_internal(call, r);
        a = json_object_new_array();
        for (char **f = m->config_files; a && f && *f; f++)
                json_object_array_add(a, json_object_new_string(*f));
        return reply_one(call, "config_files", a);
}

static int method_monitor(struct varlink_call *call, struct json_object *params, void *ud) {
        struct auth_peer p;
        struct manager *m = peer_of(call, ud, &p);
        struct job *j;
        uint64_t job;
        int r;

        if ((r = dispatch_optional_job(call, m, &p, params, &job, &j)) < 0)
                return r;
        r = manager_add_monitor(m, call, job, &p);
        if (r == -EUSERS)
                return error_limit(call, "monitors", m->settings.max_monitors);
        if (r < 0)
                return error_internal(call, r);
        /* The first reply says the subscription is live: events after it are not missed. */
        _cleanup_json_ struct json_object *e = json_object_new_object();
        put_str(e, "kind", "subscribed");
        put_u64(e, "realtime_usec", manager_now_realtime());
        put_u64(e, "epoch", m->epoch);
        if (job != UNSET)
                put_u64(e, "job", job);
        _cleanup_json_ struct json_object *o = json_object_new_object();
        json_object_object_add(o, "event", json_object_get(e));
        return varlink_call_reply_continues(call, o);
}

static const struct varlink_method methods[] = {
        { "GetStatus", method_get_status, 0 },
        { "RegisterJob", method_register_job, 0 },
        { "UnregisterJob", method_unregister_job, 0 },
        { "RenewJob", method_renew_job, 0 },
        { "ListJobs", method_list_jobs, 0 },
        { "AttachProcess", method_attach_process, 0 },
        { "DetachProcess", method_detach_process, 0 },
        { "AddRange", method_add_range, 0 },
        { "RemoveRange", method_remove_range, 0 },
        { "Hint", method_hint, 0 },
        { "ListHints", method_list_hints, 0 },
        { "ListRanges", method_list_ranges, 0 },
        { "GetPolicy", method_get_policy, 0 },
        { "SetPolicy", method_set_policy, 0 },
        { "Drain", method_drain, 0 },
        { "Freeze", method_freeze, 0 },
        { "Thaw", method_thaw, 0 },
        { "Reload", method_reload, 0 },
        { "Monitor", method_monitor, VARLINK_METHOD_REQUIRES_MORE },
        {}
};

const struct varlink_interface methods_interface = {
        .name = SPMTIERD_INTERFACE,
        .description = spmtierd_idl,
        .methods = methods,
};
