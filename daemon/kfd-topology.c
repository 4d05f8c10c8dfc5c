/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "kfd-topology.h"
#include "spmtier/macro.h"

int kfd_topology_gpu_ids(const char *sys_root, uint32_t ret_ids[SPM_MAX_GPUS]) {
        int n = 0;

        for (unsigned node = 0; node < 64 && n < SPM_MAX_GPUS; node++) {
                char path[4096], line[64], *end;
                _cleanup_fclose_ FILE *f = NULL;

                snprintf(path, sizeof(path), "%s/class/kfd/kfd/topology/nodes/%u/gpu_id", sys_root,
                         node);
                f = fopen(path, "re");
                if (!f) {
                        if (errno == ENOENT)
                                break; /* nodes are numbered densely */
                        return -errno;
                }
                if (!fgets(line, sizeof(line), f))
                        return -EINVAL;
                errno = 0;
                unsigned long v = strtoul(line, &end, 10);
                if (errno || end == line || (*end && *end != '\n') || v > UINT32_MAX)
                        return -EINVAL;
                if (v)
                        ret_ids[n++] = (uint32_t) v;
        }
        return n;
}

int kfd_topology_gpu_index(const uint32_t *ids, unsigned n, uint32_t gpu_id) {
        for (unsigned i = 0; i < n; i++)
                if (ids[i] == gpu_id && gpu_id)
                        return (int) i;
        return -ENODEV;
}
