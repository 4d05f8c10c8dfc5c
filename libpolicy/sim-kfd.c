/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What KFD SVM does on its own (kfd-svm.md §4), as the simulator's default driver:
 *   - a GPU fault with XNACK on migrates the granule to svm_range_best_restore_location():
 *     PREFERRED_LOC when set (the faulting GPU, system memory or a peer), else the faulting
 *     GPU; PREFERRED_LOC = system memory maps the page over the link without moving it;
 *   - untouched pages become VRAM pages directly (a fault, no copy);
 *   - when VRAM is full, TTM evicts the BO validated longest ago to system memory and the
 *     fault proceeds; if nothing can be evicted the fault falls back to system memory;
 *   - CPU touches of VRAM stay in place on DEVICE_COHERENT; on DEVICE_PRIVATE they fault and
 *     migrate the granule back (svm_migrate_to_ram);
 *   - XNACK off: faults never migrate (only explicit prefetch moves data);
 *   - NUMA machines (MI300A): KFD never migrates (best locations are forced to the CPU);
 *     pages are first-touch allocated on the toucher's node, falling back to the backing node.
 * The explicit-prefetch side (silent failure when VRAM is full) is spm_sim_move() in sim.c.
 */

#include <errno.h>

#include "spmtier/sim.h"

static void first_touch(struct spm_sim *s, uint32_t r, unsigned accessor) {
        unsigned home = spm_sim_fast_loc(s, accessor), pref = spm_sim_preferred(s, r);

        /* A NUMA policy (mbind) wins over the local node. */
        if (pref != SPM_SIM_NO_PREF)
                home = pref;
        if (spm_sim_free(s, home) == 0 && home != spm_sim_backing(s))
                home = spm_sim_backing(s);
        spm_sim_populate(s, r, home);
}

static void kfd_gpu_touch(struct spm_sim *s, uint32_t r, unsigned gpu) {
        const struct spm_machine *m = spm_sim_machine(s);
        unsigned acc = SPM_ACC_GPU(gpu), home = spm_sim_fast_loc(s, acc);
        unsigned loc = spm_sim_loc(s, r), pref = spm_sim_preferred(s, r), target;

        if (m->kind == SPM_MEM_NUMA) {
                if (loc == SPM_SIM_UNPOPULATED)
                        first_touch(s, r, acc);
                return;
        }
        if (loc == home)
                return;
        target = pref != SPM_SIM_NO_PREF ? pref : home;
        if (!m->xnack || target == loc || target == spm_sim_backing(s)) {
                /* Mapped where it is (or populated in system memory); no migration. */
                if (loc == SPM_SIM_UNPOPULATED)
                        spm_sim_populate(s, r, spm_sim_backing(s));
                return;
        }
        if (spm_sim_policy_fault(s, r, gpu) > 0)
                return;
        if (spm_sim_fault_migrate(s, r, target, acc, /* evict= */ true) < 0 &&
            spm_sim_loc(s, r) == SPM_SIM_UNPOPULATED)
                spm_sim_populate(s, r, spm_sim_backing(s));
}

static void kfd_cpu_touch(struct spm_sim *s, uint32_t r) {
        const struct spm_machine *m = spm_sim_machine(s);
        unsigned loc = spm_sim_loc(s, r);

        if (loc == SPM_SIM_UNPOPULATED) {
                if (m->kind == SPM_MEM_NUMA)
                        first_touch(s, r, SPM_ACC_CPU);
                else
                        spm_sim_populate(s, r, spm_sim_backing(s));
                return;
        }
        if (m->kind == SPM_MEM_DEVICE_PRIVATE && loc != spm_sim_backing(s))
                (void) spm_sim_fault_migrate(s, r, spm_sim_backing(s), SPM_ACC_CPU,
                                             /* evict= */ false);
}

static int kfd_make_room(struct spm_sim *s, unsigned loc) {
        uint32_t victim = spm_sim_oldest_at(s, loc);

        if (victim == UINT32_MAX)
                return -ENOSPC;
        return spm_sim_driver_move(s, victim, spm_sim_backing(s)) > 0 ? 0 : -ENOSPC;
}

const struct spm_sim_driver spm_sim_kfd_driver = {
        .gpu_touch = kfd_gpu_touch,
        .cpu_touch = kfd_cpu_touch,
        .make_room = kfd_make_room,
};
