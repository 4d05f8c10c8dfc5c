/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pure KFD model against reference/kfd-svm.md §9, without any process or file. */
#include <errno.h>

#include "spmtier/kfd-model.h"
#include "test.h"

#define MiB (1024ULL * 1024)
#define PID 100
#define BASE 0x7f0000000000ULL

static struct kfd_node *node;
static char lines[256][KFD_EV_MSG_SIZE];
static struct kfd_event evs[256];
static unsigned n_ev;

static void sink(void *userdata, const struct kfd_event *ev) {
        if (n_ev < 256) {
                evs[n_ev] = *ev;
                kfd_smi_format(ev, lines[n_ev], sizeof(lines[0]));
                n_ev++;
        }
}

static struct kfd_vma vmas[] = {
        { BASE, BASE + 64 * MiB, KFD_VMA_WRITE },
        { BASE + 128 * MiB, BASE + 130 * MiB, KFD_VMA_IO },
};
static struct kfd_ctx ctx = { .now_ns = 1000000000, .vmas = vmas, .n_vmas = 2, .emit = sink };

/* Fresh node: n GPUs of vram bytes each, one process PID with the given XNACK mode. */
static void setup(unsigned gpus, uint64_t vram, enum kfd_mem_mode mode, bool xnack) {
        struct kfd_config c;

        if (!node)
                node = calloc(1, sizeof(*node));
        ASSERT_NOT_NULL(node);
        kfd_config_default(gpus, &c);
        for (unsigned i = 0; i < gpus; i++)
                c.gpu[i].vram_bytes = vram;
        c.mem_mode = mode;
        c.xnack_default = xnack;
        ASSERT_OK(kfd_node_init(node, &c));
        ASSERT_OK(kfd_node_check(node));
        ASSERT_OK(kfd_process_open(node, PID));
        n_ev = 0;
}

static uint32_t gid(unsigned i) {
        return node->cfg.gpu[i].gpu_id;
}

static int set1(uint64_t off, uint64_t len, uint32_t type, uint32_t value, struct kfd_result *res) {
        struct kfd_svm_attr a = { type, value };
        return kfd_svm_set(node, &ctx, PID, BASE + off, len, 1, &a, res);
}

static uint32_t get1(uint64_t off, uint64_t len, uint32_t type, uint32_t value) {
        struct kfd_svm_attr a = { type, value };
        ASSERT_OK(kfd_svm_get(node, &ctx, PID, BASE + off, len, 1, &a));
        return type == KFD_ATTR_ACCESS ? a.type : a.value;
}

static uint64_t resident(uint64_t off, uint64_t len, unsigned loc) {
        uint64_t pages[SPM_MAX_LOCS];
        kfd_residency(node, PID, BASE + off, len, pages);
        return pages[loc];
}

static unsigned count_ev(uint32_t id, int trigger) {
        unsigned c = 0;
        for (unsigned i = 0; i < n_ev; i++)
                c += evs[i].id == id && (trigger < 0 || evs[i].trigger == trigger);
        return c;
}

TEST(defaults_follow_xnack) {
        for (int x = 0; x < 2; x++) {
                setup(2, 64 * MiB, KFD_MEM_COHERENT, x);
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_PREFERRED_LOC, 0), KFD_LOCATION_UNDEFINED);
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, 0), KFD_LOCATION_UNDEFINED);
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_SET_FLAGS, 0), KFD_FLAG_HOST_ACCESS | KFD_FLAG_COHERENT);
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_GRANULARITY, 0), 9);
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_ACCESS, gid(1)), x ? KFD_ATTR_ACCESS : KFD_ATTR_NO_ACCESS);
                /* A registered range with no attribute change has the same defaults. */
                ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_SET_FLAGS, 0, NULL));
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_ACCESS, gid(0)), x ? KFD_ATTR_ACCESS : KFD_ATTR_NO_ACCESS);
                ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_CLR_FLAGS, 0), ~(uint32_t) (KFD_FLAG_HOST_ACCESS | KFD_FLAG_COHERENT));
        }
}

