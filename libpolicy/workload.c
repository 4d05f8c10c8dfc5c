/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The workload generator behind spmgen. A config declares regions (per pid), phases that run
 * in order and repeat until the trace's epochs are spent, and in each phase access streams:
 * one accessor touching (a part of) one region with a pattern and a traffic volume per epoch.
 * Every epoch each active stream spreads its traffic over the region's spans; the per-span
 * sums become trace rows. docs/workloads.md is the reference for the config.
 *
 * Determinism: each stream draws from its own PRNG seeded by (seed, stream, epoch), so a
 * stream's numbers do not depend on what other streams did, and the output order is fixed
 * (regions by pid and address, spans ascending, accessors ascending).
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/workload.h"

#define WL_MAX_TOKENS 24
#define WL_NAME_MAX 32
#define WL_DEFAULT_BASE 0x7f0000000000ULL  /* where a pid's first region goes by default */
/* Bounds on what a config can make the generator allocate: per-span accumulators for all
 * regions (144 bytes a span) and zipf weights (16 bytes a span of each zipf stream). */
#define WL_MAX_SPANS (1ULL << 20)
#define WL_MAX_ZIPF_SPANS (1ULL << 22)

enum pattern {
        PATTERN_SEQ,      /* a window sweeping through the range */
        PATTERN_STRIDE,   /* every stride-th span, the phase rotating each epoch */
        PATTERN_UNIFORM,  /* traffic spread evenly (with jitter) over touched spans */
        PATTERN_ZIPF,     /* span popularity ~ 1/rank^theta, ranks scattered */
        PATTERN_HOT,      /* a hot window taking `share` of the traffic, moving */
        _PATTERN_MAX,
};

static const char *const pattern_names[_PATTERN_MAX] = {
        [PATTERN_SEQ] = "seq",
        [PATTERN_STRIDE] = "stride",
        [PATTERN_UNIFORM] = "uniform",
        [PATTERN_ZIPF] = "zipf",
        [PATTERN_HOT] = "hot",
};

struct region {
        char name[WL_NAME_MAX];
        uint32_t pid;
        uint64_t addr;
        uint64_t size;
        uint64_t n_spans;
};

struct stream {
        unsigned region;
        uint8_t accessor;
        enum pattern pattern;
        uint64_t first_span;     /* the part of the region the stream touches */
        uint64_t n_spans;
        double bytes;            /* traffic per active epoch, bytes */
        double write;            /* fraction of accesses that are writes */
        double prob;             /* probability the stream is active in an epoch */
        double noise;            /* relative jitter of per-span traffic */
        double touch;            /* probability a (cold) span is touched at all */
        uint64_t extent;         /* seq: spans per epoch */
        uint64_t stride;         /* stride: spans */
        double theta;            /* zipf exponent */
        bool scatter;            /* zipf: ranks in random order, not address order */
        double hot;              /* hot: fraction of the spans in the window */
        double share;            /* hot: fraction of the traffic in the window */
        uint64_t move;           /* hot: spans the window moves per epoch */
        double *weights;         /* zipf: normalised weight per span */
};

struct phase {
        char name[WL_NAME_MAX];
        uint64_t epochs;
        unsigned first_stream;
        unsigned n_streams;
};

struct hint {
        uint64_t epoch;
        unsigned index;          /* file order, to sort stably */
        struct spm_hint h;
};

struct spm_workload {
        uint64_t epochs;
        uint64_t epoch_usec;
        uint64_t page_size;
        uint64_t span;
        uint64_t seed;
        bool have_trace;
        uint64_t n_spans;        /* of all regions */
        uint64_t n_zipf_spans;   /* of all zipf streams */

        struct region *regions;
        unsigned n_regions;
        struct stream *streams;
        unsigned n_streams;
        struct phase *phases;
        unsigned n_phases;
        struct hint *hints;
        unsigned n_hints;
        unsigned *order;         /* regions sorted by (pid, addr) */
};

struct spm_workload *spm_workload_free(struct spm_workload *w) {
        if (!w)
                return NULL;
        for (unsigned i = 0; i < w->n_streams; i++)
                free(w->streams[i].weights);
        free(w->regions);
        free(w->streams);
        free(w->phases);
        free(w->hints);
        free(w->order);
        free(w);
        return NULL;
}

