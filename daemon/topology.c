/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NUMA topology from sysfs and the machine profile built from it.
 *
 * Sources (Documentation/ABI/stable/sysfs-devices-node, .../testing/sysfs-kernel-mm-memory-tiers):
 *   devices/system/node/nodeN/{cpulist,meminfo,distance}
 *   devices/system/node/nodeN/access0/initiators/{read,write}_{latency,bandwidth}  (HMAT)
 *   devices/virtual/memory_tiering/memory_tierN/nodelist                           (6.1+)
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "sysfs-io.h"
#include "topology.h"

#define NODE_DIR "devices/system/node"
#define TIER_DIR "devices/virtual/memory_tiering"
#define MiB (1024ULL * 1024)

/* Assumed CPU figures for a node without HMAT values ([A]: a DDR5 socket). */
#define ASSUMED_BW_GBPS 50.0
#define ASSUMED_LAT_NS 100.0

int spm_parse_id_list(const char *s, uint64_t *ret_mask) {
        uint64_t mask = 0;

        while (*s == ' ')
                s++;
        while (*s && *s != '\n') {
                char *end;
                unsigned long a, b;

                if (*s < '0' || *s > '9')
                        return -EBADMSG;
                a = strtoul(s, &end, 10);
                b = a;
                if (*end == '-') {
                        s = end + 1;
                        if (*s < '0' || *s > '9')
                                return -EBADMSG;
                        b = strtoul(s, &end, 10);
                        if (b < a)
                                return -EBADMSG;
                }
                if (b >= 64)
                        return -E2BIG;
                for (unsigned long i = a; i <= b; i++)
                        mask |= UINT64_C(1) << i;
                s = end;
                if (*s == ',')
                        s++;
                else if (*s && *s != '\n')
                        return -EBADMSG;
        }
        *ret_mask = mask;
        return 0;
}

/* MemTotal from a node's meminfo ("Node 0 MemTotal:  772404 kB"). */
static int read_mem_total(const char *root, int id, uint64_t *ret) {
        char buf[4096];
        const char *p;
        unsigned long long kb;
        int r;

        r = sysfs_read(buf, sizeof(buf), root, NODE_DIR "/node%d/meminfo", id);
        if (r == -EFBIG)
                r = 0, buf[sizeof(buf) - 1] = '\0'; /* MemTotal is on the first line */
        if (r < 0)
                return r;
        p = strstr(buf, "MemTotal:");
        if (!p || sscanf(p, "MemTotal: %llu kB", &kb) != 1)
                return -EBADMSG;
        *ret = (uint64_t) kb * 1024;
        return 0;
}

static int read_distance(const char *root, struct spm_numa_node *n, const uint64_t online) {
        char buf[1024], *p, *end;
        int r;

        r = sysfs_read(buf, sizeof(buf), root, NODE_DIR "/node%d/distance", n->id);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* One value per online node, in node id order. */
        p = buf;
        for (int i = 0; i < SPM_TOPO_MAX_NODES; i++) {
                unsigned long d;

                if (!(online & (UINT64_C(1) << i)))
                        continue;
                while (*p == ' ')
                        p++;
                if (*p == '\0')
                        break;
                d = strtoul(p, &end, 10);
                if (end == p || d > 255)
                        return -EBADMSG;
                n->distance[i] = (uint8_t) d;
                p = end;
        }
        return 0;
}

static int read_hmat(const char *root, struct spm_numa_node *n) {
        static const char *const names[] = { "read_latency", "write_latency", "read_bandwidth",
                                             "write_bandwidth" };
        uint64_t v[4];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                r = sysfs_read_u64(&v[i], root, NODE_DIR "/node%d/access0/initiators/%s", n->id,
                                   names[i]);
                if (r == -ENOENT) {
                        n->access0 = (struct spm_hmat_access) {};
                        return 0;
                }
                if (r < 0)
                        return r;
                if (v[i] > UINT32_MAX)
                        return -EBADMSG;
        }
        n->access0 = (struct spm_hmat_access) {
                /* HMAT without bandwidth/latency entries shows zeros (qemu-numa.md §1.5). */
                .present = v[0] > 0 || v[2] > 0,
                .read_latency_ns = (uint32_t) v[0],
                .write_latency_ns = (uint32_t) v[1],
                .read_bandwidth_mbps = (uint32_t) v[2],
                .write_bandwidth_mbps = (uint32_t) v[3],
        };
        return 0;
}

