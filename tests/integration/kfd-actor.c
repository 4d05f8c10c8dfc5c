/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kfd-actor: a GPU process on the fake KFD that the end-to-end tests drive line by line on
 * stdin, so a shell test can make exactly the access pattern it wants while the agent
 * (LD_PRELOAD) and spmtierd do their part. It maps one buffer, registers it for SVM (ACCESS
 * to GPU node 1, optionally PREFERRED_LOC RAM so GPU faults only map) and answers each command
 * with one line on stdout:
 *
 *   base                  -> "base 0x..."        the buffer's address
 *   gpu OFF LEN           -> "ok"                the GPU reads [OFF, OFF+LEN) (MiB)
 *   cpu OFF LEN           -> "ok"                the CPU writes it
 *   vram MiB              -> "bo N"              a plain VRAM BO on GPU 1 (fills VRAM)
 *   free N                -> "ok"
 *   resident OFF LEN      -> "vram PAGES ram PAGES"
 *   quit
 *
 *   kfd-actor SIZE_MIB [--xnack 0|1] [--prefer-ram]
 */
#include <dlfcn.h>
#include <hsakmt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fakekfd.h"

#define MiB (1024ULL * 1024)

int main(int argc, char **argv) {
        int (*gpu_access)(uint32_t, const void *, size_t, int, struct fakekfd_result *);
        int (*cpu_access)(const void *, size_t, int, struct fakekfd_result *);
        int (*vram_alloc)(uint32_t, uint64_t);
        int (*vram_free)(int);
        int (*residency)(const void *, size_t, uint64_t *);
        HsaSystemProperties sp;
        int xnack = 1, prefer_ram = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: kfd-actor SIZE_MIB [--xnack 0|1] [--prefer-ram]\n");
                return 2;
        }
        size_t size = strtoull(argv[1], NULL, 10) * MiB;
        for (int i = 2; i < argc; i++)
                if (!strcmp(argv[i], "--xnack") && i + 1 < argc)
                        xnack = atoi(argv[++i]);
                else if (!strcmp(argv[i], "--prefer-ram"))
                        prefer_ram = 1;
        *(void **) &gpu_access = dlsym(RTLD_DEFAULT, "fakekfd_gpu_access");
        *(void **) &cpu_access = dlsym(RTLD_DEFAULT, "fakekfd_cpu_access");
        *(void **) &vram_alloc = dlsym(RTLD_DEFAULT, "fakekfd_vram_alloc");
        *(void **) &vram_free = dlsym(RTLD_DEFAULT, "fakekfd_vram_free");
        *(void **) &residency = dlsym(RTLD_DEFAULT, "fakekfd_residency");
        if (!gpu_access || !cpu_access || !vram_alloc || !vram_free || !residency || size == 0) {
                fprintf(stderr, "kfd-actor: needs the fake libhsakmt and a size\n");
                return 1;
        }
        if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS ||
            hsaKmtAcquireSystemProperties(&sp) != HSAKMT_STATUS_SUCCESS ||
            hsaKmtSetXNACKMode(xnack) != HSAKMT_STATUS_SUCCESS) {
                fprintf(stderr, "kfd-actor: cannot open KFD\n");
                return 1;
        }
        char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED)
                return 1;
        HSA_SVM_ATTRIBUTE a[2] = { { HSA_SVM_ATTR_ACCESS, 1 }, { HSA_SVM_ATTR_PREFERRED_LOC, 0 } };
        if (hsaKmtSVMSetAttr(buf, size, prefer_ram ? 2 : 1, a) != HSAKMT_STATUS_SUCCESS) {
                fprintf(stderr, "kfd-actor: SVMSetAttr failed\n");
                return 1;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        char line[256];
        while (fgets(line, sizeof(line), stdin)) {
                unsigned long long o = 0, l = 0;
                struct fakekfd_result r;
                uint64_t pages[FAKEKFD_MAX_LOCS];
                char cmd[32];
                int n = sscanf(line, "%31s %llu %llu", cmd, &o, &l);
                if (n < 1)
                        continue;
                if (n == 3 && (o + l) * MiB > size) {
                        printf("error range\n");
                        continue;
                }
                if (!strcmp(cmd, "base"))
                        printf("base %p\n", (void *) buf);
                else if (!strcmp(cmd, "gpu") && n == 3)
                        printf(gpu_access(1, buf + o * MiB, l * MiB, 0, &r) < 0 ? "error\n" : "ok\n");
                else if (!strcmp(cmd, "cpu") && n == 3)
                        printf(cpu_access(buf + o * MiB, l * MiB, 1, &r) < 0 ? "error\n" : "ok\n");
                else if (!strcmp(cmd, "vram") && n == 2)
                        printf("bo %d\n", vram_alloc(1, o * MiB));
                else if (!strcmp(cmd, "free") && n == 2)
                        printf(vram_free((int) o) < 0 ? "error\n" : "ok\n");
                else if (!strcmp(cmd, "resident") && n == 3) {
                        if (residency(buf + o * MiB, l * MiB, pages) < 0)
                                printf("error\n");
                        else
                                printf("vram %llu ram %llu\n", (unsigned long long) pages[1],
                                       (unsigned long long) pages[0]);
                } else if (!strcmp(cmd, "quit"))
                        break;
                else
                        printf("error command\n");
        }
        return 0;
}
