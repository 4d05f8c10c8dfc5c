/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kfd-sysfs collector ([Collect] Collectors=kfd-sysfs) on a fake sysfs tree laid out as
 * amdkfd and the fake KFD publish it: topology nodes, proc/<pid>/{pasid,vram_<id>,
 * counters_<id>/...} and the amdgpu device's mem_info_vram_*. Checks the exact per-epoch
 * deltas, first sight, a process that vanishes, garbage, and pid reuse (counter resets).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "spmtier/macro.h"
#include "test.h"
#include "unit/fake-tree.h"

#define GPU_A 41234 /* SVM-capable */
#define GPU_B 50001 /* no SVM: no counters_ directory */
#define MAX_SAMPLES 16

struct rec {
        struct spm_kfd_sample s[MAX_SAMPLES];
        unsigned n;
        uint64_t used[SPM_MAX_GPUS], total[SPM_MAX_GPUS];
        unsigned n_vram;
        int fail; /* what kfd_counters returns */
};

static int rec_kfd_counters(void *u, const struct spm_kfd_sample *s) {
        struct rec *r = u;

        ASSERT_LT(r->n, MAX_SAMPLES);
        r->s[r->n++] = *s;
        return r->fail;
}

static int rec_vram(void *u, unsigned gpu, uint64_t used, uint64_t total) {
        struct rec *r = u;

        ASSERT_LT(gpu, SPM_MAX_GPUS);
        r->used[gpu] = used;
        r->total[gpu] = total;
        r->n_vram++;
        return 0;
}

static const struct spm_kfd_sample *find(const struct rec *r, uint32_t pid, unsigned gpu) {
        for (unsigned i = 0; i < r->n; i++)
                if (r->s[i].pid == pid && r->s[i].gpu == gpu)
                        return &r->s[i];
        return NULL;
}

/* Two GPUs: node 1 with a render node (hardware layout), node 2 only as card1 (the fake's). */
static char *make_node(void) {
        char *root = fake_tree_new();

        fake_file(root, "0\n", "class/kfd/kfd/topology/nodes/0/gpu_id");
        fake_file(root, "drm_render_minor 0\n", "class/kfd/kfd/topology/nodes/0/properties");
        fake_file(root, "41234\n", "class/kfd/kfd/topology/nodes/1/gpu_id");
        fake_file(root, "simd_count 440\ndrm_render_minor 128\nhive_id 0\n",
                  "class/kfd/kfd/topology/nodes/1/properties");
        fake_file(root, "50001\n", "class/kfd/kfd/topology/nodes/2/gpu_id");
        fake_file(root, "simd_count 440\ndrm_render_minor 129\n",
                  "class/kfd/kfd/topology/nodes/2/properties");
        fake_file(root, "68719476736\n", "class/drm/renderD128/device/mem_info_vram_total");
        fake_file(root, "1048576\n", "class/drm/renderD128/device/mem_info_vram_used");
        fake_file(root, "34359738368\n", "class/drm/card1/device/mem_info_vram_total");
        fake_file(root, "0\n", "class/drm/card1/device/mem_info_vram_used");
        return root;
}

static void set_counters(const char *root, unsigned pid, unsigned pasid, unsigned long long faults,
                         unsigned long long in, unsigned long long out,
                         unsigned long long vram) {
        char v[32];

        snprintf(v, sizeof(v), "%u\n", pasid);
        fake_file(root, v, "class/kfd/kfd/proc/%u/pasid", pid);
        snprintf(v, sizeof(v), "%llu\n", faults);
        fake_file(root, v, "class/kfd/kfd/proc/%u/counters_%u/faults", pid, GPU_A);
        snprintf(v, sizeof(v), "%llu\n", in);
        fake_file(root, v, "class/kfd/kfd/proc/%u/counters_%u/page_in", pid, GPU_A);
        snprintf(v, sizeof(v), "%llu\n", out);
        fake_file(root, v, "class/kfd/kfd/proc/%u/counters_%u/page_out", pid, GPU_A);
        snprintf(v, sizeof(v), "%llu\n", vram);
        fake_file(root, v, "class/kfd/kfd/proc/%u/vram_%u", pid, GPU_A);
        fake_file(root, "4096\n", "class/kfd/kfd/proc/%u/vram_%u", pid, GPU_B);
}

