/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Step 6 of the epoch: the plan as the movers see it. Adjacent moves of one process with the
 * same source and destination coalesce into one range (one call instead of many); the ranges
 * go out by benefit density, highest first, except that a move into a full GPU waits until
 * the moves that make its room (evictions, ordered by their own density) have gone out: a
 * mover that runs the plan in order never overfills VRAM.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"

void spm_plan_init(struct spm_plan *p) {
        *p = (struct spm_plan) {};
}

void spm_plan_done(struct spm_plan *p) {
        free(p->moves);
        free(p->held);
        spm_plan_init(p);
}

static int moves_push(struct spm_move **v, size_t *n, size_t *n_alloc, const struct spm_move *m) {
        if (*n == *n_alloc) {
                size_t k = MAX(*n_alloc * 2, 16);
                struct spm_move *x = realloc(*v, k * sizeof(*x));
                if (!x)
                        return -ENOMEM;
                *v = x;
                *n_alloc = k;
        }
        (*v)[(*n)++] = *m;
        return 0;
}

int plan_push(struct spm_plan *p, const struct spm_move *m) {
        return moves_push(&p->moves, &p->n_moves, &p->n_alloc, m);
}

int plan_push_held(struct spm_plan *p, const struct spm_move *m) {
        return moves_push(&p->held, &p->n_held, &p->n_held_alloc, m);
}

static int addr_cmp(const void *a, const void *b) {
        const struct spm_move *x = a, *y = b;
        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return (x->start > y->start) - (x->start < y->start);
}

static double density(const struct spm_move *m) {
        return m->benefit_usec / (double) m->length;
}

static int order_cmp(const void *a, const void *b) {
        const struct spm_move *x = a, *y = b;
        double dx = density(x), dy = density(y);
        if (dx != dy)
                return dx > dy ? -1 : 1;
        /* Equal density (one group's moves): the evictions first. */
        bool ex = x->to == SPM_LOC_SYSMEM, ey = y->to == SPM_LOC_SYSMEM;
        if (ex != ey)
                return ex ? -1 : 1;
        return addr_cmp(a, b);
}

/* Merges adjacent moves of a process with the same direction. The merged range keeps the
 * reason of its bigger-benefit part and sums benefits and costs, less the per-call cost the
 * merge saves. */
static void coalesce(const struct spm_engine *e, struct spm_plan *p) {
        size_t w = 0;

        if (p->n_moves < 2)
                return;
        qsort(p->moves, p->n_moves, sizeof(*p->moves), addr_cmp);
        for (size_t i = 1; i < p->n_moves; i++) {
                struct spm_move *a = &p->moves[w], *b = &p->moves[i];
                if (a->pid == b->pid && a->start + a->length == b->start && a->from == b->from &&
                    a->to == b->to) {
                        if (b->benefit_usec > a->benefit_usec)
                                a->reason = b->reason;
                        a->length += b->length;
                        a->benefit_usec += b->benefit_usec;
                        a->cost_usec += b->cost_usec;
                        /* One call instead of two; the cost stays at least the copy time. */
                        double floor = spm_machine_migrate_usec(&e->m, a->length);
                        a->cost_usec = MAX(floor, a->cost_usec - e->m.migrate_call_usec);
                } else
                        p->moves[++w] = *b;
        }
        p->n_moves = w + 1;
}

int plan_finish(const struct spm_engine *e, struct spm_plan *p) {
        coalesce(e, p);
        if (p->n_moves < 2)
                return 0;
        qsort(p->moves, p->n_moves, sizeof(*p->moves), order_cmp);

        /* Capacity-safe order: replay the plan from the state before it. */
        int64_t used[SPM_MAX_LOCS], cap[SPM_MAX_LOCS];
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                used[l] = (int64_t) e->used[l];
        for (size_t i = 0; i < p->n_moves; i++) {
                used[p->moves[i].to] -= (int64_t) p->moves[i].length;
                used[p->moves[i].from] += (int64_t) p->moves[i].length;
        }
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                cap[l] = l == SPM_LOC_SYSMEM ? INT64_MAX
                                             : MAX((int64_t) e->capacity[l], used[l]);

        _cleanup_free_ struct spm_move *out = malloc(p->n_moves * sizeof(*out));
        _cleanup_free_ size_t *waiting = malloc(p->n_moves * sizeof(*waiting));
        if (!out || !waiting)
                return -ENOMEM;
        size_t n_out = 0, n_wait = 0;
        for (size_t i = 0; i < p->n_moves; i++) {
                const struct spm_move *m = &p->moves[i];
                if (used[m->to] + (int64_t) m->length > cap[m->to]) {
                        waiting[n_wait++] = i;
                        continue;
                }
                out[n_out++] = *m;
                used[m->to] += (int64_t) m->length;
                used[m->from] -= (int64_t) m->length;
                /* Room appeared at m->from: release the waiters that fit now, in order. */
                for (bool again = true; again;) {
                        again = false;
                        for (size_t k = 0; k < n_wait; k++) {
                                const struct spm_move *w = &p->moves[waiting[k]];
                                if (used[w->to] + (int64_t) w->length > cap[w->to])
                                        continue;
                                out[n_out++] = *w;
                                used[w->to] += (int64_t) w->length;
                                used[w->from] -= (int64_t) w->length;
                                memmove(&waiting[k], &waiting[k + 1],
                                        (n_wait - k - 1) * sizeof(*waiting));
                                n_wait--;
                                again = true;
                                break;
                        }
                }
        }
        for (size_t k = 0; k < n_wait; k++) /* cannot happen: the final state fits */
                out[n_out++] = p->moves[waiting[k]];
        memcpy(p->moves, out, n_out * sizeof(*out));
        return 0;
}
