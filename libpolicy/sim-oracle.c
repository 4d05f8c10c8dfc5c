/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Oracles: policies that see the whole trace.
 *
 *   static-opt   one placement for the run: the top-K regions by total benefit (cost-model §6.1)
 *   clairvoyant  each epoch, the top-K regions by benefit over the next 8 epochs, minus the
 *                move; a strong heuristic, not a bound (§6.2)
 *   oracle       replays the exact offline optimum of the additive model (§6.4)
 *
 * The exact optimum. Every region's accesses fall into "entries" (region, epoch) with a
 * benefit w = sum over accessors of ops x (cost at backing - cost at the fast location). A
 * residency is a chain of consecutive entries of one region; it costs C_first to enter at the
 * region's first entry (an untouched page is populated in place, no copy) or C_up later, and
 * C_down to leave (nothing if it stays until the end). K = capacity units of flow run along the
 * epoch time line; a unit may detour through a chain while the region is resident:
 *
 *     T_e --C_up--> in(p,i) --(-w_i)--> out(p,i) --0--> in(p,i+1) ...
 *                                        out(p,i) --C_down--> T_{e+1}
 * A min-cost flow of value <= K is an optimal residency schedule (uniform granules, bypass
 * allowed). Regions whose best schedule alone gains nothing are left out; when the regions'
 * independent optima never need more than K slots at once, they are the optimum and no flow
 * is needed. With several capacity-limited locations (multi-GPU, MI300A with several active
 * APUs) the locations are pooled and each entry takes its best location: a relaxation, so a
 * lower bound on time that no policy can beat, reported as such.
 */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/mcf.h"
#include "spmtier/sim.h"

void spm_sim_optimum_done(struct spm_sim_optimum *o) {
        free(o->schedule);
        o->schedule = NULL;
}

/* Per-entry benefits of the fast locations, from the trace. */
struct entry {
        uint32_t region;
        uint32_t epoch;
        int64_t w;          /* ns, best fast location (rounded for the flow) */
        double wd;          /* ns, exact */
        uint8_t loc;        /* that location */
};

struct costs {
        int64_t first, up, down;  /* ns */
};

static int64_t to_ns(double usec) {
        return llround(usec * 1000.0);
}

