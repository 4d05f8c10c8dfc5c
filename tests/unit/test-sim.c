/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulator against hand-computed tiny traces, every baseline's defining behaviour, and
 * the exact oracle against brute force over all residency schedules.
 *
 * The tiny machine makes the arithmetic round: a GPU access costs 1 ns from its VRAM and 4 ns
 * from RAM, a CPU access 1 ns from RAM and 2 ns from VRAM; a 2 MiB copy takes 1000 us, a
 * migration call 10 us, a fault 30 us.
 */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "spmtier/macro.h"
#include "spmtier/mcf.h"
#include "spmtier/sim.h"
#include "test.h"

#define MiB (1024ULL * 1024)
#define BASE 0x7f0000000000ULL
#define GPU0 SPM_ACC_GPU(0)
#define CPU SPM_ACC_CPU
#define RAM SPM_LOC_SYSMEM
#define VRAM SPM_LOC_GPU(0)

static struct spm_machine tiny_machine(void) {
        struct spm_machine m;

        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        m.n_gpus = 1;
        m.n_locs = 2;
        m.n_accessors = 2;
        m.bw_gbps[CPU][RAM] = 64;
        m.bw_gbps[CPU][VRAM] = 32;
        m.bw_gbps[GPU0][RAM] = 16;
        m.bw_gbps[GPU0][VRAM] = 64;
        m.dep_fraction[CPU] = 0;
        m.dep_fraction[GPU0] = 0;
        m.migrate_gbps = 2.097152;
        m.migrate_call_usec = 10;
        m.fault_usec = 30;
        ASSERT_OK(spm_machine_validate(&m));
        return m;
}

static struct spm_simtrace *new_trace(void) {
        struct spm_simtrace *t;

        ASSERT_OK(spm_simtrace_new(2 * MiB, 10000, &t));
        return t;
}

/* Region i of pid 1 (2 MiB each, `gap` granules apart). */
static void add(struct spm_simtrace *t, uint32_t epoch, unsigned region, unsigned accessor,
                uint64_t ops) {
        struct spm_access a = {
                .pid = 1,
                .accessor = (uint8_t) accessor,
                .addr = BASE + region * 2 * MiB,
                .len = 2 * MiB,
                .reads = ops,
        };
        ASSERT_OK(spm_simtrace_add(t, epoch, &a));
}

static struct spm_sim_result run(const struct spm_machine *m, struct spm_simtrace *t,
                                 double fraction, const struct spm_sim_policy *p) {
        struct spm_sim_config c;
        struct spm_sim_result r;

        spm_sim_config_defaults(&c);
        c.vram_fraction = fraction;
        c.record_placement = true;
        ASSERT_OK(spm_sim_run(m, t, &c, p, &r));
        return r;
}

static unsigned at(const struct spm_sim_result *r, unsigned region, unsigned epoch) {
        return r->placement[(size_t) region * r->n_epochs + epoch];
}

TEST(trace_cuts_rows_into_granules) {
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        /* 3 MiB starting half-way into a granule: 1 MiB + 2 MiB -> 1/3 and 2/3 of the ops. */
        struct spm_access a = { .pid = 7, .accessor = GPU0, .addr = BASE + MiB, .len = 3 * MiB,
                                .reads = 300, .writes = 0 };
        ASSERT_OK(spm_simtrace_add(t, 2, &a));
        a.reads = 30;
        ASSERT_OK(spm_simtrace_add(t, 2, &a));   /* merged with the first */
        a.accessor = CPU;
        ASSERT_OK(spm_simtrace_add(t, 0, &a));
        ASSERT_OK(spm_simtrace_finish(t));
        ASSERT_EQ(t->n_regions, 2);
        ASSERT_EQ(t->n_epochs, 3);
        ASSERT_EQ(t->n_acc, 4);
        ASSERT_EQ(t->epoch_start[1] - t->epoch_start[0], 2);
        ASSERT_EQ(t->epoch_start[2], t->epoch_start[1]);
        const struct spm_sim_access *e2 = &t->acc[t->epoch_start[2]];
        ASSERT_EQ(e2[0].region, 0);
        ASSERT_NEAR(e2[0].ops, 110, 1e-9);
        ASSERT_NEAR(e2[1].ops, 220, 1e-9);
        ASSERT_EQ_U(t->regions[1].addr, BASE + 2 * MiB);
        ASSERT_EQ(t->regions[0].first_epoch, 0);
        ASSERT_EQ_U(spm_simtrace_footprint(t, 1u << GPU0), 4 * MiB);
        ASSERT_ERROR(spm_simtrace_add(t, 0, &a), EINVAL);  /* finished */
}

