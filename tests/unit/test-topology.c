/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The topology reader and the machine profile built from it, on fake sysfs trees. */

#include <errno.h>

#include "fake-tree.h"
#include "test.h"
#include "topology.h"

#define MiB (1024ULL * 1024)
#define NODE "devices/system/node"

struct fake_node {
        int id;
        const char *cpulist;
        unsigned long mem_kb;
        const char *distance;
        int lat, bw;          /* HMAT access0 read/write latency ns, bandwidth MB/s; 0 = none */
};

static void add_node(const char *root, const struct fake_node *n) {
        char buf[256];

        fake_file(root, n->cpulist, NODE "/node%d/cpulist", n->id);
        snprintf(buf, sizeof(buf),
                 "Node %d MemTotal:       %lu kB\nNode %d MemFree:        1 kB\n", n->id,
                 n->mem_kb, n->id);
        fake_file(root, buf, NODE "/node%d/meminfo", n->id);
        if (n->distance)
                fake_file(root, n->distance, NODE "/node%d/distance", n->id);
        if (n->lat || n->bw) {
                snprintf(buf, sizeof(buf), "%d\n", n->lat);
                fake_file(root, buf, NODE "/node%d/access0/initiators/read_latency", n->id);
                fake_file(root, buf, NODE "/node%d/access0/initiators/write_latency", n->id);
                snprintf(buf, sizeof(buf), "%d\n", n->bw);
                fake_file(root, buf, NODE "/node%d/access0/initiators/read_bandwidth", n->id);
                fake_file(root, buf, NODE "/node%d/access0/initiators/write_bandwidth", n->id);
        }
}

/* What the QEMU VM of tests/vm shows (qemu-numa.md §1.2, §1.5): node 1 CPU-less, HMAT
 * 100 ns/100G vs 500 ns/32G, node 1 in the lower memory tier 70. */
static char *qemu_tree(void) {
        char *root = fake_tree_new();

        add_node(root, &(struct fake_node) { 0, "0-1\n", 772404, "10 20\n", 100, 102400 });
        add_node(root, &(struct fake_node) { 1, "\n", 786432, "20 10\n", 500, 32768 });
        fake_file(root, "0\n", "devices/virtual/memory_tiering/memory_tier4/nodelist");
        fake_file(root, "1\n", "devices/virtual/memory_tiering/memory_tier70/nodelist");
        fake_file(root, "", "devices/virtual/memory_tiering/power/ignored");
        return root;
}

