/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spmtier engine (policy.h) as a simulator policy, wired the way spmtierd wires it:
 *   - ranges are registered with PREFERRED_LOC = system memory, so GPU faults map rather than
 *     migrate; whatever the driver still does (TTM eviction, DEVICE_PRIVATE migrate-back) the
 *     engine hears of like the daemon does from SMI events: gpu_fault(), set_location();
 *   - accesses of epoch e reach the engine during e (counters/samples), its plan runs at the
 *     start of e + 1 through the KFD mover (PREFETCH_LOC + PREFERRED_LOC per move);
 *   - a prefetch into a full VRAM "succeeds" without moving: the mover reports -EAGAIN, as the
 *     daemon learns from page_in/MIGRATE_END; partial moves report the bytes that moved;
 *   - quarantined (held) ranges get PREFERRED_LOC = where they are, so the driver stops too;
 *   - ranges the driver evicted are pinned where they went at the next epoch, as the daemon
 *     does when it hears of the eviction;
 *   - #hint lines in the trace reach the engine at their epoch.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/policy.h"
#include "spmtier/sim.h"

#define JOB_ID 1

struct spmtier_state {
        struct spm_engine *engine;
        struct spm_plan plan;
        uint8_t *told;          /* the location the engine believes, per region */
        uint32_t *evicted;      /* regions the driver evicted in this epoch */
        size_t n_evicted, n_evicted_alloc;
        size_t next_hint;
        double epoch_began;     /* modelled usec at the start of the last epoch */
        double epoch_took;      /* modelled usec per epoch, the last one weighing half */
};

/*
 * Who decides placement. Once a range holds data, the mover pins it with PREFERRED_LOC (where
 * it is; the engine's moves change it): GPU faults then map instead of migrating, and the
 * engine alone decides what lives in VRAM. Leaving fault migration on makes the driver and the
 * engine fight (the engine can only quarantine what the driver bounces). Untouched ranges stay
 * unpinned while every VRAM has room, so a GPU's first touch allocates in VRAM directly (a
 * fault, no copy) as the driver would. Once a VRAM is full, a first touch there makes TTM
 * evict the range validated longest ago: that pays for a process whose new uses go on (a
 * tile, a phase: spm_engine_first_touch_fast()), whose new data would otherwise run its
 * first epoch across the link and then be copied in; for the others (streams) untouched
 * ranges are pinned to system memory. What TTM evicted is pinned where it went at the next
 * epoch (it would fault straight back in) and the engine decides whether it returns.
 */
static bool vram_has_room(const struct spm_sim *s) {
        const struct spm_machine *m = spm_sim_machine(s);

        for (unsigned l = 0; l < m->n_locs; l++)
                if (spm_sim_is_fast(s, l) && spm_sim_free(s, l) == 0)
                        return false;
        return true;
}

static void unpopulated_preference(struct spm_sim *s, struct spm_engine *e) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        bool room = vram_has_room(s);
        unsigned pref = SPM_SIM_NO_PREF;
        uint32_t pid = 0;

        for (uint32_t i = 0; i < t->n_regions; i++) {
                if (spm_sim_loc(s, i) != SPM_SIM_UNPOPULATED)
                        continue;
                if (pid == 0 || t->regions[i].pid != pid) {
                        pid = t->regions[i].pid;
                        pref = room || spm_engine_first_touch_fast(e, pid) ? SPM_SIM_NO_PREF
                                                                           : spm_sim_backing(s);
                }
                spm_sim_set_preferred(s, i, pref);
        }
}

static void spmtier_done(void *state) {
        struct spmtier_state *st = state;

        spm_plan_done(&st->plan);
        spm_engine_free(st->engine);
        free(st->told);
        free(st->evicted);
        free(st);
}

