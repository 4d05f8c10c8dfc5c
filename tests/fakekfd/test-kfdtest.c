/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kfdtest's KFDSVMRangeTest cases (reference/kfd-svm.md §7) that the model can express, through
 * the hsaKmt API of the fake libhsakmt. Node: 2 GPUs (HSA nodes 1 and 2), coherent VRAM of
 * 256 MiB each, one hive, XNACK off by default. Like kfdtest, the XNACK-dependent cases run in
 * both modes.
 */
#include <stdarg.h>
#include <sys/socket.h>

#include "spmtier/macro.h"
#include "fk.h"

static const char CONF[] =
        "# conformance node\n"
        "gpus=2\n"
        "vram=256M\n"
        "memory=coherent\n"
        "xnack=0\n"
        "smi_fifo=1024\n";

static void xnack(int on) {
        HSAint32 x = -1;
        ASSERT_EQ(hsaKmtSetXNACKMode(on), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(hsaKmtGetXNACKMode(&x), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(x, on);
}

TEST(SetGetAttributes) {
        fk_init(CONF);
        for (int x = 0; x < 2; x++) {
                xnack(x);
                size_t len = 16 * PAGE;
                char *p = fk_map(len);
                HSA_SVM_ATTRIBUTE out[] = {
                        { HSA_SVM_ATTR_PREFERRED_LOC, 0 }, { HSA_SVM_ATTR_PREFETCH_LOC, 0 },
                        { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_SET_FLAGS, 0 },
                        { HSA_SVM_ATTR_GRANULARITY, 0 },
                };
                ASSERT_EQ(hsaKmtSVMGetAttr(p, len, 5, out), HSAKMT_STATUS_SUCCESS);
                ASSERT_EQ_U(out[0].value, INVALID_NODEID);
                ASSERT_EQ_U(out[1].value, INVALID_NODEID);
                ASSERT_EQ_U(out[2].type, x ? HSA_SVM_ATTR_ACCESS : HSA_SVM_ATTR_NO_ACCESS);
                ASSERT_EQ_U(out[2].value, 1); /* node id again, not the gpu_id */
                ASSERT_EQ_U(out[3].value, HSA_SVM_FLAG_HOST_ACCESS | HSA_SVM_FLAG_COHERENT);
                ASSERT_EQ_U(out[4].value, 9);

                HSA_SVM_ATTRIBUTE in[] = {
                        { HSA_SVM_ATTR_PREFERRED_LOC, 2 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 },
                        { HSA_SVM_ATTR_ACCESS_IN_PLACE, 1 }, { HSA_SVM_ATTR_ACCESS, 2 },
                        { HSA_SVM_ATTR_SET_FLAGS, HSA_SVM_FLAG_GPU_RO },
                        { HSA_SVM_ATTR_CLR_FLAGS, HSA_SVM_FLAG_HOST_ACCESS },
                        { HSA_SVM_ATTR_GRANULARITY, 0x3F },
                };
                ASSERT_EQ(hsaKmtSVMSetAttr(p, len, ELEMENTSOF(in), in), HSAKMT_STATUS_SUCCESS);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_PREFERRED_LOC, 0), 2);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_PREFETCH_LOC, 0), 1);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_ACCESS, 1), HSA_SVM_ATTR_ACCESS_IN_PLACE);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_ACCESS, 2), HSA_SVM_ATTR_ACCESS);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_SET_FLAGS, 0), HSA_SVM_FLAG_COHERENT | HSA_SVM_FLAG_GPU_RO);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_GRANULARITY, 0), 0x3F);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_PREFERRED_LOC, 0), 2);
                /* PREFERRED_LOC INVALID_NODEID means "don't care" again. */
                ASSERT_EQ(fk_set1(p, len, HSA_SVM_ATTR_PREFERRED_LOC, INVALID_NODEID), HSAKMT_STATUS_SUCCESS);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_PREFERRED_LOC, 0), INVALID_NODEID);
                ASSERT_EQ(fk.munmap(p, len), 0);
        }
        xnack(0);
}

