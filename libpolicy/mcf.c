/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Min-cost flow by successive shortest paths with potentials (primal-dual), blocking flow per
 * phase. Arcs are stored in pairs: 2k forward, 2k+1 its residual reverse.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/mcf.h"

#define INF INT64_MAX

struct spm_mcf {
        uint32_t n;
        size_t n_arcs, alloc;     /* arc slots (2 per arc) */
        uint32_t *from, *to;
        int64_t *cap, *cost;
        uint64_t phases;
        bool solved;
        /* adjacency (built by solve) */
        size_t *adj_start;
        uint32_t *adj;
};

int spm_mcf_new(uint32_t n_nodes, struct spm_mcf **ret) {
        struct spm_mcf *g;

        if (n_nodes == 0 || n_nodes == UINT32_MAX)
                return -EINVAL;
        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->n = n_nodes;
        *ret = g;
        return 0;
}

struct spm_mcf *spm_mcf_free(struct spm_mcf *g) {
        if (!g)
                return NULL;
        free(g->from);
        free(g->to);
        free(g->cap);
        free(g->cost);
        free(g->adj_start);
        free(g->adj);
        free(g);
        return NULL;
}

static int grow(struct spm_mcf *g) {
        size_t n = MAX(g->alloc * 2, (size_t) 256);
        uint32_t *f = reallocarray(g->from, n, sizeof(*f));
        if (!f)
                return -ENOMEM;
        g->from = f;
        uint32_t *t = reallocarray(g->to, n, sizeof(*t));
        if (!t)
                return -ENOMEM;
        g->to = t;
        int64_t *c = reallocarray(g->cap, n, sizeof(*c));
        if (!c)
                return -ENOMEM;
        g->cap = c;
        int64_t *k = reallocarray(g->cost, n, sizeof(*k));
        if (!k)
                return -ENOMEM;
        g->cost = k;
        g->alloc = n;
        return 0;
}

int64_t spm_mcf_add_arc(struct spm_mcf *g, uint32_t from, uint32_t to, int64_t cap, int64_t cost) {
        if (g->solved || from >= to || to >= g->n || cap < 0)
                return -EINVAL;
        if (g->n_arcs + 2 > g->alloc && grow(g) < 0)
                return -ENOMEM;
        size_t a = g->n_arcs;
        g->from[a] = from, g->to[a] = to, g->cap[a] = cap, g->cost[a] = cost;
        g->from[a + 1] = to, g->to[a + 1] = from, g->cap[a + 1] = 0, g->cost[a + 1] = -cost;
        g->n_arcs += 2;
        return (int64_t) (a / 2);
}

int64_t spm_mcf_flow(const struct spm_mcf *g, int64_t arc) {
        return g->cap[2 * (size_t) arc + 1];
}

uint64_t spm_mcf_phases(const struct spm_mcf *g) {
        return g->phases;
}

static int build_adjacency(struct spm_mcf *g) {
        g->adj_start = calloc((size_t) g->n + 1, sizeof(*g->adj_start));
        g->adj = malloc(MAX(g->n_arcs, (size_t) 1) * sizeof(*g->adj));
        if (!g->adj_start || !g->adj)
                return -ENOMEM;
        for (size_t a = 0; a < g->n_arcs; a++)
                g->adj_start[g->from[a] + 1]++;
        for (uint32_t v = 0; v < g->n; v++)
                g->adj_start[v + 1] += g->adj_start[v];
        size_t *fill = malloc(((size_t) g->n + 1) * sizeof(*fill));
        if (!fill)
                return -ENOMEM;
        memcpy(fill, g->adj_start, ((size_t) g->n + 1) * sizeof(*fill));
        for (size_t a = 0; a < g->n_arcs; a++)
                g->adj[fill[g->from[a]]++] = (uint32_t) a;
        free(fill);
        return 0;
}

/* A binary min-heap of (key, node) with lazy deletion. */
struct heap {
        int64_t *key;
        uint32_t *node;
        size_t n, alloc;
};