TEST(default_gpu_first_touch_populates_vram) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        add(t, 0, 0, GPU0, 1000000);
        add(t, 1, 0, GPU0, 1000000);
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_default);
        /* a populating fault (30 us, nothing to copy) + 2 x 1e6 x 1 ns */
        ASSERT_NEAR(r.time_usec, 30 + 1000 + 1000, 1e-6);
        ASSERT_EQ(r.faults, 1);
        ASSERT_EQ(r.migrations, 0);
        ASSERT_NEAR(spm_sim_result_fast_hit(&r), 1.0, 1e-12);
        ASSERT_EQ(at(&r, 0, 0), VRAM);
        spm_sim_result_done(&r);
}

static struct spm_simtrace *cpu_gpu_cpu_trace(void) {
        struct spm_simtrace *t = new_trace();
        add(t, 0, 0, CPU, 1000000);
        add(t, 1, 0, GPU0, 1000000);
        add(t, 2, 0, CPU, 1000000);
        ASSERT_OK(spm_simtrace_finish(t));
        return t;
}

TEST(default_migrates_on_gpu_fault_cpu_reads_in_place) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = cpu_gpu_cpu_trace();

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_default);
        /* CPU 1000 (RAM) | fault 30 + copy 1000 + GPU 1000 (VRAM) | CPU in place 2000 */
        ASSERT_NEAR(r.time_usec, 1000 + 30 + 1000 + 1000 + 2000, 1e-6);
        ASSERT_NEAR(r.fault_usec, 30, 1e-9);
        ASSERT_EQ(r.migrations, 1);
        ASSERT_EQ_U(r.bytes_to_fast, 2 * MiB);
        ASSERT_EQ_U(r.bytes_to_slow, 0);
        ASSERT_EQ(at(&r, 0, 2), VRAM);
        /* fast hits: CPU epoch 0 (RAM) and GPU epoch 1 (VRAM), not CPU epoch 2 */
        ASSERT_NEAR(spm_sim_result_fast_hit(&r), 2.0 / 3, 1e-12);
        /* roofline: epoch 0 CPU 1000; epoch 1 max(copy engine 1030, HBM 1000); epoch 2 2000 */
        ASSERT_NEAR(r.roofline_usec, 1000 + 1030 + 2000, 1e-6);
        spm_sim_result_done(&r);
}

TEST(device_private_migrates_back_on_cpu_touch) {
        struct spm_machine m = tiny_machine();
        m.kind = SPM_MEM_DEVICE_PRIVATE;
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = cpu_gpu_cpu_trace();

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_default);
        /* ... | CPU fault 30 + copy back 1000 + CPU 1000 (RAM) */
        ASSERT_NEAR(r.time_usec, 1000 + 2030 + 2030, 1e-6);
        ASSERT_EQ(r.faults, 2);
        ASSERT_EQ(r.migrations, 2);
        ASSERT_EQ_U(r.bytes_to_slow, 2 * MiB);
        ASSERT_EQ(at(&r, 0, 2), RAM);
        spm_sim_result_done(&r);
}

TEST(xnack_off_never_migrates) {
        struct spm_machine m = tiny_machine();
        m.xnack = false;
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = cpu_gpu_cpu_trace();

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_default);
        ASSERT_NEAR(r.time_usec, 1000 + 4000 + 1000, 1e-6);
        ASSERT_EQ(r.migrations, 0);
        spm_sim_result_done(&r);
}

