/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Built-in machine profiles and the cost arithmetic every component shares.
 *
 * Tags follow shared/reference/cost-model.md: [V] read in a primary source, [S] secondary,
 * [D] derived, [A] assumed (calibrate before quoting results).
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spmtier/machine.h"
#include "spmtier/macro.h"

#define GiB (1024ULL * 1024 * 1024)
#define MiB (1024ULL * 1024)

const char *const spm_machine_profile_names[] = { "mi250x-gcd", "mi300a-node", NULL };

/*
 * One Frontier node seen from the policy: 8 GCDs with 64 GB HBM2e each, 512 GB DDR4, CPU <-> GCD
 * over Infinity Fabric, VRAM registered as MEMORY_DEVICE_COHERENT (CPU reads it in place, a CPU
 * touch does not migrate back). cost-model.md §2.1.
 */
static void profile_mi250x_gcd(struct spm_machine *m) {
        *m = (struct spm_machine) {
                .kind = SPM_MEM_DEVICE_COHERENT,
                .n_gpus = 8,
                .n_locs = 9,
                .n_accessors = 9,
                .granule = 2 * MiB,                /* [V] svm_default_granularity = 9 */
                .migrate_gbps = 25.0,              /* [A] SDMA, ceiling 32 (amd-lab-notes) */
                .migrate_call_usec = 10.0,         /* [A] ioctl + migrate_vma setup per call */
                .fault_usec = 30.0,                /* [A] 10-50 us, NVIDIA analogues */
                .epoch_usec = 10000.0,             /* 10 ms epochs */
                .xnack = true,                     /* [V] HSA_XNACK=1 migrates on GPU fault */
        };
        snprintf(m->name, sizeof(m->name), "mi250x-gcd");
        snprintf(m->loc_name[0], sizeof(m->loc_name[0]), "ram");
        m->capacity[0] = 512 * 1000ULL * 1000 * 1000;          /* [V] 512 GB DDR4 */
        m->home[SPM_ACC_CPU] = SPM_LOC_SYSMEM;
        m->dep_fraction[SPM_ACC_CPU] = 0.01;                    /* [A] 1% dependent misses */

        /* CPU: DDR 41 GB/s sustained per NUMA domain [A, peak 51.2 D]; VRAM over IF 36 GB/s [V];
         * load latency 0.1 us DDR, 1.5 us HBM over IF [A]. */
        m->bw_gbps[SPM_ACC_CPU][SPM_LOC_SYSMEM] = 41.0;
        m->lat_ns[SPM_ACC_CPU][SPM_LOC_SYSMEM] = 100.0;

        for (unsigned g = 0; g < m->n_gpus; g++) {
                unsigned a = SPM_ACC_GPU(g), l = SPM_LOC_GPU(g);

                snprintf(m->loc_name[l], sizeof(m->loc_name[l]), "gpu%u", g);
                m->capacity[l] = 64 * 1000ULL * 1000 * 1000;    /* [V] 64 GB HBM2e per GCD */
                m->home[a] = l;
                m->dep_fraction[a] = 0.0;       /* GPU kernels are bandwidth-bound */

                m->bw_gbps[SPM_ACC_CPU][l] = 36.0;              /* [V] IF 36 GB/s per direction */
                m->lat_ns[SPM_ACC_CPU][l] = 1500.0;             /* [A] 0.8-2 us */
                m->bw_gbps[a][SPM_LOC_SYSMEM] = 36.0;           /* [V] zero-copy over IF */
                m->lat_ns[a][SPM_LOC_SYSMEM] = 1500.0;          /* [A] 1-3 us */
                m->bw_gbps[a][l] = 1300.0;                      /* [A] 80% of 1.6 TB/s peak [V] */
                m->lat_ns[a][l] = 600.0;                        /* [A] 0.4-0.9 us */
                for (unsigned o = 0; o < m->n_gpus; o++) {
                        if (o == g)
                                continue;
                        /* [V] 200 GB/s in-package (GCD pairs 0-1, 2-3, ...), 50 across. */
                        m->bw_gbps[a][SPM_LOC_GPU(o)] = (o / 2 == g / 2) ? 200.0 : 50.0;
                        m->lat_ns[a][SPM_LOC_GPU(o)] = 1500.0;  /* [A] */
                }
        }
}

/*
 * One MI300A node: 4 APUs, each with 128 GiB HBM3 as a NUMA node, CPU and GPU sharing it (no
 * VRAM/RAM split, KFD never migrates). What remains is which APU's node holds a page:
 * locations are nodes 0-3, the CPU threads run on APU 0, GPU n is local to node n.
 * cost-model.md §1.2, §2.2.
 */