/* Collects entries in (epoch, region) order. */
static int collect_entries(const struct spm_machine *m, const struct spm_simtrace *t,
                           const struct spm_sim_layout *y, struct entry **ret, size_t *ret_n) {
        struct entry *v = malloc(MAX(t->n_acc, (size_t) 1) * sizeof(*v));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (uint32_t e = 0; e < t->n_epochs; e++)
                for (size_t i = t->epoch_start[e]; i < t->epoch_start[e + 1];) {
                        uint32_t r = t->acc[i].region;
                        double gain[SPM_MAX_LOCS] = {};

                        for (; i < t->epoch_start[e + 1] && t->acc[i].region == r; i++) {
                                const struct spm_sim_access *a = &t->acc[i];
                                double base = spm_machine_access_ns(m, a->accessor, y->backing);

                                for (unsigned l = 0; l < m->n_locs; l++)
                                        if (y->fast[l])
                                                gain[l] += a->ops * (base - spm_machine_access_ns(m, a->accessor, l));
                        }
                        struct entry en = { .region = r, .epoch = e, .wd = -INFINITY };
                        for (unsigned l = 0; l < m->n_locs; l++)
                                if (y->fast[l] && gain[l] > en.wd) {
                                        en.wd = gain[l];
                                        en.loc = (uint8_t) l;
                                }
                        en.w = llround(en.wd);
                        v[n++] = en;
                }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Best schedule of one region alone: residency per entry (1 = resident) into res, returns the
 * profit in ns. Entries idx[0..m) of the region, in epoch order. */
static int64_t region_dp(const struct entry *en, const uint32_t *idx, uint32_t m,
                         const struct costs *c, uint8_t *res, int64_t *fin, int64_t *fout,
                         uint8_t *from_in, uint8_t *from_out) {
        /* fin[i]: best profit with the region resident at entry i; fout[i]: not resident. */
        fin[0] = en[idx[0]].w - c->first;
        fout[0] = 0;
        for (uint32_t i = 1; i < m; i++) {
                int64_t stay = fin[i - 1], enter = fout[i - 1] - c->up;
                from_in[i] = stay >= enter;
                fin[i] = en[idx[i]].w + MAX(stay, enter);
                int64_t out = fout[i - 1], leave = fin[i - 1] - c->down;
                from_out[i] = leave > out;
                fout[i] = MAX(out, leave);
        }
        bool in = fin[m - 1] > fout[m - 1];
        int64_t best = in ? fin[m - 1] : fout[m - 1];
        for (uint32_t i = m; i-- > 0;) {
                res[i] = in;
                if (i == 0)
                        break;
                in = in ? from_in[i] : from_out[i];
        }
        return best;
}

/* Fills a region's schedule row from per-entry residency (region order): resident from an
 * entry to the next entry it chains to, or to the end when it stays, else for its epoch. */
static void schedule_region(uint8_t *row, uint32_t n_epochs, const struct entry *en,
                            const uint32_t *idx, uint32_t m, const uint8_t *res,
                            const uint8_t *chained, const uint8_t *stay_end, unsigned backing) {
        memset(row, backing, n_epochs);
        for (uint32_t i = 0; i < m; i++) {
                if (!res[i])
                        continue;
                uint32_t end = chained[i] ? en[idx[i + 1]].epoch
                             : stay_end[i] ? n_epochs : en[idx[i]].epoch + 1;
                for (uint32_t e = en[idx[i]].epoch; e < end; e++)
                        row[e] = en[idx[i]].loc;
        }
}

static void count_moves(const uint8_t *row, uint32_t n_epochs, uint32_t first_epoch,
                        unsigned backing, uint64_t granule, struct spm_sim_optimum *o) {
        unsigned prev = backing;

        for (uint32_t e = 0; e < n_epochs; e++) {
                if (row[e] != prev && !(prev == backing && e <= first_epoch)) {
                        o->migrations++;
                        o->moved_bytes += granule;
                }
                prev = row[e];
        }
}

/*
 * A Lagrangian lower bound for when the flow is too big: price every slot-epoch at lambda,
 * let every region choose its best schedule alone paying lambda per epoch resident, and
 * subtract lambda x K x epochs. For any lambda >= 0 this is <= the optimum (the capacity
 * constraint is relaxed into the objective); it is concave in lambda, so a golden-section
 * search finds the best uniform price. Linear in the number of entries per evaluation.
 */
static double lagrangian_profit(const struct entry *en, const uint32_t *idx, const uint32_t *start,
                                const uint8_t *keep, uint32_t n_regions, uint32_t n_epochs,
                                double first, double up, double down, double lambda) {
        double total = 0;

        for (uint32_t p = 0; p < n_regions; p++) {
                uint32_t m = start[p + 1] - start[p];
                if (m == 0 || !keep[p])
                        continue;
                const uint32_t *ix = idx + start[p];
                double fin = en[ix[0]].wd / 1000.0 - first - lambda, fout = 0;
                for (uint32_t i = 1; i < m; i++) {
                        double gap = (double) (en[ix[i]].epoch - en[ix[i - 1]].epoch - 1) * lambda;
                        /* Not resident in the gap: never was, or left after the last use (with
                         * a price on slots, leaving and coming back can beat staying). */
                        fout = MAX(fout, fin - down);
                        fin = en[ix[i]].wd / 1000.0 - lambda + MAX(fin - gap, fout - up);
                }
                double tail = (double) (n_epochs - en[ix[m - 1]].epoch - 1) * lambda;
                /* After the last use: stay to the end, or leave (then the slot is free). */
                total += MAX(fout, MAX(fin - tail, fin - down));
        }
        return total;
}

static double lagrangian_bound(const struct entry *en, size_t n_en, const uint32_t *idx,
                               const uint32_t *start, const uint8_t *keep, uint32_t n_regions,
                               uint32_t n_epochs, double first, double up, double down,
                               uint64_t K, double base_usec) {
        double hi = 0;
        for (size_t i = 0; i < n_en; i++)
                hi = MAX(hi, en[i].wd / 1000.0);
#define L(x) (base_usec - lagrangian_profit(en, idx, start, keep, n_regions, n_epochs, first, \
                                            up, down, (x)) - (x) * (double) K * n_epochs)
        const double phi = 0.6180339887498949;
        double a = 0, b = hi, c = b - phi * (b - a), d = a + phi * (b - a);
        double fc = L(c), fd = L(d), best = MAX(L(0), MAX(fc, fd));

        for (int it = 0; it < 60 && b - a > 1e-9 * (hi + 1); it++) {
                if (fc > fd) {
                        b = d, d = c, fd = fc;
                        c = b - phi * (b - a);
                        fc = L(c);
                } else {
                        a = c, c = d, fc = fd;
                        d = a + phi * (b - a);
                        fd = L(d);
                }
                best = MAX(best, MAX(fc, fd));
        }