static int heap_push(struct heap *h, int64_t key, uint32_t node) {
        if (h->n == h->alloc) {
                size_t n = MAX(h->alloc * 2, (size_t) 1024);
                int64_t *k = reallocarray(h->key, n, sizeof(*k));
                if (!k)
                        return -ENOMEM;
                h->key = k;
                uint32_t *v = reallocarray(h->node, n, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                h->node = v;
                h->alloc = n;
        }
        size_t i = h->n++;
        while (i > 0 && h->key[(i - 1) / 2] > key) {
                h->key[i] = h->key[(i - 1) / 2];
                h->node[i] = h->node[(i - 1) / 2];
                i = (i - 1) / 2;
        }
        h->key[i] = key;
        h->node[i] = node;
        return 0;
}

static void heap_pop(struct heap *h, int64_t *ret_key, uint32_t *ret_node) {
        *ret_key = h->key[0];
        *ret_node = h->node[0];
        int64_t key = h->key[--h->n];
        uint32_t node = h->node[h->n];
        size_t i = 0;
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && h->key[c + 1] < h->key[c])
                        c++;
                if (h->key[c] >= key)
                        break;
                h->key[i] = h->key[c];
                h->node[i] = h->node[c];
                i = c;
        }
        h->key[i] = key;
        h->node[i] = node;
}

struct work {
        int64_t *pi, *dist;
        int32_t *level;
        size_t *it;
        uint32_t *queue;
        uint32_t *stack;          /* arcs on the current DFS path */
        struct heap heap;
};

static void work_done(struct work *w) {
        free(w->pi);
        free(w->dist);
        free(w->level);
        free(w->it);
        free(w->queue);
        free(w->stack);
        free(w->heap.key);
        free(w->heap.node);
}

static int64_t reduced(const struct spm_mcf *g, const struct work *w, size_t a) {
        return g->cost[a] + w->pi[g->from[a]] - w->pi[g->to[a]];
}

static int dijkstra(const struct spm_mcf *g, struct work *w, uint32_t s) {
        for (uint32_t v = 0; v < g->n; v++)
                w->dist[v] = INF;
        w->dist[s] = 0;
        w->heap.n = 0;
        if (heap_push(&w->heap, 0, s) < 0)
                return -ENOMEM;
        while (w->heap.n > 0) {
                int64_t d;
                uint32_t u;

                heap_pop(&w->heap, &d, &u);
                if (d > w->dist[u])
                        continue;
                for (size_t i = g->adj_start[u]; i < g->adj_start[u + 1]; i++) {
                        size_t a = g->adj[i];
                        uint32_t v = g->to[a];

                        if (g->cap[a] <= 0 || w->pi[v] == INF)
                                continue;
                        int64_t nd = d + reduced(g, w, a);
                        if (nd < w->dist[v]) {
                                w->dist[v] = nd;
                                if (heap_push(&w->heap, nd, v) < 0)
                                        return -ENOMEM;
                        }
                }
        }
        return 0;
}

/* Levels over admissible arcs (residual, reduced cost 0). Returns whether t is reachable. */
static bool levels(const struct spm_mcf *g, struct work *w, uint32_t s, uint32_t t) {
        size_t qh = 0, qt = 0;

        for (uint32_t v = 0; v < g->n; v++)
                w->level[v] = -1;
        w->level[s] = 0;
        w->queue[qt++] = s;
        while (qh < qt) {
                uint32_t u = w->queue[qh++];

                for (size_t i = g->adj_start[u]; i < g->adj_start[u + 1]; i++) {
                        size_t a = g->adj[i];
                        uint32_t v = g->to[a];

                        if (g->cap[a] > 0 && w->level[v] < 0 && w->pi[v] != INF &&
                            reduced(g, w, a) == 0) {
                                w->level[v] = w->level[u] + 1;
                                w->queue[qt++] = v;
                        }
                }
        }
        return w->level[t] >= 0;
}