TEST(sysmem_never_migrates) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = cpu_gpu_cpu_trace();

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_sysmem);
        ASSERT_NEAR(r.time_usec, 1000 + 4000 + 1000, 1e-6);
        ASSERT_EQ(r.migrations, 0);
        ASSERT_EQ(r.faults, 0);
        spm_sim_result_done(&r);
}

TEST(ttm_evicts_oldest_when_vram_full) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        add(t, 0, 0, GPU0, 1000);
        add(t, 0, 1, GPU0, 1000);
        ASSERT_OK(spm_simtrace_finish(t));

        /* fraction 1/2 of two regions: one slot */
        struct spm_sim_result r = run(&m, t, 0.5, &spm_sim_policy_default);
        /* A: populate 30; B: evict A (call 10 + copy 1000), populate 30; then the epoch's
         * accesses where the regions ended up: A from RAM 4 us, B from VRAM 1 us */
        ASSERT_NEAR(r.time_usec, 30 + 1010 + 30 + 4 + 1, 1e-6);
        ASSERT_EQ(r.evictions, 1);
        ASSERT_EQ(at(&r, 0, 0), RAM);
        ASSERT_EQ(at(&r, 1, 0), VRAM);
        spm_sim_result_done(&r);
}

/* A policy that prefetches every region to VRAM at epoch 0. */
static int prefetch_all(struct spm_sim *s, void *state, uint32_t e) {
        if (e == 0)
                for (uint32_t r = 0; r < spm_sim_trace(s)->n_regions; r++)
                        (void) spm_sim_move(s, r, VRAM);
        return 0;
}

TEST(prefetch_fails_silently_when_full) {
        struct spm_machine m = tiny_machine();
        const struct spm_sim_policy p = { .name = "prefetch-all", .epoch_begin = prefetch_all };
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        add(t, 0, 0, GPU0, 1000);
        add(t, 0, 1, GPU0, 1000);
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0.5, &p);
        /* Region 0: prefetch of an untouched range (call 10). Region 1's prefetch fails
         * silently but sets PREFERRED_LOC = VRAM, so its GPU fault evicts region 0 (1010) and
         * populates (30). Accesses: region 0 from RAM 4 us, region 1 from VRAM 1 us. */
        ASSERT_EQ(r.prefetch_failed, 1);
        ASSERT_NEAR(r.time_usec, 10 + 1010 + 30 + 4 + 1, 1e-6);
        spm_sim_result_done(&r);
}

TEST(first_touch_keeps_where_touched) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        add(t, 0, 0, CPU, 10);
        add(t, 0, 1, GPU0, 10);
        for (uint32_t e = 1; e < 4; e++) {
                add(t, e, 0, GPU0, 100000);
                add(t, e, 1, GPU0, 100000);
        }
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_first_touch);
        ASSERT_EQ(at(&r, 0, 3), RAM);
        ASSERT_EQ(at(&r, 1, 0), VRAM);
        ASSERT_EQ(r.migrations, 0);
        spm_sim_result_done(&r);
        /* The default pulls region 0 in on the GPU's fault. */
        r = run(&m, t, 0, &spm_sim_policy_default);
        ASSERT_EQ(at(&r, 0, 1), VRAM);
        spm_sim_result_done(&r);
}

/* spmtier's wiring when VRAM is full: a process whose new data stays in use (tiles) gets its
 * next tile faulted straight into VRAM, and TTM evicts the oldest (here region 0, in light use,
 * and region 1). What TTM evicted is pinned where it went, so it does not fault straight
 * back in; the engine decides when it returns. */
TEST(spmtier_next_tile_faults_in_evictions_stay_out) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        for (uint32_t e = 0; e < 12; e++) {
                add(t, e, 0, GPU0, 100000);
                add(t, e, e < 6 ? 1 : 3, GPU0, 1000000);
                add(t, e, e < 6 ? 2 : 4, GPU0, 1000000);
        }
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0.61, &spm_sim_policy_spmtier);
        ASSERT_EQ(at(&r, 0, 5), VRAM);
        ASSERT_EQ(at(&r, 3, 6), VRAM);
        ASSERT_EQ(at(&r, 4, 6), VRAM);
        ASSERT_EQ(at(&r, 1, 6), RAM);
        ASSERT_EQ(at(&r, 0, 6), RAM);
        ASSERT_EQ(at(&r, 0, 7), RAM);
        for (uint32_t e = 6; e < 12; e++) {
                ASSERT_EQ(at(&r, 3, e), VRAM);
                ASSERT_EQ(at(&r, 4, e), VRAM);
        }
        spm_sim_result_done(&r);
}

