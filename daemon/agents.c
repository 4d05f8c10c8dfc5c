/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "kfd-topology.h"
#include "log.h"
#include "manager.h"
#include "spmtier/json-util.h"
#include "spmtier/macro.h"

#define AGENT_ERR(name) "io.spmtier.agent." name
#define MAX_RANGES 4096
#define PAGE 4096ULL

struct agent *agents_find(const struct manager *m, uint32_t pid) {
        for (size_t i = 0; i < m->n_agents; i++)
                if (m->agents[i]->pid == pid)
                        return m->agents[i];
        return NULL;
}

static void agent_free(struct agent *a) {
        if (!a)
                return;
        varlink_call_unref(a->stream);
        free(a->ranges);
        free(a);
}

static void agents_remove(struct manager *m, struct agent *a) {
        for (size_t i = 0; i < m->n_agents; i++)
                if (m->agents[i] == a) {
                        m->agents[i] = m->agents[--m->n_agents];
                        break;
                }
        agent_free(a);
}

void agents_free_all(struct manager *m) {
        while (m->n_agents > 0)
                agent_free(m->agents[--m->n_agents]);
        free(m->agents);
        m->agents = NULL;
}

static int error_denied(struct varlink_call *call, const char *reason) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "reason", json_object_new_string(reason));
        return varlink_call_error(call, AGENT_ERR("PermissionDenied"), o);
}

/* Only the process itself speaks for its pid (root may speak for any: tests, tools). */
static int check_peer(struct varlink_call *call, uint32_t pid) {
        const struct ucred *u = varlink_call_peer(call);

        if (u->uid == 0 || (uint32_t) u->pid == pid)
                return 0;
        return error_denied(call, "an agent speaks only for its own process");
}

/* Parses a []Range into v (page-aligned, non-empty ones; the rest are skipped: the agent's
 * maps lines are page-aligned, anything else is not a mapping). Returns the count. */
static size_t parse_ranges(struct json_object *arr, struct agent_range *v, size_t max) {
        size_t n = 0;

        for (size_t i = 0; arr && i < json_object_array_length(arr) && n < max; i++) {
                struct json_object *r = json_object_array_get_idx(arr, i), *s, *l;
                if (!json_object_is_type(r, json_type_object) ||
                    !json_object_object_get_ex(r, "start", &s) ||
                    !json_object_object_get_ex(r, "length", &l) ||
                    !json_object_is_type(s, json_type_int) || !json_object_is_type(l, json_type_int))
                        continue;
                int64_t start = json_object_get_int64(s), len = json_object_get_int64(l);
                if (start < 0 || len <= 0 || start % PAGE || len % PAGE || start > INT64_MAX - len)
                        continue;
                v[n++] = (struct agent_range) { (uint64_t) start, (uint64_t) len };
        }
        return n;
}

static bool range_in(const struct agent_range *v, size_t n, const struct agent_range *r) {
        for (size_t i = 0; i < n; i++)
                if (v[i].start == r->start && v[i].length == r->length)
                        return true;
        return false;
}

/* Forgets the parts of [start, end) that no range of v covers. */
static void remove_uncovered(struct manager *m, uint32_t pid, uint64_t start, uint64_t end,
                             const struct agent_range *v, size_t n) {
        while (start < end) {
                /* The range of v covering start, or the first one after it. */
                uint64_t next = end;
                bool covered = false;
                for (size_t i = 0; i < n && !covered; i++) {
                        uint64_t s = v[i].start, e = v[i].start + v[i].length;
                        if (s <= start && start < e) {
                                start = e;
                                covered = true;
                        } else if (s > start && s < next)
                                next = s;
                }
                if (covered)
                        continue;
                (void) manager_remove_range(m, pid, start, next - start);
                start = next;
        }
}

/* Replaces a's ranges with v: the engine forgets what went and learns what came. A mapping
 * that grew or merged with a neighbour (a new mmap next to it) keeps what the engine knows of
 * the part that stayed: its location, heat and history. */