static void profile_mi300a_node(struct spm_machine *m) {
        *m = (struct spm_machine) {
                .kind = SPM_MEM_NUMA,
                .n_gpus = 4,
                .n_locs = 4,
                .n_accessors = 5,
                .granule = 2 * MiB,                /* fragment size; move_pages in 4 KiB pages */
                .migrate_gbps = 64.0,              /* [S] xGMI-3 x16 per direction */
                .migrate_call_usec = 5.0,          /* [A] one move_pages call */
                .fault_usec = 30.0,                /* [A] first-touch fault per 2 MiB */
                .epoch_usec = 10000.0,
                .xnack = true,
        };
        snprintf(m->name, sizeof(m->name), "mi300a-node");
        for (unsigned n = 0; n < m->n_locs; n++) {
                snprintf(m->loc_name[n], sizeof(m->loc_name[n]), "node%u", n);
                m->capacity[n] = 128 * GiB;                     /* [S] HBM3 per APU */
        }
        m->home[SPM_ACC_CPU] = 0;
        m->dep_fraction[SPM_ACC_CPU] = 0.01;                    /* [A] */
        for (unsigned n = 0; n < m->n_locs; n++) {
                m->bw_gbps[SPM_ACC_CPU][n] = n == 0 ? 200.0 : 64.0;  /* [A] local; [S] xGMI */
                m->lat_ns[SPM_ACC_CPU][n] = n == 0 ? 250.0 : 550.0;  /* [A] +0.3 us remote */
        }
        for (unsigned g = 0; g < m->n_gpus; g++) {
                unsigned a = SPM_ACC_GPU(g);

                m->home[a] = g;
                m->dep_fraction[a] = 0.0;
                for (unsigned n = 0; n < m->n_locs; n++) {
                        m->bw_gbps[a][n] = n == g ? 3600.0 : 64.0;   /* [V] BabelStream; [S] */
                        m->lat_ns[a][n] = n == g ? 600.0 : 900.0;    /* [A] */
                }
        }
}

int spm_machine_profile(const char *name, struct spm_machine *ret) {
        struct spm_machine m;

        if (!name)
                return -EINVAL;
        if (strcmp(name, "mi250x-gcd") == 0)
                profile_mi250x_gcd(&m);
        else if (strcmp(name, "mi300a-node") == 0)
                profile_mi300a_node(&m);
        else
                return -ENOENT;
        *ret = m;
        return 0;
}

int spm_machine_validate(const struct spm_machine *m) {
        if (!m || m->n_gpus > SPM_MAX_GPUS || m->n_locs == 0 || m->n_locs > SPM_MAX_LOCS)
                return -EINVAL;
        if (m->n_accessors != m->n_gpus + 1)
                return -EINVAL;
        if ((unsigned) m->kind >= _SPM_MEM_KIND_MAX)
                return -EINVAL;
        if (!IS_POWER_OF_2(m->granule) || m->granule < 4096 || m->granule > (1ULL << 30))
                return -EINVAL;
        if (!(m->migrate_gbps > 0) || m->migrate_call_usec < 0 || m->fault_usec < 0 ||
            !(m->epoch_usec > 0))
                return -EINVAL;
        for (unsigned a = 0; a < m->n_accessors; a++) {
                if (m->home[a] >= m->n_locs || m->dep_fraction[a] < 0 || m->dep_fraction[a] > 1)
                        return -EINVAL;
                for (unsigned l = 0; l < m->n_locs; l++)
                        if (!(m->bw_gbps[a][l] > 0) || m->lat_ns[a][l] < 0)
                                return -EINVAL;
        }
        for (unsigned l = 0; l < m->n_locs; l++)
                if (m->capacity[l] == 0)
                        return -EINVAL;
        return 0;
}

double spm_machine_access_ns(const struct spm_machine *m, unsigned a, unsigned l) {
        return SPM_ACCESS_BYTES / m->bw_gbps[a][l] + m->dep_fraction[a] * m->lat_ns[a][l];
}

double spm_machine_migrate_usec(const struct spm_machine *m, uint64_t bytes) {
        /* GB/s = bytes per ns; / 1000 gives usec. */
        return m->migrate_call_usec + (double) bytes / m->migrate_gbps / 1000.0;
}

double spm_machine_fault_usec(const struct spm_machine *m, uint64_t bytes) {
        return m->fault_usec + (double) bytes / m->migrate_gbps / 1000.0;
}

int spm_machine_loc_from_name(const struct spm_machine *m, const char *name) {
        for (unsigned l = 0; l < m->n_locs; l++)
                if (strcmp(m->loc_name[l], name) == 0)
                        return (int) l;
        return -ENOENT;
}

int spm_accessor_from_name(const char *name, unsigned n_gpus) {
        unsigned g;
        int n = -1;

        if (strcmp(name, "cpu") == 0)
                return SPM_ACC_CPU;
        /* Digits only: sscanf's %u alone would take "gpu+1" and "gpu 1". */
        if (strncmp(name, "gpu", 3) == 0 && name[3] >= '0' && name[3] <= '9' &&
            sscanf(name, "gpu%u%n", &g, &n) == 1 && name[n] == '\0' &&
            (name[3] != '0' || n == 4) && g < n_gpus)
                return SPM_ACC_GPU(g);
        return -EINVAL;
}
