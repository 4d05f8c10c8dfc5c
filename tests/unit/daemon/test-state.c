/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spmtier/json-util.h"
#include "state.h"
#include "test.h"

static const struct job_limits limits = { 16, 16, 16 };
static char dir[] = "/tmp/test-state-XXXXXX";

static void fill(struct registry *r) {
        struct job_spec a = { .id = 7, .uid = 1000, .gpu_mask = 0x5, .vram_quota = 8ULL << 30,
                              .policy = "spmtier", .ttl_usec = 3600000000ULL };
        struct job_spec b = { .id = 1ULL << 40, .uid = 1001, .gpu_mask = 0x1,
                              .vram_quota = JOB_QUOTA_UNLIMITED, .policy = "none",
                              .ttl_usec = 1000000 };
        struct job_spec internal = { .id = 0, .uid = 0, .policy = "spmtier",
                                     .vram_quota = JOB_QUOTA_UNLIMITED, .internal = true };
        struct job *j;
        bool created;

        registry_init(r, &limits);
        ASSERT_OK(registry_register(r, &a, 1000, &j, &created));
        ASSERT_OK(registry_attach(r, j, 4242, NULL));
        ASSERT_OK(registry_attach(r, j, 4243, NULL));
        struct job_hint h = { .pid = 4242, .start = 0x7f0000000000, .length = 2 << 20,
                              .kind = SPM_HINT_PIN_GPU, .gpu = 2, .expires_usec = 0 };
        ASSERT_OK(registry_hint(r, &h));
        h = (struct job_hint) { .pid = 4243, .start = 0x1000, .length = 0x1000,
                                .kind = SPM_HINT_STREAMING, .gpu = -1,
                                .expires_usec = UINT64_MAX - 1 };
        ASSERT_OK(registry_hint(r, &h));
        j->frozen = true;
        j->counters = (struct job_counters) { 3, 1, 6 << 20, 2 << 20, 2, 1234.5 };
        ASSERT_OK(registry_register(r, &b, 2000, &j, &created));
        ASSERT_OK(registry_register(r, &internal, 2000, &j, &created));
        ASSERT_OK(registry_attach(r, j, 1, NULL));
        r->frozen = true;
        r->policy.set = POLICY_SET_HYSTERESIS | POLICY_SET_EPOCH;
        r->policy.hysteresis = 1.75;
        r->policy.epoch_usec = 20000;
}

static bool hint_eq(const struct job_hint *a, const struct job_hint *b) {
        return a->pid == b->pid && a->start == b->start && a->length == b->length &&
               a->kind == b->kind && a->gpu == b->gpu && a->expires_usec == b->expires_usec;
}

static void assert_same(const struct registry *a, const struct registry *b) {
        /* Internal jobs are not saved. */
        size_t n = 0;
        for (size_t i = 0; i < a->n_jobs; i++) {
                const struct job *x = a->jobs[i];
                if (x->internal)
                        continue;
                const struct job *y = registry_find(b, x->id);
                ASSERT_NOT_NULL(y);
                ASSERT_EQ_U(x->uid, y->uid);
                ASSERT_EQ_U(x->gpu_mask, y->gpu_mask);
                ASSERT_EQ_U(x->vram_quota, y->vram_quota);
                ASSERT_STREQ(x->policy, y->policy);
                ASSERT_EQ(x->frozen, y->frozen);
                ASSERT_EQ_U(x->ttl_usec, y->ttl_usec);
                ASSERT_EQ_U(x->expires_usec, y->expires_usec);
                ASSERT_EQ_U(x->registered_usec, y->registered_usec);
                ASSERT_EQ_U(x->n_pids, y->n_pids);
                for (size_t k = 0; k < x->n_pids; k++)
                        ASSERT_EQ_U(x->pids[k], y->pids[k]);
                ASSERT_EQ_U(x->n_hints, y->n_hints);
                for (size_t k = 0; k < x->n_hints; k++)
                        ASSERT_TRUE(hint_eq(&x->hints[k], &y->hints[k]));
                ASSERT_EQ_U(x->counters.migrations, y->counters.migrations);
                ASSERT_EQ_U(x->counters.bytes_to_gpu, y->counters.bytes_to_gpu);
                ASSERT_EQ_U(x->counters.hints, y->counters.hints);
                ASSERT_NEAR(x->counters.benefit_usec, y->counters.benefit_usec, 1e-9);
                n++;
        }
        ASSERT_EQ_U(n, b->n_jobs);
        ASSERT_EQ(a->frozen, b->frozen);
        ASSERT_EQ_U(a->policy.set, b->policy.set);
        ASSERT_NEAR(a->policy.hysteresis, b->policy.hysteresis, 1e-12);
        ASSERT_EQ_U(a->policy.epoch_usec, b->policy.epoch_usec);
}