TEST(set_get_round_trip_and_clamp) {
        setup(2, 64 * MiB, KFD_MEM_COHERENT, false);
        struct kfd_svm_attr a[] = {
                { KFD_ATTR_PREFERRED_LOC, gid(0) }, { KFD_ATTR_ACCESS_IN_PLACE, gid(1) },
                { KFD_ATTR_SET_FLAGS, KFD_FLAG_GPU_RO }, { KFD_ATTR_CLR_FLAGS, KFD_FLAG_COHERENT },
                { KFD_ATTR_GRANULARITY, 0x40 },
        };
        ASSERT_OK(kfd_svm_set(node, &ctx, PID, BASE, 4 * MiB, 5, a, NULL));
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_PREFERRED_LOC, 0), gid(0));
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_ACCESS, gid(1)), KFD_ATTR_ACCESS_IN_PLACE);
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_ACCESS, gid(0)), KFD_ATTR_NO_ACCESS);
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_SET_FLAGS, 0), KFD_FLAG_HOST_ACCESS | KFD_FLAG_GPU_RO);
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_GRANULARITY, 0), 0x3f);
        /* ACCESS and ACCESS_IN_PLACE exclude each other; NO_ACCESS clears both. */
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_ACCESS, gid(1), NULL));
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_ACCESS, gid(1)), KFD_ATTR_ACCESS);
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_NO_ACCESS, gid(1), NULL));
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_ACCESS, gid(1)), KFD_ATTR_NO_ACCESS);
}

TEST(validation_errors_change_nothing) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, false);
        struct kfd_svm_attr bad_type = { 8, 0 }, bad_gpu = { KFD_ATTR_ACCESS, 0x7777 };
        struct kfd_svm_attr in_place = { KFD_ATTR_ACCESS_IN_PLACE, gid(0) };
        struct kfd_svm_attr ok = { KFD_ATTR_PREFERRED_LOC, 0 };

        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE, 2 * MiB, 1, &bad_type, NULL), EINVAL);
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE, 2 * MiB, 1, &bad_gpu, NULL), EINVAL);
        ASSERT_ERROR(kfd_svm_get(node, &ctx, PID, BASE, 2 * MiB, 1, &in_place), EINVAL);
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE, 0, 1, &ok, NULL), EINVAL);
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE + 1, 4096, 1, &ok, NULL), EINVAL);
        /* Past the end of the VMA, and an IO mapping. */
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE + 62 * MiB, 4 * MiB, 1, &ok, NULL), EFAULT);
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE + 128 * MiB, 2 * MiB, 1, &ok, NULL), EFAULT);
        ASSERT_ERROR(kfd_svm_get(node, &ctx, PID, BASE + 100 * MiB, 2 * MiB, 1, &ok), EFAULT);
        ASSERT_OK(kfd_register_kfd_bo(node, PID, BASE + 8 * MiB, 2 * MiB));
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID, BASE + 7 * MiB, 2 * MiB, 1, &ok, NULL), EADDRINUSE);
        ASSERT_EQ(kfd_entry_count(node, PID), 0);
        ASSERT_ERROR(kfd_svm_set(node, &ctx, PID + 1, BASE, 2 * MiB, 1, &ok, NULL), ESRCH);
        ASSERT_EQ(kfd_check_caller(PID, PID), 0);
        ASSERT_ERROR(kfd_check_caller(PID, PID + 1), EBADF);
}

TEST(split_on_set_intersection_on_get) {
        setup(2, 64 * MiB, KFD_MEM_COHERENT, false);
        ASSERT_OK(set1(0, 8 * MiB, KFD_ATTR_PREFERRED_LOC, gid(0), NULL));
        ASSERT_OK(set1(2 * MiB, 2 * MiB, KFD_ATTR_PREFERRED_LOC, gid(1), NULL));
        ASSERT_OK(set1(2 * MiB, 2 * MiB, KFD_ATTR_GRANULARITY, 4, NULL));
        ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_PREFERRED_LOC, 0), gid(0));
        ASSERT_EQ_U(get1(2 * MiB, 2 * MiB, KFD_ATTR_PREFERRED_LOC, 0), gid(1));
        ASSERT_EQ_U(get1(4 * MiB, 4 * MiB, KFD_ATTR_PREFERRED_LOC, 0), gid(0));
        ASSERT_EQ_U(get1(0, 8 * MiB, KFD_ATTR_PREFERRED_LOC, 0), KFD_LOCATION_UNDEFINED);
        ASSERT_EQ_U(get1(0, 8 * MiB, KFD_ATTR_GRANULARITY, 0), 4);
        ASSERT_EQ(kfd_entry_count(node, PID), 3);
        /* Gaps are ignored: a span half outside every range reports the range's values. */
        ASSERT_EQ_U(get1(6 * MiB, 8 * MiB, KFD_ATTR_PREFERRED_LOC, 0), gid(0));
        /* Flags: SET_FLAGS is the AND, CLR_FLAGS the NOR. */
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_SET_FLAGS, KFD_FLAG_GPU_EXEC, NULL));
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_SET_FLAGS, 0), KFD_FLAG_HOST_ACCESS | KFD_FLAG_COHERENT);
        ASSERT_EQ_U(get1(0, 4 * MiB, KFD_ATTR_CLR_FLAGS, 0),
                    ~(uint32_t) (KFD_FLAG_HOST_ACCESS | KFD_FLAG_COHERENT | KFD_FLAG_GPU_EXEC));
        /* A superset SET covers every piece and the gaps around them. */
        ASSERT_OK(set1(0, 16 * MiB, KFD_ATTR_PREFERRED_LOC, 0, NULL));
        ASSERT_EQ_U(get1(0, 16 * MiB, KFD_ATTR_PREFERRED_LOC, 0), 0);
}