/* On a NUMA machine (mi300a-node) the run has node 0 (gpu0's home, cut to half the
 * footprint) and a backing node; the other nodes are not part of it. The engine may not send
 * victims there: every move it plans lands (none "did nothing"), and a hot set that first
 * landed on the backing node swaps with the cold one that filled node 0. Before, every
 * victim was headed for node 1 and spmtier never moved anything. */
TEST(spmtier_numa_moves_land_on_nodes_of_the_run) {
        struct spm_machine m;
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        for (uint32_t e = 0; e < 20; e++)
                for (unsigned i = 0; i < 16; i++)
                        if (e == 0 || i >= 8)
                                add(t, e, i, GPU0, i >= 8 ? 4000000 : 1000);
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0.5, &spm_sim_policy_spmtier);
        struct spm_sim_result d = run(&m, t, 0.5, &spm_sim_policy_default);
        ASSERT_EQ_U(r.prefetch_failed, 0);
        ASSERT_TRUE(r.migrations > 0);
        for (unsigned i = 8; i < 16; i++)
                ASSERT_EQ(at(&r, i, 19), 0u); /* node 0 */
        ASSERT_TRUE(r.time_usec < d.time_usec);
        spm_sim_result_done(&r);
        spm_sim_result_done(&d);
}

/* spmtier's migration budget is what the copy engine moves in the time the recent epochs
 * took: 30 regions the CPU wrote at epoch 0 turn GPU-hot at epoch 1, which reads them over the
 * link for ~120 ms (with epoch 0's ~0, a budget of ~60 ms: 60 granules; the 10 ms epoch's
 * nominal budget is 10 granules at this machine's 2 GB/s). They all move in before epoch 2;
 * with the nominal budget a third would. */
TEST(spmtier_budget_follows_the_epochs_modelled_time) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        for (unsigned i = 0; i < 30; i++) {
                add(t, 0, i, CPU, 100);
                for (uint32_t e = 1; e < 4; e++)
                        add(t, e, i, GPU0, 1000000);
        }
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 1.0, &spm_sim_policy_spmtier);
        for (unsigned i = 0; i < 30; i++) {
                ASSERT_EQ(at(&r, i, 1), RAM);
                ASSERT_EQ(at(&r, i, 2), VRAM);
        }
        spm_sim_result_done(&r);
}

/* Regions A=0, B=1, C=2 in different 32 MiB blocks (no tree prefetch): A, B at epoch 0, A again
 * at epoch 1, C at epoch 2, one slot short. */
static struct spm_simtrace *lru_trace(void) {
        struct spm_simtrace *t = new_trace();
        add(t, 0, 0, GPU0, 1000);
        add(t, 0, 16, GPU0, 1000);
        add(t, 1, 0, GPU0, 1000);
        add(t, 2, 32, GPU0, 1000);
        ASSERT_OK(spm_simtrace_finish(t));
        return t;
}

TEST(uvm_like_evicts_lru_default_evicts_fifo) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = lru_trace();

        /* 3 regions x 0.67 = 2 slots */
        struct spm_sim_result r = run(&m, t, 0.67, &spm_sim_policy_uvm_like);
        ASSERT_EQ(at(&r, 0, 2), VRAM);   /* A was used at epoch 1: B goes */
        ASSERT_EQ(at(&r, 1, 2), RAM);
        spm_sim_result_done(&r);
        r = run(&m, t, 0.67, &spm_sim_policy_default);
        ASSERT_EQ(at(&r, 0, 2), RAM);    /* TTM: A entered first, A goes */
        ASSERT_EQ(at(&r, 1, 2), VRAM);
        spm_sim_result_done(&r);
}

