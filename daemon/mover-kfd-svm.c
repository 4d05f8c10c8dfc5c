/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kfd-svm mover: a plan's moves become commands for the agent inside each job process
 * (the kernel lets only the process itself migrate its SVM ranges; docs/agent.md). Commands
 * leave at the bandwidth budget's pace, one per process at a time (an agent runs one at a
 * time anyway, and a queue in the daemon can still be failed when the process dies). Each is
 * tracked until the agent reports or the timeout passes, and the result goes back to the
 * engine: a promotion that "succeeded" without moving a byte (VRAM full: amdkfd fails the
 * prefetch silently) is -EAGAIN, not resident, and the range goes home so that it is true
 * (settle_home()). Besides moves it carries pins (PREFERRED_LOC
 * where a quarantined range is, nothing moves) and unpinned homecomings (resets, and ranges
 * that merely cooled down), see demote_unpinned().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfd-topology.h"
#include "mover.h"
#include "spmtier/macro.h"

#define DEFAULT_TIMEOUT_USEC (5 * UINT64_C(1000000))
/* A promotion VRAM did not take (nothing or part moved) is not retried for this long: VRAM
 * stays full for a while (a BO, the driver's own faults), and a retry every epoch would move a
 * granule back and forth each time. */
#define COOLDOWN_USEC (2 * UINT64_C(1000000))
#define MAX_COOLDOWNS 64

struct pending {
        struct spm_move move;
        enum spm_move_mode mode;
        spm_move_done_fn done;
        void *userdata;
        uint64_t id;
        uint64_t sent_usec; /* 0 = queued */
};

struct cooldown {
        uint32_t pid;
        uint64_t start, length, until_usec;
};

struct kfd_svm {
        struct spm_agent_link link;
        uint32_t gpu_ids[SPM_MAX_GPUS];
        unsigned n_gpus;
        uint64_t budget, epoch_usec, timeout_usec;
        double tokens;       /* bytes that may leave now */
        uint64_t refill_usec;
        struct pending *v;   /* in submission order */
        size_t n, alloc;
        uint64_t next_id;
        struct cooldown cool[MAX_COOLDOWNS]; /* a ring */
        unsigned next_cool;
        uint64_t sent, done, failed, partial, not_resident, timed_out, cooled, bytes, pinned;
        uint64_t settled;    /* ranges brought home after a promotion that moved nothing */
};

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int ks_init(const struct spm_mover_args *args, void **ret, char *msg, size_t size) {
        struct kfd_svm *k;
        int n;

        if (!args->agents || !args->agents->send || !args->sys_root) {
                snprintf(msg, size, "the kfd-svm mover needs the agents and the sysfs root");
                return -EINVAL;
        }
        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        n = kfd_topology_gpu_ids(args->sys_root, k->gpu_ids);
        if (n <= 0) {
                snprintf(msg, size, "no KFD GPU under %s/class/kfd/kfd/topology/nodes: %s",
                         args->sys_root, n < 0 ? strerror(-n) : "no gpu_id");
                free(k);
                return n < 0 ? n : -ENODEV;
        }
        k->n_gpus = (unsigned) n;
        k->link = *args->agents;
        k->budget = args->budget_bytes;
        k->epoch_usec = args->epoch_usec ? args->epoch_usec : 10000;
        k->timeout_usec = args->timeout_usec ? args->timeout_usec : DEFAULT_TIMEOUT_USEC;
        k->tokens = (double) k->budget;
        k->refill_usec = now_usec();
        k->next_id = 1;
        *ret = k;
        return 0;
}

static void ks_free(void *state) {
        struct kfd_svm *k = state;

        if (!k)
                return;
        /* The manager frees the mover on reload and exit: whoever waits hears -ECANCELED. */
        while (k->n > 0) {
                struct pending p = k->v[--k->n];
                p.done(p.userdata, &p.move, -ECANCELED, 0);
        }
        free(k->v);
        free(k);
}

/* engine location -> gpu_id (0 = RAM); UINT32_MAX for a GPU this node does not have. */
static uint32_t loc_gpu_id(const struct kfd_svm *k, unsigned loc) {
        if (loc == SPM_LOC_SYSMEM)
                return 0;
        return loc - 1 < k->n_gpus ? k->gpu_ids[loc - 1] : UINT32_MAX;
}

/* Removes entry i and reports it: the callback may submit again, so the entry is gone first. */
static void finish(struct kfd_svm *k, size_t i, int status, uint64_t moved) {
        struct pending p = k->v[i];

        memmove(&k->v[i], &k->v[i + 1], (k->n - i - 1) * sizeof(k->v[0]));
        k->n--;
        if (p.mode == SPM_MOVE_PIN)
                k->pinned += status == 0;
        else if (status < 0)
                k->failed++;
        else {
                k->done++;
                k->bytes += moved;
                if (moved < p.move.length)
                        k->partial++;
        }
        p.done(p.userdata, &p.move, status, moved);
}