static int read_tiers(const char *root, struct spm_topology *t) {
        char path[4096];
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        snprintf(path, sizeof(path), "%s/" TIER_DIR, root);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        t->have_tiers = true;
        while ((de = readdir(d))) {
                char buf[512];
                unsigned tier;
                uint64_t mask;
                int r, n = -1;

                if (sscanf(de->d_name, "memory_tier%u%n", &tier, &n) != 1 ||
                    de->d_name[n] != '\0')
                        continue;
                r = sysfs_read(buf, sizeof(buf), root, TIER_DIR "/%s/nodelist", de->d_name);
                if (r < 0)
                        return r;
                r = spm_parse_id_list(buf, &mask);
                if (r < 0)
                        return r;
                for (unsigned i = 0; i < t->n_nodes; i++)
                        if (mask & (UINT64_C(1) << t->nodes[i].id))
                                t->nodes[i].tier = (int) tier;
        }
        return 0;
}

static int node_cmp(const void *a, const void *b) {
        const struct spm_numa_node *x = a, *y = b;

        return (x->id > y->id) - (x->id < y->id);
}

int spm_topology_read(const char *sysfs_root, struct spm_topology *ret) {
        const char *root = sysfs_root ? sysfs_root : "/sys";
        _cleanup_free_ struct spm_topology *t = calloc(1, sizeof(*t));
        _cleanup_closedir_ DIR *d = NULL;
        char path[4096];
        struct dirent *de;
        uint64_t online = 0;
        int r;

        if (!t)
                return -ENOMEM;
        snprintf(path, sizeof(path), "%s/" NODE_DIR, root);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                int id, n = -1;

                if (sscanf(de->d_name, "node%d%n", &id, &n) != 1 || de->d_name[n] != '\0' ||
                    id < 0)
                        continue;
                if (id >= SPM_TOPO_MAX_NODES)
                        return -E2BIG;
                t->nodes[t->n_nodes++] = (struct spm_numa_node) { .id = id, .tier = -1 };
                online |= UINT64_C(1) << id;
        }
        if (t->n_nodes == 0)
                return -ENOENT;
        qsort(t->nodes, t->n_nodes, sizeof(t->nodes[0]), node_cmp);

        for (unsigned i = 0; i < t->n_nodes; i++) {
                struct spm_numa_node *n = &t->nodes[i];
                char buf[4096];
                uint64_t cpus;

                r = sysfs_read(buf, sizeof(buf), root, NODE_DIR "/node%d/cpulist", n->id);
                if (r < 0)
                        return r;
                /* Node cpulists can name CPUs >= 64: only emptiness matters here. */
                n->has_cpu = r > 0;
                if (r > 0 && spm_parse_id_list(buf, &cpus) == -EBADMSG)
                        return -EBADMSG;
                r = read_mem_total(root, n->id, &n->mem_total);
                if (r < 0)
                        return r;
                n->has_memory = n->mem_total > 0;
                r = read_distance(root, n, online);
                if (r < 0)
                        return r;
                r = read_hmat(root, n);
                if (r < 0)
                        return r;
        }
        r = read_tiers(root, t);
        if (r < 0)
                return r;
        *ret = *t;
        return 0;
}

const struct spm_numa_node *spm_topology_node(const struct spm_topology *t, int id) {
        for (unsigned i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].id == id)
                        return &t->nodes[i];
        return NULL;
}

/* Is a a better home for the CPU than b? */
static bool faster(const struct spm_numa_node *a, const struct spm_numa_node *b) {
        if (a->access0.present && b->access0.present) {
                if (a->access0.read_bandwidth_mbps != b->access0.read_bandwidth_mbps)
                        return a->access0.read_bandwidth_mbps > b->access0.read_bandwidth_mbps;
                if (a->access0.read_latency_ns != b->access0.read_latency_ns)
                        return a->access0.read_latency_ns < b->access0.read_latency_ns;
                return a->id < b->id;
        }
        if (a->access0.present != b->access0.present)
                return a->access0.present;
        /* Lower tier ids are faster: a tier is the abstract distance >> chunk bits. */
        if (a->tier >= 0 && b->tier >= 0 && a->tier != b->tier)
                return a->tier < b->tier;
        if (a->has_cpu != b->has_cpu)
                return a->has_cpu;
        return a->id < b->id;
}

int spm_topology_fast_node(const struct spm_topology *t) {
        const struct spm_numa_node *best = NULL;

        for (unsigned i = 0; i < t->n_nodes; i++) {
                const struct spm_numa_node *n = &t->nodes[i];

                if (n->has_memory && (!best || faster(n, best)))
                        best = n;
        }
        return best ? best->id : -ENOENT;
}

void spm_topology_overrides_init(struct spm_topology_overrides *o) {
        *o = (struct spm_topology_overrides) { .fast_node = -1 };
}