TEST(uvm_like_tree_prefetch) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        add(t, 0, 0, GPU0, 1000);
        add(t, 0, 1, GPU0, 1000);
        add(t, 1, 2, GPU0, 1000);
        add(t, 3, 3, GPU0, 1000);
        add(t, 3, 7, GPU0, 1000);
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_uvm_like);
        /* After the fault on 2, {0..3} is 3/4 resident (>= 51 %) and {0..7} 3 of its 5 present
         * leaves: 3 and 7 come along. Before, {0..7} was 2/5: nothing. */
        ASSERT_EQ(at(&r, 3, 1), VRAM);    /* region index 3 = granule 3 */
        ASSERT_EQ(at(&r, 4, 1), VRAM);    /* region index 4 = granule 7 */
        ASSERT_EQ(r.faults, 3);
        spm_sim_result_done(&r);
        r = run(&m, t, 0, &spm_sim_policy_default);
        ASSERT_EQ(at(&r, 3, 1), SPM_SIM_UNPOPULATED);
        spm_sim_result_done(&r);
}

/* One region read 100 times per epoch by the GPU, for 8 epochs. */
static struct spm_simtrace *steady_trace(uint64_t ops) {
        struct spm_simtrace *t = new_trace();
        for (uint32_t e = 0; e < 8; e++)
                add(t, e, 0, GPU0, ops);
        ASSERT_OK(spm_simtrace_finish(t));
        return t;
}

TEST(counters_migrate_at_256) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = steady_trace(100);

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_counters);
        /* 100, 200, 300 >= 256 at the end of epoch 2 */
        ASSERT_EQ(at(&r, 0, 2), RAM);
        ASSERT_EQ(at(&r, 0, 3), VRAM);
        ASSERT_EQ(r.faults, 0);
        ASSERT_EQ(r.migrations, 1);
        spm_sim_result_done(&r);
}

TEST(tpp_like_promotes_on_second_access) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = steady_trace(100);

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_tpp_like);
        ASSERT_EQ(at(&r, 0, 1), RAM);
        ASSERT_EQ(at(&r, 0, 2), VRAM);
        spm_sim_result_done(&r);
}

TEST(damos_like_promotes_after_a_window) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = steady_trace(100);

        struct spm_sim_result r = run(&m, t, 0, &spm_sim_policy_damos_like);
        ASSERT_EQ(at(&r, 0, 3), RAM);
        ASSERT_EQ(at(&r, 0, 4), VRAM);
        spm_sim_result_done(&r);
}

TEST(static_opt_places_top_k) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        for (uint32_t e = 0; e < 4; e++) {
                add(t, e, 0, GPU0, 1000);
                add(t, e, 1, GPU0, 1000000);
        }
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0.5, &spm_sim_policy_static_opt);
        ASSERT_EQ(at(&r, 1, 0), VRAM);
        ASSERT_EQ(at(&r, 0, 3), RAM);
        ASSERT_EQ(r.migrations, 0);
        /* region 1: prefetch of untouched pages 10 + 4e6 x 1 ns; region 0: 4000 x 4 ns */
        ASSERT_NEAR(r.time_usec, 10 + 4000 + 16, 1e-6);
        spm_sim_result_done(&r);
}

TEST(clairvoyant_follows_phases) {
        struct spm_machine m = tiny_machine();
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        for (uint32_t e = 0; e < 20; e++)
                add(t, e, e < 10 ? 0 : 1, GPU0, 1000000);
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_result r = run(&m, t, 0.5, &spm_sim_policy_clairvoyant);
        ASSERT_EQ(at(&r, 0, 0), VRAM);
        ASSERT_EQ(at(&r, 1, 12), VRAM);
        ASSERT_EQ(at(&r, 0, 12), RAM);
        spm_sim_result_done(&r);
}