TEST(InvalidRange) {
        fk_init(CONF);
        char *p = fk_map(4 * PAGE);
        HSA_SVM_ATTRIBUTE a = { HSA_SVM_ATTR_PREFERRED_LOC, 0 };
        /* Thunk-level checks. */
        ASSERT_EQ(hsaKmtSVMSetAttr(NULL, PAGE, 1, &a), HSAKMT_STATUS_INVALID_PARAMETER);
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 0, 1, &a), HSAKMT_STATUS_INVALID_PARAMETER);
        ASSERT_EQ(hsaKmtSVMSetAttr(p + 1, PAGE, 1, &a), HSAKMT_STATUS_INVALID_PARAMETER);
        ASSERT_EQ(hsaKmtSVMSetAttr(p, PAGE + 1, 1, &a), HSAKMT_STATUS_INVALID_PARAMETER);
        ASSERT_EQ(fk_set1(p, PAGE, HSA_SVM_ATTR_ACCESS, 7), HSAKMT_STATUS_INVALID_NODE_UNIT);
        ASSERT_EQ(fk_set1(p, PAGE, HSA_SVM_ATTR_ACCESS, 0), HSAKMT_STATUS_INVALID_NODE_UNIT); /* CPU */
        ASSERT_EQ(fk_set1(p, PAGE, HSA_SVM_ATTR_PREFETCH_LOC, INVALID_NODEID), HSAKMT_STATUS_INVALID_NODE_UNIT);
        /* Kernel-level errors all come back as ERROR: an unknown attribute... */
        ASSERT_EQ(fk_set1(p, PAGE, 8, 0), HSAKMT_STATUS_ERROR);
        /* ...GET with an in-place query type... */
        HSA_SVM_ATTRIBUTE q = { HSA_SVM_ATTR_ACCESS_IN_PLACE, 1 };
        ASSERT_EQ(hsaKmtSVMGetAttr(p, PAGE, 1, &q), HSAKMT_STATUS_ERROR);
        /* ...an unmapped VA (kfdtest InvalidRangeTest), and a span running past the mapping. */
        ASSERT_EQ(munmap(p, 4 * PAGE), 0);
        ASSERT_EQ(fk_set1(p, 4 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), HSAKMT_STATUS_ERROR);
        p = fk_map(4 * PAGE);
        ASSERT_EQ(fk_set1(p, 4 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk.munmap(p + 2 * PAGE, 2 * PAGE), 0);
        ASSERT_EQ(fk_set1(p, 4 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), HSAKMT_STATUS_ERROR);
        /* A hipMalloc'd BO's VA is not SVM (-EADDRINUSE). */
        char *bo = fk_map(2 * PAGE);
        ASSERT_EQ(fk.register_bo(bo, 2 * PAGE), 0);
        ASSERT_EQ(fk_set1(bo, 2 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), HSAKMT_STATUS_ERROR);
        ASSERT_EQ(fk.munmap(bo, 2 * PAGE), 0);
        ASSERT_EQ(fk.munmap(p, 2 * PAGE), 0);
}

/* The eight overlap shapes of kfdtest SplitSystemRangeTest/SplitVramRangeTest: range A
 * [a0, a1) and range B [b0, b1) with different preferred locations, in pages of a 64-page map. */
