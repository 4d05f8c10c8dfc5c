/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fileio.h"
#include "spmtier/json-util.h"
#include "state.h"

/* A state file above this is not ours (4096 jobs x 4096 hints is ~ 400 MiB; refuse more). */
#define STATE_MAX_BYTES (512U << 20)

/* ---- writing ---- */

static int add(struct json_object *o, const char *k, struct json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, k, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_u64(struct json_object *o, const char *k, uint64_t v) {
        return add(o, k, json_object_new_uint64(v));
}

static int push(struct json_object *a, struct json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static struct json_object *hint_to_json(const struct job_hint *h) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        if (!o || add_u64(o, "pid", h->pid) < 0 || add_u64(o, "start", h->start) < 0 ||
            add_u64(o, "length", h->length) < 0 ||
            add(o, "kind", json_object_new_string(job_hint_kind_to_string(h->kind))) < 0 ||
            add(o, "gpu", json_object_new_int(h->gpu)) < 0 ||
            add_u64(o, "expires_usec", h->expires_usec) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static struct json_object *job_to_json(const struct job *j) {
        _cleanup_json_ struct json_object *o = json_object_new_object();
        struct json_object *pids, *hints, *c;

        if (!o || add_u64(o, "id", j->id) < 0 || add_u64(o, "uid", j->uid) < 0 ||
            add_u64(o, "gpu_mask", j->gpu_mask) < 0 ||
            add(o, "policy", json_object_new_string(j->policy)) < 0 ||
            add(o, "frozen", json_object_new_boolean(j->frozen)) < 0 ||
            add_u64(o, "ttl_usec", j->ttl_usec) < 0 ||
            add_u64(o, "expires_usec", j->expires_usec) < 0 ||
            add_u64(o, "registered_usec", j->registered_usec) < 0)
                return NULL;
        /* JSON null is a NULL json_object in json-c, so add() would take it for ENOMEM. */
        if (j->vram_quota == JOB_QUOTA_UNLIMITED
                    ? json_object_object_add(o, "vram_quota", NULL) < 0
                    : add_u64(o, "vram_quota", j->vram_quota) < 0)
                return NULL;

        pids = json_object_new_array();
        if (add(o, "pids", pids) < 0)
                return NULL;
        for (size_t i = 0; i < j->n_pids; i++)
                if (push(pids, json_object_new_uint64(j->pids[i])) < 0)
                        return NULL;
        hints = json_object_new_array();
        if (add(o, "hints", hints) < 0)
                return NULL;
        for (size_t i = 0; i < j->n_hints; i++)
                if (push(hints, hint_to_json(&j->hints[i])) < 0)
                        return NULL;
        c = json_object_new_object();
        if (add(o, "counters", c) < 0 || add_u64(c, "migrations", j->counters.migrations) < 0 ||
            add_u64(c, "failures", j->counters.failures) < 0 ||
            add_u64(c, "bytes_to_gpu", j->counters.bytes_to_gpu) < 0 ||
            add_u64(c, "bytes_to_ram", j->counters.bytes_to_ram) < 0 ||
            add_u64(c, "hints", j->counters.hints) < 0 ||
            add(c, "benefit_usec", json_object_new_double(j->counters.benefit_usec)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static struct json_object *policy_to_json(const struct policy_overrides *p) {
        _cleanup_json_ struct json_object *o = json_object_new_object();

        if (!o || add_u64(o, "set", p->set) < 0 || add_u64(o, "epoch_usec", p->epoch_usec) < 0 ||
            add_u64(o, "half_life_usec", p->half_life_usec) < 0 ||
            add(o, "hysteresis", json_object_new_double(p->hysteresis)) < 0 ||
            add_u64(o, "min_residency_epochs", p->min_residency_epochs) < 0 ||
            add_u64(o, "pingpong_trips", p->pingpong_trips) < 0 ||
            add_u64(o, "pingpong_window_epochs", p->pingpong_window_epochs) < 0 ||
            add_u64(o, "quarantine_epochs", p->quarantine_epochs) < 0 ||
            add_u64(o, "migrate_budget", p->migrate_budget) < 0)
                return NULL;
        return TAKE_PTR(o);
}

int state_to_json(const struct registry *r, struct json_object **ret) {
        _cleanup_json_ struct json_object *doc = json_object_new_object();
        struct json_object *jobs;

        if (!doc || add(doc, "format", json_object_new_string("spmtierd-state")) < 0 ||
            add_u64(doc, "version", STATE_VERSION) < 0 ||
            add(doc, "frozen", json_object_new_boolean(r->frozen)) < 0 ||
            add(doc, "policy", policy_to_json(&r->policy)) < 0)
                return -ENOMEM;
        jobs = json_object_new_array();
        if (add(doc, "jobs", jobs) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_jobs; i++)
                if (!r->jobs[i]->internal && push(jobs, job_to_json(r->jobs[i])) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(doc);
        return 0;
}

/* ---- reading: every field checked, every failure named ---- */

struct reader {
        char *msg;
        size_t size;
};

static _printf_(2, 3) int bad(struct reader *rd, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(rd->msg, rd->size, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int get(struct reader *rd, struct json_object *o, const char *k, enum json_type t,
               struct json_object **ret) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, k, &v))
                return bad(rd, "missing field \"%s\"", k);
        if (!json_object_is_type(v, t))
                return bad(rd, "field \"%s\" has the wrong type", k);
        *ret = v;
        return 0;
}

static int get_u64(struct reader *rd, struct json_object *o, const char *k, uint64_t max,
                   uint64_t *ret) {
        struct json_object *v;
        int r = get(rd, o, k, json_type_int, &v);

        if (r < 0)
                return r;
        /* get_int64 clamps values above INT64_MAX, so a negative result is a real sign. */
        if (json_object_get_int64(v) < 0 || json_object_get_uint64(v) > max)
                return bad(rd, "field \"%s\" is out of range", k);
        *ret = json_object_get_uint64(v);
        return 0;
}

static int get_u32(struct reader *rd, struct json_object *o, const char *k, uint32_t *ret) {
        uint64_t v;
        int r = get_u64(rd, o, k, UINT32_MAX, &v);

        if (r >= 0)
                *ret = (uint32_t) v;
        return r;
}

static int get_unsigned(struct reader *rd, struct json_object *o, const char *k,
                        unsigned *ret) {
        uint64_t v;
        int r = get_u64(rd, o, k, UINT32_MAX, &v);

        if (r >= 0)
                *ret = (unsigned) v;
        return r;
}

static int get_double(struct reader *rd, struct json_object *o, const char *k, double *ret) {
        struct json_object *v;

        if (!json_object_object_get_ex(o, k, &v))
                return bad(rd, "missing field \"%s\"", k);
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
                return bad(rd, "field \"%s\" has the wrong type", k);
        *ret = json_object_get_double(v);
        return 0;
}

static int get_bool(struct reader *rd, struct json_object *o, const char *k, bool *ret) {
        struct json_object *v;
        int r = get(rd, o, k, json_type_boolean, &v);

        if (r >= 0)
                *ret = json_object_get_boolean(v);
        return r;
}

static int hint_from_json(struct reader *rd, struct json_object *o, struct job_hint *h) {
        struct json_object *v;
        uint64_t gpu;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return bad(rd, "a hint is not an object");
        if ((r = get_u32(rd, o, "pid", &h->pid)) < 0 ||
            (r = get_u64(rd, o, "start", UINT64_MAX, &h->start)) < 0 ||
            (r = get_u64(rd, o, "length", UINT64_MAX, &h->length)) < 0 ||
            (r = get_u64(rd, o, "expires_usec", UINT64_MAX, &h->expires_usec)) < 0 ||
            (r = get(rd, o, "kind", json_type_string, &v)) < 0)
                return r;
        h->kind = job_hint_kind_from_string(json_object_get_string(v));
        if (h->kind < 0)
                return bad(rd, "unknown hint kind \"%s\"", json_object_get_string(v));
        if ((r = get(rd, o, "gpu", json_type_int, &v)) < 0)
                return r;
        if (json_object_get_int64(v) == -1)
                h->gpu = -1;
        else if ((r = get_u64(rd, o, "gpu", SPM_MAX_GPUS - 1, &gpu)) < 0)
                return r;
        else
                h->gpu = (int) gpu;
        return 0;
}

static int job_from_json(struct reader *rd, struct json_object *o, struct registry *reg) {
        struct json_object *v, *a, *c;
        struct job_spec spec = {};
        uint64_t expires, registered;
        struct job *j;
        bool created;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return bad(rd, "a job is not an object");
        if ((r = get_u64(rd, o, "id", UINT64_MAX, &spec.id)) < 0 ||
            (r = get_u32(rd, o, "uid", &spec.uid)) < 0 ||
            (r = get_u32(rd, o, "gpu_mask", &spec.gpu_mask)) < 0 ||
            (r = get_u64(rd, o, "ttl_usec", UINT64_MAX, &spec.ttl_usec)) < 0 ||
            (r = get_u64(rd, o, "expires_usec", UINT64_MAX, &expires)) < 0 ||
            (r = get_u64(rd, o, "registered_usec", UINT64_MAX, &registered)) < 0 ||
            (r = get(rd, o, "policy", json_type_string, &v)) < 0)
                return r;
        if (spec.gpu_mask >= (1U << SPM_MAX_GPUS))
                return bad(rd, "job %" PRIu64 ": gpu_mask names GPUs beyond %d", spec.id,
                           SPM_MAX_GPUS);
        spec.policy = json_object_get_string(v);
        if (!json_object_object_get_ex(o, "vram_quota", &v))
                return bad(rd, "job %" PRIu64 ": missing field \"vram_quota\"", spec.id);
        if (!v)
                spec.vram_quota = JOB_QUOTA_UNLIMITED;
        else if ((r = get_u64(rd, o, "vram_quota", UINT64_MAX - 1, &spec.vram_quota)) < 0)
                return r;
        if (registry_find(reg, spec.id))
                return bad(rd, "job %" PRIu64 " appears twice", spec.id);
        r = registry_register(reg, &spec, 0, &j, &created);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return bad(rd, "job %" PRIu64 ": bad policy name", spec.id);
        j->expires_usec = expires;
        j->registered_usec = registered;
        if ((r = get_bool(rd, o, "frozen", &j->frozen)) < 0)
                return r;

        if ((r = get(rd, o, "pids", json_type_array, &a)) < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                struct json_object *p = json_object_array_get_idx(a, i);
                struct job *other = NULL;
                if (!json_object_is_type(p, json_type_int) || json_object_get_int64(p) <= 0 ||
                    json_object_get_int64(p) > UINT32_MAX)
                        return bad(rd, "job %" PRIu64 ": bad pid", spec.id);
                r = registry_attach(reg, j, (uint32_t) json_object_get_int64(p), &other);
                if (r == -ENOMEM)
                        return r;
                if (r != 0)
                        return bad(rd, "job %" PRIu64 ": pid %" PRId64 " attached twice",
                                   spec.id, json_object_get_int64(p));
        }
        if ((r = get(rd, o, "hints", json_type_array, &a)) < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                struct job_hint h;
                r = hint_from_json(rd, json_object_array_get_idx(a, i), &h);
                if (r < 0)
                        return r;
                if (registry_find_pid(reg, h.pid) != j || h.kind == SPM_HINT_NONE)
                        return bad(rd, "job %" PRIu64 ": hint for pid %" PRIu32
                                   " that is not the job's, or of kind none", spec.id, h.pid);
                r = registry_hint(reg, &h);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return bad(rd, "job %" PRIu64 ": bad hint", spec.id);
        }
        if ((r = get(rd, o, "counters", json_type_object, &c)) < 0 ||
            (r = get_u64(rd, c, "migrations", UINT64_MAX, &j->counters.migrations)) < 0 ||
            (r = get_u64(rd, c, "failures", UINT64_MAX, &j->counters.failures)) < 0 ||
            (r = get_u64(rd, c, "bytes_to_gpu", UINT64_MAX, &j->counters.bytes_to_gpu)) < 0 ||
            (r = get_u64(rd, c, "bytes_to_ram", UINT64_MAX, &j->counters.bytes_to_ram)) < 0 ||
            (r = get_u64(rd, c, "hints", UINT64_MAX, &j->counters.hints)) < 0 ||
            (r = get_double(rd, c, "benefit_usec", &j->counters.benefit_usec)) < 0)
                return r;
        return 0;
}

static int policy_from_json(struct reader *rd, struct json_object *o, struct policy_overrides *p) {
        int r;

        if ((r = get_unsigned(rd, o, "set", &p->set)) < 0 ||
            (r = get_u64(rd, o, "epoch_usec", UINT64_MAX, &p->epoch_usec)) < 0 ||
            (r = get_u64(rd, o, "half_life_usec", UINT64_MAX, &p->half_life_usec)) < 0 ||
            (r = get_double(rd, o, "hysteresis", &p->hysteresis)) < 0 ||
            (r = get_unsigned(rd, o, "min_residency_epochs", &p->min_residency_epochs)) < 0 ||
            (r = get_unsigned(rd, o, "pingpong_trips", &p->pingpong_trips)) < 0 ||
            (r = get_unsigned(rd, o, "pingpong_window_epochs", &p->pingpong_window_epochs)) < 0 ||
            (r = get_unsigned(rd, o, "quarantine_epochs", &p->quarantine_epochs)) < 0 ||
            (r = get_u64(rd, o, "migrate_budget", UINT64_MAX, &p->migrate_budget)) < 0)
                return r;
        return 0;
}

int state_from_json(struct json_object *doc, struct registry *r, char *msg, size_t msg_size) {
        struct reader rd = { msg, msg_size };
        struct job_limits saved = r->limits;
        struct json_object *v, *jobs, *pol;
        uint64_t version;
        int k;

        if (!json_object_is_type(doc, json_type_object))
                return bad(&rd, "not a JSON object");
        if ((k = get(&rd, doc, "format", json_type_string, &v)) < 0)
                return k;
        if (strcmp(json_object_get_string(v), "spmtierd-state") != 0)
                return bad(&rd, "not an spmtierd state file");
        if ((k = get_u64(&rd, doc, "version", UINT64_MAX, &version)) < 0)
                return k;
        if (version != STATE_VERSION)
                return bad(&rd, "state version %" PRIu64 " is not %d", version, STATE_VERSION);
        if ((k = get_bool(&rd, doc, "frozen", &r->frozen)) < 0 ||
            (k = get(&rd, doc, "policy", json_type_object, &pol)) < 0 ||
            (k = policy_from_json(&rd, pol, &r->policy)) < 0 ||
            (k = get(&rd, doc, "jobs", json_type_array, &jobs)) < 0)
                goto fail;

        r->limits = (struct job_limits) { UINT32_MAX, UINT32_MAX, UINT32_MAX };
        for (size_t i = 0; i < json_object_array_length(jobs); i++) {
                k = job_from_json(&rd, json_object_array_get_idx(jobs, i), r);
                if (k < 0)
                        goto fail;
        }
        r->limits = saved;
        return 0;
fail:
        registry_done(r);
        r->limits = saved;
        r->frozen = false;
        r->policy = (struct policy_overrides) {};
        return k;
}

static int state_path(const char *dir, const char *suffix, char **ret) {
        return asprintf(ret, "%s/%s%s", dir, STATE_FILE, suffix) < 0 ? -ENOMEM : 0;
}

int state_save(const struct registry *r, const char *dir, bool durable) {
        _cleanup_json_ struct json_object *doc = NULL;
        _cleanup_free_ char *path = NULL;
        const char *text;
        int k;

        k = state_to_json(r, &doc);
        if (k < 0)
                return k;
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        k = state_path(dir, "", &path);
        if (k < 0)
                return k;
        return write_file_atomic(path, text, strlen(text), 0600, durable);
}

int state_journal_open(const char *dir) {
        _cleanup_free_ char *path = NULL;
        int fd;

        if (asprintf(&path, "%s/%s", dir, STATE_JOURNAL) < 0)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        return fd < 0 ? -errno : fd;
}

int state_journal_append(int fd, const struct job_hint *h) {
        _cleanup_json_ struct json_object *o = hint_to_json(h);
        const char *text;
        char *line;
        int r;

        if (!o)
                return -ENOMEM;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text || asprintf(&line, "%s\n", text) < 0)
                return -ENOMEM;
        /* One write() of a short line with O_APPEND: a killed process leaves it whole. */
        ssize_t k = write(fd, line, strlen(line));
        r = k < 0 ? -errno : (size_t) k == strlen(line) ? 0 : -EIO;
        free(line);
        return r;
}

int state_journal_reset(int fd, bool durable) {
        if (ftruncate(fd, 0) < 0)
                return -errno;
        return durable ? RET_NERRNO(fsync(fd)) : 0;
}

static int state_replay_journal(const char *dir, struct registry *r, char *msg, size_t size) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        struct reader rd = { msg, size };
        struct job_limits saved = r->limits;
        unsigned line = 0;
        int k;

        if (asprintf(&path, "%s/%s", dir, STATE_JOURNAL) < 0)
                return -ENOMEM;
        k = read_file_full(path, STATE_MAX_BYTES, &text, NULL);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        r->limits = (struct job_limits) { UINT32_MAX, UINT32_MAX, UINT32_MAX };
        for (char *p = text, *nl; *p; p = nl + 1) {
                _cleanup_json_ struct json_object *o = NULL;
                struct job_hint h;

                line++;
                nl = strchr(p, '\n');
                if (!nl) {
                        /* A torn last line: the append never completed, nobody saw a reply. */
                        break;
                }
                *nl = '\0';
                o = json_tokener_parse(p);
                k = o ? hint_from_json(&rd, o, &h) : bad(&rd, "not JSON");
                if (k == -ENOMEM)
                        goto fail;
                if (k < 0) {
                        char why[200];
                        snprintf(why, sizeof(why), "%s", msg);
                        k = bad(&rd, "%s line %u: %s", STATE_JOURNAL, line, why);
                        goto fail;
                }
                /* A hint for a process no longer attached was overtaken by a snapshot. */
                k = registry_hint(r, &h);
                if (k == -ENOMEM)
                        goto fail;
        }
        r->limits = saved;
        return 0;
fail:
        r->limits = saved;
        return k;
}

int state_load(const char *dir, struct registry *r, char *msg, size_t msg_size) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_json_ struct json_object *doc = NULL;
        enum json_tokener_error jerr;
        size_t size;
        int k;

        k = state_path(dir, "", &path);
        if (k < 0)
                return k;
        k = read_file_full(path, STATE_MAX_BYTES, &text, &size);
        if (k == -ENOENT)
                return 0;
        if (k == -EFBIG)
                return snprintf(msg, msg_size, "%s is larger than %u bytes", path,
                                STATE_MAX_BYTES), -EBADMSG;
        if (k < 0)
                return k;
        if (strlen(text) != size)
                return snprintf(msg, msg_size, "%s contains a NUL byte", path), -EBADMSG;
        doc = json_tokener_parse_verbose(text, &jerr);
        if (!doc)
                return snprintf(msg, msg_size, "%s is not JSON: %s", path,
                                json_tokener_error_desc(jerr)), -EBADMSG;
        k = state_from_json(doc, r, msg, msg_size);
        if (k < 0)
                return k;
        k = state_replay_journal(dir, r, msg, msg_size);
        if (k < 0) {
                registry_done(r);
                r->frozen = false;
                r->policy = (struct policy_overrides) {};
                return k;
        }
        return 1;
}

int state_move_aside(const char *dir) {
        _cleanup_free_ char *from = NULL, *to = NULL, *journal = NULL, *journal_to = NULL;

        if (state_path(dir, "", &from) < 0 || state_path(dir, ".corrupt", &to) < 0 ||
            asprintf(&journal, "%s/%s", dir, STATE_JOURNAL) < 0 ||
            asprintf(&journal_to, "%s/%s.corrupt", dir, STATE_JOURNAL) < 0)
                return -ENOMEM;
        /* The journal belongs to the snapshot it follows: both go. */
        if (rename(journal, journal_to) < 0 && errno != ENOENT)
                return -errno;
        return RET_NERRNO(rename(from, to));
}