TEST(mcf_small_graph) {
        _cleanup_(spm_mcf_freep) struct spm_mcf *g = NULL;
        int64_t flow, cost;

        /* 0 -> 1 -> 3 (cost 1 + 1), 0 -> 2 -> 3 (cost 5 + -10), 1 -> 2 (cost 0), caps 1 */
        ASSERT_OK(spm_mcf_new(4, &g));
        int64_t a01 = spm_mcf_add_arc(g, 0, 1, 1, 1);
        ASSERT_OK(spm_mcf_add_arc(g, 1, 3, 1, 1));
        ASSERT_OK(spm_mcf_add_arc(g, 0, 2, 1, 5));
        ASSERT_OK(spm_mcf_add_arc(g, 2, 3, 1, -10));
        ASSERT_OK(spm_mcf_add_arc(g, 1, 2, 1, 0));
        ASSERT_ERROR(spm_mcf_add_arc(g, 2, 1, 1, 0), EINVAL);
        ASSERT_OK(a01);
        ASSERT_OK(spm_mcf_solve(g, 0, 3, 2, false, &flow, &cost));
        /* two units: 0-1-3 (2) and 0-2-3 (-5) = -3; or 0-1-2-3 (-9) and nothing else fits */
        ASSERT_EQ(flow, 2);
        ASSERT_EQ(cost, -3);
        ASSERT_EQ(spm_mcf_flow(g, a01), 1);
}

TEST(mcf_only_negative_stops) {
        _cleanup_(spm_mcf_freep) struct spm_mcf *g = NULL;
        int64_t flow, cost;

        ASSERT_OK(spm_mcf_new(3, &g));
        ASSERT_OK(spm_mcf_add_arc(g, 0, 1, 5, -3));
        ASSERT_OK(spm_mcf_add_arc(g, 1, 2, 2, 1));
        ASSERT_OK(spm_mcf_add_arc(g, 0, 2, 5, 4));
        ASSERT_OK(spm_mcf_solve(g, 0, 2, 10, true, &flow, &cost));
        ASSERT_EQ(flow, 2);
        ASSERT_EQ(cost, -4);
}

/* ---- the exact oracle against brute force ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

/* Minimum additive time over every residency schedule (x[r][e] at the fast location or the
 * backing one, at most k at the fast one per epoch), enumerated. A region enters the fast
 * location for a call at its first touch (a prefetch of untouched pages), for nothing on a
 * NUMA machine (its first touch allocates it where the policy asked), later for a copy. */
static double brute_force(const struct spm_machine *m, const struct spm_simtrace *t,
                          const struct spm_sim_layout *y, unsigned fast) {
        unsigned R = t->n_regions, E = t->n_epochs, bits = R * E, k = (unsigned) y->cap[fast];
        double copy = (double) t->granule / m->migrate_gbps / 1000.0;
        double first = m->kind == SPM_MEM_NUMA ? 0 : m->migrate_call_usec;
        double best = INFINITY;

        for (uint64_t x = 0; x < (1ULL << bits); x++) {
                bool ok = true;
                for (unsigned e = 0; e < E && ok; e++) {
                        unsigned n = 0;
                        for (unsigned r = 0; r < R; r++)
                                n += (x >> (r * E + e)) & 1;
                        ok = n <= k;
                }
                if (!ok)
                        continue;
                double cost = 0;
                for (unsigned r = 0; r < R; r++) {
                        bool prev = false;
                        for (unsigned e = 0; e < E; e++) {
                                bool in = (x >> (r * E + e)) & 1;
                                if (in && !prev)
                                        cost += e <= t->regions[r].first_epoch
                                                ? first : m->migrate_call_usec + copy;
                                if (!in && prev)
                                        cost += m->migrate_call_usec + copy;
                                prev = in;
                        }
                }
                for (unsigned e = 0; e < E; e++)
                        for (size_t i = t->epoch_start[e]; i < t->epoch_start[e + 1]; i++) {
                                const struct spm_sim_access *a = &t->acc[i];
                                bool in = (x >> (a->region * E + e)) & 1;
                                cost += a->ops * spm_machine_access_ns(m, a->accessor,
                                                                       in ? fast : y->backing) / 1000.0;
                        }
                best = MIN(best, cost);
        }
        return best;
}