#undef L
        return best;
}

int spm_sim_optimum(const struct spm_machine *m, const struct spm_simtrace *t,
                    const struct spm_sim_config *c, struct spm_sim_optimum *ret) {
        struct spm_sim_layout y;
        struct spm_sim_optimum o = {};
        _cleanup_free_ struct entry *en = NULL;
        _cleanup_free_ uint32_t *start = NULL, *idx = NULL, *fill = NULL;
        _cleanup_free_ int64_t *fin = NULL, *fout = NULL;
        _cleanup_free_ uint8_t *from_in = NULL, *from_out = NULL, *res = NULL, *keep = NULL;
        _cleanup_free_ uint8_t *chained = NULL, *stay_end = NULL;
        _cleanup_(spm_mcf_freep) struct spm_mcf *g = NULL;
        size_t n_en = 0;
        int r;

        if (!t->finished || t->granule != m->granule || spm_machine_validate(m) < 0)
                return -EINVAL;
        spm_sim_layout(m, t, c, &y);
        /* An untouched page enters for a prefetch's call or its GPU fault, whichever is
         * less; on a NUMA machine for nothing: its first touch allocates it where the policy
         * asked (mbind; the simulator's first touch honours the preference, sim-kfd.c). In
         * exact microseconds for the objective, in nanoseconds for the flow. */
        double first_usec = m->kind == SPM_MEM_NUMA ? 0 : MIN(m->migrate_call_usec, m->fault_usec);
        double up_usec = MIN(spm_machine_migrate_usec(m, t->granule), spm_machine_fault_usec(m, t->granule));
        double down_usec = spm_machine_migrate_usec(m, t->granule);
        struct costs cost = {
                .first = to_ns(first_usec),
                .up = to_ns(up_usec),
                .down = to_ns(down_usec),
        };
        uint64_t K = 0;
        for (unsigned l = 0; l < m->n_locs; l++)
                if (y.fast[l])
                        K += y.cap[l];

        /* All accesses at the backing location: the schedule that never moves anything. */
        double base_usec = 0;
        for (size_t i = 0; i < t->n_acc; i++)
                base_usec += t->acc[i].ops * spm_machine_access_ns(m, t->acc[i].accessor, y.backing) / 1000.0;

        r = collect_entries(m, t, &y, &en, &n_en);
        if (r < 0)
                return r;
        /* Group entries by region (counting sort keeps epoch order). */
        start = calloc((size_t) t->n_regions + 1, sizeof(*start));
        idx = malloc(MAX(n_en, (size_t) 1) * sizeof(*idx));
        fill = malloc(((size_t) t->n_regions + 1) * sizeof(*fill));
        fin = malloc(MAX(n_en, (size_t) 1) * sizeof(*fin));
        fout = malloc(MAX(n_en, (size_t) 1) * sizeof(*fout));
        from_in = malloc(MAX(n_en, (size_t) 1));
        from_out = malloc(MAX(n_en, (size_t) 1));
        res = calloc(MAX(n_en, (size_t) 1), 1);
        keep = calloc(MAX(t->n_regions, 1u), 1);
        chained = calloc(MAX(n_en, (size_t) 1), 1);
        stay_end = calloc(MAX(n_en, (size_t) 1), 1);
        if (!chained || !stay_end || !start || !idx || !fill || !fin || !fout || !from_in || !from_out || !res || !keep)
                return -ENOMEM;
        for (size_t i = 0; i < n_en; i++)
                start[en[i].region + 1]++;
        for (uint32_t p = 0; p < t->n_regions; p++)
                start[p + 1] += start[p];
        memcpy(fill, start, ((size_t) t->n_regions + 1) * sizeof(*fill));
        for (size_t i = 0; i < n_en; i++)
                idx[fill[en[i].region]++] = (uint32_t) i;

        /* Each region alone. */
        int64_t independent = 0;
        for (uint32_t p = 0; p < t->n_regions; p++) {
                uint32_t k = start[p + 1] - start[p];
                if (k == 0)
                        continue;
                int64_t best = region_dp(en, idx + start[p], k, &cost, res + start[p], fin,
                                         fout, from_in, from_out);
                keep[p] = best > 0;
                if (keep[p])
                        independent += best;
                else
                        memset(res + start[p], 0, k);
                /* Alone, a region never leaves and re-enters, nor leaves after its last use. */
                for (uint32_t i = 0; i + 1 < k; i++)
                        chained[start[p] + i] = res[start[p] + i] && res[start[p] + i + 1];
                stay_end[start[p] + k - 1] = res[start[p] + k - 1];
        }
        /* Do the independent optima fit? Count residents per epoch with a difference array. */
        bool fits = true;
        {
                _cleanup_free_ int64_t *delta = calloc((size_t) t->n_epochs + 1, sizeof(*delta));
                if (!delta)
                        return -ENOMEM;
                for (uint32_t p = 0; p < t->n_regions; p++) {
                        if (!keep[p])
                                continue;
                        const uint32_t *ix = idx + start[p];
                        uint32_t k = start[p + 1] - start[p];
                        for (uint32_t i = 0; i < k; i++) {
                                if (!res[start[p] + i])
                                        continue;
                                uint32_t s0 = en[ix[i]].epoch;
                                uint32_t end = chained[start[p] + i] ? en[ix[i + 1]].epoch
                                             : stay_end[start[p] + i] ? t->n_epochs
                                             : s0 + 1;
                                delta[s0]++;
                                delta[end]--;
                        }
                }
                int64_t now = 0;
                for (uint32_t e = 0; e < t->n_epochs && fits; e++) {
                        now += delta[e];
                        fits = (uint64_t) now <= K;
                }
        }

        o.exact = y.n_fast <= 1;
        size_t n_kept_entries = 0;
        for (size_t i = 0; i < n_en; i++)
                n_kept_entries += keep[en[i].region];
        double work = (double) n_kept_entries * (double) MIN(K, (uint64_t) n_kept_entries);
        double max_work = c->oracle_max_work > 0 ? c->oracle_max_work : 3e8;
        if (!fits && work > max_work) {
                /* Too big for the flow in reasonable time: a valid lower bound instead. */
                o.exact = false;
                o.method = "lagrangian-bound";
                o.time_usec = lagrangian_bound(en, n_en, idx, start, keep, t->n_regions,
                                               t->n_epochs, first_usec, up_usec, down_usec, K,
                                               base_usec);
                *ret = o;
                return 0;
        }
        if (fits) {
                o.method = "independent";
                o.time_usec = base_usec - (double) independent / 1000.0;
        } else {
                o.method = o.exact ? "min-cost-flow" : "pooled-relaxation";
                /* Node ids: for each epoch its time node, then in/out of its entries. */
                size_t n_kept = 0;
                for (size_t i = 0; i < n_en; i++)
                        n_kept += keep[en[i].region];
                uint64_t n_nodes = (uint64_t) t->n_epochs + 1 + 2 * n_kept;
                if (n_nodes >= UINT32_MAX)
                        return -ENOMEM;
                r = spm_mcf_new((uint32_t) n_nodes, &g);
                if (r < 0)
                        return r;
                _cleanup_free_ uint32_t *node_in = malloc(MAX(n_en, (size_t) 1) * sizeof(uint32_t));
                _cleanup_free_ int64_t *serve = malloc(MAX(n_en, (size_t) 1) * sizeof(int64_t));
                _cleanup_free_ int64_t *chain = malloc(MAX(n_en, (size_t) 1) * sizeof(int64_t));
                _cleanup_free_ int64_t *to_end = malloc(MAX(n_en, (size_t) 1) * sizeof(int64_t));
                _cleanup_free_ uint32_t *time_node = malloc(((size_t) t->n_epochs + 1) * sizeof(uint32_t));
                _cleanup_free_ uint32_t *pos = calloc(MAX(t->n_regions, 1u), sizeof(uint32_t));
                if (!node_in || !serve || !chain || !to_end || !time_node || !pos)
                        return -ENOMEM;
                uint32_t next = 0;
                size_t i = 0;
                for (uint32_t e = 0; e <= t->n_epochs; e++) {
                        time_node[e] = next++;
                        for (; i < n_en && en[i].epoch == e; i++)
                                if (keep[en[i].region]) {
                                        node_in[i] = next;
                                        next += 2;
                                }
                }
                int64_t a;
                for (uint32_t e = 0; e < t->n_epochs; e++)
                        if ((a = spm_mcf_add_arc(g, time_node[e], time_node[e + 1], (int64_t) K, 0)) < 0)
                                return (int) a;
                for (i = 0; i < n_en; i++) {
                        uint32_t p = en[i].region, k = pos[p]++;
                        if (!keep[p])
                                continue;
                        bool last = k + 1 == start[p + 1] - start[p];
                        uint32_t in = node_in[i], out = in + 1, e = en[i].epoch;

                        if ((a = spm_mcf_add_arc(g, time_node[e], in, 1, k == 0 ? cost.first : cost.up)) < 0)
                                return (int) a;
                        if ((serve[i] = spm_mcf_add_arc(g, in, out, 1, -en[i].w)) < 0)
                                return (int) serve[i];
                        if (k > 0) {
                                uint32_t prev = idx[start[p] + k - 1];
                                if ((chain[prev] = spm_mcf_add_arc(g, node_in[prev] + 1, in, 1, 0)) < 0)
                                        return (int) chain[prev];
                        }
                        if (!last || e + 1 < t->n_epochs)
                                if ((a = spm_mcf_add_arc(g, out, time_node[e + 1], 1, cost.down)) < 0)
                                        return (int) a;
                        chain[i] = to_end[i] = -1;
                        if (last && (to_end[i] = spm_mcf_add_arc(g, out, time_node[t->n_epochs], 1, 0)) < 0)
                                return (int) to_end[i];
                }
                int64_t flow, total;
                r = spm_mcf_solve(g, time_node[0], time_node[t->n_epochs], (int64_t) K,
                                  /* only_negative= */ true, &flow, &total);
                if (r < 0)
                        return r;
                o.time_usec = base_usec + (double) total / 1000.0;
                o.flow_nodes = n_nodes;
                o.flow_phases = spm_mcf_phases(g);
                /* Residency per entry from the serve arcs, chains from the chain arcs; both
                 * into region order. */
                for (uint32_t p = 0; p < t->n_regions; p++)
                        for (uint32_t k = start[p]; k < start[p + 1]; k++) {
                                uint32_t j = idx[k];
                                bool kept = keep[p];

                                res[k] = kept && spm_mcf_flow(g, serve[j]) > 0;
                                chained[k] = kept && chain[j] >= 0 && spm_mcf_flow(g, chain[j]) > 0;
                                stay_end[k] = kept && to_end[j] >= 0 && spm_mcf_flow(g, to_end[j]) > 0;
                        }
        }

        /* The objective in floating point from the schedule itself, so that replaying it in
         * the simulator gives the same figure (the flow's integer nanoseconds round). */
        double usec = base_usec;
        for (uint32_t p = 0; p < t->n_regions; p++)
                for (uint32_t k = start[p]; k < start[p + 1]; k++) {
                        if (!res[k])
                                continue;
                        usec -= en[idx[k]].wd / 1000.0;
                        if (k == start[p] || !chained[k - 1])
                                usec += k == start[p] ? first_usec : up_usec;
                        if (!chained[k] && !stay_end[k])
                                usec += down_usec;
                }
        o.time_usec = usec;

        o.schedule = malloc(MAX((size_t) t->n_regions * t->n_epochs, (size_t) 1));
        if (!o.schedule)
                return -ENOMEM;
        for (uint32_t p = 0; p < t->n_regions; p++) {
                uint8_t *row = o.schedule + (size_t) p * t->n_epochs;
                uint32_t k = start[p + 1] - start[p];

                schedule_region(row, t->n_epochs, en, idx + start[p], k, res + start[p],
                                chained + start[p], stay_end + start[p], y.backing);
                count_moves(row, t->n_epochs, t->regions[p].first_epoch, y.backing, t->granule, &o);
        }
        *ret = o;
        return 0;
}