static void write_state(const char *text) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/state.json", dir);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

TEST(save_restore_round_trip) {
        struct registry a, b;
        char msg[256] = "";

        ASSERT_NOT_NULL(mkdtemp(dir));
        registry_init(&b, &limits);
        ASSERT_EQ(state_load(dir, &b, msg, sizeof(msg)), 0); /* no file yet: fresh */
        ASSERT_EQ_U(b.n_jobs, 0);

        fill(&a);
        ASSERT_OK(state_save(&a, dir, /* durable= */ true));
        int r = state_load(dir, &b, msg, sizeof(msg));
        if (r < 0)
                fprintf(stderr, "%s\n", msg);
        ASSERT_EQ(r, 1);
        assert_same(&a, &b);
        ASSERT_EQ_U(b.n_jobs, 2);
        ASSERT_NULL(registry_find(&b, 0));

        /* Saved again from the restored registry, the document is identical. */
        _cleanup_json_ struct json_object *x = NULL, *y = NULL;
        ASSERT_OK(state_to_json(&a, &x));
        ASSERT_OK(state_to_json(&b, &y));
        ASSERT_STREQ(json_object_to_json_string(x), json_object_to_json_string(y));

        /* No temporary files are left behind, and the file is private. */
        struct stat st;
        char path[256];
        snprintf(path, sizeof(path), "%s/state.json", dir);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 0777, 0600);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
        ASSERT_EQ(system(cmd), 0);
        registry_done(&a);
        registry_done(&b);
}

TEST(corrupt_state_is_refused_whole) {
        static const struct {
                const char *text, *why;
        } cases[] = {
                { "", "not JSON" },
                { "{\"format\":\"spmtierd-state\",\"version\":1,\"frozen\":false,", "not JSON" },
                { "[]", "not a JSON object" },
                { "{\"format\":\"other\"}", "not an spmtierd state file" },
                { "{\"format\":\"spmtierd-state\",\"version\":2}", "version 2" },
                { "{\"format\":\"spmtierd-state\",\"version\":1,\"frozen\":0}", "\"frozen\" has the wrong type" },
                { "{\"format\":\"spmtierd-state\",\"version\":1,\"frozen\":false,\"policy\":{}}",
                  "missing field \"set\"" },
        };
        struct registry a, b;
        char msg[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                registry_init(&b, &limits);
                write_state(cases[i].text);
                msg[0] = '\0';
                ASSERT_ERROR(state_load(dir, &b, msg, sizeof(msg)), EBADMSG);
                if (!strstr(msg, cases[i].why))
                        fprintf(stderr, "case %zu: %s\n", i, msg);
                ASSERT_NOT_NULL(strstr(msg, cases[i].why));
                ASSERT_EQ_U(b.n_jobs, 0);
        }

        /* Damage one field of a good document at a time: each is refused and the registry
         * stays empty (no half-restored state). */
        static const struct {
                const char *from, *to, *why;
        } edits[] = {
                { "\"uid\":1000", "\"uid\":-1", "out of range" },
                { "\"uid\":1000", "\"uid\":4294967296", "out of range" },
                { "\"kind\":\"pin_gpu\"", "\"kind\":\"warm\"", "unknown hint kind" },
                { "\"gpu\":2", "\"gpu\":9", "out of range" },
                { "\"pids\":[4242,4243]", "\"pids\":[4242,4242]", "attached twice" },
                { "\"pids\":[4242,4243]", "\"pids\":[4242,\"x\"]", "bad pid" },
                { "\"policy\":\"none\"", "\"policy\":\"\"", "bad policy" },
                { "\"id\":7,", "\"id\":1099511627776,", "appears twice" },
                { "\"gpu_mask\":5", "\"gpu_mask\":256", "beyond" },
                { "\"benefit_usec\":1234.5", "\"benefit_usec\":\"x\"", "wrong type" },
                { "\"pid\":4243", "\"pid\":5", "not the job's" },
        };
        fill(&a);
        _cleanup_json_ struct json_object *doc = NULL;
        ASSERT_OK(state_to_json(&a, &doc));
        const char *good = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
        for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
                const char *at = strstr(good, edits[i].from);
                char text[8192];
                if (!at)
                        fprintf(stderr, "edit %zu: \"%s\" not in %s\n", i, edits[i].from, good);
                ASSERT_NOT_NULL(at);
                snprintf(text, sizeof(text), "%.*s%s%s", (int) (at - good), good, edits[i].to,
                         at + strlen(edits[i].from));
                write_state(text);
                registry_init(&b, &limits);
                msg[0] = '\0';
                ASSERT_ERROR(state_load(dir, &b, msg, sizeof(msg)), EBADMSG);
                if (!strstr(msg, edits[i].why))
                        fprintf(stderr, "edit %zu: %s\n", i, msg);
                ASSERT_NOT_NULL(strstr(msg, edits[i].why));
                ASSERT_EQ_U(b.n_jobs, 0);
                ASSERT_FALSE(b.frozen);
        }
        registry_done(&a);

        /* The daemon moves a corrupt file aside and starts fresh. */
        ASSERT_OK(state_move_aside(dir));
        registry_init(&b, &limits);
        ASSERT_EQ(state_load(dir, &b, msg, sizeof(msg)), 0);
        char path[256];
        snprintf(path, sizeof(path), "%s/state.json.corrupt", dir);
        ASSERT_EQ(access(path, F_OK), 0);
}

