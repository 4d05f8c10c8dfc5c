/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "jobs.h"
#include "spmtier/macro.h"
#include "test.h"

#define SEC 1000000ULL

static const struct job_limits limits = { .max_jobs = 3, .max_pids_per_job = 2,
                                          .max_hints_per_job = 2 };

/* Ends the first expired job the way the manager does; returns its id or 0. */
static uint64_t pop_expired(struct registry *r, uint64_t now) {
        struct job *j = registry_first_expired(r, now), *x;
        uint64_t id;

        if (!j)
                return 0;
        id = j->id;
        ASSERT_OK(registry_remove(r, id, &x));
        job_free(x);
        return id;
}

static struct job *reg(struct registry *r, uint64_t id, uint32_t uid, uint64_t ttl,
                       uint64_t now) {
        struct job_spec spec = { .id = id, .uid = uid, .gpu_mask = 1, .policy = "spmtier",
                                 .vram_quota = JOB_QUOTA_UNLIMITED, .ttl_usec = ttl };
        struct job *j = NULL;
        bool created;

        ASSERT_OK(registry_register(r, &spec, now, &j, &created));
        ASSERT_TRUE(created);
        return j;
}

TEST(register_update_find_sorted) {
        struct registry r;
        struct job *j;
        bool created;

        registry_init(&r, &limits);
        reg(&r, 30, 1000, 10 * SEC, 100);
        reg(&r, 10, 1001, 10 * SEC, 100);
        reg(&r, 20, 1002, 10 * SEC, 100);
        ASSERT_EQ_U(r.jobs[0]->id, 10);
        ASSERT_EQ_U(r.jobs[1]->id, 20);
        ASSERT_EQ_U(r.jobs[2]->id, 30);
        ASSERT_EQ_U(registry_find(&r, 20)->uid, 1002);
        ASSERT_NULL(registry_find(&r, 25));

        /* Registering again updates and renews (prolog retries are harmless)... */
        struct job_spec spec = { .id = 20, .uid = 1002, .gpu_mask = 3, .policy = "none",
                                 .ttl_usec = 50 * SEC };
        ASSERT_OK(registry_register(&r, &spec, 200, &j, &created));
        ASSERT_FALSE(created);
        ASSERT_EQ_U(j->gpu_mask, 3);
        ASSERT_STREQ(j->policy, "none");
        ASSERT_EQ_U(j->expires_usec, 200 + 50 * SEC);
        ASSERT_EQ_U(j->registered_usec, 100);
        /* ...and a fourth job is over MaxJobs. */
        spec.id = 40;
        ASSERT_ERROR(registry_register(&r, &spec, 200, &j, &created), ENOSPC);
        spec.policy = "";
        spec.id = 10;
        ASSERT_ERROR(registry_register(&r, &spec, 200, &j, &created), EINVAL);
        ASSERT_STREQ(registry_find(&r, 10)->policy, "spmtier");

        ASSERT_OK(registry_remove(&r, 20, &j));
        job_free(j);
        ASSERT_ERROR(registry_remove(&r, 20, &j), ENOENT);
        ASSERT_EQ_U(r.n_jobs, 2);
        registry_done(&r);
}

TEST(lease_expiry_and_renewal) {
        struct registry r;
        struct job *j, *x;

        registry_init(&r, &limits);
        j = reg(&r, 1, 1000, 10 * SEC, 0);
        reg(&r, 2, 1000, 30 * SEC, 0);
        x = reg(&r, 3, 0, JOB_TTL_INFINITE, 0);
        x->internal = true;

        ASSERT_EQ_U(pop_expired(&r, 10 * SEC - 1), 0);
        /* A call at 5 s renews job 1 until 15 s. */
        registry_renew(j, 0, 5 * SEC);
        ASSERT_EQ_U(pop_expired(&r, 10 * SEC), 0);
        ASSERT_EQ_U(pop_expired(&r, 15 * SEC), 1);
        ASSERT_EQ_U(pop_expired(&r, 15 * SEC), 0);
        /* Renewal with a new TTL changes it for later renewals too. */
        j = registry_find(&r, 2);
        registry_renew(j, 100 * SEC, 20 * SEC);
        ASSERT_EQ_U(j->ttl_usec, 100 * SEC);
        ASSERT_EQ_U(j->expires_usec, 120 * SEC);
        /* Far in the future only the infinite lease is left. */
        ASSERT_EQ_U(pop_expired(&r, UINT64_MAX - 1), 2);
        ASSERT_EQ_U(pop_expired(&r, UINT64_MAX), 0);
        ASSERT_EQ_U(r.n_jobs, 1);
        /* An overflowing expiry saturates instead of wrapping into the past. */
        j = reg(&r, 9, 1, UINT64_MAX - 5, 100);
        ASSERT_EQ_U(j->expires_usec, UINT64_MAX);
        registry_done(&r);
}

