/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: the kfd-sysfs collector (daemon/collector-kfd-sysfs.c) over a fake tree whose
 * files hold whatever the input says. The input is lines "<file>=<content>" that rewrite one
 * of pid 7's files (pasid, vram, faults, page_in, page_out) or the GPU's (used, total), "-"
 * that removes pid 7's directory and "." that ends an epoch (collect). Invariants: collect
 * never fails, every sample is pid 7's on GPU 0, and no delta exceeds the largest number
 * written (a counter that went backwards must be a reset, never a wrapped subtraction).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector.h"
#include "log.h"

#define GPU_ID 1234
#define MAX_CONTENT 17 /* at most 0x + 15 hex digits: below 2^60 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];
static uint64_t biggest;

static const struct { const char *key, *path; } files[] = {
        { "pasid", "class/kfd/kfd/proc/7/pasid" },
        { "vram", "class/kfd/kfd/proc/7/vram_1234" },
        { "faults", "class/kfd/kfd/proc/7/counters_1234/faults" },
        { "page_in", "class/kfd/kfd/proc/7/counters_1234/page_in" },
        { "page_out", "class/kfd/kfd/proc/7/counters_1234/page_out" },
        { "used", "class/drm/renderD128/device/mem_info_vram_used" },
        { "total", "class/drm/renderD128/device/mem_info_vram_total" },
};

static void put(const char *rel, const char *content, size_t len) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", root, rel);
        for (char *p = path + strlen(root) + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void) mkdir(path, 0755);
                        *p = '/';
                }
        f = fopen(path, "we");
        if (!f)
                abort();
        fwrite(content, 1, len, f);
        fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_proc(void) {
        char path[256];

        snprintf(path, sizeof(path), "%s/class/kfd/kfd/proc/7", root);
        (void) nftw(path, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static int on_sample(void *u, const struct spm_kfd_sample *s) {
        if (s->pid != 7 || s->gpu != 0 || s->faults > biggest || s->pages_in > biggest ||
            s->pages_out > biggest)
                abort();
        return 0;
}

static void cleanup(void) {
        (void) nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void setup(void) {
        strcpy(root, "/tmp/spmtier-fuzz-kfd-sysfs-XXXXXX");
        if (!mkdtemp(root))
                abort();
        put("class/kfd/kfd/topology/nodes/0/gpu_id", "0\n", 2);
        put("class/kfd/kfd/topology/nodes/1/gpu_id", "1234\n", 5);
        put("class/kfd/kfd/topology/nodes/1/properties", "drm_render_minor 128\n", 21);
        log_set_max_level(LOG_CRIT); /* one warning per kind and run is noise here */
        atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct spm_collector_args args = { .sys_root = root };
        struct spm_collector_sink sink = { .kfd_counters = on_sample };
        const uint32_t pid = 7;
        char msg[256];
        void *s = NULL;

        if (!root[0])
                setup();
        rm_proc();
        put(files[6].path, "1000\n", 5);
        if (spm_collector_kfd_sysfs.init(&args, &s, msg, sizeof(msg)) < 0 ||
            spm_collector_kfd_sysfs.track(s, &pid, 1, msg, sizeof(msg)) < 0)
                abort();
        biggest = 0;
        for (const char *p = (const char *) data, *end = p + size; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p)), *eq;
                size_t len = (size_t) ((nl ? nl : end) - p);

                if (len == 1 && *p == '.') {
                        if (spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)) < 0)
                                abort();
                } else if (len == 1 && *p == '-')
                        rm_proc();
                else if ((eq = memchr(p, '=', len)) && (size_t) (p + len - eq - 1) <= MAX_CONTENT)
                        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                                size_t klen = (size_t) (eq - p), clen = (size_t) (p + len - eq - 1);
                                char num[MAX_CONTENT + 1];

                                if (strlen(files[i].key) != klen || memcmp(files[i].key, p, klen))
                                        continue;
                                memcpy(num, eq + 1, clen);
                                num[clen] = '\0';
                                biggest = MAX(biggest, strtoull(num, NULL, 0));
                                put(files[i].path, eq + 1, clen);
                        }
                p += len + 1;
        }
        if (spm_collector_kfd_sysfs.collect(s, &sink, msg, sizeof(msg)) < 0)
                abort();
        spm_collector_kfd_sysfs.describe(s, msg, sizeof(msg));
        spm_collector_kfd_sysfs.free(s);
        return 0;
}
