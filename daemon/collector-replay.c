/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The replay collector: feeds a trace (include/spmtier/trace.h) one trace epoch per policy
 * epoch, as if its processes ran on this node. Used by tests, the demo and what-if runs on
 * the real daemon. Trace pids are announced through sink->process (the manager attaches them
 * to the replay job), each new span through sink->range, then rows and hints as they come.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "spmtier/macro.h"
#include "spmtier/trace.h"

struct span {
        uint32_t pid;
        uint64_t start, end;
};

struct replay {
        char *path;
        bool loop;
        unsigned n_gpus;
        struct spm_trace_reader *reader;
        struct spm_trace_record pending;
        bool has_pending;
        bool ended;
        int error;            /* a bad line met while reading ahead, reported next call */
        char error_msg[256];
        uint64_t epoch;       /* the trace epoch the next collect() feeds */
        uint64_t laps;        /* completed passes (Loop=yes) */
        uint64_t fed;
        struct span *spans;   /* declared spans, merged per pid */
        size_t n_spans;
        uint32_t *pids;
        size_t n_pids;
};

static void replay_free(void *state) {
        struct replay *r = state;

        if (!r)
                return;
        spm_trace_close(r->reader);
        free(r->path);
        free(r->spans);
        free(r->pids);
        free(r);
}

static int replay_open(struct replay *r, char *msg, size_t size) {
        int k;

        r->reader = spm_trace_close(r->reader);
        k = spm_trace_open(r->path, &r->reader);
        if (k < 0)
                snprintf(msg, size, "cannot open trace %s: %s", r->path, strerror(-k));
        r->has_pending = false;
        r->epoch = 0;
        return k;
}

static int replay_init(const struct spm_collector_args *args, void **ret, char *msg,
                       size_t size) {
        struct replay *r;
        int k;

        if (!args->trace_path) {
                snprintf(msg, size, "the replay collector needs [Replay] Trace=");
                return -EINVAL;
        }
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->path = strdup(args->trace_path);
        r->loop = args->loop;
        r->n_gpus = args->n_gpus;
        if (!r->path) {
                replay_free(r);
                return -ENOMEM;
        }
        k = replay_open(r, msg, size);
        if (k < 0) {
                replay_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

/* Announces pid once. */
static int replay_process(struct replay *r, const struct spm_collector_sink *sink, uint32_t pid) {
        for (size_t i = 0; i < r->n_pids; i++)
                if (r->pids[i] == pid)
                        return 0;
        uint32_t *p = realloc(r->pids, (r->n_pids + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        r->pids = p;
        int k = sink->process(sink->userdata, pid);
        if (k < 0)
                return k;
        p[r->n_pids++] = pid;
        return 0;
}

/* Declares [start, end) of pid unless a declared span covers it; spans that touch are
 * merged so the set stays small for the usual few large allocations. */
static int replay_range(struct replay *r, const struct spm_collector_sink *sink, uint32_t pid,
                        uint64_t start, uint64_t end) {
        struct span *hit = NULL;

        for (size_t i = 0; i < r->n_spans; i++) {
                struct span *s = &r->spans[i];
                if (s->pid != pid)
                        continue;
                if (s->start <= start && end <= s->end)
                        return 0;
                if (start <= s->end && s->start <= end && !hit)
                        hit = s;
        }
        int k = sink->range(sink->userdata, pid, start, end - start);
        if (k < 0)
                return k;
        if (hit) {
                hit->start = MIN(hit->start, start);
                hit->end = MAX(hit->end, end);
                return 0;
        }
        struct span *a = realloc(r->spans, (r->n_spans + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        r->spans = a;
        a[r->n_spans++] = (struct span) { pid, start, end };
        return 0;
}

static int replay_feed(struct replay *r, const struct spm_collector_sink *sink,
                       const struct spm_trace_record *rec) {
        int k;

        if (rec->kind == SPM_TRACE_HINT) {
                k = replay_process(r, sink, rec->hint.pid);
                return k < 0 ? k : sink->hint(sink->userdata, &rec->hint);
        }
        if (rec->kind != SPM_TRACE_ROW)
                return 0;
        /* A trace recorded on a bigger node: accessors beyond our GPUs are not ours. */
        if (rec->access.accessor > r->n_gpus)
                return -EXDEV;
        k = replay_process(r, sink, rec->access.pid);
        if (k >= 0)
                k = replay_range(r, sink, rec->access.pid, rec->access.addr,
                                 rec->access.addr + rec->access.len);
        if (k >= 0)
                k = sink->observe(sink->userdata, &rec->access);
        return k;
}

static int replay_collect(void *state, const struct spm_collector_sink *sink, char *msg,
                          size_t size) {
        struct replay *r = state;
        int fed = 0, k;

        if (r->error < 0) {
                k = r->error;
                r->error = 0;
                snprintf(msg, size, "%s", r->error_msg);
                return k;
        }
        if (r->ended)
                return -ENODATA;
        for (;;) {
                if (!r->has_pending) {
                        k = spm_trace_next(r->reader, &r->pending);
                        if (k == 0) {
                                r->laps++;
                                if (!r->loop) {
                                        r->ended = true;
                                        return fed > 0 ? fed : -ENODATA;
                                }
                                k = replay_open(r, msg, size);
                                if (k < 0) {
                                        r->ended = true;
                                        return k;
                                }
                                break; /* the next call starts the next lap at epoch 0 */
                        }
                        if (k < 0) {
                                const char *e = spm_trace_error(r->reader);
                                r->ended = true;
                                /* This epoch's rows were good: feed them, fail next time. */
                                if (fed > 0) {
                                        r->error = k;
                                        snprintf(r->error_msg, sizeof(r->error_msg), "%s",
                                                 e ? e : strerror(-k));
                                        return fed;
                                }
                                snprintf(msg, size, "%s", e ? e : strerror(-k));
                                return k;
                        }
                        r->has_pending = true;
                }
                if (r->pending.epoch > r->epoch) {
                        r->epoch++;
                        break;
                }
                r->has_pending = false;
                k = replay_feed(r, sink, &r->pending);
                if (k == -ENOMEM)
                        return k;
                if (k >= 0) {
                        fed++;
                        r->fed++;
                }
        }
        return fed;
}

static void replay_describe(void *state, char *buf, size_t size) {
        struct replay *r = state;
        const char *base = strrchr(r->path, '/');

        snprintf(buf, size, "replay %s: epoch %" PRIu64 ", %" PRIu64 " laps done, %" PRIu64
                 " observations%s", base ? base + 1 : r->path, r->epoch, r->laps, r->fed,
                 r->ended ? ", finished" : "");
}

const struct spm_collector_ops spm_collector_replay = {
        .name = "replay",
        .init = replay_init,
        .free = replay_free,
        .collect = replay_collect,
        .describe = replay_describe,
};