TEST(prefetch_moves_counts_and_formats) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, false);
        struct kfd_result res = {};
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_ACCESS, gid(0), NULL));
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), &res));
        ASSERT_EQ_U(res.pages_in, 1024);
        ASSERT_EQ_U(res.bytes_moved, 4 * MiB);
        ASSERT_EQ_U(resident(0, 4 * MiB, 1), 1024);
        struct kfd_process *p = kfd_process_get(node, PID);
        ASSERT_EQ_U(p->c[0].page_in, 1024);
        ASSERT_EQ_U(p->c[0].vram_bytes, 4 * MiB);
        ASSERT_EQ_U(node->vram_used[0], 4 * MiB);
        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, KFD_MIG_PREFETCH), 1);
        char want[96];
        snprintf(want, sizeof(want), "5 1000000000 -%d @%llx(400) 0->%x ffffffff:ffffffff 0\n", PID,
                 (unsigned long long) (BASE >> 12), gid(0));
        /* PREFETCH_LOC was applied before the migration ran. */
        snprintf(want, sizeof(want), "5 1000000000 -%d @%llx(400) 0->%x %x:ffffffff 0\n", PID,
                 (unsigned long long) (BASE >> 12), gid(0), gid(0));
        ASSERT_STREQ(lines[0], want);
        ASSERT_TRUE(strncmp(lines[n_ev - 1], "6 ", 2) == 0);
        /* Already there: the prefetch runs but finds nothing to move, no events. */
        n_ev = 0;
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, -1), 0);
        /* Back to RAM: page_out, the BO and its VRAM are released. */
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_PREFETCH_LOC, 0, NULL));
        ASSERT_EQ_U(p->c[0].page_out, 1024);
        ASSERT_EQ_U(node->vram_used[0], 0);
        ASSERT_EQ_U(p->c[0].vram_bytes, 0);
}

TEST(vram_full_prefetch_fails_silently) {
        setup(1, 4 * MiB, KFD_MEM_COHERENT, false);
        struct kfd_result res = {};
        ASSERT_OK(set1(0, 8 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), &res));
        ASSERT_EQ_U(res.failed_pages, 2048);
        ASSERT_EQ_U(resident(0, 8 * MiB, 1), 0);
        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, -1), 0);
        node->cfg.vram_prefetch_errors = true;
        ASSERT_ERROR(set1(0, 8 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL), ENOSPC);
}