/* Pushes a blocking flow (at most limit units) along level-increasing admissible arcs. */
static int64_t blocking_flow(struct spm_mcf *g, struct work *w, uint32_t s, uint32_t t,
                             int64_t limit) {
        int64_t total = 0;
        size_t depth = 0;
        uint32_t u = s;

        for (uint32_t v = 0; v < g->n; v++)
                w->it[v] = g->adj_start[v];
        while (total < limit) {
                if (u == t) {
                        int64_t push = limit - total;
                        for (size_t i = 0; i < depth; i++)
                                push = MIN(push, g->cap[w->stack[i]]);
                        for (size_t i = 0; i < depth; i++) {
                                g->cap[w->stack[i]] -= push;
                                g->cap[w->stack[i] ^ 1] += push;
                        }
                        total += push;
                        depth = 0;
                        u = s;
                        continue;
                }
                bool advanced = false;
                for (; w->it[u] < g->adj_start[u + 1]; w->it[u]++) {
                        size_t a = g->adj[w->it[u]];
                        uint32_t v = g->to[a];

                        if (g->cap[a] > 0 && w->level[v] == w->level[u] + 1 &&
                            reduced(g, w, a) == 0) {
                                w->stack[depth++] = (uint32_t) a;
                                u = v;
                                advanced = true;
                                break;
                        }
                }
                if (advanced)
                        continue;
                if (u == s)
                        break;
                w->level[u] = -1;  /* dead end for this phase */
                u = g->from[w->stack[--depth]];
                w->it[u]++;
        }
        return total;
}

int spm_mcf_solve(struct spm_mcf *g, uint32_t s, uint32_t t, int64_t max_flow,
                  bool only_negative, int64_t *ret_flow, int64_t *ret_cost) {
        struct work w = {};
        int64_t flow = 0;
        int r;

        if (g->solved || s >= g->n || t >= g->n || s == t || max_flow < 0)
                return -EINVAL;
        g->solved = true;
        r = build_adjacency(g);
        if (r < 0)
                return r;
        w.pi = malloc(g->n * sizeof(*w.pi));
        w.dist = malloc(g->n * sizeof(*w.dist));
        w.level = malloc(g->n * sizeof(*w.level));
        w.it = malloc(g->n * sizeof(*w.it));
        w.queue = malloc(g->n * sizeof(*w.queue));
        w.stack = malloc(g->n * sizeof(*w.stack));
        if (!w.pi || !w.dist || !w.level || !w.it || !w.queue || !w.stack) {
                r = -ENOMEM;
                goto finish;
        }

        /* Initial potentials: shortest distances from s in the DAG (ids are topological). */
        for (uint32_t v = 0; v < g->n; v++)
                w.pi[v] = INF;
        w.pi[s] = 0;
        for (uint32_t u = 0; u < g->n; u++) {
                if (w.pi[u] == INF)
                        continue;
                for (size_t i = g->adj_start[u]; i < g->adj_start[u + 1]; i++) {
                        size_t a = g->adj[i];

                        if ((a & 1) == 0 && g->cap[a] > 0 && w.pi[u] + g->cost[a] < w.pi[g->to[a]])
                                w.pi[g->to[a]] = w.pi[u] + g->cost[a];
                }
        }

        while (flow < max_flow) {
                r = dijkstra(g, &w, s);
                if (r < 0)
                        goto finish;
                if (w.dist[t] == INF)
                        break;
                int64_t dt = w.dist[t];
                for (uint32_t v = 0; v < g->n; v++)
                        if (w.pi[v] != INF)
                                w.pi[v] += MIN(w.dist[v], dt);
                g->phases++;
                if (only_negative && w.pi[t] - w.pi[s] >= 0)
                        break;
                if (!levels(g, &w, s, t))
                        break;  /* cannot happen: t was reached on zero reduced costs */
                int64_t f = blocking_flow(g, &w, s, t, max_flow - flow);
                if (f == 0)
                        break;
                flow += f;
        }

        int64_t cost = 0;
        for (size_t a = 0; a < g->n_arcs; a += 2)
                cost += g->cap[a + 1] * g->cost[a];
        *ret_flow = flow;
        *ret_cost = cost;
        r = 0;
finish:
        work_done(&w);
        return r;
}
