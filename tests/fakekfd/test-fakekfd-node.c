/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fake on a small device-private node: kfdtest MigrateGranularity and VramOvercommit, the
 * silent VRAM-full prefetch, fixed-mode XNACK, and VRAM capacity shared by several processes
 * (TTM evicting another process's whole BO). Node: 1 GPU (HSA node 1), 64 MiB of
 * MEMORY_DEVICE_PRIVATE VRAM, no XNACK support, 8 KiB SMI fifos.
 */
#include <poll.h>
#include <stdarg.h>

#include "spmtier/macro.h"
#include "fk.h"

static const char CONF[] =
        "gpus=1\n"
        "vram=64M\n"
        "memory=private\n"
        "xnack_capable=0   # fixed mode: switching on is NOT_SUPPORTED\n"
        "smi_fifo=8192\n";

#define VRAM (64 * MiB)

TEST(MigrateGranularity) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        size_t len = 1ULL << (14 + 12); /* 2^14 pages = 64 MiB: two granules of 2^13 */
        char *p = fk_map(len);
        int fd = -1;
        ASSERT_EQ(fk.smi_open(gpu, KFD_EV_MASK(KFD_EV_MIGRATE_START), 0, &fd), 0);
        for (int g = 13; g >= 0; g--) {
                HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_GRANULARITY, (uint32_t) g },
                                          { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
                ASSERT_EQ(hsaKmtSVMSetAttr(p, len, 3, a), HSAKMT_STATUS_SUCCESS);
                ASSERT_EQ_U(fk_resident(p, len, 1), len / PAGE);
                long long out0 = fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_out", getpid(), gpu);
                /* A CPU touch of one page in the middle of the second granule. */
                uint64_t idx = (1ULL << g) + (1ULL << g) / 2;
                struct fakekfd_result r;
                ASSERT_EQ(fk.cpu_access(p + idx * PAGE, 1, 0, &r), 0);
                /* The 2^g-page block around it, aligned in the address space, clipped to the
                 * range, comes back to RAM. */
                uint64_t first = (uintptr_t) p / PAGE, abs = first + idx;
                uint64_t s = MAX(ALIGN_DOWN(abs, 1ULL << g), first);
                uint64_t e = MIN(ALIGN_DOWN(abs, 1ULL << g) + (1ULL << g), first + len / PAGE);
                ASSERT_EQ_U(r.faults, 1);
                ASSERT_EQ_U(r.pages_out, e - s);
                ASSERT_EQ_U(fk_resident(p, len, 0), e - s);
                ASSERT_EQ_U(fk_resident((char *) (uintptr_t) (s * PAGE), (e - s) * PAGE, 0), e - s);
                ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_out", getpid(), gpu),
                          out0 + (long long) (e - s));
                ASSERT_TRUE(g < 12 || e - s >= (1ULL << g) / 2); /* not clipped away */
        }
        char buf[8192];
        fk_smi_drain(fd, buf, sizeof(buf), 4096);
        ASSERT_TRUE(fk_count_lines(buf, "5 ") >= 28);
        /* Every CPU-fault migration says trigger 2 (PAGEFAULT_CPU). */
        unsigned cpu_faults = 0;
        for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                unsigned from, to;
                int trig;
                if (sscanf(l, "5 %*d -%*d @%*x(%*x) %x->%x %*x:%*x %d", &from, &to, &trig) == 3 && to == 0) {
                        ASSERT_EQ(from, gpu);
                        ASSERT_EQ(trig, KFD_MIG_PAGEFAULT_CPU);
                        cpu_faults++;
                }
        }
        ASSERT_EQ(cpu_faults, 14);
        ASSERT_EQ(fk.munmap(p, len), 0);
        close(fd);
}

TEST(VramOvercommit) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        /* kfdtest prefetches VRAM size + 1 GiB and expects success; ours is VRAM + 1/4. */
        for (size_t len = VRAM + VRAM / 4; len <= 4 * VRAM; len *= 3) {
                long long in0 = fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu);
                char *p = fk_map(len);
                HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
                ASSERT_EQ(hsaKmtSVMSetAttr(p, len, 2, a), HSAKMT_STATUS_SUCCESS);
                /* Success does not mean resident: only the counters tell. */
                ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu), in0);
                ASSERT_EQ_U(fk_resident(p, len, 1), 0);
                ASSERT_EQ_U(fk_get1(p, len, HSA_SVM_ATTR_PREFETCH_LOC, 0), 1); /* the attribute stuck */
                ASSERT_LE(fk_read("sys/class/drm/card0/device/mem_info_vram_used"), (long long) VRAM);
                ASSERT_EQ(fk.munmap(p, len), 0);
        }
}