TEST(id_lists) {
        static const struct {
                const char *s;
                int r;
                uint64_t mask;
        } cases[] = {
                { "", 0, 0 },
                { "\n", 0, 0 },
                { "0\n", 0, 1 },
                { "0-1\n", 0, 3 },
                { "0-2,5,7-8\n", 0, 0x1a7 },
                { "63", 0, UINT64_C(1) << 63 },
                { "64", -E2BIG, 0 },
                { "3-1", -EBADMSG, 0 },
                { "1,,2", -EBADMSG, 0 },
                { "a", -EBADMSG, 0 },
                { "1-", -EBADMSG, 0 },
                { "1 2", -EBADMSG, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t m = 0xdead;
                int r = spm_parse_id_list(cases[i].s, &m);

                ASSERT_EQ(r, cases[i].r);
                if (r == 0)
                        ASSERT_EQ_U(m, cases[i].mask);
                else
                        ASSERT_EQ_U(m, 0xdead); /* untouched on failure */
        }
}

TEST(reads_qemu_tree) {
        char *root = qemu_tree();
        struct spm_topology t;
        const struct spm_numa_node *n0, *n1;

        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_EQ(t.n_nodes, 2);
        ASSERT_TRUE(t.have_tiers);
        n0 = spm_topology_node(&t, 0);
        n1 = spm_topology_node(&t, 1);
        ASSERT_NOT_NULL(n0);
        ASSERT_NOT_NULL(n1);
        ASSERT_NULL(spm_topology_node(&t, 2));
        ASSERT_TRUE(n0->has_cpu);
        ASSERT_FALSE(n1->has_cpu);
        ASSERT_TRUE(n1->has_memory);
        ASSERT_EQ_U(n0->mem_total, 772404ULL * 1024);
        ASSERT_EQ(n0->tier, 4);
        ASSERT_EQ(n1->tier, 70);
        ASSERT_EQ(n0->distance[1], 20);
        ASSERT_EQ(n1->distance[1], 10);
        ASSERT_TRUE(n1->access0.present);
        ASSERT_EQ(n1->access0.read_latency_ns, 500);
        ASSERT_EQ(n1->access0.read_bandwidth_mbps, 32768);
        ASSERT_EQ(spm_topology_fast_node(&t), 0);
        fake_tree_free(root);
}

TEST(machine_from_qemu_tree) {
        char *root = qemu_tree();
        struct spm_topology t;
        struct spm_machine m;
        int loc_node[SPM_MAX_LOCS];

        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_OK(spm_topology_to_machine(&t, NULL, &m, loc_node));
        ASSERT_OK(spm_machine_validate(&m));
        ASSERT_EQ(m.kind, SPM_MEM_NUMA);
        ASSERT_STREQ(m.name, "numa-sysfs");
        ASSERT_EQ(m.n_locs, 2);
        ASSERT_EQ(m.n_accessors, 1);
        ASSERT_EQ(loc_node[0], 0);
        ASSERT_EQ(loc_node[1], 1);
        ASSERT_EQ(loc_node[2], -1);
        ASSERT_STREQ(m.loc_name[1], "node1");
        ASSERT_EQ(m.home[SPM_ACC_CPU], 0);
        ASSERT_NEAR(m.bw_gbps[SPM_ACC_CPU][0], 102.4, 1e-9);
        ASSERT_NEAR(m.bw_gbps[SPM_ACC_CPU][1], 32.768, 1e-9);
        ASSERT_NEAR(m.lat_ns[SPM_ACC_CPU][1], 500, 1e-9);
        ASSERT_EQ_U(m.capacity[1], 786432ULL * 1024);
        ASSERT_EQ_U(m.granule, 2 * MiB);
        /* The slow node costs the CPU more per access: the engine has a reason to promote. */
        ASSERT_TRUE(spm_machine_access_ns(&m, SPM_ACC_CPU, 1) >
                    2 * spm_machine_access_ns(&m, SPM_ACC_CPU, 0));
        fake_tree_free(root);
}

TEST(overrides) {
        char *root = qemu_tree();
        struct spm_topology t;
        struct spm_topology_overrides o;
        struct spm_machine m;
        int loc_node[SPM_MAX_LOCS];

        ASSERT_OK(spm_topology_read(root, &t));
        spm_topology_overrides_init(&o);
        o.name = "vm";
        o.capacity[0] = 24 * MiB;
        o.granule = 1 * MiB;
        o.migrate_gbps = 1.5;
        o.epoch_usec = 500000;
        ASSERT_OK(spm_topology_to_machine(&t, &o, &m, loc_node));
        ASSERT_STREQ(m.name, "vm");
        ASSERT_EQ_U(m.capacity[0], 24 * MiB);
        ASSERT_EQ_U(m.capacity[1], 786432ULL * 1024);
        ASSERT_EQ_U(m.granule, 1 * MiB);
        ASSERT_NEAR(m.migrate_gbps, 1.5, 0);
        ASSERT_NEAR(m.epoch_usec, 500000, 0);

        o.fast_node = 1;
        ASSERT_OK(spm_topology_to_machine(&t, &o, &m, loc_node));
        ASSERT_EQ(m.home[SPM_ACC_CPU], 0);
        ASSERT_EQ(loc_node[0], 1);
        ASSERT_EQ(loc_node[1], 0);
        ASSERT_EQ_U(m.capacity[1], 24 * MiB); /* overrides follow the node, not the index */
        o.fast_node = 7;
        ASSERT_ERROR(spm_topology_to_machine(&t, &o, &m, loc_node), ENOENT);
        o.fast_node = -1;
        o.granule = 3000; /* not a power of two: the machine does not validate */
        ASSERT_ERROR(spm_topology_to_machine(&t, &o, &m, loc_node), EINVAL);
        fake_tree_free(root);
}

TEST(cpuless_hbm_node_is_fast) {
        /* MI300A-like: a CPU-less node with more bandwidth than the CPU's DDR node is where
         * CPU-hot data belongs; HMAT decides, not which node has CPUs. */
        char *root = fake_tree_new();
        struct spm_topology t;
        struct spm_machine m;
        int loc_node[SPM_MAX_LOCS];

        add_node(root, &(struct fake_node) { 0, "0-7\n", 1 << 20, "10 12\n", 120, 80000 });
        add_node(root, &(struct fake_node) { 2, "\n", 1 << 20, "12 10\n", 250, 400000 });
        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_FALSE(t.have_tiers);
        ASSERT_EQ(spm_topology_node(&t, 2)->tier, -1);
        ASSERT_EQ(spm_topology_fast_node(&t), 2);
        ASSERT_OK(spm_topology_to_machine(&t, NULL, &m, loc_node));
        /* The fast node comes first: location 0 is where the engine puts CPU-hot data. */
        ASSERT_EQ(loc_node[0], 2);
        ASSERT_EQ(loc_node[1], 0);
        ASSERT_EQ(m.home[SPM_ACC_CPU], 0);
        ASSERT_NEAR(m.bw_gbps[SPM_ACC_CPU][0], 400.0, 1e-9);
        fake_tree_free(root);
}

TEST(no_hmat_uses_tiers_then_distance) {
        char *root = fake_tree_new();
        struct spm_topology t;
        struct spm_machine m;
        int loc_node[SPM_MAX_LOCS];

        /* Node 0 has no memory (a CPU-only node) and is no location. */
        add_node(root, &(struct fake_node) { 0, "0-3\n", 0, "10 20 30\n", 0, 0 });
        add_node(root, &(struct fake_node) { 1, "4-7\n", 1 << 20, "20 10 20\n", 0, 0 });
        add_node(root, &(struct fake_node) { 2, "\n", 1 << 20, "30 20 10\n", 0, 0 });
        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_FALSE(spm_topology_node(&t, 0)->has_memory);
        ASSERT_FALSE(spm_topology_node(&t, 1)->access0.present);
        /* No HMAT, no tiers: the lowest memory node with CPUs. */
        ASSERT_EQ(spm_topology_fast_node(&t), 1);
        ASSERT_OK(spm_topology_to_machine(&t, NULL, &m, loc_node));
        ASSERT_EQ(m.n_locs, 2);
        ASSERT_EQ(loc_node[0], 1);
        ASSERT_EQ(loc_node[1], 2);
        ASSERT_EQ(m.home[SPM_ACC_CPU], 0);
        /* Assumed figures scaled by distance from the fast node: 20 halves the bandwidth. */
        ASSERT_NEAR(m.bw_gbps[SPM_ACC_CPU][0], 50.0, 1e-9);
        ASSERT_NEAR(m.bw_gbps[SPM_ACC_CPU][1], 25.0, 1e-9);
        ASSERT_NEAR(m.lat_ns[SPM_ACC_CPU][1], 200.0, 1e-9);

        /* With tiers, the lower tier wins even over a node with CPUs. */
        fake_file(root, "2\n", "devices/virtual/memory_tiering/memory_tier3/nodelist");
        fake_file(root, "1\n", "devices/virtual/memory_tiering/memory_tier4/nodelist");
        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_EQ(spm_topology_fast_node(&t), 2);
        fake_tree_free(root);
}

TEST(hmat_zeros_are_absent) {
        /* hmat=on without hmat-lb lines: access0 exists but every value is 0 (qemu-numa.md). */
        char *root = qemu_tree();
        struct spm_topology t;

        fake_file(root, "0\n", NODE "/node1/access0/initiators/read_latency");
        fake_file(root, "0\n", NODE "/node1/access0/initiators/read_bandwidth");
        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_FALSE(spm_topology_node(&t, 1)->access0.present);
        ASSERT_TRUE(spm_topology_node(&t, 0)->access0.present);
        ASSERT_EQ(spm_topology_fast_node(&t), 0);
        fake_tree_free(root);
}

TEST(bad_trees) {
        struct spm_topology t;
        struct spm_machine m;
        int loc_node[SPM_MAX_LOCS];
        char *root = fake_tree_new();

        t.n_nodes = 12345; /* ret untouched on failure */
        ASSERT_ERROR(spm_topology_read(root, &t), ENOENT);
        fake_mkdir_p(root);
        fake_file(root, "", NODE "/online");
        ASSERT_ERROR(spm_topology_read(root, &t), ENOENT); /* a node dir, but no node */
        ASSERT_EQ(t.n_nodes, 12345);

        add_node(root, &(struct fake_node) { 0, "0-x\n", 1024, NULL, 0, 0 });
        ASSERT_ERROR(spm_topology_read(root, &t), EBADMSG);
        add_node(root, &(struct fake_node) { 0, "0\n", 1024, NULL, 0, 0 });
        fake_file(root, "Node 0 MemFree: 3 kB\n", NODE "/node0/meminfo");
        ASSERT_ERROR(spm_topology_read(root, &t), EBADMSG);
        add_node(root, &(struct fake_node) { 0, "0\n", 1024, NULL, 0, 0 });
        fake_file(root, "fast\n", NODE "/node0/access0/initiators/read_latency");
        fake_file(root, "1\n", NODE "/node0/access0/initiators/write_latency");
        fake_file(root, "1\n", NODE "/node0/access0/initiators/read_bandwidth");
        fake_file(root, "1\n", NODE "/node0/access0/initiators/write_bandwidth");
        ASSERT_ERROR(spm_topology_read(root, &t), EBADMSG);
        fake_file(root, "3\n", NODE "/node0/access0/initiators/read_latency");
        fake_file(root, "x\n", "devices/virtual/memory_tiering/memory_tier4/nodelist");
        ASSERT_ERROR(spm_topology_read(root, &t), EBADMSG);
        fake_file(root, "0\n", "devices/virtual/memory_tiering/memory_tier4/nodelist");
        ASSERT_OK(spm_topology_read(root, &t));
        fake_tree_free(root);

        /* More memory nodes than the engine has locations. */
        root = fake_tree_new();
        for (int i = 0; i < SPM_MAX_LOCS + 1; i++)
                add_node(root, &(struct fake_node) { i, i ? "\n" : "0\n", 1024, NULL, 0, 0 });
        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_EQ(t.n_nodes, SPM_MAX_LOCS + 1);
        ASSERT_ERROR(spm_topology_to_machine(&t, NULL, &m, loc_node), E2BIG);
        fake_tree_free(root);

        /* No memory anywhere. */
        root = fake_tree_new();
        add_node(root, &(struct fake_node) { 0, "0\n", 0, NULL, 0, 0 });
        ASSERT_OK(spm_topology_read(root, &t));
        ASSERT_ERROR(spm_topology_fast_node(&t), ENOENT);
        ASSERT_ERROR(spm_topology_to_machine(&t, NULL, &m, loc_node), ENOENT);
        fake_tree_free(root);
}

TEST(this_host) {
        /* The real /sys parses (whatever it shows); a host without NUMA sysfs is fine too. */
        struct spm_topology t;
        int r = spm_topology_read(NULL, &t);

        ASSERT_TRUE(r == 0 || r == -ENOENT);
        if (r == 0) {
                ASSERT_GE(t.n_nodes, 1);
                printf("host: %u node(s), fast node %d\n", t.n_nodes, spm_topology_fast_node(&t));
        }
}

TEST_MAIN()