static void remove_proc(const char *root, unsigned pid) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/class/kfd/kfd/proc/%u", root, pid);
        ASSERT_EQ(nftw(path, fake_rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

TEST(needs_a_kfd_topology) {
        char *root = fake_tree_new(), msg[256] = "";
        struct spm_collector_args args = { .sys_root = root };
        void *s = NULL;

        ASSERT_ERROR(spm_collector_kfd_sysfs.init(&args, &s, msg, sizeof(msg)), ENODEV);
        ASSERT_NOT_NULL(strstr(msg, "no KFD GPU"));
        ASSERT_NULL(s);
        fake_tree_free(root);
}

TEST(deltas_vanish_garbage_reset) {
        char *root = make_node(), msg[256] = "", desc[512];
        struct spm_collector_args args = { .sys_root = root, .n_gpus = 2 };
        struct rec r = {};
        struct spm_collector_sink sink = { .userdata = &r, .kfd_counters = rec_kfd_counters,
                                           .vram = rec_vram };
        const uint32_t pids[] = { 100, 200, 300 }; /* 300 never opens KFD */
        const struct spm_kfd_sample *x;
        void *s = NULL;

        ASSERT_OK(spm_collector_kfd_sysfs.init(&args, &s, msg, sizeof(msg)));
        ASSERT_OK(spm_collector_kfd_sysfs.track(s, pids, ELEMENTSOF(pids), msg, sizeof(msg)));
        set_counters(root, 100, 0x8001, 10, 512, 0, 2097152);
        set_counters(root, 200, 0x8002, 5, 0, 0, 0);

        /* First sight: only the baselines, and both GPUs' VRAM (renderD128, card1). */
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2);
        ASSERT_EQ(r.n, 0u);
        ASSERT_EQ(r.n_vram, 2u);
        ASSERT_EQ_U(r.used[0], 1048576);
        ASSERT_EQ_U(r.total[0], 68719476736ULL);
        ASSERT_EQ_U(r.total[1], 34359738368ULL);

        /* Exact deltas; the non-SVM GPU reports VRAM only. */
        set_counters(root, 100, 0x8001, 17, 1536, 256, 6291456);
        set_counters(root, 200, 0x8002, 5, 0, 0, 0);
        fake_file(root, "6291456\n", "class/drm/renderD128/device/mem_info_vram_used");
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2 + 4);
        ASSERT_EQ(r.n, 4u);
        ASSERT_EQ_U(r.used[0], 6291456);
        ASSERT_NOT_NULL(x = find(&r, 100, 0));
        ASSERT_TRUE(x->svm && !x->reset);
        ASSERT_EQ_U(x->faults, 7);
        ASSERT_EQ_U(x->pages_in, 1024);
        ASSERT_EQ_U(x->pages_out, 256);
        ASSERT_EQ_U(x->vram_bytes, 6291456);
        ASSERT_NOT_NULL(x = find(&r, 100, 1));
        ASSERT_FALSE(x->svm);
        ASSERT_EQ_U(x->faults + x->pages_in + x->pages_out, 0);
        ASSERT_EQ_U(x->vram_bytes, 4096);
        ASSERT_NOT_NULL(x = find(&r, 200, 0));
        ASSERT_EQ_U(x->faults + x->pages_in + x->pages_out, 0);
        ASSERT_NULL(find(&r, 300, 0));

        /* Garbage in a counter and in mem_info: that GPU's sample is skipped, nothing
         * else; the baseline stays, so the next epoch's delta spans both epochs. */
        r.n = 0;
        r.n_vram = 0;
        set_counters(root, 100, 0x8001, 20, 1536, 256, 6291456);
        fake_file(root, "12abc\n", "class/kfd/kfd/proc/100/counters_%u/page_in", GPU_A);
        fake_file(root, "\n", "class/drm/card1/device/mem_info_vram_used");
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 1 + 3);
        ASSERT_EQ(r.n_vram, 1u);
        ASSERT_NULL(find(&r, 100, 0));
        ASSERT_NOT_NULL(find(&r, 100, 1));
        r.n = 0;
        set_counters(root, 100, 0x8001, 21, 1600, 256, 6291456);
        fake_file(root, "0\n", "class/drm/card1/device/mem_info_vram_used");
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2 + 4);
        ASSERT_NOT_NULL(x = find(&r, 100, 0));
        ASSERT_EQ_U(x->faults, 4);
        ASSERT_EQ_U(x->pages_in, 64);

        /* pid 200 exits: no sample, no error; pid 100's pid is reused by another process
         * (new pasid, counters from zero): its counts start over. */
        r.n = 0;
        remove_proc(root, 200);
        remove_proc(root, 100);
        set_counters(root, 100, 0x8003, 3, 8, 0, 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2 + 2);
        ASSERT_NULL(find(&r, 200, 0));
        ASSERT_NOT_NULL(x = find(&r, 100, 0));
        ASSERT_TRUE(x->reset);
        ASSERT_EQ_U(x->faults, 3);
        ASSERT_EQ_U(x->pages_in, 8);

        /* A counter that goes backwards under the same pasid (a pasid reused too) is a
         * reset as well, never a huge unsigned delta. */
        r.n = 0;
        set_counters(root, 100, 0x8003, 1, 8, 0, 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2 + 2);
        ASSERT_NOT_NULL(x = find(&r, 100, 0));
        ASSERT_TRUE(x->reset);
        ASSERT_EQ_U(x->faults, 1);
        ASSERT_EQ_U(x->pages_in, 8);

        /* pid 200 comes back: first sight again, a baseline and no sample. */
        r.n = 0;
        set_counters(root, 200, 0x8004, 9, 9, 9, 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2 + 2);
        ASSERT_NULL(find(&r, 200, 0));

        spm_collector_kfd_sysfs.describe(s, desc, sizeof(desc));
        ASSERT_NOT_NULL(strstr(desc, "2 of 3 processes"));
        ASSERT_NOT_NULL(strstr(desc, "1 vanished"));
        ASSERT_NOT_NULL(strstr(desc, "2 resets"));
        ASSERT_NOT_NULL(strstr(desc, "2 bad files"));
        ASSERT_NOT_NULL(strstr(desc, "gpu0 6/65536 MiB"));

        /* Untracking drops the baselines; a sink error other than -ENOMEM skips the item,
         * -ENOMEM stops the collector. */
        ASSERT_OK(spm_collector_kfd_sysfs.track(s, pids, 1, msg, sizeof(msg)));
        r.fail = -ENOENT;
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2);
        r.fail = -ENOMEM;
        ASSERT_ERROR(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), ENOMEM);
        spm_collector_kfd_sysfs.free(s);
        fake_tree_free(root);
}

