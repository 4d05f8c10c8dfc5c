/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Conformance-test helpers. The tests are built against Debian's real hsakmt.h and linked with
 * the real -lhsakmt, and run with LD_LIBRARY_PATH pointing at the fake, exactly how the agent
 * runs. The fake's test-only API is looked up with dlsym; its absence means the real library
 * was loaded, which is a setup error (the test fails, it does not skip).
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <hsakmt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakekfd.h"
#include "spmtier/kfd-model.h"
#include "spmtier/macro.h"
#include "test.h"

#define MiB (1024ULL * 1024)
#define PAGE 4096ULL

/* The real header and the model agree on the uapi numbers. */
_Static_assert((int) HSA_SVM_ATTR_GRANULARITY == (int) KFD_ATTR_GRANULARITY, "attr numbering");
_Static_assert((int) HSA_SVM_ATTR_NO_ACCESS == (int) KFD_ATTR_NO_ACCESS, "attr numbering");
_Static_assert(HSA_SVM_FLAG_GPU_READ_MOSTLY == KFD_FLAG_GPU_READ_MOSTLY, "flag numbering");

static struct {
        int (*gpu_access)(uint32_t, const void *, size_t, int, struct fakekfd_result *);
        int (*cpu_access)(const void *, size_t, int, struct fakekfd_result *);
        int (*queue_create)(uint32_t);
        int (*queue_destroy)(uint32_t);
        int (*munmap)(void *, size_t);
        int (*pin)(const void *, size_t, int);
        int (*register_bo)(const void *, size_t);
        int (*vram_alloc)(uint32_t, uint64_t);
        int (*vram_free)(int);
        int (*residency)(const void *, size_t, uint64_t *);
        int (*kfd_fd)(void);
        int (*ioctl_svm)(int, uint32_t, uint64_t, uint64_t, uint32_t, uint32_t *);
        int (*smi_open)(uint32_t, uint64_t, int, int *);
} fk;

static char fk_root[256];

static inline void fk_cleanup(void) {
        char cmd[300];
        if (fk_root[0] && getpid() == (pid_t) atoi(getenv("FK_OWNER") ? getenv("FK_OWNER") : "0")) {
                /* Another process (a reaped child, the agent thread) may still be writing
                 * sysfs files: retry until the tree is gone. */
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fk_root);
                for (int i = 0; i < 5 && access(fk_root, F_OK) == 0; i++) {
                        (void) !system(cmd);
                        if (access(fk_root, F_OK) == 0)
                                usleep(100000);
                }
        }
}

#define FK_SYM(name)                                                                    \
        do {                                                                            \
                *(void **) &fk.name = dlsym(RTLD_DEFAULT, "fakekfd_" #name);            \
                if (!fk.name) {                                                         \
                        fprintf(stderr, "fakekfd_" #name " not found: the real libhsakmt " \
                                "was loaded; run with LD_LIBRARY_PATH=<build>/fakekfd\n"); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

/* Once per binary: a fresh fake root with `conf` as etc/fakekfd.conf, KFD opened, system
 * properties acquired. */
static inline void fk_init(const char *conf) {
        if (fk_root[0])
                return;
        snprintf(fk_root, sizeof(fk_root), "/tmp/fakekfd-test.XXXXXX");
        ASSERT_NOT_NULL(mkdtemp(fk_root));
        char path[400], pid[32];
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        setenv("FK_OWNER", pid, 1);
        atexit(fk_cleanup);
        snprintf(path, sizeof(path), "%s/etc", fk_root);
        ASSERT_EQ(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/etc/fakekfd.conf", fk_root);
        FILE *f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs(conf, f);
        fclose(f);
        setenv("FAKEKFD_ROOT", fk_root, 1);

        FK_SYM(gpu_access);
        FK_SYM(cpu_access);
        FK_SYM(queue_create);
        FK_SYM(queue_destroy);
        FK_SYM(munmap);
        FK_SYM(pin);
        FK_SYM(register_bo);
        FK_SYM(vram_alloc);
        FK_SYM(vram_free);
        FK_SYM(residency);
        FK_SYM(kfd_fd);
        FK_SYM(ioctl_svm);
        FK_SYM(smi_open);

        HsaSystemProperties sp;
        ASSERT_EQ(hsaKmtOpenKFD(), HSAKMT_STATUS_SUCCESS);
        ASSERT_EQ(hsaKmtAcquireSystemProperties(&sp), HSAKMT_STATUS_SUCCESS);
}

/* gpu_id of HSA node `node`, read from the published topology like a daemon would. */
static inline uint32_t fk_gpu_id(unsigned node) {
        char path[400];
        unsigned v = 0;
        snprintf(path, sizeof(path), "%s/sys/class/kfd/kfd/topology/nodes/%u/gpu_id", fk_root, node);
        FILE *f = fopen(path, "re");
        ASSERT_NOT_NULL(f);
        ASSERT_EQ(fscanf(f, "%u", &v), 1);
        fclose(f);
        return v;
}

/* A number from a file under the fake root; -1 when the file is absent. */
static inline long long fk_read(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline long long fk_read(const char *fmt, ...) {
        char rel[300], path[600];
        long long v = -1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rel, sizeof(rel), fmt, ap);
        va_end(ap);
        snprintf(path, sizeof(path), "%s/%s", fk_root, rel);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        if (fscanf(f, "%lld", &v) != 1)
                v = -1;
        fclose(f);
        return v;
}

static inline void *fk_map(size_t len) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        ASSERT_TRUE(p != MAP_FAILED);
        return p;
}

static inline HSAKMT_STATUS fk_set1(void *p, size_t len, uint32_t type, uint32_t value) {
        HSA_SVM_ATTRIBUTE a = { type, value };
        return hsaKmtSVMSetAttr(p, len, 1, &a);
}

static inline uint32_t fk_get1(void *p, size_t len, uint32_t type, uint32_t value) {
        HSA_SVM_ATTRIBUTE a = { type, value };
        ASSERT_EQ(hsaKmtSVMGetAttr(p, len, 1, &a), HSAKMT_STATUS_SUCCESS);
        return type == HSA_SVM_ATTR_ACCESS ? a.type : a.value;
}

static inline uint64_t fk_resident(void *p, size_t len, unsigned loc) {
        uint64_t pages[FAKEKFD_MAX_LOCS];
        ASSERT_EQ(fk.residency(p, len, pages), 0);
        return pages[loc];
}

/* Drains an SMI fd into buf (NUL-terminated), reading `chunk` bytes at a time. Returns the
 * number of read() calls that returned data. */
static inline unsigned fk_smi_drain(int fd, char *buf, size_t size, size_t chunk) {
        size_t used = 0;
        unsigned reads = 0;
        for (;;) {
                ssize_t k = read(fd, buf + used, MIN(chunk, size - 1 - used));
                if (k <= 0) {
                        ASSERT_TRUE(k == 0 || errno == EAGAIN);
                        break;
                }
                used += (size_t) k;
                reads++;
                if (used + 1 >= size)
                        break;
        }
        buf[used] = 0;
        return reads;
}

static inline unsigned fk_count_lines(const char *buf, const char *prefix) {
        unsigned c = 0;
        for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                c += strncmp(l, prefix, strlen(prefix)) == 0;
        return c;
}

/* Runs fn in a forked child and returns its exit status (0 = its assertions passed). */
static inline int fk_in_child(void (*fn)(void *), void *arg) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                fn(arg);
                _exit(0);
        }
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