static int spmtier_init(struct spm_sim *s, void **ret) {
        const struct spm_machine *m = spm_sim_machine(s);
        const struct spm_simtrace *t = spm_sim_trace(s);
        struct spm_engine_config c;
        struct spmtier_state *st;
        int r;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        *ret = st;
        spm_plan_init(&st->plan);
        st->told = malloc(MAX(t->n_regions, 1u));
        if (!st->told)
                return -ENOMEM;
        memset(st->told, spm_sim_backing(s), MAX(t->n_regions, 1u));
        unpopulated_preference(s, st->engine);

        spm_engine_config_defaults(m, &c);
        c.epoch_usec = t->epoch_usec;
        r = spm_engine_new(m, &c, &st->engine);
        if (r < 0)
                return r;
        /* The capacity-limited locations as the run sizes them; a NUMA node that is neither
         * one of them nor the backing node is not part of the run (no accessor of the trace
         * calls it home): the engine, which sends victims to the next-best node, may not
         * place anything there. (A GPU's VRAM that no accessor uses is never a destination.) */
        for (unsigned l = 0; l < m->n_locs; l++) {
                if (spm_sim_is_fast(s, l))
                        r = spm_engine_set_capacity(st->engine, l,
                                                    spm_sim_capacity(s, l) * t->granule);
                else if (m->kind == SPM_MEM_NUMA && l != spm_sim_backing(s))
                        r = spm_engine_set_capacity(st->engine, l, 0);
                else
                        r = 0;
                if (r < 0)
                        return r;
        }

        struct spm_job job = { .id = JOB_ID, .gpu_mask = (1u << m->n_gpus) - 1 };
        for (unsigned g = 0; g < SPM_MAX_GPUS; g++)
                job.vram_quota[g] = UINT64_MAX;
        r = spm_engine_job_set(st->engine, &job);
        if (r < 0)
                return r;
        /* One range per run of adjacent regions of a process. */
        for (uint32_t i = 0; i < t->n_regions;) {
                uint32_t pid = t->regions[i].pid, j = i + 1;

                if (i == 0 || t->regions[i - 1].pid != pid) {
                        r = spm_engine_process_add(st->engine, JOB_ID, pid);
                        if (r < 0)
                                return r;
                }
                while (j < t->n_regions && t->regions[j].pid == pid &&
                       t->regions[j].addr == t->regions[j - 1].addr + t->granule)
                        j++;
                r = spm_engine_range_add(st->engine, pid, t->regions[i].addr,
                                         (uint64_t) (j - i) * t->granule, spm_sim_backing(s));
                if (r < 0)
                        return r;
                i = j;
        }
        return 0;
}

static void tell(struct spmtier_state *st, struct spm_sim *s, uint32_t r) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        unsigned loc = spm_sim_loc(s, r);

        if (loc == SPM_SIM_UNPOPULATED || loc == st->told[r])
                return;
        (void) spm_engine_set_location(st->engine, t->regions[r].pid, t->regions[r].addr,
                                       t->granule, loc);
        st->told[r] = (uint8_t) loc;
}

static void fmt_bytes(char *buf, size_t size, uint64_t b) {
        if (b >= (1ULL << 30))
                snprintf(buf, size, "%.1fG", (double) b / (1ULL << 30));
        else
                snprintf(buf, size, "%" PRIu64 "M", b >> 20);
}

/* Carries out one planned move region by region; returns the status to report. */
static int execute(struct spmtier_state *st, struct spm_sim *s, const struct spm_move *mv,
                   uint64_t *ret_moved) {
        const struct spm_simtrace *t = spm_sim_trace(s);
        uint64_t moved = 0, failed = 0;

        for (uint64_t a = mv->start; a < mv->start + mv->length; a += t->granule) {
                uint32_t r = spm_simtrace_find(t, mv->pid, a);

                if (r == UINT32_MAX)
                        continue;
                int k = spm_sim_move(s, r, mv->to);
                if (k < 0)
                        failed += t->granule;
                else
                        moved += t->granule;   /* moved, or already there */
                st->told[r] = (uint8_t) (k < 0 ? st->told[r] : mv->to);
        }
        *ret_moved = moved;
        return moved == 0 && failed > 0 ? -EAGAIN : 0;
}

/*
 * The migration budget of an epoch is what the copy engine moves in the time the epoch takes.
 * The daemon's epochs are wall-clock time; a trace's epoch is a slice of the program's work,
 * and when its data sits across the link that slice takes longer than epoch_usec (an
 * oversubscribed sweep: ~45 ms for a 10 ms epoch), as the daemon would see as more epochs,
 * each with its budget. So the engine gets the budget of the recent epochs' modelled time
 * (an average in which the last epoch weighs half: one fast epoch among slow ones, a window
 * that was resident, does not halve the next one's copies), never less than the nominal one.
 */
static int epoch_budget(struct spmtier_state *st, const struct spm_sim *s) {
        const struct spm_machine *m = spm_sim_machine(s);
        double now = spm_sim_elapsed_usec(s);

        if (spm_sim_epoch(s) > 0) {
                double took = now - st->epoch_began;
                st->epoch_took = spm_sim_epoch(s) > 1 ? (st->epoch_took + took) / 2 : took;
        }
        st->epoch_began = now;
        return spm_engine_set_migrate_budget(st->engine, (uint64_t) (
                m->migrate_gbps * 1000.0 * MAX((double) spm_sim_trace(s)->epoch_usec,
                                               st->epoch_took)));
}