/* ---- PRNG: splitmix64, small and fully specified, so traces do not depend on libc ---- */

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double rng_u01(uint64_t *state) {
        return (double) (splitmix64(state) >> 11) * 0x1.0p-53;
}

static uint64_t rng_seed(uint64_t seed, uint64_t a, uint64_t b) {
        uint64_t s = seed;

        s ^= splitmix64(&s) + a * 0xd1b54a32d192ed03ULL;
        s ^= splitmix64(&s) + b * 0xabc98388fb8fac03ULL;
        (void) splitmix64(&s);
        return s;
}

/* ---- parsing ---- */

struct parser {
        const char *path;
        unsigned line;
        char *err;
        size_t errsize;
};

_printf_(2, 3)
static int parse_fail(struct parser *p, const char *fmt, ...) {
        va_list ap;
        int k;

        k = snprintf(p->err, p->errsize, "%s:%u: ", p->path, p->line);
        if (k < 0 || (size_t) k >= p->errsize)
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errsize - k, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A byte count: decimal digits with an optional binary suffix K, M, G or T. */
static int parse_size(const char *s, uint64_t *ret) {
        uint64_t v = 0, mult = 1;
        const char *q = s;

        if (!isdigit((unsigned char) *q))
                return -EINVAL;
        for (; isdigit((unsigned char) *q); q++)
                if (!MUL_SAFE(&v, v, 10) || !ADD_SAFE(&v, v, (uint64_t) (*q - '0')))
                        return -ERANGE;
        switch (*q) {
        case '\0': break;
        case 'K': mult = 1ULL << 10; q++; break;
        case 'M': mult = 1ULL << 20; q++; break;
        case 'G': mult = 1ULL << 30; q++; break;
        case 'T': mult = 1ULL << 40; q++; break;
        default: return -EINVAL;
        }
        if (*q != '\0' || !MUL_SAFE(&v, v, mult))
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_uint(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        if (s[0] == '0' && s[1] == 'x') {
                char *end;

                errno = 0;
                v = strtoull(s + 2, &end, 16);
                if (errno || end == s + 2 || *end)
                        return -EINVAL;
                *ret = v;
                return 0;
        }
        for (const char *q = s; *q; q++) {
                if (!isdigit((unsigned char) *q))
                        return -EINVAL;
                if (!MUL_SAFE(&v, v, 10) || !ADD_SAFE(&v, v, (uint64_t) (*q - '0')))
                        return -ERANGE;
        }
        *ret = v;
        return 0;
}

static int parse_double(const char *s, double lo, double hi, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= lo && v <= hi))
                return -EINVAL;
        *ret = v;
        return 0;
}

/* The key=value arguments of a directive, each to be consumed exactly once. */
struct args {
        char *key[WL_MAX_TOKENS];
        char *value[WL_MAX_TOKENS];
        bool used[WL_MAX_TOKENS];
        unsigned n;
};

static const char *arg_get(struct args *a, const char *key) {
        for (unsigned i = 0; i < a->n; i++)
                if (strcmp(a->key[i], key) == 0) {
                        a->used[i] = true;
                        return a->value[i];
                }
        return NULL;
}

#define ARG(p, a, key, parse, ptr, what)                                                \
        ({                                                                              \
                const char *_v_ = arg_get(a, key);                                      \
                int _r_ = 0;                                                            \
                if (_v_ && parse(_v_, ptr) < 0)                                         \
                        _r_ = parse_fail(p, "%s=%s: expected %s", key, _v_, what);      \
                _r_ < 0 ? _r_ : !!_v_;                                                  \
        })

static int arg_fraction(struct parser *p, struct args *a, const char *key, double lo,
                        double hi, double *ptr) {
        const char *v = arg_get(a, key);

        if (v && parse_double(v, lo, hi, ptr) < 0)
                return parse_fail(p, "%s=%s: expected a number in [%g, %g]", key, v, lo, hi);
        return !!v;
}

static int args_check_used(struct parser *p, struct args *a, const char *directive) {
        for (unsigned i = 0; i < a->n; i++)
                if (!a->used[i])
                        return parse_fail(p, "unknown key '%s' for '%s'", a->key[i], directive);
        return 0;
}

static int find_region(const struct spm_workload *w, const char *name) {
        for (unsigned i = 0; i < w->n_regions; i++)
                if (strcmp(w->regions[i].name, name) == 0)
                        return (int) i;
        return -ENOENT;
}