static void cool_down(struct kfd_svm *k, const struct spm_move *m, uint64_t now) {
        k->cool[k->next_cool++ % MAX_COOLDOWNS] = (struct cooldown) {
                m->pid, m->start, m->length, now + COOLDOWN_USEC,
        };
}

static bool cooling(const struct kfd_svm *k, const struct spm_move *m, uint64_t now) {
        for (unsigned i = 0; i < MAX_COOLDOWNS; i++) {
                const struct cooldown *c = &k->cool[i];
                if (c->until_usec > now && c->pid == m->pid && c->start < m->start + m->length &&
                    m->start < c->start + c->length)
                        return true;
        }
        return false;
}

static bool pid_busy(const struct kfd_svm *k, uint32_t pid) {
        for (size_t i = 0; i < k->n; i++)
                if (k->v[i].move.pid == pid && k->v[i].sent_usec)
                        return true;
        return false;
}

/* Whether a demotion leaves PREFERRED_LOC undefined rather than pinning the range to RAM.
 * GPU faults are the only per-address GPU signal, and a range pinned to RAM is mapped for
 * the GPU on its first fault and silent after that: whatever the GPU does with it, the engine
 * never hears of it again. So a range that merely cooled down (or made room for a hotter one)
 * goes home unpinned: if the GPU wants it back, it faults, the driver migrates it as it
 * would by default, and the engine sees that. Pins stay where something asked for RAM: a
 * hint, a drain, a quota, CPU heat, and a thrashing range held by the quarantine. */
static bool demote_unpinned(const struct spm_move *m, enum spm_move_mode mode) {
        return mode == SPM_MOVE_PLACE && m->to == SPM_LOC_SYSMEM &&
               (m->reason == SPM_REASON_COLD || m->reason == SPM_REASON_DISPLACED);
}

/* Sends queued commands while the budget lasts; fails what cannot be sent. */
static void pump(struct kfd_svm *k) {
        uint64_t now = now_usec();

        if (k->budget) {
                k->tokens += (double) k->budget * (double) (now - k->refill_usec) /
                             (double) k->epoch_usec;
                k->tokens = MIN(k->tokens, (double) k->budget);
        }
        k->refill_usec = now;
        for (size_t i = 0; i < k->n;) {
                struct pending *p = &k->v[i];
                if (p->sent_usec || pid_busy(k, p->move.pid)) {
                        i++;
                        continue;
                }
                /* In order: later moves wait for the earlier ones. A move bigger than the
                 * budget leaves when the bucket is full. A pin moves nothing. */
                bool moves = p->mode != SPM_MOVE_PIN;
                if (moves && k->budget &&
                    k->tokens < MIN((double) p->move.length, (double) k->budget))
                        break;
                if (moves && p->move.to != SPM_LOC_SYSMEM && cooling(k, &p->move, now)) {
                        k->cooled++;
                        finish(k, i, -EAGAIN, 0);
                        continue;
                }
                uint32_t to = loc_gpu_id(k, p->move.to), from = loc_gpu_id(k, p->move.from);
                struct spm_agent_command c = {
                        .id = p->id, .pid = p->move.pid, .start = p->move.start,
                        .length = p->move.length, .to_gpu_id = to,
                        /* The GPU that used the data keeps its mapping either way. */
                        .access_gpu_id = to ? to : (from == UINT32_MAX ? 0 : from),
                        .mode = demote_unpinned(&p->move, p->mode) ? SPM_MOVE_HOME : p->mode,
                };
                int r = to == UINT32_MAX ? -EINVAL : k->link.send(k->link.userdata, &c);
                if (r < 0) {
                        finish(k, i, r, 0);
                        continue;
                }
                p->sent_usec = now;
                k->sent++;
                if (moves && k->budget)
                        k->tokens -= (double) p->move.length;
                i++;
        }
}

