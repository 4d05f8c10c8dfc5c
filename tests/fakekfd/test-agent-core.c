/* SPDX-License-Identifier: GPL-2.0-or-later */
/* agent-core on the fake KFD: GPU naming from sysfs, maps parsing, verified moves. */
#include <stdarg.h>

#include "agent-core.h"
#include "spmtier/macro.h"
#include "fk.h"

static const char CONF[] =
        "gpus=2\n"
        "gpu_id.0=0x2d5b\n"
        "gpu_id.1=0x9c01\n"
        "vram=32M\n"
        "memory=coherent\n";

static struct spm_agent_topology topo;

static void setup(void) {
        fk_init(CONF);
        if (topo.n_nodes == 0)
                ASSERT_EQ(spm_agent_topology_read(fk_root, &topo), 0);
}

TEST(topology_by_gpu_id) {
        setup();
        HsaSystemProperties sp;
        ASSERT_EQ(hsaKmtAcquireSystemProperties(&sp), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(topo.n_nodes, sp.NumNodes);
        ASSERT_EQ(topo.n_gpus, 2);
        ASSERT_EQ(spm_agent_node_of(&topo, 0x2d5b), 1);
        ASSERT_EQ(spm_agent_node_of(&topo, 0x9c01), 2);
        ASSERT_EQ(spm_agent_node_of(&topo, 0), 0);
        ASSERT_EQ(spm_agent_node_of(&topo, 0x1234), -ENODEV);
        struct spm_agent_topology t;
        ASSERT_EQ(spm_agent_topology_read("/nonexistent", &t), -ENOENT);
}

TEST(parse_maps_keeps_migratable) {
        static const char text[] =
                "55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]\n"
                "7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n"
                "7f0000200000-7f0000400000 rw-p 00000000 00:00 0 \n"
                "7f0000400000-7f0000401000 ---p 00000000 00:00 0 \n"
                "7f0000401000-7f0000500000 r--p 00000000 08:01 1234                       /usr/lib/libfoo.so\n"
                "7f0000500000-7f0000600000 rw-s 00000000 00:05 99                         /dev/kfd\n"
                "7f0000600000-7f0000700000 rw-p 00000000 00:05 98                         /dev/dri/renderD128\n"
                "7f0000700000-7f0000800000 rw-s 00000000 00:01 77                         /SYSV00000000 (deleted)\n"
                "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n"
                "7ffc00100000-7ffc00102000 r--p 00000000 00:00 0                          [vvar]\n"
                "7ffc00102000-7ffc00104000 r-xp 00000000 00:00 0                          [vdso]\n";
        FILE *f = fmemopen((void *) text, sizeof(text) - 1, "r");
        struct spm_agent_range v[8];
        bool more = true;
        ASSERT_EQ(spm_agent_parse_maps(f, v, 8, &more), 3);
        fclose(f);
        ASSERT_FALSE(more);
        ASSERT_TRUE(v[0].heap);
        ASSERT_EQ_U(v[1].start, 0x7f0000000000ULL); /* two adjacent anonymous maps merged */
        ASSERT_EQ_U(v[1].end, 0x7f0000400000ULL);
        ASSERT_TRUE(v[2].file);
        f = fmemopen((void *) text, sizeof(text) - 1, "r");
        ASSERT_EQ(spm_agent_parse_maps(f, v, 1, &more), 1);
        ASSERT_TRUE(more);
        fclose(f);
        static const char bad[] = "not a maps line\n";
        f = fmemopen((void *) bad, sizeof(bad) - 1, "r");
        ASSERT_EQ(spm_agent_parse_maps(f, v, 8, &more), -EINVAL);
        fclose(f);
        /* Our own process: a fresh anonymous mapping is found. */
        char *p = fk_map(3 * MiB);
        f = fopen("/proc/self/maps", "re");
        ASSERT_NOT_NULL(f);
        static struct spm_agent_range all[4096];
        int n = spm_agent_parse_maps(f, all, 4096, &more);
        fclose(f);
        ASSERT_GT(n, 0);
        bool found = false;
        for (int i = 0; i < n; i++)
                found |= all[i].start <= (uintptr_t) p && (uintptr_t) p + 3 * MiB <= all[i].end;
        ASSERT_TRUE(found);
        ASSERT_EQ(fk.munmap(p, 3 * MiB), 0);
}

TEST(promote_demote_verified) {
        setup();
        char *p = fk_map(4 * MiB);
        struct spm_agent_move m = { .start = (uintptr_t) p + 100, .length = 4 * MiB - 100,
                                    .to_gpu_id = 0x9c01, .access_gpu_id = 0x9c01 };
        struct spm_agent_outcome o;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ(o.status, 0);
        ASSERT_EQ_U(o.moved_bytes, 4 * MiB);
        ASSERT_EQ_U(o.preferred_gpu_id, 0x9c01);
        ASSERT_EQ_U(o.prefetch_gpu_id, 0x9c01);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 2), 1024);
        ASSERT_EQ_U(fk_get1(p, 4 * MiB, HSA_SVM_ATTR_ACCESS, 2), HSA_SVM_ATTR_ACCESS);
        /* Demote: RAM, and preferred RAM so GPU faults leave it there. */
        m.to_gpu_id = 0;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ(o.status, 0);
        ASSERT_EQ_U(o.moved_bytes, 4 * MiB);
        ASSERT_EQ_U(o.preferred_gpu_id, 0);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 0), 1024);
        /* Bad commands. */
        m.to_gpu_id = 0x7777;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), -ENODEV);
        m.to_gpu_id = 0x9c01;
        m.length = 0;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), -EINVAL);
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
        /* An unmapped span: the kernel refuses (-EFAULT, seen as -EIO through the thunk). */
        m.length = 4 * MiB;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ(o.status, -EIO);
        ASSERT_EQ_U(o.moved_bytes, 0);
}