TEST(SplitRange) {
        static const struct { unsigned a0, a1, b0, b1; } cases[] = {
                { 0, 64, 16, 32 },  /* B inside A */
                { 16, 48, 0, 32 },  /* B over A's head */
                { 0, 32, 16, 48 },  /* B over A's tail */
                { 16, 32, 0, 64 },  /* B a superset of A */
                { 0, 16, 32, 48 },  /* disjoint */
                { 0, 32, 0, 32 },   /* identical */
                { 0, 32, 0, 16 },   /* same start */
                { 0, 32, 16, 32 },  /* same end */
        };
        fk_init(CONF);
        for (int vram = 0; vram < 2; vram++)
                for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                        char *p = fk_map(64 * PAGE);
                        char *a = p + cases[c].a0 * PAGE, *b = p + cases[c].b0 * PAGE;
                        size_t al = (cases[c].a1 - cases[c].a0) * PAGE, bl = (cases[c].b1 - cases[c].b0) * PAGE;
                        HSA_SVM_ATTRIBUTE ra[] = { { HSA_SVM_ATTR_PREFERRED_LOC, 1 },
                                                   { HSA_SVM_ATTR_PREFETCH_LOC, vram ? 1 : 0 },
                                                   { HSA_SVM_ATTR_ACCESS, 1 } };
                        HSA_SVM_ATTRIBUTE rb[] = { { HSA_SVM_ATTR_PREFERRED_LOC, 2 },
                                                   { HSA_SVM_ATTR_PREFETCH_LOC, vram ? 2 : 0 },
                                                   { HSA_SVM_ATTR_ACCESS, 2 } };
                        ASSERT_EQ(hsaKmtSVMSetAttr(a, al, 3, ra), HSAKMT_STATUS_SUCCESS);
                        ASSERT_EQ(hsaKmtSVMSetAttr(b, bl, 3, rb), HSAKMT_STATUS_SUCCESS);
                        /* Page by page, B wins where it was set, A elsewhere inside A. */
                        for (unsigned pg = 0; pg < 64; pg++) {
                                bool in_a = pg >= cases[c].a0 && pg < cases[c].a1;
                                bool in_b = pg >= cases[c].b0 && pg < cases[c].b1;
                                uint32_t want = in_b ? 2 : in_a ? 1 : INVALID_NODEID;
                                ASSERT_EQ_U(fk_get1(p + pg * PAGE, PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), want);
                                if (vram && (in_a || in_b))
                                        ASSERT_EQ_U(fk_resident(p + pg * PAGE, PAGE, want), 1);
                                /* Access of A's GPU survives where only A applies. */
                                ASSERT_EQ_U(fk_get1(p + pg * PAGE, PAGE, HSA_SVM_ATTR_ACCESS, 1),
                                            in_a ? HSA_SVM_ATTR_ACCESS : HSA_SVM_ATTR_NO_ACCESS);
                        }
                        /* The whole map spans both values: the intersection is undefined. */
                        uint32_t whole = fk_get1(p, 64 * PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0);
                        bool b_covers_a = cases[c].b0 <= cases[c].a0 && cases[c].b1 >= cases[c].a1;
                        ASSERT_EQ_U(whole, b_covers_a ? 2 : INVALID_NODEID);
                        ASSERT_EQ(fk.munmap(p, 64 * PAGE), 0); /* unmap before unregister */
                }
}

TEST(PartialUnmapSysMem) {
        fk_init(CONF);
        char *p = fk_map(4 * MiB);
        ASSERT_EQ(fk_set1(p, 4 * MiB, HSA_SVM_ATTR_ACCESS, 1), HSAKMT_STATUS_SUCCESS);
        /* A plain munmap: the fake notices on its next call, like the MMU notifier. */
        ASSERT_EQ(munmap(p + MiB, MiB), 0);
        ASSERT_EQ_U(fk_get1(p, MiB, HSA_SVM_ATTR_ACCESS, 1), HSA_SVM_ATTR_ACCESS);
        ASSERT_EQ_U(fk_get1(p + 2 * MiB, 2 * MiB, HSA_SVM_ATTR_ACCESS, 1), HSA_SVM_ATTR_ACCESS);
        HSA_SVM_ATTRIBUTE a = { HSA_SVM_ATTR_ACCESS, 1 };
        ASSERT_EQ(hsaKmtSVMGetAttr(p + MiB, MiB, 1, &a), HSAKMT_STATUS_ERROR);
        /* The remainder stays usable by the GPU (XNACK off: mapped, no fault). */
        struct fakekfd_result r;
        ASSERT_EQ(fk.gpu_access(1, p, MiB, 1, &r), 0);
        ASSERT_EQ_U(r.pages_at[0], MiB / PAGE);
        ASSERT_EQ(fk.gpu_access(1, p + 3 * MiB, MiB, 0, &r), 0);
        ASSERT_EQ(fk.munmap(p, MiB), 0);
        ASSERT_EQ(fk.munmap(p + 2 * MiB, 2 * MiB), 0);
}

TEST(Prefetch) {
        fk_init(CONF);
        char *p = fk_map(2 * MiB);
        ASSERT_EQ(fk_set1(p, 2 * MiB, HSA_SVM_ATTR_ACCESS, 1), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk_set1(p, MiB, HSA_SVM_ATTR_PREFETCH_LOC, 1), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_get1(p, MiB, HSA_SVM_ATTR_PREFETCH_LOC, 0), 1);
        ASSERT_EQ_U(fk_get1(p, 2 * MiB, HSA_SVM_ATTR_PREFETCH_LOC, 0), INVALID_NODEID);
        ASSERT_EQ_U(fk_resident(p, 2 * MiB, 1), MiB / PAGE);
        /* GET on a freed range fails. */
        ASSERT_EQ(fk.munmap(p, 2 * MiB), 0);
        HSA_SVM_ATTRIBUTE a = { HSA_SVM_ATTR_PREFETCH_LOC, 0 };
        ASSERT_EQ(hsaKmtSVMGetAttr(p, 2 * MiB, 1, &a), HSAKMT_STATUS_ERROR);
}