/* ---- oracle: replay the exact schedule ---- */

static int exact_init(struct spm_sim *s, void **ret) {
        const struct spm_sim_optimum *o = spm_sim_config(s)->optimum;

        if (!o || !o->exact || !o->schedule)
                return -EINVAL;
        for (uint32_t r = 0; r < spm_sim_trace(s)->n_regions; r++)
                spm_sim_set_preferred(s, r, spm_sim_backing(s));
        *ret = NULL;
        return 0;
}

static int exact_epoch_begin(struct spm_sim *s, void *state, uint32_t e) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        const uint8_t *sched = spm_sim_config(s)->optimum->schedule;
        unsigned backing = spm_sim_backing(s);

        /* Demotions first, so that promotions find their slots. */
        for (int pass = 0; pass < 2; pass++)
                for (uint32_t r = 0; r < t->n_regions; r++) {
                        unsigned want = sched[(size_t) r * t->n_epochs + e];
                        unsigned prev = e > 0 ? sched[(size_t) r * t->n_epochs + e - 1] : backing;

                        if (want == prev || (pass == 0) != (want == backing))
                                continue;
                        /* First entries on NUMA: the first touch places it (free). */
                        if (spm_sim_machine(s)->kind == SPM_MEM_NUMA &&
                            spm_sim_loc(s, r) == SPM_SIM_UNPOPULATED) {
                                spm_sim_set_preferred(s, r, want);
                                continue;
                        }
                        if (spm_sim_move(s, r, want) < 0)
                                spm_sim_explain(s, "oracle: move of region %u to %u failed", r, want);
                }
        return 0;
}