static void agent_set_ranges(struct manager *m, struct agent *a, struct agent_range *v, size_t n) {
        for (size_t i = 0; i < a->n_ranges; i++)
                if (!range_in(v, n, &a->ranges[i]))
                        remove_uncovered(m, a->pid, a->ranges[i].start,
                                         a->ranges[i].start + a->ranges[i].length, v, n);
        for (size_t i = 0; i < n; i++)
                if (!range_in(a->ranges, a->n_ranges, &v[i])) {
                        int r = manager_add_range(m, a->pid, v[i].start, v[i].length,
                                                  SPM_LOC_SYSMEM);
                        if (r < 0 && r != -ENODEV)
                                log_debug_errno(r, "Range [0x%" PRIx64 "+%" PRIu64 "] of pid %"
                                                PRIu32 " not tracked: %m", v[i].start,
                                                v[i].length, a->pid);
                }
        free(a->ranges);
        a->ranges = v;
        a->n_ranges = n;
}

static void on_agent_disconnect(struct varlink_call *call, void *userdata) {
        struct manager *m = userdata;
        struct agent *a = NULL;

        for (size_t i = 0; i < m->n_agents; i++)
                if (m->agents[i]->stream == call)
                        a = m->agents[i];
        if (!a)
                return; /* replaced by a newer Connect of the same pid */
        uint32_t pid = a->pid;
        uint64_t job = a->job;
        bool implicit = a->implicit_job;
        log_info("Agent of pid %" PRIu32 " (job %" PRIu64 ") disconnected after %" PRIu64
                 " commands", pid, job, a->commands);
        if (m->mover && m->mover_ops->process_gone)
                m->mover_ops->process_gone(m->mover, pid);
        agents_remove(m, a);
        /* Its process has exited or lost its agent: nothing of it can move any more. */
        if (implicit)
                (void) manager_end_job(m, job, "process exited", NULL);
        else
                (void) manager_detach(m, pid);
}

/* The job pid belongs to: one it is attached to, the named one (registered for the peer if
 * the Slurm prolog has not), or an implicit job of its own. */
static int agent_job(struct manager *m, struct varlink_call *call, uint32_t pid, uint64_t job_id,
                     bool has_job, struct job **ret, bool *ret_implicit) {
        const struct ucred *u = varlink_call_peer(call);
        struct job *j = registry_find_pid(&m->registry, pid);
        bool created;

        *ret_implicit = false;
        if (j && (!has_job || j->id == job_id)) {
                *ret = j;
                *ret_implicit = j->internal && j->id == AGENT_JOB_BASE + pid;
                return 0;
        }
        if (j)
                (void) manager_detach(m, pid); /* a stale attachment (the pid was reused) */
        if (has_job && (j = registry_find(&m->registry, job_id))) {
                if (u->uid != 0 && j->uid != u->uid)
                        return -EPERM;
                *ret = j;
                return 0;
        }
        struct job_spec spec = {
                .id = has_job ? job_id : AGENT_JOB_BASE + pid, .uid = u->uid,
                .gpu_mask = m->has_gpu ? (1U << m->machine.n_gpus) - 1 : 1,
                .vram_quota = JOB_QUOTA_UNLIMITED, .policy = m->settings.default_policy,
                .ttl_usec = has_job ? m->settings.lease_usec : JOB_TTL_INFINITE,
                .internal = !has_job,
        };
        *ret_implicit = !has_job;
        return manager_register_job(m, &spec, ret, &created);
}

/* Bytes of KFD VRAM pid holds on GPU gpu_id (<sys>/class/kfd/kfd/proc/<pid>/vram_<gpuid>),
 * 0 when unknown. */
static uint64_t proc_vram(const struct manager *m, uint32_t pid, uint32_t gpu_id) {
        char path[4096];
        unsigned long long v = 0;
        _cleanup_fclose_ FILE *f = NULL;

        snprintf(path, sizeof(path), "%s/class/kfd/kfd/proc/%" PRIu32 "/vram_%" PRIu32,
                 m->settings.sys_root, pid, gpu_id);
        f = fopen(path, "re");
        if (!f || fscanf(f, "%llu", &v) != 1)
                return 0;
        return v;
}