TEST(MigrateAccessInPlace_CoherentCpu) {
        fk_init(CONF);
        char *p = fk_map(4 * MiB);
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS_IN_PLACE, 1 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 4 * MiB, 2, a), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 1), 1024);
        /* DEVICE_COHERENT: the CPU writes VRAM in place, nothing moves. */
        struct fakekfd_result r;
        ASSERT_EQ(fk.cpu_access(p + 5 * PAGE, PAGE, 1, &r), 0);
        ASSERT_EQ_U(r.faults, 0);
        ASSERT_EQ_U(r.pages_at[1], 1);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 1), 1024);
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
}

TEST(ReadOnlyRange) {
        fk_init(CONF);
        for (int x = 0; x < 2; x++) {
                xnack(x);
                char *p = fk_map(2 * MiB);
                ASSERT_EQ(fk_set1(p, 2 * MiB, HSA_SVM_ATTR_ACCESS, 1), HSAKMT_STATUS_SUCCESS);
                ASSERT_EQ(mprotect(p, 2 * MiB, PROT_READ), 0);
                struct fakekfd_result r;
                ASSERT_EQ(fk.gpu_access(1, p, PAGE, 0, &r), 0); /* SDMA read works */
                ASSERT_FALSE(r.fatal);
                ASSERT_EQ(fk.gpu_access(1, p + PAGE, PAGE, 1, &r), -EFAULT); /* a write faults */
                ASSERT_TRUE(r.fatal);
                ASSERT_EQ(fk.munmap(p, 2 * MiB), 0);
        }
        xnack(0);
}

TEST(MultiGPUMigration) {
        fk_init(CONF);
        uint32_t g1 = fk_gpu_id(1), g2 = fk_gpu_id(2);
        int fd = -1;
        ASSERT_EQ(fk.smi_open(g1, KFD_EV_MASK(KFD_EV_MIGRATE_START), 0, &fd), 0);
        char *p = fk_map(4 * MiB);
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_ACCESS, 2 },
                                  { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 4 * MiB, 3, a), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 1), 1024);
        ASSERT_EQ(fk_set1(p, 4 * MiB, HSA_SVM_ATTR_PREFETCH_LOC, 2), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 2), 1024);
        /* GPU to GPU goes through system memory: gpu1 -> 0 shows on gpu1's stream. */
        char buf[1024], want[48];
        fk_smi_drain(fd, buf, sizeof(buf), 4096);
        snprintf(want, sizeof(want), " %x->0 ", g1);
        ASSERT_TRUE(strstr(buf, want) != NULL);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", getpid(), g1), 0);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", getpid(), g2), (long long) (4 * MiB));
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
        close(fd);
}

TEST(MigrateLargeBuf) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        size_t len = 192 * MiB; /* 3/4 of VRAM, both ways, granularity 30 */
        char *p = fk_map(len);
        long long in0 = fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu);
        long long out0 = fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_out", getpid(), gpu);
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_GRANULARITY, 30 }, { HSA_SVM_ATTR_ACCESS, 1 },
                                  { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        ASSERT_EQ(hsaKmtSVMSetAttr(p, len, 3, a), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_resident(p, len, 1), len / PAGE);
        ASSERT_EQ(fk_set1(p, len, HSA_SVM_ATTR_PREFETCH_LOC, 0), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_resident(p, len, 0), len / PAGE);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu), in0 + (long long) (len / PAGE));
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_out", getpid(), gpu), out0 + (long long) (len / PAGE));
        ASSERT_EQ(fk.munmap(p, len), 0);
}

TEST(PrefaultPartialRange) {
        fk_init(CONF);
        char *p = fk_map(4 * PAGE);
        p[0] = 1; /* two pages touched by the CPU, two never */
        p[2 * PAGE] = 1;
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 4 * PAGE, 2, a), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ_U(fk_resident(p, 4 * PAGE, 1), 4);
        struct fakekfd_result r;
        ASSERT_EQ(fk.gpu_access(1, p, 4 * PAGE, 1, &r), 0); /* SDMA fill: all four mapped */
        ASSERT_EQ_U(r.pages_at[1], 4);
        ASSERT_EQ(fk.munmap(p, 4 * PAGE), 0);
}