/* 60 random tiny traces (3 regions x 4 epochs of GPU0 and CPU accesses) on m, whose fast
 * location is `fast`: the exact oracle equals brute force, replays to the same time, and no
 * baseline beats it. Returns how many needed the flow (the capacity bound). */
static unsigned oracle_trials(const struct spm_machine *m, unsigned fast) {
        unsigned flows = 0;

        for (unsigned trial = 0; trial < 60; trial++) {
                _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
                unsigned R = 3, E = 4;

                for (unsigned e = 0; e < E; e++)
                        for (unsigned r = 0; r < R; r++) {
                                if (rnd() % 3 == 0)
                                        continue;
                                /* ops around the break-even of a copy (1000 us / 3 ns) */
                                add(t, e, r, rnd() % 4 == 0 ? CPU : GPU0, rnd() % 1000000);
                        }
                add(t, E - 1, 0, GPU0, 1);  /* every epoch and region 0 exist */
                ASSERT_OK(spm_simtrace_finish(t));
                if (t->n_regions * t->n_epochs > 16)
                        continue;

                struct spm_sim_config c;
                struct spm_sim_optimum o;
                spm_sim_config_defaults(&c);
                c.vram_fraction = (trial % 2) ? 0.34 : 0.67;   /* 1 or 2 slots of 3 */
                ASSERT_OK(spm_sim_optimum(m, t, &c, &o));
                ASSERT_TRUE(o.exact);
                struct spm_sim_layout y;
                spm_sim_layout(m, t, &c, &y);
                ASSERT_TRUE(y.fast[fast]);
                double want = brute_force(m, t, &y, fast);
                ASSERT_NEAR(o.time_usec, want, 1e-3);
                flows += strcmp(o.method, "min-cost-flow") == 0;

                /* The Lagrangian fallback is a lower bound: never above the optimum. */
                struct spm_sim_optimum lb;
                struct spm_sim_config cl = c;
                cl.oracle_max_work = 1e-9;
                ASSERT_OK(spm_sim_optimum(m, t, &cl, &lb));
                if (strcmp(o.method, "independent") != 0) {
                        ASSERT_STREQ(lb.method, "lagrangian-bound");
                        ASSERT_FALSE(lb.exact);
                }
                ASSERT_TRUE(lb.time_usec <= want + 1e-6);
                spm_sim_optimum_done(&lb);

                /* Replaying the schedule in the simulator costs exactly the optimum. */
                struct spm_sim_result r;
                c.optimum = &o;
                ASSERT_OK(spm_sim_run(m, t, &c, &spm_sim_policy_exact, &r));
                ASSERT_NEAR(r.time_usec, o.time_usec, 1e-3);
                ASSERT_EQ(r.prefetch_failed, 0);
                ASSERT_EQ(r.migrations, o.migrations);
                /* No policy beats it. */
                for (const struct spm_sim_policy *const *p = spm_sim_baselines; *p; p++) {
                        struct spm_sim_result b;
                        ASSERT_OK(spm_sim_run(m, t, &c, *p, &b));
                        ASSERT_TRUE(b.time_usec >= o.time_usec - 1e-3);
                }
                spm_sim_optimum_done(&o);
        }
        return flows;
}

TEST(oracle_matches_brute_force) {
        struct spm_machine m = tiny_machine();
        /* The capacity must have bound in some trials, or the flow was never tested. */
        ASSERT_GT(oracle_trials(&m, VRAM), 5);
}

/* On mi300a-node the CPU's and gpu0's home is node 0; a first touch allocates there for
 * nothing (the default pays no fault), so the optimum must not charge for it either: it did
 * (a call per region entering at its first touch), and every policy that let first touches
 * fill node 0 "beat the exact optimum" on the streaming trace. */
TEST(oracle_on_numa_places_first_touches_for_free) {
        struct spm_machine m;
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        ASSERT_GT(oracle_trials(&m, 0), 5);
}