static int check_name(struct parser *p, const char *name, const char *what) {
        if (strlen(name) >= WL_NAME_MAX || strchr(name, '='))
                return parse_fail(p, "bad %s name '%s' (no '=', < %d characters)", what,
                                  name, WL_NAME_MAX);
        return 0;
}

/* Grows an array by one element; returns the new element or NULL. */
static void *grow(void *pptr, unsigned *n, size_t size) {
        void **arr = pptr;
        void *q = realloc(*arr, (*n + 1) * size);

        if (!q)
                return NULL;
        *arr = q;
        memset((char *) q + *n * size, 0, size);
        return (char *) q + (*n)++ * size;
}

static int do_trace(struct parser *p, struct spm_workload *w, struct args *a) {
        int r;

        if (w->have_trace)
                return parse_fail(p, "second 'trace' line");
        if (w->n_regions > 0)
                return parse_fail(p, "'trace' must come before the regions");
        w->have_trace = true;
        if ((r = ARG(p, a, "epochs", parse_uint, &w->epochs, "a number of epochs")) < 0)
                return r;
        if (r == 0 || w->epochs == 0)
                return parse_fail(p, "'trace' needs epochs=N with N > 0");
        if ((r = ARG(p, a, "epoch_usec", parse_uint, &w->epoch_usec, "microseconds")) < 0)
                return r;
        if (w->epoch_usec == 0)
                return parse_fail(p, "epoch_usec must be > 0");
        if ((r = ARG(p, a, "seed", parse_uint, &w->seed, "an integer")) < 0)
                return r;
        if ((r = ARG(p, a, "page_size", parse_size, &w->page_size, "a size")) < 0)
                return r;
        if (!IS_POWER_OF_2(w->page_size) || w->page_size < 4096 || w->page_size > (1ULL << 30))
                return parse_fail(p, "page_size must be a power of two in 4K..1G");
        if ((r = ARG(p, a, "span", parse_size, &w->span, "a size")) < 0)
                return r;
        if (!IS_POWER_OF_2(w->span) || w->span < w->page_size || w->span > (1ULL << 30))
                return parse_fail(p, "span must be a power of two in page_size..1G");
        return args_check_used(p, a, "trace");
}

static int do_region(struct parser *p, struct spm_workload *w, const char *name,
                     struct args *a) {
        uint64_t pid = 0, size = 0, addr = 0;
        int r, has_addr;

        if (!w->have_trace)
                return parse_fail(p, "'trace' must come first");
        if ((r = check_name(p, name, "region")) < 0)
                return r;
        if (find_region(w, name) >= 0)
                return parse_fail(p, "region '%s' declared twice", name);
        if ((r = ARG(p, a, "pid", parse_uint, &pid, "a pid")) < 0)
                return r;
        if (r == 0 || pid == 0 || pid > UINT32_MAX)
                return parse_fail(p, "region needs pid=N with N in 1..4294967295");
        if ((r = ARG(p, a, "size", parse_size, &size, "a size")) < 0)
                return r;
        if (r == 0 || size == 0 || size % w->span != 0)
                return parse_fail(p, "region needs size=S, a positive multiple of the span "
                                  "(%" PRIu64 " bytes)", w->span);
        if ((has_addr = ARG(p, a, "addr", parse_uint, &addr, "an address")) < 0)
                return has_addr;
        if ((r = args_check_used(p, a, "region")) < 0)
                return r;

        if (!has_addr) {
                /* After the pid's last region, one span of gap between mappings. */
                addr = WL_DEFAULT_BASE;
                for (unsigned i = 0; i < w->n_regions; i++)
                        if (w->regions[i].pid == pid)
                                addr = MAX(addr, w->regions[i].addr + w->regions[i].size +
                                           w->span);
        }
        if (size / w->span > WL_MAX_SPANS - w->n_spans)
                return parse_fail(p, "regions of more than %llu spans in all: use a larger span",
                                  (unsigned long long) WL_MAX_SPANS);
        if (addr % w->span != 0 || addr + size < addr)
                return parse_fail(p, "addr=0x%" PRIx64 " is not span aligned or wraps", addr);
        for (unsigned i = 0; i < w->n_regions; i++) {
                const struct region *o = &w->regions[i];

                if (o->pid == pid && addr < o->addr + o->size && o->addr < addr + size)
                        return parse_fail(p, "region '%s' overlaps region '%s' of pid %" PRIu64,
                                          name, o->name, pid);
        }

        struct region *g = grow(&w->regions, &w->n_regions, sizeof(*g));
        if (!g)
                return -ENOMEM;
        snprintf(g->name, sizeof(g->name), "%s", name);
        g->pid = (uint32_t) pid;
        g->addr = addr;
        g->size = size;
        g->n_spans = size / w->span;
        w->n_spans += g->n_spans;
        return 0;
}