const struct spm_sim_policy spm_sim_policy_exact = {
        .name = "oracle",
        .description = "the exact offline optimum of the additive model (min-cost flow)",
        .init = exact_init,
        .epoch_begin = exact_epoch_begin,
};

/* ---- static-opt ---- */

struct static_state {
        uint8_t *target;   /* fast location, or 0xff */
};

/* Per region and fast location: total benefit over the run. */
static double *total_benefit(struct spm_sim *s) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        const struct spm_machine *m = spm_sim_machine(s);
        double *w = calloc(MAX((size_t) t->n_regions, (size_t) 1) * SPM_MAX_LOCS, sizeof(*w));

        if (!w)
                return NULL;
        for (size_t i = 0; i < t->n_acc; i++)
                for (unsigned l = 0; l < m->n_locs; l++)
                        if (spm_sim_is_fast(s, l))
                                w[(size_t) t->acc[i].region * SPM_MAX_LOCS + l] +=
                                        spm_sim_benefit(s, t->acc[i].accessor, l, t->acc[i].ops);
        return w;
}

struct cand {
        uint32_t region;
        uint8_t loc;
        double score;
};

static int cmp_cand_desc(const void *a, const void *b) {
        const struct cand *x = a, *y = b;

        if (x->score != y->score)
                return x->score > y->score ? -1 : 1;
        if (x->region != y->region)
                return x->region < y->region ? -1 : 1;
        return (int) x->loc - (int) y->loc;
}