TEST(HMMProfilingEvent) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        int fd = -1;
        uint64_t mask = KFD_EV_MASK(KFD_EV_MIGRATE_START) | KFD_EV_MASK(KFD_EV_MIGRATE_END) |
                        KFD_EV_MASK(KFD_EV_PAGE_FAULT_START) | KFD_EV_MASK(KFD_EV_PAGE_FAULT_END);
        ASSERT_EQ(fk.smi_open(gpu, mask, 0, &fd), 0);
        char buf[2048];
        ASSERT_EQ(fk_smi_drain(fd, buf, sizeof(buf), 64), 0); /* EAGAIN when empty */

        char *p = fk_map(2 * MiB);
        ASSERT_EQ(fk_set1(p, 2 * MiB, HSA_SVM_ATTR_PREFETCH_LOC, 1), HSAKMT_STATUS_SUCCESS);
        fk_smi_drain(fd, buf, sizeof(buf), 4096);
        /* kfdtest: MIGRATE_START carries pid, address and size in pages, trigger PREFETCH. */
        unsigned id, from, to, pf, pref;
        long long ns;
        int pid, trig;
        unsigned long addr, npages;
        ASSERT_EQ(sscanf(buf, "%x %lld -%d @%lx(%lx) %x->%x %x:%x %d", &id, &ns, &pid, &addr, &npages,
                         &from, &to, &pf, &pref, &trig), 10);
        ASSERT_EQ(id, KFD_EV_MIGRATE_START);
        ASSERT_EQ(pid, getpid());
        ASSERT_EQ_U(addr << 12, (uintptr_t) p);
        ASSERT_EQ_U(npages << 12, 2 * MiB);
        ASSERT_EQ(from, 0);
        ASSERT_EQ(to, gpu);
        ASSERT_EQ(pf, gpu);
        ASSERT_EQ(pref, 0xffffffffu);
        ASSERT_EQ(trig, KFD_MIG_PREFETCH);
        /* boottime ns: not before the process started, not after now. */
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        ASSERT_TRUE(ns > 0 && ns <= (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
        const char *end = strchr(buf, '\n') + 1;
        ASSERT_EQ(sscanf(end, "%x %lld -%d @%lx(%lx) %x->%x %d", &id, &ns, &pid, &addr, &npages, &from, &to, &trig), 8);
        ASSERT_EQ(id, KFD_EV_MIGRATE_END);
        ASSERT_EQ(fk_count_lines(buf, "5 "), 1);
        ASSERT_EQ(fk_count_lines(buf, "6 "), 1);

        /* A GPU fault with XNACK on: 7 ... W, MIGRATE with trigger PAGEFAULT_GPU, 8 ... M. */
        xnack(1);
        char *q = fk_map(2 * MiB);
        ASSERT_EQ(fk_set1(q, 2 * MiB, HSA_SVM_ATTR_GRANULARITY, 9), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk.gpu_access(1, q + PAGE, PAGE, 1, NULL), 0);
        fk_smi_drain(fd, buf, sizeof(buf), 4096);
        unsigned fgpu;
        char rw;
        ASSERT_EQ(sscanf(buf, "%x %lld -%d @%lx(%x) %c", &id, &ns, &pid, &addr, &fgpu, &rw), 6);
        ASSERT_EQ(id, KFD_EV_PAGE_FAULT_START);
        ASSERT_EQ(pid, getpid());
        ASSERT_EQ_U(addr, ((uintptr_t) q >> 12) + 1);
        ASSERT_EQ(fgpu, gpu);
        ASSERT_EQ(rw, 'W');
        ASSERT_EQ(fk_count_lines(buf, "8 "), 1);
        ASSERT_TRUE(strstr(buf, " M\n") != NULL);
        ASSERT_TRUE(strstr(buf, " 1\n") != NULL); /* MIGRATE trigger PAGEFAULT_GPU */
        xnack(0);
        ASSERT_EQ(fk.munmap(p, 2 * MiB), 0);
        ASSERT_EQ(fk.munmap(q, 2 * MiB), 0);
        close(fd);
}

TEST(XNACKMode) {
        fk_init(CONF);
        xnack(1);
        xnack(0);
        ASSERT_EQ(fk.queue_create(1), 0);
        ASSERT_EQ(hsaKmtSetXNACKMode(1), HSAKMT_STATUS_ERROR); /* -EBUSY: queues exist */
        HSAint32 x = -1;
        ASSERT_EQ(hsaKmtGetXNACKMode(&x), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(x, 0);
        ASSERT_EQ(fk.queue_destroy(1), 0);
        xnack(1);
        xnack(0);
        /* The same through the real queue API. */
        HsaQueueResource q;
        ASSERT_EQ(hsaKmtCreateQueue(2, HSA_QUEUE_COMPUTE_AQL, 100, HSA_QUEUE_PRIORITY_NORMAL, NULL, 0, NULL, &q),
                  HSAKMT_STATUS_SUCCESS);
        *q.Queue_DoorBell_aql = 1; /* harmless */
        ASSERT_EQ(hsaKmtSetXNACKMode(1), HSAKMT_STATUS_ERROR);
        ASSERT_EQ(hsaKmtCreateQueue(0, HSA_QUEUE_COMPUTE_AQL, 100, HSA_QUEUE_PRIORITY_NORMAL, NULL, 0, NULL, &q),
                  HSAKMT_STATUS_INVALID_NODE_UNIT);
        ASSERT_EQ(hsaKmtDestroyQueue(q.QueueId), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(hsaKmtDestroyQueue(q.QueueId), HSAKMT_STATUS_INVALID_HANDLE);
        xnack(1);
        xnack(0);
}

TEST(XnackOffQueueEvictionAndSysfs) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(2);
        int fd = -1;
        ASSERT_EQ(fk.smi_open(gpu, KFD_EV_MASK(KFD_EV_QUEUE_EVICTION) | KFD_EV_MASK(KFD_EV_QUEUE_RESTORE), 0, &fd), 0);
        ASSERT_EQ(fk.queue_create(2), 0);
        long long in0 = fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu);
        char *p = fk_map(4 * MiB);
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 2 }, { HSA_SVM_ATTR_PREFERRED_LOC, 2 },
                                  { HSA_SVM_ATTR_PREFETCH_LOC, 2 } };
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 4 * MiB, 3, a), HSAKMT_STATUS_SUCCESS);
        char buf[1024];
        fk_smi_drain(fd, buf, sizeof(buf), 4096);
        unsigned id, egpu;
        long long ns;
        int pid, trig;
        ASSERT_EQ(sscanf(buf, "%x %lld -%d %x %d", &id, &ns, &pid, &egpu, &trig), 5);
        ASSERT_EQ(id, KFD_EV_QUEUE_EVICTION);
        ASSERT_EQ(pid, getpid());
        ASSERT_EQ(egpu, gpu);
        ASSERT_EQ(trig, KFD_QEV_SVM);
        ASSERT_EQ(fk_count_lines(buf, "a "), 1);
        /* The counters the driver publishes. */
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu), in0 + 1024);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", getpid(), gpu), (long long) (4 * MiB));
        ASSERT_EQ(fk_read("sys/class/drm/card1/device/mem_info_vram_used"), (long long) (4 * MiB));
        ASSERT_EQ(fk_read("sys/class/drm/card1/device/mem_info_vram_total"), (long long) (256 * MiB));
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/stats_%u/evicted_ms", getpid(), gpu), 1);
        ASSERT_EQ(fk.queue_destroy(2), 0);
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", getpid(), gpu), 0);
        close(fd);
}