TEST(home_unpinned_and_pin_only) {
        setup();
        char *p = fk_map(4 * MiB);
        struct spm_agent_move m = { .start = (uintptr_t) p, .length = 4 * MiB, .to_gpu_id = 0x9c01,
                                    .access_gpu_id = 0x9c01 };
        struct spm_agent_outcome o;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 2), 1024);
        /* Home without a pin: in RAM, PREFERRED_LOC undefined again. */
        m.to_gpu_id = 0;
        m.preferred = SPM_AGENT_PREFER_NONE;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ(o.status, 0);
        ASSERT_EQ_U(o.preferred_gpu_id, UINT32_MAX);
        ASSERT_EQ_U(o.prefetch_gpu_id, 0);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 0), 1024);
        ASSERT_EQ_U(fk_get1(p, 4 * MiB, HSA_SVM_ATTR_PREFERRED_LOC, 0), INVALID_NODEID);
        /* Pin only: PREFERRED_LOC set to the GPU, nothing moves. */
        m.to_gpu_id = 0x9c01;
        m.preferred = SPM_AGENT_PREFER_TARGET;
        m.pin_only = true;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ(o.status, 0);
        ASSERT_EQ_U(o.moved_bytes, 0);
        ASSERT_EQ_U(o.preferred_gpu_id, 0x9c01);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 0), 1024);
        ASSERT_EQ_U(fk_get1(p, 4 * MiB, HSA_SVM_ATTR_PREFERRED_LOC, 0), 2);
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
}

TEST(vram_full_promotion_is_detected) {
        setup();
        int bo = fk.vram_alloc(1, 30 * MiB);
        ASSERT_GT(bo, 0);
        char *p = fk_map(4 * MiB);
        struct spm_agent_move m = { .start = (uintptr_t) p, .length = 4 * MiB, .to_gpu_id = 0x2d5b,
                                    .access_gpu_id = 0x2d5b };
        struct spm_agent_outcome o;
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ(o.status, 0);        /* the SET "succeeded"... */
        ASSERT_EQ_U(o.moved_bytes, 0); /* ...and nothing moved */
        ASSERT_EQ_U(o.prefetch_gpu_id, 0x2d5b);
        ASSERT_EQ(fk.vram_free(bo), 0);
        ASSERT_EQ(spm_agent_move(&topo, fk_root, &m, &o), 0);
        ASSERT_EQ_U(o.moved_bytes, 4 * MiB);
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
}

TEST(errno_mapping) {
        ASSERT_EQ(spm_agent_errno(HSAKMT_STATUS_SUCCESS), 0);
        ASSERT_EQ(spm_agent_errno(HSAKMT_STATUS_ERROR), -EIO);
        ASSERT_EQ(spm_agent_errno(HSAKMT_STATUS_INVALID_NODE_UNIT), -ENODEV);
        ASSERT_EQ(spm_agent_errno(HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED), -EBADF);
        ASSERT_EQ(spm_agent_errno(HSAKMT_STATUS_NOT_SUPPORTED), -EOPNOTSUPP);
}

TEST_MAIN()