TEST(ttm_evicts_whole_bos_lru_first) {
        setup(1, 4 * MiB, KFD_MEM_COHERENT, false);
        ASSERT_OK(kfd_process_open(node, PID + 1));
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_OK(set1(2 * MiB, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_EQ_U(node->vram_used[0], 4 * MiB);
        /* Another process needs 2 MiB: the least recently used BO (the first) goes, whole. */
        n_ev = 0;
        struct kfd_svm_attr a = { KFD_ATTR_PREFETCH_LOC, gid(0) };
        struct kfd_result res = {};
        ASSERT_OK(kfd_svm_set(node, &ctx, PID + 1, BASE, 2 * MiB, 1, &a, &res));
        ASSERT_EQ_U(res.evicted_pages, 512);
        ASSERT_EQ_U(res.bytes_moved, 2 * MiB); /* the eviction's copy is not this call's */
        ASSERT_EQ_U(resident(0, 2 * MiB, 0), 512);
        ASSERT_EQ_U(resident(2 * MiB, 2 * MiB, 1), 512);
        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, KFD_MIG_TTM_EVICTION), 1);
        ASSERT_EQ(evs[0].pid, PID);
        ASSERT_EQ_U(node->vram_used[0], 4 * MiB);
        /* A plain VRAM BO that cannot fit after evicting every SVM BO fails with -ENOMEM. */
        ASSERT_ERROR(kfd_vram_alloc(node, &ctx, PID, 0, 8 * MiB), ENOMEM);
        int bo = kfd_vram_alloc(node, &ctx, PID, 0, 4 * MiB);
        ASSERT_GT(bo, 0);
        ASSERT_EQ_U(resident(0, 4 * MiB, 1), 0);
        ASSERT_OK(kfd_vram_free(node, (uint32_t) bo));
        ASSERT_EQ_U(node->vram_used[0], 0);
}

TEST(gpu_fault_xnack_on_migrates_granule) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, true);
        ASSERT_OK(set1(0, 8 * MiB, KFD_ATTR_GRANULARITY, 4, NULL)); /* 16 pages */
        struct kfd_result res = {};
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE + 20 * 4096, 4096, true, &res));
        ASSERT_EQ_U(res.faults, 1);
        ASSERT_EQ_U(res.pages_in, 16);
        ASSERT_EQ_U(resident(16 * 4096, 16 * 4096, 1), 16);
        ASSERT_EQ_U(resident(0, 8 * MiB, 1), 16);
        ASSERT_EQ_U(kfd_process_get(node, PID)->c[0].faults, 1);
        ASSERT_EQ(count_ev(KFD_EV_PAGE_FAULT_START, -1), 1);
        ASSERT_TRUE(strstr(lines[0], " W\n") != NULL);
        ASSERT_TRUE(strstr(lines[n_ev - 1], " M\n") != NULL);
        /* Mapped now: the next access does not fault. */
        memset(&res, 0, sizeof(res));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE + 16 * 4096, 16 * 4096, false, &res));
        ASSERT_EQ_U(res.faults, 0);
        ASSERT_EQ_U(res.pages_at[1], 16);
        /* An unregistered address gets a range of the default granularity (2 MiB). */
        memset(&res, 0, sizeof(res));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE + 32 * MiB, 4096, false, &res));
        ASSERT_EQ_U(res.pages_in, 512);
}

TEST(preferred_sysmem_maps_without_migrating_and_dup_window) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, true);
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFERRED_LOC, 0, NULL));
        struct kfd_result res = {};
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, false, &res));
        ASSERT_EQ_U(res.faults, 1);
        ASSERT_EQ_U(res.pages_in, 0);
        ASSERT_TRUE(strstr(lines[n_ev - 1], " U\n") != NULL);
        /* Unmapped again by a migration within 2 ms: the retry fault is dropped. */
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFERRED_LOC, gid(0), NULL));
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, 0, NULL));
        memset(&res, 0, sizeof(res));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, false, &res));
        ASSERT_EQ_U(res.dup_faults, 1);
        ctx.now_ns += 3000000;
        memset(&res, 0, sizeof(res));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, false, &res));
        ASSERT_EQ_U(res.faults, 1);
        ASSERT_EQ_U(res.pages_in, 512); /* preferred is the GPU now */
        ctx.now_ns -= 3000000;
}

TEST(xnack_off_gpu_fault_is_fatal) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, false);
        struct kfd_result res = {};
        ASSERT_ERROR(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, false, &res), EFAULT);
        ASSERT_TRUE(res.fatal);
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_ACCESS, gid(0), NULL));
        memset(&res, 0, sizeof(res));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE, 2 * MiB, false, &res));
        ASSERT_EQ_U(res.pages_at[0], 512); /* mapped in RAM, never migrated by a fault */
        ASSERT_EQ_U(res.faults, 0);
        /* XNACK off + queues: a migration evicts and restores the queues. */
        ASSERT_OK(kfd_queue_update(node, PID, 0, 1));
        n_ev = 0;
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_EQ(count_ev(KFD_EV_QUEUE_EVICTION, KFD_QEV_SVM), 1);
        ASSERT_EQ(count_ev(KFD_EV_QUEUE_RESTORE, -1), 1);
        ASSERT_EQ_U(kfd_process_get(node, PID)->c[0].evicted_ns, KFD_RESTORE_DELAY_NS);
}