static int ks_submit_mode(void *state, const struct spm_move *moves, size_t n,
                          enum spm_move_mode mode, spm_move_done_fn done, void *userdata) {
        struct kfd_svm *k = state;

        if ((unsigned) mode >= _SPM_MOVE_MODE_MAX)
                return -EINVAL;
        if (n > SIZE_MAX / sizeof(k->v[0]) - k->n)
                return -ENOMEM;
        if (k->n + n > k->alloc) {
                size_t a = MAX(k->n + n, k->alloc * 2);
                struct pending *v = realloc(k->v, a * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                k->v = v;
                k->alloc = a;
        }
        /* Demotions first: a promotion sent while VRAM is still full moves nothing (amdkfd
         * fails a VRAM prefetch silently), so room is made before it is used. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n; i++)
                        if ((moves[i].to == SPM_LOC_SYSMEM) == (pass == 0))
                                k->v[k->n++] = (struct pending) {
                                        .move = moves[i], .mode = mode, .done = done,
                                        .userdata = userdata, .id = k->next_id++,
                                };
        pump(k);
        return (int) MIN(n, (size_t) INT32_MAX);
}

static int ks_submit(void *state, const struct spm_move *moves, size_t n, spm_move_done_fn done,
                     void *userdata) {
        return ks_submit_mode(state, moves, n, SPM_MOVE_PLACE, done, userdata);
}

static void settled_home(void *userdata, const struct spm_move *m, int status, uint64_t moved) {
        struct kfd_svm *k = userdata;
        k->settled += status == 0;
}

/* A VRAM prefetch that moved nothing finds VRAM full, or the range there already: KFD tells
 * neither apart (no residency query) and the engine, told -EAGAIN, takes it for RAM. The
 * latter happens when the daemon missed how the range got there (a restart, lost SMI
 * events): every later prefetch of it would move nothing too, and the engine would never
 * learn otherwise. So the range goes home unpinned, which makes the engine right either way
 * (a range in RAM moves nothing), and its next promotion, after the cool-down, is counted. */
static void settle_home(struct kfd_svm *k, const struct spm_move *m) {
        struct spm_move home = *m;

        home.from = m->to;
        home.to = SPM_LOC_SYSMEM;
        home.reason = SPM_REASON_DRAIN;
        (void) ks_submit_mode(k, &home, 1, SPM_MOVE_HOME, settled_home, k);
}

static void ks_report(void *state, const struct spm_agent_report *r) {
        struct kfd_svm *k = state;

        for (size_t i = 0; i < k->n; i++) {
                const struct pending *p = &k->v[i];
                if (p->id != r->id || p->move.pid != r->pid || !p->sent_usec)
                        continue;
                uint64_t moved = MIN(r->moved_bytes, p->move.length);
                int status = r->status;
                if (p->mode == SPM_MOVE_PIN)
                        moved = 0; /* nothing was asked to move; GPU faults may have */
                else if (status == 0 && p->move.to != SPM_LOC_SYSMEM) {
                        /* The counters are the only truth: a VRAM prefetch can succeed with
                         * nothing moved. */
                        if (moved == 0) {
                                status = -EAGAIN;
                                k->not_resident++;
                        }
                        if (moved < p->move.length)
                                cool_down(k, &p->move, now_usec());
                } else if (status == 0)
                        /* A prefetch to RAM always lands (the kernel evicts to RAM, never
                         * fails for room); the counters may have missed pages already there. */
                        moved = r->prefetch == 0 ? p->move.length : moved;
                bool settle = status == -EAGAIN && r->status == 0 && p->mode == SPM_MOVE_PLACE;
                struct spm_move m = p->move;
                finish(k, i, status, status < 0 ? 0 : moved);
                if (settle)
                        settle_home(k, &m);
                break;
        }
        pump(k);
}

static void ks_process_gone(void *state, uint32_t pid) {
        struct kfd_svm *k = state;

        for (size_t i = 0; i < k->n;)
                if (k->v[i].move.pid == pid)
                        finish(k, i, -ESRCH, 0);
                else
                        i++;
}

static void ks_tick(void *state) {
        struct kfd_svm *k = state;
        uint64_t now = now_usec();

        for (size_t i = 0; i < k->n;)
                if (k->v[i].sent_usec && now - k->v[i].sent_usec > k->timeout_usec) {
                        k->timed_out++;
                        finish(k, i, -ETIMEDOUT, 0);
                } else
                        i++;
        pump(k);
}

static uint32_t ks_gpu_id(void *state, unsigned gpu) {
        struct kfd_svm *k = state;

        return gpu < k->n_gpus ? k->gpu_ids[gpu] : 0;
}

static void ks_describe(void *state, char *buf, size_t size) {
        struct kfd_svm *k = state;

        snprintf(buf, size, "kfd-svm: %u GPUs, %zu waiting, %" PRIu64 " sent, %" PRIu64
                 " done (%" PRIu64 " partial), %" PRIu64 " failed (%" PRIu64 " not resident, %"
                 PRIu64 " timed out, %" PRIu64 " held back after VRAM was full), %" PRIu64
                 " bytes, %" PRIu64 " quarantined ranges pinned, %" PRIu64 " not-resident ranges "
                 "brought home", k->n_gpus, k->n, k->sent, k->done, k->partial, k->failed,
                 k->not_resident, k->timed_out, k->cooled, k->bytes, k->pinned, k->settled);
}

const struct spm_mover_ops spm_mover_kfd_svm = {
        .name = "kfd-svm",
        .init = ks_init,
        .free = ks_free,
        .submit = ks_submit,
        .submit_mode = ks_submit_mode,
        .describe = ks_describe,
        .report = ks_report,
        .process_gone = ks_process_gone,
        .tick = ks_tick,
        .gpu_id = ks_gpu_id,
};
