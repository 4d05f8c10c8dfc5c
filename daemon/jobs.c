/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "spmtier/macro.h"

void registry_init(struct registry *r, const struct job_limits *limits) {
        *r = (struct registry) { .limits = *limits };
}

struct job *job_free(struct job *j) {
        if (!j)
                return NULL;
        free(j->pids);
        free(j->hints);
        free(j);
        return NULL;
}

void registry_done(struct registry *r) {
        for (size_t i = 0; i < r->n_jobs; i++)
                job_free(r->jobs[i]);
        free(r->jobs);
        r->jobs = NULL;
        r->n_jobs = 0;
}

/* Index of the first job with id >= id (binary search over the sorted array). */
static size_t registry_lower_bound(const struct registry *r, uint64_t id) {
        size_t lo = 0, hi = r->n_jobs;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (r->jobs[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

struct job *registry_find(const struct registry *r, uint64_t id) {
        size_t i = registry_lower_bound(r, id);
        return i < r->n_jobs && r->jobs[i]->id == id ? r->jobs[i] : NULL;
}

void registry_renew(struct job *j, uint64_t ttl_usec, uint64_t now) {
        if (ttl_usec != 0)
                j->ttl_usec = ttl_usec;
        if (j->ttl_usec == JOB_TTL_INFINITE)
                j->expires_usec = 0;
        else if (!ADD_SAFE(&j->expires_usec, now, j->ttl_usec))
                j->expires_usec = UINT64_MAX;
}

static int job_apply_spec(struct job *j, const struct job_spec *spec, uint64_t now) {
        if (!spec->policy || !spec->policy[0] || strlen(spec->policy) >= JOB_POLICY_MAX)
                return -EINVAL;
        j->uid = spec->uid;
        j->gpu_mask = spec->gpu_mask;
        j->vram_quota = spec->vram_quota;
        snprintf(j->policy, sizeof(j->policy), "%s", spec->policy);
        j->internal = spec->internal;
        j->ttl_usec = spec->ttl_usec;
        registry_renew(j, 0, now);
        return 0;
}

int registry_register(struct registry *r, const struct job_spec *spec, uint64_t now,
                      struct job **ret, bool *ret_created) {
        struct job *j = registry_find(r, spec->id);
        int k;

        if (j) {
                k = job_apply_spec(j, spec, now);
                if (k < 0)
                        return k;
                if (ret)
                        *ret = j;
                if (ret_created)
                        *ret_created = false;
                return 0;
        }
        if (r->n_jobs >= r->limits.max_jobs)
                return -ENOSPC;

        _cleanup_(job_freep) struct job *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->id = spec->id;
        n->registered_usec = now;
        k = job_apply_spec(n, spec, now);
        if (k < 0)
                return k;
        struct job **a = realloc(r->jobs, (r->n_jobs + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        r->jobs = a;
        size_t i = registry_lower_bound(r, spec->id);
        memmove(a + i + 1, a + i, (r->n_jobs - i) * sizeof(*a));
        a[i] = TAKE_PTR(n);
        r->n_jobs++;
        if (ret)
                *ret = a[i];
        if (ret_created)
                *ret_created = true;
        return 0;
}

static void registry_take(struct registry *r, size_t i, struct job **ret) {
        *ret = r->jobs[i];
        memmove(r->jobs + i, r->jobs + i + 1, (r->n_jobs - i - 1) * sizeof(*r->jobs));
        r->n_jobs--;
}

int registry_remove(struct registry *r, uint64_t id, struct job **ret) {
        size_t i = registry_lower_bound(r, id);

        if (i >= r->n_jobs || r->jobs[i]->id != id)
                return -ENOENT;
        registry_take(r, i, ret);
        return 0;
}

struct job *registry_first_expired(const struct registry *r, uint64_t now) {
        for (size_t i = 0; i < r->n_jobs; i++) {
                struct job *j = r->jobs[i];
                if (j->ttl_usec != JOB_TTL_INFINITE && j->expires_usec <= now)
                        return j;
        }
        return NULL;
}

static ssize_t job_pid_index(const struct job *j, uint32_t pid) {
        for (size_t i = 0; i < j->n_pids; i++)
                if (j->pids[i] == pid)
                        return (ssize_t) i;
        return -1;
}

struct job *registry_find_pid(const struct registry *r, uint32_t pid) {
        for (size_t i = 0; i < r->n_jobs; i++)
                if (job_pid_index(r->jobs[i], pid) >= 0)
                        return r->jobs[i];
        return NULL;
}

int registry_attach(struct registry *r, struct job *j, uint32_t pid, struct job **ret_other) {
        struct job *o = registry_find_pid(r, pid);

        if (o == j)
                return 1;
        if (o) {
                if (ret_other)
                        *ret_other = o;
                return -EEXIST;
        }
        if (j->n_pids >= r->limits.max_pids_per_job)
                return -ENOSPC;
        uint32_t *p = realloc(j->pids, (j->n_pids + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        j->pids = p;
        p[j->n_pids++] = pid;
        return 0;
}

static void job_drop_hints_of(struct job *j, uint32_t pid) {
        size_t k = 0;

        for (size_t i = 0; i < j->n_hints; i++)
                if (j->hints[i].pid != pid)
                        j->hints[k++] = j->hints[i];
        j->n_hints = k;
}

int registry_detach(struct registry *r, uint32_t pid) {
        struct job *j = registry_find_pid(r, pid);

        if (!j)
                return -ENOENT;
        ssize_t i = job_pid_index(j, pid);
        j->pids[i] = j->pids[--j->n_pids];
        job_drop_hints_of(j, pid);
        return 0;
}

static bool spans_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
        return a < b + blen && b < a + alen;
}

int registry_hint(struct registry *r, const struct job_hint *h) {
        struct job *j = registry_find_pid(r, h->pid);
        uint64_t end;

        if (!j)
                return -ENOENT;
        if (h->length == 0 || !ADD_SAFE(&end, h->start, h->length) || h->kind < 0 ||
            h->kind >= _SPM_HINT_KIND_MAX)
                return -EINVAL;

        if (h->kind == SPM_HINT_NONE) {
                size_t k = 0, removed = 0;
                for (size_t i = 0; i < j->n_hints; i++) {
                        const struct job_hint *o = &j->hints[i];
                        if (o->pid == h->pid &&
                            spans_overlap(o->start, o->length, h->start, h->length))
                                removed++;
                        else
                                j->hints[k++] = *o;
                }
                j->n_hints = k;
                j->counters.hints++;
                return (int) removed;
        }
        for (size_t i = 0; i < j->n_hints; i++) {
                struct job_hint *o = &j->hints[i];
                if (o->pid == h->pid && o->start == h->start && o->length == h->length) {
                        *o = *h;
                        j->counters.hints++;
                        return 0;
                }
        }
        if (j->n_hints >= r->limits.max_hints_per_job)
                return -ENOSPC;
        struct job_hint *a = realloc(j->hints, (j->n_hints + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        j->hints = a;
        a[j->n_hints++] = *h;
        j->counters.hints++;
        return 0;
}

size_t registry_expire_hints(struct registry *r, uint64_t now) {
        size_t removed = 0;

        for (size_t n = 0; n < r->n_jobs; n++) {
                struct job *j = r->jobs[n];
                size_t k = 0;
                for (size_t i = 0; i < j->n_hints; i++) {
                        if (j->hints[i].expires_usec != 0 && j->hints[i].expires_usec <= now)
                                removed++;
                        else
                                j->hints[k++] = j->hints[i];
                }
                j->n_hints = k;
        }
        return removed;
}

size_t registry_n_hints(const struct registry *r) {
        size_t n = 0;
        for (size_t i = 0; i < r->n_jobs; i++)
                n += r->jobs[i]->n_hints;
        return n;
}

size_t registry_n_pids(const struct registry *r) {
        size_t n = 0;
        for (size_t i = 0; i < r->n_jobs; i++)
                n += r->jobs[i]->n_pids;
        return n;
}

int job_gpu_mask(const int64_t *gpus, size_t n, uint32_t *ret) {
        uint32_t mask = 0;

        for (size_t i = 0; i < n; i++) {
                if (gpus[i] < 0 || gpus[i] >= SPM_MAX_GPUS)
                        return -EINVAL;
                mask |= 1U << gpus[i];
        }
        *ret = mask;
        return 0;
}

static const char *const hint_kind_names[_SPM_HINT_KIND_MAX] = {
        [SPM_HINT_HOT] = "hot",
        [SPM_HINT_COLD] = "cold",
        [SPM_HINT_PIN_GPU] = "pin_gpu",
        [SPM_HINT_PIN_RAM] = "pin_ram",
        [SPM_HINT_STREAMING] = "streaming",
        [SPM_HINT_NONE] = "none",
};

const char *job_hint_kind_to_string(enum spm_hint_kind k) {
        if (k < 0 || k >= _SPM_HINT_KIND_MAX)
                return NULL;
        return hint_kind_names[k];
}

enum spm_hint_kind job_hint_kind_from_string(const char *s) {
        if (!s)
                return _SPM_HINT_KIND_INVALID;
        for (int k = 0; k < _SPM_HINT_KIND_MAX; k++) {
                const char *n = hint_kind_names[k];
                size_t i = 0;
                /* '_' and '-' are the same letter here. */
                while (n[i] && s[i] && (n[i] == s[i] || (n[i] == '_' && s[i] == '-')))
                        i++;
                if (!n[i] && !s[i])
                        return (enum spm_hint_kind) k;
        }
        return _SPM_HINT_KIND_INVALID;
}