static int do_phase(struct parser *p, struct spm_workload *w, const char *name,
                    struct args *a) {
        uint64_t epochs = 0;
        int r;

        if (!w->have_trace)
                return parse_fail(p, "'trace' must come first");
        if ((r = check_name(p, name, "phase")) < 0)
                return r;
        if ((r = ARG(p, a, "epochs", parse_uint, &epochs, "a number of epochs")) < 0)
                return r;
        if (r == 0 || epochs == 0)
                return parse_fail(p, "phase needs epochs=N with N > 0");
        if ((r = args_check_used(p, a, "phase")) < 0)
                return r;

        struct phase *ph = grow(&w->phases, &w->n_phases, sizeof(*ph));
        if (!ph)
                return -ENOMEM;
        snprintf(ph->name, sizeof(ph->name), "%s", name);
        ph->epochs = epochs;
        ph->first_stream = w->n_streams;
        return 0;
}

/* Zipf weights over the stream's spans, normalised, ranks shuffled when scatter is on. */
static int stream_zipf_weights(const struct spm_workload *w, struct stream *s, unsigned index) {
        _cleanup_free_ uint64_t *rank = NULL;
        double *wt, sum = 0;
        uint64_t rng = rng_seed(w->seed, index + 1, UINT64_MAX);

        rank = malloc(s->n_spans * sizeof(*rank));
        wt = malloc(s->n_spans * sizeof(*wt));
        if (!rank || !wt) {
                free(wt);
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < s->n_spans; i++)
                rank[i] = i;
        if (s->scatter)  /* Fisher-Yates */
                for (uint64_t i = s->n_spans - 1; i > 0; i--) {
                        uint64_t j = splitmix64(&rng) % (i + 1), t = rank[i];

                        rank[i] = rank[j];
                        rank[j] = t;
                }
        for (uint64_t i = 0; i < s->n_spans; i++) {
                wt[i] = pow((double) (rank[i] + 1), -s->theta);
                sum += wt[i];
        }
        for (uint64_t i = 0; i < s->n_spans; i++)
                wt[i] /= sum;
        s->weights = wt;
        return 0;
}