TEST(processes_attach_once) {
        struct registry r;
        struct job *a, *b, *other = NULL;

        registry_init(&r, &limits);
        a = reg(&r, 1, 1000, SEC, 0);
        b = reg(&r, 2, 1001, SEC, 0);
        ASSERT_EQ(registry_attach(&r, a, 100, NULL), 0);
        ASSERT_EQ(registry_attach(&r, a, 100, NULL), 1);
        ASSERT_ERROR(registry_attach(&r, b, 100, &other), EEXIST);
        ASSERT_TRUE(other == a);
        ASSERT_EQ(registry_attach(&r, a, 101, NULL), 0);
        ASSERT_ERROR(registry_attach(&r, a, 102, NULL), ENOSPC);
        ASSERT_TRUE(registry_find_pid(&r, 101) == a);
        ASSERT_NULL(registry_find_pid(&r, 102));
        ASSERT_EQ_U(registry_n_pids(&r), 2);
        ASSERT_OK(registry_detach(&r, 100));
        ASSERT_ERROR(registry_detach(&r, 100), ENOENT);
        ASSERT_EQ(registry_attach(&r, b, 100, NULL), 0);
        registry_done(&r);
}

TEST(hints_replace_clear_expire_cap) {
        struct registry r;
        struct job *a;

        registry_init(&r, &limits);
        a = reg(&r, 1, 1000, SEC, 0);
        ASSERT_OK(registry_attach(&r, a, 100, NULL));

        struct job_hint h = { .pid = 100, .start = 0x1000, .length = 0x2000,
                              .kind = SPM_HINT_HOT, .gpu = 0 };
        ASSERT_EQ(registry_hint(&r, &h), 0);
        h.kind = SPM_HINT_PIN_GPU; /* same span: replaces */
        ASSERT_EQ(registry_hint(&r, &h), 0);
        ASSERT_EQ_U(a->n_hints, 1);
        ASSERT_EQ(a->hints[0].kind, SPM_HINT_PIN_GPU);
        h.start = 0x10000;
        h.expires_usec = 50;
        ASSERT_EQ(registry_hint(&r, &h), 0);
        h.start = 0x20000;
        ASSERT_ERROR(registry_hint(&r, &h), ENOSPC);
        h.pid = 999;
        ASSERT_ERROR(registry_hint(&r, &h), ENOENT);
        h.pid = 100;
        h.length = 0;
        ASSERT_ERROR(registry_hint(&r, &h), EINVAL);
        h.length = UINT64_MAX;
        ASSERT_ERROR(registry_hint(&r, &h), EINVAL);

        ASSERT_EQ_U(registry_expire_hints(&r, 49), 0);
        ASSERT_EQ_U(registry_expire_hints(&r, 50), 1);
        ASSERT_EQ_U(registry_n_hints(&r), 1);
        /* kind none clears every hint overlapping the span. */
        struct job_hint clear = { .pid = 100, .start = 0x2000, .length = 0x100,
                                  .kind = SPM_HINT_NONE, .gpu = -1 };
        ASSERT_EQ(registry_hint(&r, &clear), 1);
        ASSERT_EQ_U(registry_n_hints(&r), 0);
        ASSERT_EQ_U(a->counters.hints, 4); /* three set, one clear */
        /* Detaching drops the process's hints. */
        h = (struct job_hint) { .pid = 100, .start = 0, .length = 4096, .kind = SPM_HINT_COLD,
                                .gpu = -1 };
        ASSERT_OK(registry_hint(&r, &h));
        ASSERT_OK(registry_detach(&r, 100));
        ASSERT_EQ_U(registry_n_hints(&r), 0);
        registry_done(&r);
}

TEST(hint_kind_names) {
        ASSERT_STREQ(job_hint_kind_to_string(SPM_HINT_PIN_GPU), "pin_gpu");
        ASSERT_EQ(job_hint_kind_from_string("pin_gpu"), SPM_HINT_PIN_GPU);
        ASSERT_EQ(job_hint_kind_from_string("pin-ram"), SPM_HINT_PIN_RAM);
        ASSERT_EQ(job_hint_kind_from_string("streaming"), SPM_HINT_STREAMING);
        ASSERT_EQ(job_hint_kind_from_string("pin"), _SPM_HINT_KIND_INVALID);
        ASSERT_EQ(job_hint_kind_from_string("hotter"), _SPM_HINT_KIND_INVALID);
        ASSERT_NULL(job_hint_kind_to_string(_SPM_HINT_KIND_MAX));
        int64_t gpus[] = { 0, 3 }, bad[] = { 8 };
        uint32_t mask;
        ASSERT_OK(job_gpu_mask(gpus, 2, &mask));
        ASSERT_EQ_U(mask, 9);
        ASSERT_ERROR(job_gpu_mask(bad, 1, &mask), EINVAL);
}

TEST_MAIN()