/* A process that connects holding VRAM (a daemon restart, or a process the daemon never saw
 * before): nothing says which ranges are where, and the engine takes them all for system
 * memory. Bringing every range home once makes that true (a prefetch of pages already in RAM
 * moves nothing); the engine then places them again from what it sees. The reset pins nothing
 * (PREFERRED_LOC stays undefined): it must not turn the driver's fault migration off for the
 * whole process. Frozen means nothing moves, this included. */
static void agent_reset(struct manager *m, struct agent *a) {
        int gpu = -1;

        if (manager_job_frozen(m, a->job))
                return;
        for (unsigned g = 0; gpu < 0 && m->mover && m->mover_ops->gpu_id && g < m->machine.n_gpus; g++)
                if (proc_vram(m, a->pid, m->mover_ops->gpu_id(m->mover, g)) > 0)
                        gpu = (int) g;
        if (gpu < 0 || a->n_ranges == 0)
                return;
        struct spm_plan plan;
        spm_plan_init(&plan);
        plan.moves = calloc(a->n_ranges, sizeof(*plan.moves));
        if (!plan.moves)
                return;
        for (size_t i = 0; i < a->n_ranges; i++)
                plan.moves[plan.n_moves++] = (struct spm_move) {
                        .pid = a->pid, .job_id = a->job, .start = a->ranges[i].start,
                        .length = a->ranges[i].length, .from = (uint8_t) SPM_LOC_GPU(gpu),
                        .to = SPM_LOC_SYSMEM, .reason = SPM_REASON_DRAIN,
                };
        log_info("Agent of pid %" PRIu32 " holds VRAM the daemon has no record of: bringing its "
                 "%zu ranges home", a->pid, a->n_ranges);
        manager_submit_moves(m, &plan, SPM_MOVE_HOME, "Reset:");
        free(plan.moves);
}