TEST(lagrangian_bound_below_flow) {
        struct spm_machine m;
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        unsigned tight = 0;

        /* Longer traces than brute force allows: gaps between uses, where leaving and
         * re-entering must be considered. The flow is exact (checked above). */
        for (unsigned trial = 0; trial < 300; trial++) {
                _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
                unsigned R = 2 + rnd() % 4, E = 3 + rnd() % 8;
                for (unsigned e = 0; e < E; e++)
                        for (unsigned r = 0; r < R; r++)
                                if (rnd() % 2)
                                        add(t, e, r, rnd() % 4 == 0 ? CPU : GPU0, rnd() % 3000000);
                add(t, E - 1, 0, GPU0, 1);
                ASSERT_OK(spm_simtrace_finish(t));

                struct spm_sim_config c;
                struct spm_sim_optimum o, lb;
                spm_sim_config_defaults(&c);
                c.vram_fraction = 0.4;
                ASSERT_OK(spm_sim_optimum(&m, t, &c, &o));
                c.oracle_max_work = 1e-9;
                ASSERT_OK(spm_sim_optimum(&m, t, &c, &lb));
                ASSERT_TRUE(lb.time_usec <= o.time_usec + 1e-6);
                tight += lb.time_usec >= o.time_usec * (1 - 1e-3);
                spm_sim_optimum_done(&o);
                spm_sim_optimum_done(&lb);
        }
        /* and it is not vacuous */
        ASSERT_GT(tight, 30);
}

TEST(pooled_bound_for_two_gpus) {
        struct spm_machine m;
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = new_trace();
        for (uint32_t e = 0; e < 6; e++)
                for (unsigned r = 0; r < 4; r++)
                        add(t, e, r, SPM_ACC_GPU(r % 2), 100000 * (1 + (r + e) % 3));
        ASSERT_OK(spm_simtrace_finish(t));

        struct spm_sim_config c;
        struct spm_sim_optimum o;
        spm_sim_config_defaults(&c);
        c.vram_fraction = 0.5;
        ASSERT_OK(spm_sim_optimum(&m, t, &c, &o));
        ASSERT_FALSE(o.exact);
        for (const struct spm_sim_policy *const *p = spm_sim_baselines; *p; p++) {
                struct spm_sim_result b;
                if (*p == &spm_sim_policy_exact)
                        continue;
                ASSERT_OK(spm_sim_run(&m, t, &c, *p, &b));
                ASSERT_TRUE(b.time_usec >= o.time_usec - 1e-3);
        }
        spm_sim_optimum_done(&o);
}

TEST(load_names_file_and_line) {
        char path[] = "/tmp/test-sim-XXXXXX";
        int fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        const char text[] = "# spmtier-trace 1\nepoch,pid,addr,pages,accessor,reads,writes\n"
                            "0,1,0x7f0000000000,512,gpu0,10,0\n0,1,0x7f0000000000,512,tpu9,10,0\n";
        ASSERT_TRUE(write(fd, text, sizeof(text) - 1) == (ssize_t) sizeof(text) - 1);
        close(fd);

        struct spm_simtrace *t = NULL;
        char err[512] = "";
        ASSERT_ERROR(spm_simtrace_load(path, 2 * MiB, &t, err, sizeof(err)), EINVAL);
        ASSERT_NULL(t);
        char want[64];
        snprintf(want, sizeof(want), "%s:4:", path);
        ASSERT_TRUE(strstr(err, want) != NULL);

        ASSERT_ERROR(spm_simtrace_load("/nonexistent/x.trace", 2 * MiB, &t, err, sizeof(err)), ENOENT);
        ASSERT_TRUE(strstr(err, "/nonexistent/x.trace") != NULL);
        unlink(path);
}

TEST(bundled_trace_loads) {
        const char *root = getenv("SPMTIER_SOURCE_ROOT");
        char path[4096];
        if (!root)
                test_skip("SPMTIER_SOURCE_ROOT not set (run under meson test)");
        snprintf(path, sizeof(path), "%s/tests/data/traces/stencil.trace.gz", root);
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = NULL;
        char err[512];
        ASSERT_OK(spm_simtrace_load(path, 2 * MiB, &t, err, sizeof(err)));
        ASSERT_GT(t->n_regions, 0);
        ASSERT_GT(t->n_epochs, 1);
}

TEST_MAIN()