TEST(gpu_writes_to_read_only_are_fatal) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, true);
        struct kfd_result res = {};
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_SET_FLAGS, KFD_FLAG_GPU_RO, NULL));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, false, &res));
        ASSERT_ERROR(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, true, &res), EFAULT);
        ASSERT_TRUE(res.fatal);
        struct kfd_vma ro = { BASE, BASE + 64 * MiB, 0 };
        struct kfd_ctx c2 = ctx;
        c2.vmas = &ro;
        c2.n_vmas = 1;
        memset(&res, 0, sizeof(res));
        ASSERT_ERROR(kfd_gpu_access(node, &c2, PID, 0, BASE + 4 * MiB, 4096, true, &res), EFAULT);
        ASSERT_OK(kfd_gpu_access(node, &c2, PID, 0, BASE + 4 * MiB, 4096, false, &res));
}

TEST(xnack_switch_rules) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, false);
        int32_t x = -1;
        ASSERT_OK(kfd_set_xnack(node, PID, -1, &x));
        ASSERT_EQ(x, 0);
        ASSERT_OK(kfd_set_xnack(node, PID, 1, &x));
        ASSERT_EQ(x, 1);
        ASSERT_OK(kfd_queue_update(node, PID, 0, 1));
        ASSERT_ERROR(kfd_set_xnack(node, PID, 0, NULL), EBUSY);
        ASSERT_OK(kfd_queue_update(node, PID, 0, -1));
        ASSERT_OK(kfd_set_xnack(node, PID, 0, NULL));
        node->cfg.gpu[0].xnack_capable = false;
        ASSERT_ERROR(kfd_set_xnack(node, PID, 1, NULL), EPERM);
}

TEST(coherent_cpu_in_place_private_migrates_back) {
        for (int mode = KFD_MEM_COHERENT; mode <= KFD_MEM_PRIVATE; mode++) {
                setup(1, 64 * MiB, (enum kfd_mem_mode) mode, false);
                ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_GRANULARITY, 3, NULL));
                ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
                struct kfd_result res = {};
                ASSERT_OK(kfd_cpu_access(node, &ctx, PID, BASE + 4096 * 9, 4096, true, &res));
                if (mode == KFD_MEM_COHERENT) {
                        ASSERT_EQ_U(res.faults, 0);
                        ASSERT_EQ_U(res.pages_at[1], 1);
                        ASSERT_EQ_U(resident(0, 4 * MiB, 1), 1024);
                } else {
                        /* MigrateGranularity: the CPU fault moves 2^3 pages, aligned. */
                        ASSERT_EQ_U(res.faults, 1);
                        ASSERT_EQ_U(res.pages_out, 8);
                        ASSERT_EQ_U(resident(8 * 4096, 8 * 4096, 0), 8);
                        ASSERT_EQ_U(resident(0, 4 * MiB, 1), 1024 - 8);
                        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, KFD_MIG_PAGEFAULT_CPU), 1);
                }
        }
}

TEST(pages_return_to_their_prange_bo) {
        /* VRAM exactly the range's size: re-prefetching the granule a CPU fault took back must
         * reuse the range's BO, not allocate (and fail) a second one. */
        setup(1, 4 * MiB, KFD_MEM_PRIVATE, false);
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_OK(kfd_cpu_access(node, &ctx, PID, BASE, 4096, false, NULL));
        ASSERT_EQ_U(resident(0, 4 * MiB, 1), 512);
        ASSERT_EQ_U(node->vram_used[0], 4 * MiB); /* the BO lives while it holds pages */
        struct kfd_result res = {};
        ASSERT_OK(set1(0, 4 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), &res));
        ASSERT_EQ_U(res.failed_pages, 0);
        ASSERT_EQ_U(resident(0, 4 * MiB, 1), 1024);
        ASSERT_EQ_U(node->vram_used[0], 4 * MiB);
}