static int spmtier_epoch_begin(struct spm_sim *s, void *state, uint32_t e) {
        struct spmtier_state *st = state;
        const struct spm_simtrace *t = spm_sim_trace(s);
        const struct spm_machine *m = spm_sim_machine(s);
        int n;

        for (; st->next_hint < t->n_hints && t->hints[st->next_hint].epoch <= e; st->next_hint++) {
                int r = spm_engine_hint(st->engine, &t->hints[st->next_hint].hint);

                if (r < 0)
                        spm_sim_explain(s, "epoch %u: hint %s on pid %u rejected: %s", e,
                                        spm_hint_kind_to_string(t->hints[st->next_hint].hint.kind),
                                        t->hints[st->next_hint].hint.pid, strerror(-r));
        }
        for (size_t i = 0; i < st->n_evicted; i++)
                if (spm_sim_loc(s, st->evicted[i]) != SPM_SIM_UNPOPULATED)
                        spm_sim_set_preferred(s, st->evicted[i], spm_sim_loc(s, st->evicted[i]));
        st->n_evicted = 0;
        n = epoch_budget(st, s);
        if (n < 0)
                return n;
        n = spm_engine_epoch(st->engine, (usec_t) e * t->epoch_usec, &st->plan);
        if (n < 0)
                return n;
        for (size_t i = 0; i < st->plan.n_moves; i++) {
                const struct spm_move *mv = &st->plan.moves[i];
                uint64_t moved;
                int status = execute(st, s, mv, &moved);
                char len[16];

                (void) spm_engine_move_result(st->engine, mv, status, moved);
                if (!spm_sim_explaining(s))
                        continue;
                fmt_bytes(len, sizeof(len), mv->length);
                spm_sim_explain(s, "epoch %4u  pid %u 0x%" PRIx64 " +%-6s %4s -> %-4s %-10s "
                                "benefit %8.3f ms  cost %7.3f ms%s", e, mv->pid, mv->start, len,
                                m->loc_name[mv->from], m->loc_name[mv->to],
                                spm_reason_to_string(mv->reason), mv->benefit_usec / 1000,
                                mv->cost_usec / 1000,
                                status < 0 ? "  (VRAM full: prefetch did nothing)"
                                : moved < mv->length ? "  (partial)" : "");
        }
        unpopulated_preference(s, st->engine);

        uint64_t held = 0;
        for (size_t i = 0; i < st->plan.n_held; i++) {
                const struct spm_move *mv = &st->plan.held[i];

                for (uint64_t a = mv->start; a < mv->start + mv->length; a += t->granule) {
                        uint32_t r = spm_simtrace_find(t, mv->pid, a);
                        if (r != UINT32_MAX)
                                spm_sim_set_preferred(s, r, mv->from);
                }
                held += mv->length;
        }
        if (held > 0) {
                char len[16];
                fmt_bytes(len, sizeof(len), held);
                spm_sim_explain(s, "epoch %4u  %zu range(s), %s, held where they are "
                                "(PREFERRED_LOC pinned): ping-pong quarantine", e,
                                st->plan.n_held, len);
        }
        return 0;
}

static void spmtier_observe(struct spm_sim *s, void *state, const struct spm_sim_access *a,
                            unsigned loc) {
        struct spmtier_state *st = state;
        const struct spm_simtrace *t = spm_sim_trace(s);
        const struct spm_sim_region *g = &t->regions[a->region];
        struct spm_access acc = {
                .pid = g->pid,
                .accessor = a->accessor,
                .addr = g->addr,
                .len = t->granule,
                .reads = (uint64_t) (a->ops + 0.5),
        };

        tell(st, s, a->region);   /* first touch placed it somewhere */
        if (spm_sim_preferred(s, a->region) == SPM_SIM_NO_PREF)
                spm_sim_set_preferred(s, a->region, loc);
        (void) spm_engine_observe(st->engine, &acc);
}

static void spmtier_driver_moved(struct spm_sim *s, void *state, uint32_t r, unsigned from,
                                 unsigned to, bool fault, unsigned gpu) {
        struct spmtier_state *st = state;
        const struct spm_simtrace *t = spm_sim_trace(s);

        if (from == SPM_SIM_UNPOPULATED) {
                spm_sim_set_preferred(s, r, to);
                if (!vram_has_room(s))
                        unpopulated_preference(s, st->engine);
        }
        if (!fault && to == spm_sim_backing(s) && from != SPM_SIM_UNPOPULATED) {
                if (st->n_evicted == st->n_evicted_alloc) {
                        size_t n = MAX(st->n_evicted_alloc * 2, (size_t) 64);
                        uint32_t *v = realloc(st->evicted, n * sizeof(*v));
                        if (v) {
                                st->evicted = v;
                                st->n_evicted_alloc = n;
                        }
                }
                if (st->n_evicted < st->n_evicted_alloc)   /* else: not re-pinned */
                        st->evicted[st->n_evicted++] = r;
        }
        if (fault && to != spm_sim_backing(s)) {
                (void) spm_engine_gpu_fault(st->engine, t->regions[r].pid, t->regions[r].addr,
                                            t->granule, gpu, /* migrated= */ true);
                st->told[r] = (uint8_t) to;
        }
        tell(st, s, r);
}

const struct spm_sim_policy spm_sim_policy_spmtier = {
        .name = "spmtier",
        .description = "the spmtier engine (libpolicy) driving KFD prefetches",
        .init = spmtier_init,
        .done = spmtier_done,
        .epoch_begin = spmtier_epoch_begin,
        .observe = spmtier_observe,
        .driver_moved = spmtier_driver_moved,
};