TEST(vanishes_mid_read) {
        char *root = make_node(), msg[256] = "", path[PATH_MAX];
        struct spm_collector_args args = { .sys_root = root };
        struct rec r = {};
        struct spm_collector_sink sink = { .userdata = &r, .kfd_counters = rec_kfd_counters };
        const uint32_t pid = 100;
        void *s = NULL;

        ASSERT_OK(spm_collector_kfd_sysfs.init(&args, &s, msg, sizeof(msg)));
        ASSERT_OK(spm_collector_kfd_sysfs.track(s, &pid, 1, msg, sizeof(msg)));
        set_counters(root, 100, 0x8001, 10, 10, 10, 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 0);
        /* The directory is half gone (pasid first, as a racing exit might leave it): the
         * other files are not trusted. */
        snprintf(path, sizeof(path), "%s/class/kfd/kfd/proc/100/pasid", root);
        ASSERT_EQ(unlink(path), 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 0);
        ASSERT_EQ(r.n, 0u);
        /* Back with the same numbers: a new baseline, not a delta against the old one. */
        set_counters(root, 100, 0x8001, 50, 10, 10, 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 0);
        set_counters(root, 100, 0x8001, 51, 10, 10, 0);
        ASSERT_EQ(spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)), 2);
        ASSERT_EQ_U(find(&r, 100, 0)->faults, 1);
        spm_collector_kfd_sysfs.free(s);
        fake_tree_free(root);
}

TEST_MAIN()