static int static_init(struct spm_sim *s, void **ret) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        const struct spm_machine *m = spm_sim_machine(s);
        _cleanup_free_ double *w = total_benefit(s);
        _cleanup_free_ struct cand *c = NULL;
        struct static_state *st = calloc(1, sizeof(*st));
        uint64_t room[SPM_MAX_LOCS];
        size_t n = 0;

        if (!st)
                return -ENOMEM;
        *ret = st;
        st->target = malloc(MAX(t->n_regions, 1u));
        c = malloc(MAX((size_t) t->n_regions, (size_t) 1) * SPM_MAX_LOCS * sizeof(*c));
        if (!w || !st->target || !c)
                return -ENOMEM;
        memset(st->target, 0xff, MAX(t->n_regions, 1u));
        /* Placed at first touch: an untouched page costs a call, not a copy. */
        for (uint32_t r = 0; r < t->n_regions; r++)
                for (unsigned l = 0; l < m->n_locs; l++) {
                        double score = w[(size_t) r * SPM_MAX_LOCS + l] - m->migrate_call_usec;
                        if (spm_sim_is_fast(s, l) && score > 0)
                                c[n++] = (struct cand) { .region = r, .loc = (uint8_t) l, .score = score };
                }
        qsort(c, n, sizeof(*c), cmp_cand_desc);
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                room[l] = spm_sim_capacity(s, l);
        for (size_t i = 0; i < n; i++)
                if (st->target[c[i].region] == 0xff && room[c[i].loc] > 0) {
                        st->target[c[i].region] = c[i].loc;
                        room[c[i].loc]--;
                }
        for (uint32_t r = 0; r < t->n_regions; r++)
                spm_sim_set_preferred(s, r, spm_sim_backing(s));
        return 0;
}