TEST(apu_and_hive_rules_keep_data_in_ram) {
        setup(1, 64 * MiB, KFD_MEM_APU, false);
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_EQ_U(resident(0, 2 * MiB, 1), 0);
        /* Another GPU with access outside the target's hive forces the prefetch to RAM. */
        setup(2, 64 * MiB, KFD_MEM_COHERENT, false);
        node->cfg.gpu[1].hive_id = 0;
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_ACCESS, gid(1), NULL));
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_EQ_U(resident(0, 2 * MiB, 1), 0);
        node->cfg.gpu[1].hive_id = node->cfg.gpu[0].hive_id;
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        ASSERT_EQ_U(resident(0, 2 * MiB, 1), 512);
        /* VRAM to VRAM goes through RAM: two MIGRATE pairs. */
        n_ev = 0;
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFETCH_LOC, gid(1), NULL));
        ASSERT_EQ_U(resident(0, 2 * MiB, 2), 512);
        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, -1), 2);
        ASSERT_EQ_U(node->vram_used[0], 0);
}

TEST(pinned_pages_make_partial_migration) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, false);
        ASSERT_OK(kfd_pin(node, &ctx, PID, BASE + 4096, 4096, true));
        struct kfd_result res = {};
        ASSERT_OK(set1(0, 4 * 4096, KFD_ATTR_PREFETCH_LOC, gid(0), &res));
        ASSERT_EQ_U(res.pages_in, 3);
        ASSERT_EQ_U(res.skipped_pages, 1);
        ASSERT_EQ_U(resident(4096, 4096, 0), 1);
        ASSERT_EQ(count_ev(KFD_EV_MIGRATE_START, -1), 1); /* one pair for the whole span */
        /* A coherent VRAM page being pinned goes to RAM first. */
        ASSERT_OK(kfd_pin(node, &ctx, PID, BASE + 2 * 4096, 4096, true));
        ASSERT_EQ_U(resident(0, 4 * 4096, 1), 2);
}

TEST(munmap_splits_and_releases) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, true);
        ASSERT_OK(set1(0, 6 * MiB, KFD_ATTR_ACCESS_IN_PLACE, gid(0), NULL));
        ASSERT_OK(set1(0, 6 * MiB, KFD_ATTR_PREFETCH_LOC, gid(0), NULL));
        n_ev = 0;
        ASSERT_OK(kfd_unmap(node, &ctx, PID, BASE + 2 * MiB, 2 * MiB));
        ASSERT_EQ(count_ev(KFD_EV_UNMAP_FROM_GPU, KFD_UNMAP_FROM_CPU), 1);
        ASSERT_EQ_U(resident(0, 6 * MiB, 1), 1024);
        /* The BO is shared by both remaining pieces: its VRAM stays until both go. */
        ASSERT_EQ_U(node->vram_used[0], 6 * MiB);
        ASSERT_EQ_U(get1(0, 2 * MiB, KFD_ATTR_ACCESS, gid(0)), KFD_ATTR_ACCESS_IN_PLACE);
        /* A VMA list without the tail: the sync drops it. */
        struct kfd_vma only_head = { BASE, BASE + 2 * MiB, 0 };
        struct kfd_ctx c2 = ctx;
        c2.vmas = &only_head;
        c2.n_vmas = 1;
        ASSERT_OK(kfd_sync_vmas(node, &c2, PID));
        ASSERT_EQ(kfd_entry_count(node, PID), 1);
        ASSERT_OK(kfd_unmap(node, &ctx, PID, BASE, 2 * MiB));
        ASSERT_EQ_U(node->vram_used[0], 0);
        kfd_process_exit(node, PID);
        ASSERT_NULL(kfd_process_get(node, PID));
}

TEST(fork_cow_write_invalidates_gpu_mapping) {
        setup(1, 64 * MiB, KFD_MEM_COHERENT, true);
        ASSERT_OK(set1(0, 2 * MiB, KFD_ATTR_PREFERRED_LOC, 0, NULL));
        ASSERT_OK(kfd_gpu_access(node, &ctx, PID, 0, BASE, 4096, false, NULL));
        kfd_fork(node, PID);
        n_ev = 0;
        ASSERT_OK(kfd_cpu_access(node, &ctx, PID, BASE, 4096, false, NULL));
        ASSERT_EQ(n_ev, 0);
        ASSERT_OK(kfd_cpu_access(node, &ctx, PID, BASE, 4096, true, NULL));
        ASSERT_EQ(count_ev(KFD_EV_UNMAP_FROM_GPU, KFD_UNMAP_MMU_NOTIFY), 1);
}