static void child_uses_parent_fd(void *arg) {
        char *p = arg;
        int parent_fd = fk.kfd_fd();
        uint32_t attr[2] = { HSA_SVM_ATTR_PREFERRED_LOC, 0 };
        /* The library knows it was forked; the raw ioctl on the parent's fd is -EBADF. */
        if (fk_set1(p, PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0) != HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED)
                _exit(1);
        if (fk.ioctl_svm(parent_fd, 0, (uintptr_t) p, PAGE, 1, attr) != -EBADF)
                _exit(2);
        /* Its own KFD works on its own memory. */
        if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS)
                _exit(3);
        HsaSystemProperties sp;
        if (hsaKmtAcquireSystemProperties(&sp) != HSAKMT_STATUS_SUCCESS)
                _exit(4);
        if (fk_set1(p, PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 1) != HSAKMT_STATUS_SUCCESS)
                _exit(5);
        if (fk.ioctl_svm(fk.kfd_fd(), 0, (uintptr_t) p, PAGE, 1, attr) != 0)
                _exit(6);
        _exit(0);
}

static void child_receives_fd(void *arg) {
        int sock = *(int *) arg;
        char b;
        struct iovec io = { &b, 1 };
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
        struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
        if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS)
                _exit(1);
        if (recvmsg(sock, &m, 0) != 1)
                _exit(2);
        int fd;
        memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(fd));
        char *p = fk_map(PAGE);
        uint32_t attr[2] = { HSA_SVM_ATTR_PREFERRED_LOC, 0 };
        if (fk.ioctl_svm(fd, 0, (uintptr_t) p, PAGE, 1, attr) != -EBADF)
                _exit(3);
        if (fk.ioctl_svm(fk.kfd_fd(), 0, (uintptr_t) p, PAGE, 1, attr) != 0)
                _exit(4);
        _exit(0);
}