static void static_done(void *state) {
        struct static_state *st = state;

        free(st->target);
        free(st);
}

static int static_epoch_begin(struct spm_sim *s, void *state, uint32_t e) {
        struct static_state *st = state;
        const struct spm_simtrace *t = spm_sim_trace(s);

        for (uint32_t r = 0; r < t->n_regions; r++)
                if (t->regions[r].first_epoch == e && st->target[r] != 0xff)
                        (void) spm_sim_move(s, r, st->target[r]);
        return 0;
}

const struct spm_sim_policy spm_sim_policy_static_opt = {
        .name = "static-opt",
        .description = "one placement for the whole run: top-K regions by total benefit",
        .init = static_init,
        .done = static_done,
        .epoch_begin = static_epoch_begin,
};

/* ---- clairvoyant ---- */

#define LOOKAHEAD 8u

struct clair_state {
        double *window;     /* benefit over [e, e + LOOKAHEAD) per region x location */
        struct cand *c;
};

static void window_add(struct spm_sim *s, struct clair_state *st, uint32_t e, double sign) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        const struct spm_machine *m = spm_sim_machine(s);

        if (e >= t->n_epochs)
                return;
        for (size_t i = t->epoch_start[e]; i < t->epoch_start[e + 1]; i++)
                for (unsigned l = 0; l < m->n_locs; l++)
                        if (spm_sim_is_fast(s, l))
                                st->window[(size_t) t->acc[i].region * SPM_MAX_LOCS + l] +=
                                        sign * spm_sim_benefit(s, t->acc[i].accessor, l, t->acc[i].ops);
}