TEST(VramFullPrefetchIsSilent) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        int bo = fk.vram_alloc(1, VRAM - 2 * MiB); /* a hipMalloc'd buffer fills VRAM */
        ASSERT_GT(bo, 0);
        ASSERT_EQ(fk.vram_alloc(1, 4 * MiB), -ENOMEM);
        long long in0 = fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu);
        char *p = fk_map(4 * MiB);
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 4 * MiB, 2, a), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu), in0);
        ASSERT_EQ_U(fk_resident(p, 4 * MiB, 1), 0);
        /* Half of it fits. */
        ASSERT_EQ(hsaKmtSVMSetAttr(p, 2 * MiB, 2, a), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_in", getpid(), gpu), in0 + 512);
        ASSERT_EQ(fk_read("sys/class/drm/card0/device/mem_info_vram_used"), (long long) VRAM);
        ASSERT_EQ(fk.vram_free(bo), 0);
        ASSERT_EQ(fk.munmap(p, 4 * MiB), 0);
        ASSERT_EQ(fk_read("sys/class/drm/card0/device/mem_info_vram_used"), 0);
}

TEST(XNACKFixedMode) {
        fk_init(CONF);
        ASSERT_EQ(hsaKmtSetXNACKMode(1), HSAKMT_STATUS_NOT_SUPPORTED);
        ASSERT_EQ(hsaKmtSetXNACKMode(0), HSAKMT_STATUS_SUCCESS);
        /* XNACK off: a GPU touch of memory it has no mapping for is a fatal VM fault. */
        char *p = fk_map(PAGE);
        struct fakekfd_result r;
        ASSERT_EQ(fk.gpu_access(1, p, PAGE, 0, &r), -EFAULT);
        ASSERT_TRUE(r.fatal);
        ASSERT_EQ(fk.munmap(p, PAGE), 0);
}

/* A process that prefetches `mb` MiB into VRAM, reports on `report`, then waits for `go`. */
static void holder(int report, int go, size_t mb) {
        HsaSystemProperties sp;
        alarm(120); /* never outlive a parent that failed */
        char *p = fk_map(mb * MiB);
        HSA_SVM_ATTRIBUTE a[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS || hsaKmtAcquireSystemProperties(&sp) ||
            hsaKmtSVMSetAttr(p, mb * MiB, 2, a) != HSAKMT_STATUS_SUCCESS)
                _exit(1);
        uint64_t pages = fk_resident(p, mb * MiB, 1);
        (void) !write(report, &pages, sizeof(pages));
        char c;
        (void) !read(go, &c, 1);
        pages = fk_resident(p, mb * MiB, 1);
        (void) !write(report, &pages, sizeof(pages));
        _exit(0);
}

TEST(SharedVramAcrossProcesses) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        int smi = -1;
        ASSERT_EQ(fk.smi_open(gpu, KFD_EV_MASK(KFD_EV_MIGRATE_START) | KFD_EV_MASK(KFD_EV_ALL_PROCESS),
                              1, &smi), 0);
        int rep[2][2], go[2][2];
        pid_t pid[2];
        uint64_t pages;
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ(pipe(rep[i]), 0);
                ASSERT_EQ(pipe(go[i]), 0);
                fflush(stdout);
                pid[i] = fork();
                ASSERT_TRUE(pid[i] >= 0);
                if (pid[i] == 0)
                        holder(rep[i][1], go[i][0], 40);
                /* Each gets its 40 MiB in VRAM when it asks... */
                ASSERT_EQ(read(rep[i][0], &pages, sizeof(pages)), (ssize_t) sizeof(pages));
                ASSERT_EQ_U(pages, 40 * MiB / PAGE);
                /* ...and the capacity is the node's, not the process's. */
                ASSERT_LE(fk_read("sys/class/drm/card0/device/mem_info_vram_used"), (long long) VRAM);
        }
        /* The second took the first's whole BO: TTM eviction, trigger 3, pid of the first. */
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", pid[0], gpu), 0);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/counters_%u/page_out", pid[0], gpu), (long long) (40 * MiB / PAGE));
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", pid[1], gpu), (long long) (40 * MiB));
        char buf[8192], want[32];
        fk_smi_drain(smi, buf, sizeof(buf), 4096);
        snprintf(want, sizeof(want), " -%d @", (int) pid[0]);
        unsigned evictions = 0;
        for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                int p, trig;
                if (sscanf(l, "5 %*d -%d @%*x(%*x) %*x->%*x %*x:%*x %d", &p, &trig) == 2 && trig == KFD_MIG_TTM_EVICTION) {
                        ASSERT_EQ(p, pid[0]);
                        evictions++;
                }
        }
        ASSERT_EQ(evictions, 1);
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ(write(go[i][1], "x", 1), 1);
                ASSERT_EQ(read(rep[i][0], &pages, sizeof(pages)), (ssize_t) sizeof(pages));
                ASSERT_EQ_U(pages, i == 0 ? 0 : 40 * MiB / PAGE);
                ASSERT_EQ(waitpid(pid[i], NULL, 0), pid[i]);
        }
        /* Dead processes are reaped on the next call: their VRAM and sysfs go. */
        char *p = fk_map(PAGE);
        ASSERT_EQ(fk_set1(p, PAGE, HSA_SVM_ATTR_PREFERRED_LOC, 0), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(fk_read("sys/class/drm/card0/device/mem_info_vram_used"), 0);
        ASSERT_EQ(fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", pid[1], gpu), -1);
        ASSERT_EQ(fk.munmap(p, PAGE), 0);
        close(smi);
}

/* A child that churns VRAM: random prefetches both ways and GPU/CPU touches of its 24 MiB
 * (four of them overcommit the 64 MiB GPU, so TTM evicts across processes). */
static void churner(int seed, int report, int go) {
        HsaSystemProperties sp;
        alarm(120); /* never outlive a parent that failed */
        if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS || hsaKmtAcquireSystemProperties(&sp))
                _exit(1);
        char *p = fk_map(24 * MiB);
        unsigned x = (unsigned) seed * 2654435761u;
        HSA_SVM_ATTRIBUTE all[] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_PREFETCH_LOC, 1 } };
        if (hsaKmtSVMSetAttr(p, 24 * MiB, 2, all) != HSAKMT_STATUS_SUCCESS) /* 4 x 24 > 64 MiB */
                _exit(2);
        for (int i = 0; i < 60; i++) {
                x = x * 1103515245u + 12345u;
                size_t off = ((x >> 8) % 12) * 2 * MiB;
                HSA_SVM_ATTRIBUTE a = { HSA_SVM_ATTR_PREFETCH_LOC, (x >> 4) & 1 };
                if (hsaKmtSVMSetAttr(p + off, 2 * MiB, 1, &a) != HSAKMT_STATUS_SUCCESS)
                        _exit(3);
                if (fk.gpu_access(1, p + off, 2 * MiB, 0, NULL) < 0 || fk.cpu_access(p + off, PAGE, 1, NULL) < 0)
                        _exit(4);
                if (fk_read("sys/class/drm/card0/device/mem_info_vram_used") > (long long) VRAM)
                        _exit(5);
        }
        char c = 0;
        (void) !write(report, &c, 1);
        (void) !read(go, &c, 1); /* EOF too: the parent is gone */
        _exit(0);
}