TEST(smi_formats_filter_and_fifo) {
        char b[96];
        struct kfd_event ev = { .id = KFD_EV_PAGE_FAULT_START, .ns = 123, .pid = 7, .addr = 0x7f00,
                                .gpu_id = 0x1a2b, .c = 'R' };
        kfd_smi_format(&ev, b, sizeof(b));
        ASSERT_STREQ(b, "7 123 -7 @7f00(1a2b) R\n");
        ev = (struct kfd_event) { .id = KFD_EV_QUEUE_EVICTION, .ns = 5, .pid = 9, .gpu_id = 0xabc, .trigger = 2 };
        kfd_smi_format(&ev, b, sizeof(b));
        ASSERT_STREQ(b, "9 5 -9 abc 2\n");
        ev = (struct kfd_event) { .id = KFD_EV_UNMAP_FROM_GPU, .ns = 5, .pid = 9, .addr = 16, .npages = 32,
                                  .gpu_id = 0xabc, .trigger = 2 };
        kfd_smi_format(&ev, b, sizeof(b));
        ASSERT_STREQ(b, "b 5 -9 @10(20) abc 2\n");
        ev = (struct kfd_event) { .id = KFD_EV_MIGRATE_END, .ns = 5, .pid = 9, .addr = 16, .npages = 32,
                                  .from = 0xabc, .to = 0, .trigger = 3 };
        kfd_smi_format(&ev, b, sizeof(b));
        ASSERT_STREQ(b, "6 5 -9 @10(20) abc->0 3\n");

        uint64_t mask = KFD_EV_MASK(KFD_EV_UNMAP_FROM_GPU);
        ASSERT_TRUE(kfd_smi_wants(mask, 9, false, &ev) == false); /* MIGRATE_END not selected */
        ev.id = KFD_EV_UNMAP_FROM_GPU;
        ASSERT_TRUE(kfd_smi_wants(mask, 9, false, &ev));
        ASSERT_FALSE(kfd_smi_wants(mask, 10, false, &ev));
        ASSERT_FALSE(kfd_smi_wants(mask, 10, true, &ev)); /* suser still needs bit 63 */
        ASSERT_FALSE(kfd_smi_wants(mask | KFD_EV_MASK(KFD_EV_ALL_PROCESS), 10, false, &ev));
        ASSERT_TRUE(kfd_smi_wants(mask | KFD_EV_MASK(KFD_EV_ALL_PROCESS), 10, true, &ev));

        static struct kfd_smi_fifo f;
        kfd_smi_fifo_init(&f, 1024);
        char rd[16];
        ASSERT_ERROR(kfd_smi_fifo_read(&f, rd, sizeof(rd), false), EAGAIN);
        unsigned queued = 0;
        for (int i = 0; i < 100; i++)
                queued += kfd_smi_fifo_push(&f, "b 5 -9 @10(20) abc 2\n", 21);
        ASSERT_EQ(queued, 1024 / 21);
        ASSERT_EQ_U(f.dropped, 100 - queued);
        ASSERT_EQ(kfd_smi_fifo_read(&f, rd, sizeof(rd), true), 8); /* old kernels: 8 bytes */
        ASSERT_TRUE(memcmp(rd, "b 5 -9 @", 8) == 0);
        ASSERT_EQ(kfd_smi_fifo_read(&f, rd, sizeof(rd), false), 16);
        ASSERT_TRUE(memcmp(rd, "10(20) abc 2\nb 5", 16) == 0);
}

TEST(config_validation) {
        struct kfd_config c;
        kfd_config_default(2, &c);
        ASSERT_OK(kfd_config_validate(&c));
        c.gpu[1].gpu_id = c.gpu[0].gpu_id;
        ASSERT_ERROR(kfd_config_validate(&c), EINVAL);
        c.gpu[1].gpu_id = 0x10000;
        ASSERT_ERROR(kfd_config_validate(&c), EINVAL);
        struct spm_machine m = { .kind = SPM_MEM_DEVICE_PRIVATE, .n_gpus = 2, .xnack = true };
        m.capacity[SPM_LOC_GPU(1)] = 16 * MiB;
        kfd_config_from_machine(&m, &c);
        ASSERT_EQ(c.mem_mode, KFD_MEM_PRIVATE);
        ASSERT_EQ_U(c.gpu[1].vram_bytes, 16 * MiB);
        ASSERT_TRUE(c.xnack_default);
}

TEST_MAIN()