TEST(CallerOnlyRule) {
        fk_init(CONF);
        char *p = fk_map(PAGE);
        ASSERT_EQ(fk_set1(p, PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 2), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk_in_child(child_uses_parent_fd, p), 0);
        /* The child's SET acted on its own copy, never on ours. */
        ASSERT_EQ_U(fk_get1(p, PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), 2);
        /* The raw ioctl in the owner works. */
        uint32_t attr[2] = { HSA_SVM_ATTR_PREFERRED_LOC, 0 };
        ASSERT_EQ(fk.ioctl_svm(fk.kfd_fd(), 1, (uintptr_t) p, PAGE, 1, attr), 0);
        ASSERT_EQ_U(attr[1], fk_gpu_id(2)); /* kernel layer: gpu_id, not node id */

        /* SCM_RIGHTS does not help either. */
        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        fflush(stdout);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                child_receives_fd(&sv[1]);
        char b = 'x';
        struct iovec io = { &b, 1 };
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
        memset(&u, 0, sizeof(u));
        struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        int kfd = fk.kfd_fd();
        memcpy(CMSG_DATA(c), &kfd, sizeof(int));
        ASSERT_EQ(sendmsg(sv[0], &m, 0), 1);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 0);
        close(sv[0]);
        close(sv[1]);
        ASSERT_EQ(fk.munmap(p, PAGE), 0);
}

TEST(EvictSystemRange_ForkCow) {
        fk_init(CONF);
        xnack(1);
        uint32_t gpu = fk_gpu_id(1);
        int fd = -1;
        ASSERT_EQ(fk.smi_open(gpu, KFD_EV_MASK(KFD_EV_UNMAP_FROM_GPU), 0, &fd), 0);
        char *p = fk_map(2 * MiB);
        ASSERT_EQ(fk_set1(p, 2 * MiB, HSA_SVM_ATTR_PREFERRED_LOC, 0), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk.gpu_access(1, p, 2 * MiB, 0, NULL), 0);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                _exit(0);
        ASSERT_EQ(waitpid(pid, NULL, 0), pid);
        /* The parent writes: COW gives it a new page, the MMU notifier unmaps the GPU. */
        ASSERT_EQ(fk.cpu_access(p, PAGE, 1, NULL), 0);
        char buf[512];
        fk_smi_drain(fd, buf, sizeof(buf), 4096);
        ASSERT_EQ(fk_count_lines(buf, "b "), 1);
        ASSERT_TRUE(strstr(buf, " 0\n") != NULL); /* trigger MMU_NOTIFY */
        /* The GPU faults again and maps the (new) page. */
        struct fakekfd_result r;
        ASSERT_EQ(fk.gpu_access(1, p, PAGE, 0, &r), 0);
        ASSERT_EQ_U(r.faults + r.dup_faults, 1);
        xnack(0);
        ASSERT_EQ(fk.munmap(p, 2 * MiB), 0);
        close(fd);
}