static int clair_init(struct spm_sim *s, void **ret) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        struct clair_state *st = calloc(1, sizeof(*st));

        if (!st)
                return -ENOMEM;
        *ret = st;
        st->window = calloc(MAX((size_t) t->n_regions, (size_t) 1) * SPM_MAX_LOCS, sizeof(double));
        st->c = malloc(MAX((size_t) t->n_regions, (size_t) 1) * sizeof(*st->c));
        if (!st->window || !st->c)
                return -ENOMEM;
        for (uint32_t e = 0; e + 1 < LOOKAHEAD; e++)
                window_add(s, st, e, +1);
        for (uint32_t r = 0; r < t->n_regions; r++)
                spm_sim_set_preferred(s, r, spm_sim_backing(s));
        return 0;
}

static void clair_done(void *state) {
        struct clair_state *st = state;

        free(st->window);
        free(st->c);
        free(st);
}

static int clair_epoch_begin(struct spm_sim *s, void *state, uint32_t e) {
        struct clair_state *st = state;
        const struct spm_simtrace *t = spm_sim_trace(s);
        const struct spm_machine *m = spm_sim_machine(s);
        unsigned backing = spm_sim_backing(s);

        if (e > 0)
                window_add(s, st, e - 1, -1);
        window_add(s, st, e + LOOKAHEAD - 1, +1);

        for (unsigned l = 0; l < m->n_locs; l++) {
                if (!spm_sim_is_fast(s, l))
                        continue;
                size_t n = 0;
                /* Candidates: regions whose best location is l, scored by what the window
                 * gains there minus what getting there costs. */
                for (uint32_t r = 0; r < t->n_regions; r++) {
                        const double *w = &st->window[(size_t) r * SPM_MAX_LOCS];
                        unsigned best = l, loc = spm_sim_loc(s, r);

                        for (unsigned k = 0; k < m->n_locs; k++)
                                if (spm_sim_is_fast(s, k) && w[k] > w[best])
                                        best = k;
                        if (best != l || (w[l] <= 0 && loc != l))
                                continue;
                        double move = loc == l ? 0
                                    : loc == SPM_SIM_UNPOPULATED ? m->migrate_call_usec
                                    : spm_sim_move_cost(s);
                        st->c[n++] = (struct cand) { .region = r, .loc = (uint8_t) l,
                                                     .score = w[l] - move };
                }
                qsort(st->c, n, sizeof(*st->c), cmp_cand_desc);
                uint64_t cap = spm_sim_capacity(s, l);
                /* Selected: the top cap with a positive score. */
                size_t n_sel = 0;
                while (n_sel < n && n_sel < cap && st->c[n_sel].score > 0)
                        n_sel++;
                /* Demote residents that lost their slot or have nothing ahead. */
                for (size_t i = n_sel; i < n; i++)
                        if (spm_sim_loc(s, st->c[i].region) == l)
                                (void) spm_sim_move(s, st->c[i].region, backing);
                for (size_t i = 0; i < n_sel; i++)
                        if (spm_sim_loc(s, st->c[i].region) != l)
                                (void) spm_sim_move(s, st->c[i].region, l);
        }
        return 0;
}

const struct spm_sim_policy spm_sim_policy_clairvoyant = {
        .name = "clairvoyant",
        .description = "each epoch the top-K regions by the next 8 epochs' benefit (heuristic)",
        .init = clair_init,
        .done = clair_done,
        .epoch_begin = clair_epoch_begin,
};