TEST(ConcurrentProcessesKeepInvariants) {
        fk_init(CONF);
        uint32_t gpu = fk_gpu_id(1);
        enum { N = 4 };
        int rep[2], go[2], smi = -1;
        pid_t pid[N];
        ASSERT_EQ(fk.smi_open(gpu, KFD_EV_MASK(KFD_EV_MIGRATE_START) | KFD_EV_MASK(KFD_EV_ALL_PROCESS), 1, &smi), 0);
        ASSERT_EQ(pipe(rep), 0);
        ASSERT_EQ(pipe(go), 0);
        for (int i = 0; i < N; i++) {
                fflush(stdout);
                pid[i] = fork();
                ASSERT_TRUE(pid[i] >= 0);
                if (pid[i] == 0) {
                        close(rep[0]);
                        close(go[1]);
                        churner(i + 1, rep[1], go[0]);
                }
        }
        close(rep[1]);
        close(go[0]);
        /* Keep reading the stream while they work, so the fifo does not drop what we look for. */
        static char buf[8192];
        bool ttm = false;
        for (int done = 0; done < N;) {
                struct pollfd pfd = { rep[0], POLLIN, 0 };
                ASSERT_GE(poll(&pfd, 1, 10), 0);
                char c;
                if (pfd.revents & POLLIN) {
                        ASSERT_EQ(read(rep[0], &c, 1), 1);
                        done++;
                }
                fk_smi_drain(smi, buf, sizeof(buf), sizeof(buf));
                for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                        int trig;
                        if (sscanf(l, "5 %*d -%*d @%*x(%*x) %*x->%*x %*x:%*x %d", &trig) == 1)
                                ttm |= trig == KFD_MIG_TTM_EVICTION;
                }
        }
        /* All done and still alive: the node's VRAM is exactly the sum of the processes'. */
        long long sum = 0;
        for (int i = 0; i < N; i++) {
                long long v = fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", pid[i], gpu);
                ASSERT_GE(v, 0);
                sum += v;
        }
        long long mine = fk_read("sys/class/kfd/kfd/proc/%d/vram_%u", getpid(), gpu);
        ASSERT_EQ(sum + MAX(mine, 0), fk_read("sys/class/drm/card0/device/mem_info_vram_used"));
        ASSERT_LE(sum, (long long) VRAM);
        /* It was a contest: some process lost a BO to another's allocation (seen through the
         * suser ALL_PROCESS view, which needs root). */
        if (geteuid() == 0)
                ASSERT_TRUE(ttm);
        close(smi);
        ASSERT_EQ(write(go[1], "xxxx", N), N);
        for (int i = 0; i < N; i++) {
                int st;
                ASSERT_EQ(waitpid(pid[i], &st, 0), pid[i]);
                ASSERT_TRUE(WIFEXITED(st));
                ASSERT_EQ(WEXITSTATUS(st), 0);
        }
        close(rep[0]);
        close(go[1]);
}

TEST_MAIN()
