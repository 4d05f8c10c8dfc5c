/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The registries of collectors and movers: the one place that lists them all. */
#include <string.h>

#include "collector.h"
#include "mover.h"
#include "spmtier/macro.h"

static const struct spm_collector_ops *const collectors[] = {
        &spm_collector_replay,
        &spm_collector_damon,
        &spm_collector_kfd_smi,
        &spm_collector_kfd_sysfs,
};

static const struct spm_mover_ops *const movers[] = {
        &spm_mover_sim,
        &spm_mover_numa,
        &spm_mover_kfd_svm,
};

const struct spm_collector_ops *spm_collector_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(collectors); i++)
                if (strcmp(collectors[i]->name, name) == 0)
                        return collectors[i];
        return NULL;
}

const struct spm_mover_ops *spm_mover_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(movers); i++)
                if (strcmp(movers[i]->name, name) == 0)
                        return movers[i];
        return NULL;
}