int spm_topology_to_machine(const struct spm_topology *t, const struct spm_topology_overrides *o,
                            struct spm_machine *ret, int ret_loc_node[SPM_MAX_LOCS]) {
        struct spm_topology_overrides none;
        struct spm_machine m = {
                .kind = SPM_MEM_NUMA,
                .n_gpus = 0,
                .n_accessors = 1,
                .granule = 2 * MiB,
                .migrate_gbps = 8.0,        /* [A] move_pages copies on one CPU, 4 KiB at a time */
                .migrate_call_usec = 5.0,   /* [A] one move_pages call incl. page walk setup */
                .fault_usec = 0.0,          /* no GPU faults on this machine */
                .epoch_usec = 100000.0,     /* DAMON aggregates every 100 ms by default */
                .xnack = false,
        };
        int loc_node[SPM_MAX_LOCS];
        const struct spm_numa_node *fast;
        int fast_id;
        int r;

        if (!o) {
                spm_topology_overrides_init(&none);
                o = &none;
        }
        snprintf(m.name, sizeof(m.name), "%s", o->name ? o->name : "numa-sysfs");
        if (o->granule)
                m.granule = o->granule;
        if (o->migrate_gbps > 0)
                m.migrate_gbps = o->migrate_gbps;
        if (o->migrate_call_usec > 0)
                m.migrate_call_usec = o->migrate_call_usec;
        if (o->epoch_usec > 0)
                m.epoch_usec = o->epoch_usec;

        fast_id = o->fast_node >= 0 ? o->fast_node : spm_topology_fast_node(t);
        if (fast_id < 0)
                return fast_id;
        fast = spm_topology_node(t, fast_id);
        if (!fast || !fast->has_memory)
                return -ENOENT;

        for (unsigned i = 0; i < SPM_MAX_LOCS; i++)
                loc_node[i] = -1;
        /* The fast node is location 0: the engine's CPU accessor places its hot data at
         * SPM_LOC_SYSMEM (0), as in the mi300a-node profile. The others follow by node id. */
        for (int pass = 0; pass < 2; pass++)
                for (unsigned i = 0; i < t->n_nodes; i++) {
                        const struct spm_numa_node *n = &t->nodes[i];
                        unsigned l = m.n_locs;
                        unsigned dist;

                        if (!n->has_memory || (pass == 0) != (n->id == fast_id))
                                continue;
                        if (l >= SPM_MAX_LOCS)
                                return -E2BIG;
                        m.n_locs++;
                        loc_node[l] = n->id;
                        snprintf(m.loc_name[l], sizeof(m.loc_name[l]), "node%d", n->id);
                        m.capacity[l] = o->capacity[n->id] ? o->capacity[n->id] : n->mem_total;
                        if (n->access0.present && n->access0.read_bandwidth_mbps > 0) {
                                m.bw_gbps[SPM_ACC_CPU][l] = n->access0.read_bandwidth_mbps / 1000.0;
                                m.lat_ns[SPM_ACC_CPU][l] = n->access0.read_latency_ns;
                        } else {
                                /* Scale the assumption by the SLIT distance from the fast node
                                 * (10 = local): distance 20 halves bandwidth, doubles latency. */
                                dist = fast->distance[n->id] ? fast->distance[n->id] : 10;
                                m.bw_gbps[SPM_ACC_CPU][l] = ASSUMED_BW_GBPS * 10.0 / dist;
                                m.lat_ns[SPM_ACC_CPU][l] = ASSUMED_LAT_NS * dist / 10.0;
                        }
                }
        m.home[SPM_ACC_CPU] = 0;
        if (m.n_locs == 0)
                return -ENOENT;
        m.dep_fraction[SPM_ACC_CPU] = 0.01; /* [A] as mi300a-node: 1 % dependent misses */

        r = spm_machine_validate(&m);
        if (r < 0)
                return r;
        *ret = m;
        memcpy(ret_loc_node, loc_node, sizeof(loc_node));
        return 0;
}

int spm_machine_loc_nodes(const struct spm_machine *m, int ret_loc_node[SPM_MAX_LOCS],
                          unsigned *ret_bad_loc) {
        int loc_node[SPM_MAX_LOCS];

        if (!m || m->kind != SPM_MEM_NUMA || m->n_locs > SPM_MAX_LOCS) {
                if (ret_bad_loc)
                        *ret_bad_loc = 0;
                return -EINVAL;
        }
        for (unsigned l = 0; l < SPM_MAX_LOCS; l++)
                loc_node[l] = -1;
        for (unsigned l = 0; l < m->n_locs; l++) {
                int node, n = -1;

                if (sscanf(m->loc_name[l], "node%d%n", &node, &n) != 1 ||
                    m->loc_name[l][n] != '\0' || node < 0 || node >= SPM_TOPO_MAX_NODES) {
                        if (ret_bad_loc)
                                *ret_bad_loc = l;
                        return -EINVAL;
                }
                loc_node[l] = node;
        }
        memcpy(ret_loc_node, loc_node, sizeof(loc_node));
        return 0;
}