static int method_connect(struct varlink_call *call, struct json_object *params, void *userdata) {
        struct manager *m = userdata;
        struct {
                uint32_t pid;
                uint64_t job;
                struct json_object *gpus, *ranges;
                bool truncated;
        } p = { .job = UINT64_MAX };
        static const struct varlink_field fields[] = {
                { "pid", VARLINK_UINT32, 0, offsetof(__typeof__(p), pid) },
                { "job", VARLINK_UINT, VARLINK_FIELD_OPTIONAL, offsetof(__typeof__(p), job) },
                { "gpus", VARLINK_ARRAY, 0, offsetof(__typeof__(p), gpus) },
                { "ranges", VARLINK_ARRAY, 0, offsetof(__typeof__(p), ranges) },
                { "truncated", VARLINK_BOOL, 0, offsetof(__typeof__(p), truncated) },
                {}
        };
        _cleanup_free_ struct agent_range *v = NULL;
        struct job *j;
        bool implicit;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &p)) < 0 ||
            (r = check_peer(call, p.pid)) != 0)
                return r;
        if (p.pid == 0 || p.job == 0 || (p.job != UINT64_MAX && p.job >= AGENT_JOB_BASE))
                return varlink_call_error_invalid_parameter(call, p.pid == 0 ? "pid" : "job");
        r = agent_job(m, call, p.pid, p.job, p.job != UINT64_MAX, &j, &implicit);
        if (r == -EPERM)
                return error_denied(call, "the job belongs to another user");
        if (r < 0)
                return varlink_call_error_errno(call, r);
        r = manager_attach(m, j, p.pid, NULL);
        if (r < 0)
                return varlink_call_error_errno(call, r);

        struct agent *a = agents_find(m, p.pid);
        if (a) /* the agent reconnected before we noticed the old stream close */
                a->stream = varlink_call_unref(a->stream);
        else {
                struct agent **l = realloc(m->agents, (m->n_agents + 1) * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                m->agents = l;
                a = calloc(1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                a->pid = p.pid;
                m->agents[m->n_agents++] = a;
        }
        a->job = j->id;
        a->implicit_job = implicit;
        a->stream = varlink_call_ref(call);
        varlink_call_set_disconnect_handler(call, on_agent_disconnect, m);

        a->n_gpus = 0;
        for (size_t i = 0; i < json_object_array_length(p.gpus) && a->n_gpus < 8; i++) {
                struct json_object *g = json_object_array_get_idx(p.gpus, i);
                int64_t id = json_object_is_type(g, json_type_int) ? json_object_get_int64(g) : 0;
                uint32_t gid = id > 0 && id <= UINT32_MAX ? (uint32_t) id : 0;
                bool known = false;
                for (unsigned k = 0; m->mover && m->mover_ops->gpu_id && k < m->machine.n_gpus; k++)
                        known |= m->mover_ops->gpu_id(m->mover, k) == gid;
                if (gid && m->mover && m->mover_ops->gpu_id && !known)
                        log_warning("Agent of pid %" PRIu32 " announced gpu_id %" PRIu32
                                    ", which this node does not manage", p.pid, gid);
                if (gid)
                        a->gpu_ids[a->n_gpus++] = gid;
        }
        v = calloc(MAX_RANGES, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t n = parse_ranges(p.ranges, v, MAX_RANGES);
        agent_set_ranges(m, a, TAKE_PTR(v), n);
        log_info("Agent of pid %" PRIu32 " attached to job %" PRIu64 "%s: %u GPUs, %zu ranges%s",
                 p.pid, j->id, implicit ? " (implicit)" : "", a->n_gpus, n,
                 p.truncated ? " (truncated)" : "");
        r = varlink_call_reply_continues(call, NULL);
        if (r >= 0 && m->engine)
                agent_reset(m, a);
        return r;
}

static bool overlaps(uint64_t a, uint64_t al, uint64_t b, uint64_t bl) {
        return a < b + bl && b < a + al;
}

static void agent_note_preferred(struct agent *a, uint64_t start, uint64_t len, uint32_t gpu_id) {
        size_t k = 0;

        for (size_t i = 0; i < a->n_prefs; i++)
                if (!overlaps(a->prefs[i].start, a->prefs[i].length, start, len))
                        a->prefs[k++] = a->prefs[i];
        if (k == AGENT_MAX_PREFS) /* the oldest goes */
                memmove(a->prefs, a->prefs + 1, --k * sizeof(a->prefs[0]));
        a->prefs[k++] = (struct agent_pref) { start, len, gpu_id };
        a->n_prefs = k;
}

int64_t agents_preferred(const struct manager *m, uint32_t pid, uint64_t start, uint64_t len) {
        const struct agent *a = agents_find(m, pid);

        for (size_t i = a ? a->n_prefs : 0; i > 0; i--) {
                const struct agent_pref *x = &a->prefs[i - 1];
                if (overlaps(x->start, x->length, start, len))
                        return x->gpu_id == UINT32_MAX ? -1 : (int64_t) x->gpu_id;
        }
        return -1;
}

static int method_report(struct varlink_call *call, struct json_object *params, void *userdata) {
        struct manager *m = userdata;
        struct {
                uint32_t pid;
                uint64_t id;
                int64_t status, moved_bytes, preferred, prefetch;
        } p = {};
        static const struct varlink_field fields[] = {
                { "pid", VARLINK_UINT32, 0, offsetof(__typeof__(p), pid) },
                { "id", VARLINK_UINT, 0, offsetof(__typeof__(p), id) },
                { "status", VARLINK_INT, 0, offsetof(__typeof__(p), status) },
                { "moved_bytes", VARLINK_INT, 0, offsetof(__typeof__(p), moved_bytes) },
                { "preferred", VARLINK_INT, 0, offsetof(__typeof__(p), preferred) },
                { "prefetch", VARLINK_INT, 0, offsetof(__typeof__(p), prefetch) },
                {}
        };
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &p)) < 0 ||
            (r = check_peer(call, p.pid)) != 0)
                return r;
        if (p.status > 0 || p.status < -4095)
                return varlink_call_error_invalid_parameter(call, "status");
        struct agent *a = agents_find(m, p.pid);
        if (a) {
                a->reports++;
                /* -1: undefined again (a reset), which hides older preferences of the span. */
                if (p.id == a->last.id && p.preferred >= -1 && p.preferred < UINT32_MAX)
                        agent_note_preferred(a, a->last.start, a->last.length,
                                             p.preferred < 0 ? UINT32_MAX : (uint32_t) p.preferred);
        }
        /* A report for a command of an earlier daemon is answered and dropped. */
        if (m->mover && m->mover_ops->report) {
                struct spm_agent_report rep = {
                        .pid = p.pid, .id = p.id, .status = (int) p.status,
                        .moved_bytes = p.moved_bytes > 0 ? (uint64_t) p.moved_bytes : 0,
                        .preferred = p.preferred, .prefetch = p.prefetch,
                };
                m->mover_ops->report(m->mover, &rep);
        }
        return varlink_call_reply(call, NULL);
}