/* access REGION ACCESSOR PATTERN bytes=S [key=value...] */
static int do_access(struct parser *p, struct spm_workload *w, char **pos, unsigned n_pos,
                     struct args *a) {
        struct stream s = {
                .write = 0, .prob = 1, .touch = 1, .theta = 0.99, .scatter = true,
                .hot = 0.1, .share = 0.9, .stride = 4,
        };
        uint64_t offset = 0, size = 0, bytes = 0, extent = 0, move = 0, scatter = 1;
        int r, region, acc;

        if (w->n_phases == 0)
                return parse_fail(p, "'access' must follow a 'phase'");
        if (n_pos != 3)
                return parse_fail(p, "usage: access REGION ACCESSOR PATTERN bytes=SIZE "
                                  "[key=value...]");
        region = find_region(w, pos[0]);
        if (region < 0)
                return parse_fail(p, "unknown region '%s'", pos[0]);
        acc = spm_accessor_from_name(pos[1], SPM_MAX_GPUS);
        if (acc < 0)
                return parse_fail(p, "accessor '%s' is not cpu or gpuN (N < %d)", pos[1],
                                  SPM_MAX_GPUS);
        s.pattern = _PATTERN_MAX;
        for (unsigned i = 0; i < _PATTERN_MAX; i++)
                if (strcmp(pattern_names[i], pos[2]) == 0)
                        s.pattern = i;
        if (s.pattern == _PATTERN_MAX)
                return parse_fail(p, "unknown pattern '%s' (seq, stride, uniform, zipf, hot)",
                                  pos[2]);
        s.region = (unsigned) region;
        s.accessor = (uint8_t) acc;
        s.noise = s.pattern == PATTERN_SEQ || s.pattern == PATTERN_STRIDE ? 0 : 0.1;

        const struct region *g = &w->regions[region];
        if ((r = ARG(p, a, "bytes", parse_size, &bytes, "a size")) < 0)
                return r;
        if (r == 0 || bytes == 0)
                return parse_fail(p, "access needs bytes=SIZE, the traffic per epoch");
        s.bytes = (double) bytes;
        if ((r = ARG(p, a, "offset", parse_size, &offset, "a size")) < 0 ||
            (r = ARG(p, a, "size", parse_size, &size, "a size")) < 0)
                return r;
        if (size == 0)
                size = g->size - MIN(offset, g->size);
        if (offset % w->span || size % w->span || size == 0 || offset > g->size ||
            size > g->size - offset)
                return parse_fail(p, "offset/size must be span multiples inside region '%s'",
                                  g->name);
        s.first_span = offset / w->span;
        s.n_spans = size / w->span;

        if ((r = arg_fraction(p, a, "write", 0, 1, &s.write)) < 0 ||
            (r = arg_fraction(p, a, "prob", 0, 1, &s.prob)) < 0 ||
            (r = arg_fraction(p, a, "noise", 0, 1, &s.noise)) < 0 ||
            (r = arg_fraction(p, a, "touch", 0, 1, &s.touch)) < 0)
                return r;
        switch (s.pattern) {
        case PATTERN_SEQ:
                if ((r = ARG(p, a, "extent", parse_size, &extent, "a size")) < 0)
                        return r;
                if (extent == 0)  /* one pass over what the traffic covers */
                        extent = MIN(ALIGN_UP(bytes, w->span), size);
                if (extent % w->span || extent > size)
                        return parse_fail(p, "extent must be a span multiple <= the size");
                s.extent = MAX(extent / w->span, 1);
                break;
        case PATTERN_STRIDE:
                if ((r = ARG(p, a, "stride", parse_uint, &s.stride, "a span count")) < 0)
                        return r;
                if (s.stride == 0 || s.stride > s.n_spans)
                        return parse_fail(p, "stride must be 1..%" PRIu64 " spans", s.n_spans);
                break;
        case PATTERN_ZIPF:
                if ((r = arg_fraction(p, a, "theta", 0, 10, &s.theta)) < 0 ||
                    (r = ARG(p, a, "scatter", parse_uint, &scatter, "0 or 1")) < 0)
                        return r;
                if (scatter > 1)
                        return parse_fail(p, "scatter must be 0 or 1");
                s.scatter = scatter;
                break;
        case PATTERN_HOT:
                if ((r = arg_fraction(p, a, "hot", 0, 1, &s.hot)) < 0 ||
                    (r = arg_fraction(p, a, "share", 0, 1, &s.share)) < 0 ||
                    (r = ARG(p, a, "move", parse_size, &move, "a size")) < 0)
                        return r;
                if (move % w->span)
                        return parse_fail(p, "move must be a span multiple");
                s.move = move / w->span;
                break;
        default:
                break;
        }
        if ((r = args_check_used(p, a, "access")) < 0)
                return r;

        if (s.pattern == PATTERN_ZIPF) {
                if (s.n_spans > WL_MAX_ZIPF_SPANS - w->n_zipf_spans)
                        return parse_fail(p, "zipf streams over more than %llu spans in all",
                                          (unsigned long long) WL_MAX_ZIPF_SPANS);
                if ((r = stream_zipf_weights(w, &s, w->n_streams)) < 0)
                        return r;
                w->n_zipf_spans += s.n_spans;
        }
        struct stream *ns = grow(&w->streams, &w->n_streams, sizeof(*ns));
        if (!ns) {
                free(s.weights);
                return -ENOMEM;
        }
        *ns = s;
        w->phases[w->n_phases - 1].n_streams++;
        return 0;
}

