/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * NUMA topology from sysfs: nodes, which have CPUs and memory, HMAT access0 attributes
 * (performance from the node's best initiator), memory tiers, SLIT distances; and the machine
 * profile (kind SPM_MEM_NUMA) built from them for the engine and the numa mover.
 *
 * Every path is relative to a sysfs root ("/sys" on a real system, a temp dir in tests).
 */

#include <stdbool.h>
#include <stdint.h>

#include "spmtier/machine.h"

#define SPM_TOPO_MAX_NODES 64

struct spm_hmat_access {
        bool present;                   /* nodeN/access0/initiators/ exists and has values */
        uint32_t read_latency_ns;
        uint32_t write_latency_ns;
        uint32_t read_bandwidth_mbps;   /* MB/s, as the kernel reports it */
        uint32_t write_bandwidth_mbps;
};

struct spm_numa_node {
        int id;
        bool has_cpu;                   /* cpulist not empty */
        bool has_memory;                /* MemTotal > 0 */
        uint64_t mem_total;             /* bytes */
        int tier;                       /* N of the memory_tierN that lists the node; -1 = none */
        struct spm_hmat_access access0;
        uint8_t distance[SPM_TOPO_MAX_NODES]; /* SLIT row, indexed by node id; 0 = unknown */
};

struct spm_topology {
        unsigned n_nodes;                           /* nodes[] sorted by id */
        struct spm_numa_node nodes[SPM_TOPO_MAX_NODES];
        bool have_tiers;                            /* memory_tiering exists */
};

/* Reads the topology under sysfs_root (NULL = "/sys"). Returns 0; -ENOENT when there is no
 * devices/system/node (a kernel without NUMA); -EBADMSG for a file that does not parse;
 * -E2BIG for a node id >= SPM_TOPO_MAX_NODES. */
int spm_topology_read(const char *sysfs_root, struct spm_topology *ret);

/* The node with id `id`, or NULL. */
const struct spm_numa_node *spm_topology_node(const struct spm_topology *t, int id);

/* The node the CPU should have its hot data on: the memory node with the highest HMAT read
 * bandwidth (then lowest read latency, then lowest id); without HMAT, the lowest memory tier;
 * without tiers, the lowest-id memory node that has CPUs. Returns the node id or -ENOENT when
 * no node has memory. */
int spm_topology_fast_node(const struct spm_topology *t);

/* What the config may override in the profile built from sysfs. Zero/negative = keep. */
struct spm_topology_overrides {
        const char *name;             /* profile name; default "numa-sysfs" */
        int fast_node;                /* -1 = spm_topology_fast_node() */
        uint64_t capacity[SPM_TOPO_MAX_NODES]; /* bytes the engine may place on node N */
        uint64_t granule;             /* default 2 MiB */
        double migrate_gbps;          /* default 8 GB/s [A] */
        double migrate_call_usec;     /* default 5 us [A] */
        double epoch_usec;            /* default 100 ms */
};

/* Fills *o with "keep everything" (fast_node -1, all else 0). */
void spm_topology_overrides_init(struct spm_topology_overrides *o);

/*
 * Builds a NUMA machine: one location per memory node, named "nodeN": the fast node is location
 * 0 (SPM_LOC_SYSMEM, where the engine puts CPU-hot data; home[CPU] = 0), the other memory nodes
 * follow in node id order. One accessor: the CPU (GPUs are not discovered here). CPU bandwidth and
 * latency per location come from HMAT access0 (MB/s -> GB/s, ns); nodes without HMAT values get
 * an assumed 50 GB/s and 100 ns scaled by SLIT distance / 10. Capacity = MemTotal unless
 * overridden. Writes the NUMA node id of every location to ret_loc_node[] (SPM_MAX_LOCS
 * entries, -1 past n_locs). Returns 0, -ENOENT (no memory node or no such fast node), -E2BIG
 * (more memory nodes than SPM_MAX_LOCS), -EINVAL (the result does not validate).
 */
int spm_topology_to_machine(const struct spm_topology *t, const struct spm_topology_overrides *o,
                            struct spm_machine *ret, int ret_loc_node[SPM_MAX_LOCS]);

/* Parses a sysfs cpu/node list ("0-3,8,10-11\n"; empty = none) into a bit mask of ids below 64.
 * Returns 0, -EBADMSG (syntax), -E2BIG (an id >= 64). */
int spm_parse_id_list(const char *s, uint64_t *ret_mask);

/* The NUMA node of every location of a NUMA machine, from the location names ("nodeN", as
 * spm_topology_to_machine() and the mi300a-node profile name them) into ret_loc_node[]
 * (-1 past n_locs). Returns 0, or -EINVAL (not SPM_MEM_NUMA, or a name that is not "nodeN")
 * and then the index of the offending location in *ret_bad_loc (may be NULL). */
int spm_machine_loc_nodes(const struct spm_machine *m, int ret_loc_node[SPM_MAX_LOCS],
                          unsigned *ret_bad_loc);