static int method_set_ranges(struct varlink_call *call, struct json_object *params,
                             void *userdata) {
        struct manager *m = userdata;
        struct {
                uint32_t pid;
                struct json_object *ranges;
                bool truncated;
        } p = {};
        static const struct varlink_field fields[] = {
                { "pid", VARLINK_UINT32, 0, offsetof(__typeof__(p), pid) },
                { "ranges", VARLINK_ARRAY, 0, offsetof(__typeof__(p), ranges) },
                { "truncated", VARLINK_BOOL, 0, offsetof(__typeof__(p), truncated) },
                {}
        };
        _cleanup_free_ struct agent_range *v = NULL;
        int r;

        if ((r = varlink_call_dispatch(call, params, fields, 0, &p)) < 0 ||
            (r = check_peer(call, p.pid)) != 0)
                return r;
        struct agent *a = agents_find(m, p.pid);
        if (!a)
                return varlink_call_error(call, AGENT_ERR("NotConnected"), NULL);
        v = calloc(MAX_RANGES, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t n = parse_ranges(p.ranges, v, MAX_RANGES);
        agent_set_ranges(m, a, TAKE_PTR(v), n);
        return varlink_call_reply(call, NULL);
}

int agents_send(void *userdata, const struct spm_agent_command *c) {
        struct manager *m = userdata;
        struct agent *a = agents_find(m, c->pid);
        _cleanup_json_ struct json_object *o = json_object_new_object();
        struct json_object *cmd = json_object_new_object();

        if (!o || !cmd) {
                json_object_put(cmd);
                return -ENOMEM;
        }
        json_object_object_add(o, "command", cmd);
        if (!a || !a->stream)
                return -ESRCH;
        json_object_object_add(cmd, "id", json_object_new_int64((int64_t) c->id));
        json_object_object_add(cmd, "start", json_object_new_int64((int64_t) c->start));
        json_object_object_add(cmd, "length", json_object_new_int64((int64_t) c->length));
        json_object_object_add(cmd, "to_gpu", json_object_new_int64(c->to_gpu_id));
        json_object_object_add(cmd, "access_gpu", json_object_new_int64(c->access_gpu_id));
        if (c->mode == SPM_MOVE_HOME)
                json_object_object_add(cmd, "preferred", json_object_new_int64(-1));
        if (c->mode == SPM_MOVE_PIN)
                json_object_object_add(cmd, "prefetch", json_object_new_boolean(false));
        int r = varlink_call_reply_continues(a->stream, o);
        if (r < 0)
                return -ESRCH;
        a->commands++;
        a->last = *c;
        return 0;
}

static const struct varlink_method methods[] = {
        { "Connect", method_connect, VARLINK_METHOD_REQUIRES_MORE },
        { "Report", method_report, 0 },
        { "SetRanges", method_set_ranges, 0 },
        {},
};

const struct varlink_interface agents_interface = {
        .name = "io.spmtier.agent",
        .description = agent_idl,
        .methods = methods,
};