static void append_raw(const char *text) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, STATE_JOURNAL);
        f = fopen(path, "ae");
        ASSERT_NOT_NULL(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

TEST(hint_journal_replays_after_snapshot) {
        struct registry a, b;
        char msg[256] = "";
        int fd;

        fill(&a);
        ASSERT_OK(state_save(&a, dir, false));
        fd = state_journal_open(dir);
        ASSERT_GE(fd, 0);
        ASSERT_OK(state_journal_reset(fd, true));
        /* Hints after the snapshot: only journaled (what a kill -9 leaves behind). */
        struct job_hint h1 = { .pid = 4243, .start = 0x200000, .length = 0x1000,
                               .kind = SPM_HINT_COLD, .gpu = -1 };
        struct job_hint h2 = { .pid = 4242, .start = 0x7f0000000000, .length = 2 << 20,
                               .kind = SPM_HINT_NONE, .gpu = -1 };
        struct job_hint h3 = { .pid = 4242, .start = 0x1000, .length = 0x1000,
                               .kind = SPM_HINT_HOT, .gpu = 0, .expires_usec = 99 };
        ASSERT_OK(registry_hint(&a, &h1));
        ASSERT_OK(state_journal_append(fd, &h1));
        ASSERT_OK(registry_hint(&a, &h2));
        ASSERT_OK(state_journal_append(fd, &h2));
        ASSERT_OK(registry_hint(&a, &h3));
        ASSERT_OK(state_journal_append(fd, &h3));

        registry_init(&b, &limits);
        ASSERT_EQ(state_load(dir, &b, msg, sizeof(msg)), 1);
        ASSERT_EQ_U(registry_n_hints(&b), registry_n_hints(&a));
        const struct job *x = registry_find(&a, 7), *y = registry_find(&b, 7);
        for (size_t k = 0; k < x->n_hints; k++)
                ASSERT_TRUE(hint_eq(&x->hints[k], &y->hints[k]));
        registry_done(&b);

        /* A torn last line (a crash mid-append) is dropped; the rest still counts. */
        append_raw("{\"pid\":4243,\"start\":8192,\"len");
        registry_init(&b, &limits);
        ASSERT_EQ(state_load(dir, &b, msg, sizeof(msg)), 1);
        ASSERT_EQ_U(registry_n_hints(&b), registry_n_hints(&a));
        registry_done(&b);

        /* A complete line that is not a hint makes the state corrupt, and nothing loads. */
        append_raw("\n{\"pid\":\"x\"}\n");
        registry_init(&b, &limits);
        ASSERT_ERROR(state_load(dir, &b, msg, sizeof(msg)), EBADMSG);
        ASSERT_NOT_NULL(strstr(msg, STATE_JOURNAL " line 4"));
        ASSERT_EQ_U(b.n_jobs, 0);

        /* A snapshot makes the journal redundant. */
        ASSERT_OK(state_save(&a, dir, true));
        ASSERT_OK(state_journal_reset(fd, true));
        registry_init(&b, &limits);
        ASSERT_EQ(state_load(dir, &b, msg, sizeof(msg)), 1);
        ASSERT_EQ_U(registry_n_hints(&b), registry_n_hints(&a));
        registry_done(&b);
        close(fd);
        registry_done(&a);
}

TEST(save_into_missing_dir_fails_cleanly) {
        struct registry a;
        char bad[300];

        fill(&a);
        snprintf(bad, sizeof(bad), "%s/no/such/dir", dir);
        ASSERT_ERROR(state_save(&a, bad, false), ENOENT);
        registry_done(&a);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ASSERT_EQ(system(cmd), 0);
}

TEST_MAIN()