TEST(SmiFifoDropsAndPidFilter) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        int mine = -1, all = -1, other = -1;
        uint64_t mask = KFD_EV_MASK(KFD_EV_MIGRATE_START) | KFD_EV_MASK(KFD_EV_MIGRATE_END);
        ASSERT_EQ(fk.smi_open(gpu, mask, 0, &mine), 0);
        /* Root here, so suser with ALL_PROCESS sees every pid. */
        ASSERT_EQ(fk.smi_open(gpu, mask | KFD_EV_MASK(KFD_EV_ALL_PROCESS), geteuid() == 0, &all), 0);
        ASSERT_EQ(fk.smi_open(gpu, mask | KFD_EV_MASK(KFD_EV_ALL_PROCESS), 0, &other), 0);
        /* 64 migrations of one page each, nobody reading: the 1024-byte fifo keeps what fits. */
        char *p = fk_map(64 * PAGE);
        for (int i = 0; i < 64; i++) {
                ASSERT_EQ(fk_set1(p + i * PAGE, PAGE, HSA_SVM_ATTR_PREFETCH_LOC, 1), HSAKMT_STATUS_SUCCESS);
                ASSERT_EQ(fk_set1(p + i * PAGE, PAGE, HSA_SVM_ATTR_PREFETCH_LOC, 0), HSAKMT_STATUS_SUCCESS);
        }
        char buf[8192];
        unsigned reads = fk_smi_drain(mine, buf, sizeof(buf), 7); /* small reads split lines */
        size_t len = strlen(buf);
        ASSERT_TRUE(len <= 1024);
        ASSERT_TRUE(len > 900);
        ASSERT_TRUE(reads >= (len + 6) / 7); /* every read took at most 7 bytes: lines were split */
        ASSERT_EQ(buf[len - 1], '\n'); /* drops are whole lines */
        unsigned lines = fk_count_lines(buf, "5 ") + fk_count_lines(buf, "6 ");
        ASSERT_TRUE(lines < 4 * 64);
        /* Another process's migrations: only the suser ALL_PROCESS client sees them. */
        fk_smi_drain(all, buf, sizeof(buf), 4096);
        fk_smi_drain(other, buf, sizeof(buf), 4096);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                HsaSystemProperties sp;
                char *q = fk_map(PAGE);
                if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS || hsaKmtAcquireSystemProperties(&sp) ||
                    fk_set1(q, PAGE, HSA_SVM_ATTR_PREFETCH_LOC, 1) != HSAKMT_STATUS_SUCCESS)
                        _exit(1);
                _exit(0);
        }
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_EQ(WEXITSTATUS(st), 0);
        fk_smi_drain(mine, buf, sizeof(buf), 4096);
        ASSERT_STREQ(buf, "");
        fk_smi_drain(other, buf, sizeof(buf), 4096);
        ASSERT_STREQ(buf, "");
        fk_smi_drain(all, buf, sizeof(buf), 4096);
        if (geteuid() == 0) {
                char want[32];
                snprintf(want, sizeof(want), " -%d @", (int) pid);
                ASSERT_TRUE(strstr(buf, want) != NULL);
        }
        ASSERT_EQ(fk.munmap(p, 64 * PAGE), 0);
        close(mine);
        close(all);
        close(other);
}

TEST(TopologyAndNodeProperties) {
        fk_init(CONF);
        HsaNodeProperties np;
        ASSERT_EQ(hsaKmtGetNodeProperties(0, &np), HSAKMT_STATUS_SUCCESS);
        ASSERT_GT(np.NumCPUCores, 0);
        ASSERT_EQ(hsaKmtGetNodeProperties(1, &np), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(np.Capability.ui32.SVMAPISupported, 1);
        ASSERT_EQ_U(np.LocalMemSize, 256 * MiB);
        ASSERT_EQ(np.DrmRenderMinor, 128);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/topology/nodes/0/gpu_id"), 0);
        ASSERT_NE(fk_gpu_id(1), 0);
        ASSERT_NE(fk_gpu_id(1), fk_gpu_id(2));
        ASSERT_EQ(hsaKmtGetNodeProperties(3, &np), HSAKMT_STATUS_INVALID_NODE_UNIT);
        HsaVersionInfo v;
        ASSERT_EQ(hsaKmtGetVersion(&v), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(v.KernelInterfaceMajorVersion, 1);
        ASSERT_GE(v.KernelInterfaceMinorVersion, 5);
        ASSERT_EQ(hsaKmtOpenKFD(), HSAKMT_STATUS_KERNEL_ALREADY_OPENED);
        ASSERT_EQ(hsaKmtCloseKFD(), HSAKMT_STATUS_SUCCESS);
}

TEST_MAIN()