/* hint epoch=N region=NAME kind=KIND [gpu=N] [offset=S] [size=S] [ttl=USEC] */
static int do_hint(struct parser *p, struct spm_workload *w, struct args *a) {
        uint64_t epoch = 0, offset = 0, size = 0, gpu = 0, ttl = 0;
        const char *name = arg_get(a, "region"), *kind = arg_get(a, "kind");
        int r, region;

        if ((r = ARG(p, a, "epoch", parse_uint, &epoch, "an epoch")) < 0)
                return r;
        if (r == 0 || epoch >= w->epochs)
                return parse_fail(p, "hint needs epoch=N with N < the trace's %" PRIu64
                                  " epochs", w->epochs);
        if (!name || (region = find_region(w, name)) < 0)
                return parse_fail(p, "hint needs region=NAME of a declared region");
        enum spm_hint_kind k = kind ? spm_trace_hint_kind_parse(kind, strlen(kind))
                                    : _SPM_HINT_KIND_INVALID;
        if (k < 0)
                return parse_fail(p, "hint needs kind=hot|cold|pin-gpu|pin-ram|streaming|none");
        if ((r = ARG(p, a, "gpu", parse_uint, &gpu, "a GPU index")) < 0 ||
            (r = ARG(p, a, "offset", parse_size, &offset, "a size")) < 0 ||
            (r = ARG(p, a, "size", parse_size, &size, "a size")) < 0 ||
            (r = ARG(p, a, "ttl", parse_uint, &ttl, "microseconds")) < 0)
                return r;
        if (gpu >= SPM_MAX_GPUS)
                return parse_fail(p, "gpu must be < %d", SPM_MAX_GPUS);
        const struct region *g = &w->regions[region];
        if (size == 0)
                size = g->size - MIN(offset, g->size);
        if (offset % w->page_size || size % w->page_size || size == 0 || offset > g->size ||
            size > g->size - offset)
                return parse_fail(p, "offset/size must be page multiples inside region '%s'",
                                  g->name);
        if ((r = args_check_used(p, a, "hint")) < 0)
                return r;

        struct hint *h = grow(&w->hints, &w->n_hints, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->epoch = epoch;
        h->index = w->n_hints;
        h->h = (struct spm_hint) {
                .pid = g->pid, .start = g->addr + offset, .len = size, .kind = k,
                .gpu = (uint8_t) gpu, .ttl_usec = ttl,
        };
        return 0;
}

static int parse_directive(struct parser *p, struct spm_workload *w, char *line) {
        char *tok[WL_MAX_TOKENS + 1], *pos[4];
        struct args a = {};
        unsigned n = 0, n_pos = 0;

        for (char *save = NULL, *t = strtok_r(line, " \t", &save); t;
             t = strtok_r(NULL, " \t", &save)) {
                if (n == WL_MAX_TOKENS)
                        return parse_fail(p, "too many words (max %d)", WL_MAX_TOKENS);
                tok[n++] = t;
        }
        if (n == 0)
                return 0;
        for (unsigned i = 1; i < n; i++) {
                char *eq = strchr(tok[i], '=');

                if (!eq) {
                        if (a.n > 0)
                                return parse_fail(p, "'%s' after key=value arguments", tok[i]);
                        if (n_pos == ELEMENTSOF(pos))
                                return parse_fail(p, "too many words before the arguments");
                        pos[n_pos++] = tok[i];
                        continue;
                }
                *eq = '\0';
                if (!tok[i][0] || !eq[1])
                        return parse_fail(p, "empty key or value in '%s='", tok[i]);
                for (unsigned j = 0; j < a.n; j++)
                        if (strcmp(a.key[j], tok[i]) == 0)
                                return parse_fail(p, "key '%s' given twice", tok[i]);
                a.key[a.n] = tok[i];
                a.value[a.n++] = eq + 1;
        }

        const char *d = tok[0];
        if (strcmp(d, "access") == 0)
                return do_access(p, w, pos, n_pos, &a);
        if (n_pos != (strcmp(d, "region") == 0 || strcmp(d, "phase") == 0 ? 1u : 0u))
                return parse_fail(p, "usage: trace|hint key=value...; region|phase NAME "
                                  "key=value...");
        if (strcmp(d, "trace") == 0)
                return do_trace(p, w, &a);
        if (strcmp(d, "region") == 0)
                return do_region(p, w, pos[0], &a);
        if (strcmp(d, "phase") == 0)
                return do_phase(p, w, pos[0], &a);
        if (strcmp(d, "hint") == 0)
                return do_hint(p, w, &a);
        return parse_fail(p, "unknown directive '%s' (trace, region, phase, access, hint)", d);
}

static int cmp_region_order(const void *a, const void *b, void *userdata) {
        const struct region *r = userdata;
        const struct region *x = &r[*(const unsigned *) a], *y = &r[*(const unsigned *) b];

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int cmp_hint_epoch(const void *a, const void *b) {
        const struct hint *x = a, *y = b;

        if (x->epoch != y->epoch)
                return x->epoch < y->epoch ? -1 : 1;
        /* Equal epochs keep file order (qsort is not stable). */
        return x->index < y->index ? -1 : x->index > y->index;
}

int spm_workload_parse(FILE *f, const char *path, struct spm_workload **ret, char *err,
                       size_t errsize) {
        _cleanup_(spm_workload_freep) struct spm_workload *w = NULL;
        _cleanup_free_ char *line = NULL;
        struct parser p = { .path = path, .err = err, .errsize = errsize };
        size_t cap = 0;
        ssize_t len;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->epoch_usec = 10000;
        w->page_size = 4096;
        w->span = 2ULL << 20;
        w->seed = 1;

        while ((len = getline(&line, &cap, f)) >= 0) {
                p.line++;
                if (strlen(line) != (size_t) len)
                        return parse_fail(&p, "NUL byte in the line");
                char *hash = strchr(line, '#');
                if (hash)
                        *hash = '\0';
                line[strcspn(line, "\r\n")] = '\0';
                r = parse_directive(&p, w, line);
                if (r < 0)
                        return r;
        }
        if (ferror(f))
                return -EIO;
        p.line++;
        if (!w->have_trace)
                return parse_fail(&p, "no 'trace' line");
        if (w->n_regions == 0 || w->n_phases == 0)
                return parse_fail(&p, "a workload needs at least one region and one phase");

        w->order = malloc(w->n_regions * sizeof(*w->order));
        if (!w->order)
                return -ENOMEM;
        for (unsigned i = 0; i < w->n_regions; i++)
                w->order[i] = i;
        qsort_r(w->order, w->n_regions, sizeof(*w->order), cmp_region_order, w->regions);
        if (w->n_hints > 0)
                qsort(w->hints, w->n_hints, sizeof(*w->hints), cmp_hint_epoch);
        *ret = TAKE_PTR(w);
        return 0;
}

void spm_workload_get_info(const struct spm_workload *w, struct spm_workload_info *ret) {
        *ret = (struct spm_workload_info) {
                .epochs = w->epochs,
                .n_regions = w->n_regions,
                .n_phases = w->n_phases,
                .n_streams = w->n_streams,
                .n_hints = w->n_hints,
        };
        for (unsigned i = 0; i < w->n_regions; i++)
                ret->footprint += w->regions[i].size;
}

void spm_workload_header(const struct spm_workload *w, struct spm_trace_header *ret) {
        spm_trace_header_init(ret);
        ret->version = 1;
        ret->epoch_usec = w->epoch_usec;
        ret->page_size = w->page_size;
}

/* ---- generation ---- */

/* Per-region accumulators: reads and writes per span and accessor, this epoch. */
struct counts {
        uint64_t reads;
        uint64_t writes;
};

/* Adds `bytes` of traffic of stream s to span i (index within the stream's part). */
static void add_traffic(const struct stream *s, struct counts *acc, uint64_t i, double bytes,
                        uint64_t *rng) {
        double n;

        if (s->noise > 0)
                bytes *= 1.0 + s->noise * (2.0 * rng_u01(rng) - 1.0);
        n = bytes / SPM_ACCESS_BYTES;
        struct counts *c = &acc[(s->first_span + i) * SPM_MAX_ACCESSORS + s->accessor];
        c->reads += (uint64_t) llround(n * (1.0 - s->write));
        c->writes += (uint64_t) llround(n * s->write);
}

/* Spreads one epoch of stream s (active for the t-th time in its phase) over acc. */
static void stream_epoch(const struct stream *s, uint64_t t, struct counts *acc,
                         uint64_t *rng) {
        uint64_t n = s->n_spans;

        switch (s->pattern) {
        case PATTERN_SEQ: {
                uint64_t start = (t * s->extent) % n;

                for (uint64_t k = 0; k < s->extent; k++)
                        add_traffic(s, acc, (start + k) % n, s->bytes / (double) s->extent, rng);
                break;
        }
        case PATTERN_STRIDE: {
                uint64_t phase = t % s->stride, count = (n - phase + s->stride - 1) / s->stride;

                for (uint64_t i = phase; i < n; i += s->stride)
                        add_traffic(s, acc, i, s->bytes / (double) count, rng);
                break;
        }
        case PATTERN_UNIFORM:
                for (uint64_t i = 0; i < n; i++)
                        if (s->touch >= 1 || rng_u01(rng) < s->touch)
                                add_traffic(s, acc, i, s->bytes / (s->touch * (double) n), rng);
                break;
        case PATTERN_ZIPF:
                for (uint64_t i = 0; i < n; i++)
                        if (s->touch >= 1 || rng_u01(rng) < s->touch)
                                add_traffic(s, acc, i, s->bytes * s->weights[i] / s->touch, rng);
                break;
        case PATTERN_HOT: {
                uint64_t h = MAX((uint64_t) llround(s->hot * (double) n), 1);
                uint64_t start = (t * s->move) % n;

                h = MIN(h, n);
                for (uint64_t i = 0; i < n; i++) {
                        bool in = (i + n - start) % n < h;

                        if (in)
                                add_traffic(s, acc, i, s->bytes * s->share / (double) h, rng);
                        else if (n > h && (s->touch >= 1 || rng_u01(rng) < s->touch))
                                add_traffic(s, acc, i, s->bytes * (1 - s->share) /
                                            (s->touch * (double) (n - h)), rng);
                }
                break;
        }
        default:
                break;
        }
}

static void free_counts(struct counts ***acc) {
        /* n_regions is not known here: the array is NULL-terminated. */
        if (!*acc)
                return;
        for (struct counts **c = *acc; *c; c++)
                free(*c);
        free(*acc);
}

int spm_workload_generate(const struct spm_workload *w,
                          int (*emit)(const struct spm_trace_record *rec, void *userdata),
                          void *userdata) {
        _cleanup_(free_counts) struct counts **acc = NULL;
        uint64_t cycle_len = 0;
        unsigned next_hint = 0;
        int r;

        acc = calloc(w->n_regions + 1, sizeof(*acc));
        if (!acc)
                return -ENOMEM;
        for (unsigned i = 0; i < w->n_regions; i++) {
                acc[i] = calloc(w->regions[i].n_spans * SPM_MAX_ACCESSORS, sizeof(**acc));
                if (!acc[i])
                        return -ENOMEM;
        }
        for (unsigned i = 0; i < w->n_phases; i++)
                cycle_len += w->phases[i].epochs;

        for (uint64_t e = 0; e < w->epochs; e++) {
                /* Which phase, and how often it ran before: phases cycle in file order. */
                uint64_t cycle = e / cycle_len, off = e % cycle_len;
                unsigned ph = 0;

                while (off >= w->phases[ph].epochs)
                        off -= w->phases[ph++].epochs;
                const struct phase *P = &w->phases[ph];
                uint64_t t = cycle * P->epochs + off;

                for (; next_hint < w->n_hints && w->hints[next_hint].epoch == e; next_hint++) {
                        struct spm_trace_record rec = {
                                .kind = SPM_TRACE_HINT, .epoch = e, .hint = w->hints[next_hint].h,
                        };
                        if ((r = emit(&rec, userdata)) < 0)
                                return r;
                }

                for (unsigned k = 0; k < P->n_streams; k++) {
                        unsigned si = P->first_stream + k;
                        const struct stream *s = &w->streams[si];
                        uint64_t rng = rng_seed(w->seed, si + 1, e);

                        if (s->prob < 1 && rng_u01(&rng) >= s->prob)
                                continue;
                        stream_epoch(s, t, acc[s->region], &rng);
                }

                for (unsigned oi = 0; oi < w->n_regions; oi++) {
                        unsigned ri = w->order[oi];
                        const struct region *g = &w->regions[ri];

                        for (uint64_t i = 0; i < g->n_spans; i++)
                                for (unsigned a = 0; a < SPM_MAX_ACCESSORS; a++) {
                                        struct counts *c = &acc[ri][i * SPM_MAX_ACCESSORS + a];
                                        struct spm_trace_record rec = {
                                                .kind = SPM_TRACE_ROW,
                                                .epoch = e,
                                                .access = {
                                                        .pid = g->pid,
                                                        .accessor = (uint8_t) a,
                                                        .addr = g->addr + i * w->span,
                                                        .len = w->span,
                                                        .reads = c->reads,
                                                        .writes = c->writes,
                                                },
                                        };

                                        if (c->reads == 0 && c->writes == 0)
                                                continue;
                                        *c = (struct counts) {};
                                        if ((r = emit(&rec, userdata)) < 0)
                                                return r;
                                }
                }
        }
        return 0;
}
