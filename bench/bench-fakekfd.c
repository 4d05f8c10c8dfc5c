/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Speed of the KFD model alone and of the fake libhsakmt around it (one process), in the same
 * run: a mapped GPU access (no fault), a prefetch round trip RAM -> VRAM -> RAM of 2 MiB.
 * Prints BENCH lines; run with LD_LIBRARY_PATH=<build>/fakekfd (meson benchmark sets it).
 */
#include <dlfcn.h>
#include <hsakmt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fakekfd.h"
#include "spmtier/kfd-model.h"

#define MiB (1024ULL * 1024)

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(void) {
        const unsigned N = 2000;
        struct kfd_config c;
        struct kfd_node *n = calloc(1, sizeof(*n));
        struct kfd_ctx ctx = { .now_ns = 1 };
        uint64_t base = 0x7f0000000000ULL;

        if (!n)
                return 1;
        kfd_config_default(1, &c);
        if (kfd_node_init(n, &c) < 0 || kfd_process_open(n, 1) < 0)
                return 1;
        struct kfd_svm_attr acc = { KFD_ATTR_ACCESS, c.gpu[0].gpu_id };
        struct kfd_svm_attr to_gpu = { KFD_ATTR_PREFETCH_LOC, c.gpu[0].gpu_id };
        struct kfd_svm_attr to_ram = { KFD_ATTR_PREFETCH_LOC, 0 };
        kfd_svm_set(n, &ctx, 1, base, 2 * MiB, 1, &acc, NULL);
        double t = now_s();
        for (unsigned i = 0; i < N; i++)
                kfd_gpu_access(n, &ctx, 1, 0, base, 2 * MiB, false, NULL);
        double model_access = N / (now_s() - t);
        t = now_s();
        for (unsigned i = 0; i < N; i++) {
                kfd_svm_set(n, &ctx, 1, base, 2 * MiB, 1, &to_gpu, NULL);
                kfd_svm_set(n, &ctx, 1, base, 2 * MiB, 1, &to_ram, NULL);
        }
        double model_prefetch = N / (now_s() - t);

        char root[] = "/tmp/fakekfd-bench.XXXXXX";
        if (!mkdtemp(root))
                return 1;
        setenv("FAKEKFD_ROOT", root, 1);
        int (*gpu_access)(uint32_t, const void *, size_t, int, struct fakekfd_result *) =
                (int (*)(uint32_t, const void *, size_t, int, struct fakekfd_result *)) dlsym(RTLD_DEFAULT, "fakekfd_gpu_access");
        HsaSystemProperties sp;
        if (!gpu_access || hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS || hsaKmtAcquireSystemProperties(&sp)) {
                fprintf(stderr, "bench-fakekfd: not running on the fake libhsakmt\n");
                return 1;
        }
        void *p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        HSA_SVM_ATTRIBUTE a = { HSA_SVM_ATTR_ACCESS, 1 }, g = { HSA_SVM_ATTR_PREFETCH_LOC, 1 },
                          r = { HSA_SVM_ATTR_PREFETCH_LOC, 0 };
        hsaKmtSVMSetAttr(p, 2 * MiB, 1, &a);
        t = now_s();
        for (unsigned i = 0; i < N; i++)
                gpu_access(1, p, 2 * MiB, 0, NULL);
        double fake_access = N / (now_s() - t);
        t = now_s();
        for (unsigned i = 0; i < N / 4; i++) {
                hsaKmtSVMSetAttr(p, 2 * MiB, 1, &g);
                hsaKmtSVMSetAttr(p, 2 * MiB, 1, &r);
        }
        double fake_prefetch = (N / 4) / (now_s() - t);

        printf("BENCH kfd_model_gpu_access %.0f ops/s\n", model_access);
        printf("BENCH kfd_model_prefetch_round_trip %.0f ops/s\n", model_prefetch);
        printf("BENCH fakekfd_gpu_access %.0f ops/s\n", fake_access);
        printf("BENCH fakekfd_prefetch_round_trip %.0f ops/s\n", fake_prefetch);
        printf("BENCH fakekfd_overhead_access %.1f x\n", model_access / fake_access);
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        (void) !system(cmd);
        return 0;
}
