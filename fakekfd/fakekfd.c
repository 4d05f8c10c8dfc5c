/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A drop-in libhsakmt.so.1 (ABI of Debian's libhsakmt 5.2.3) on the KFD model. One node state is
 * shared by every process through $FAKEKFD_ROOT/run/fakekfd/state (mmap, robust process-shared
 * mutex); what the driver publishes is written under $FAKEKFD_ROOT (docs/fakekfd.md).
 *
 * The thunk layer mirrors ROCT 5.2.3: node ids are translated to gpu_ids (and back on GET), NULL,
 * zero or unaligned arguments give INVALID_PARAMETER, a bad node INVALID_NODE_UNIT, every kernel
 * error HSAKMT_STATUS_ERROR, and a forked child must open KFD again.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <time.h>

#include <hsakmt.h>

#include "fakekfd.h"
#include "spmtier/kfd-model.h"
#include "spmtier/macro.h"

#define EXPORT __attribute__((visibility("default")))
#define SHARED_MAGIC 0x46414b454b464431ULL /* "FAKEKFD1" */
#define MAX_VMAS 4096
#define MAX_PENDING 1024

struct shared {
        uint64_t magic;
        pthread_mutex_t lock;
        uint32_t smi_fifo_bytes; /* per-client fifo: 1024 (old kernels) or 8192 */
        uint64_t ops;
        /* What the files say now, so a call rewrites only what changed. */
        uint64_t published_vram[KFD_MAX_GPUS];
        int32_t published_pid[KFD_MAX_PROCS];
        struct kfd_counters published[KFD_MAX_PROCS][KFD_MAX_GPUS];
        struct kfd_node node;
};

/* Per-process library state, like ROCT's globals. */
static struct shared *g_sh;
static char g_root[PATH_MAX - 64];
static int g_kfd_fd = -EBADF;
static unsigned g_open_count;
static pid_t g_owner;
static bool g_forked, g_props;
static pthread_mutex_t g_lib_lock = PTHREAD_MUTEX_INITIALIZER;

/* User queues only count (XNACK switching needs none; XNACK-off evictions stop them): nothing
 * executes. The doorbell, pointers and error word point into a small zeroed block so a caller
 * that writes them does not crash. */
struct fake_queue {
        HSA_QUEUEID id; /* 0 = free */
        uint32_t node;
        uint64_t *words;
};
static struct fake_queue g_queues[64];

/* Events of the operation in progress, delivered once the model is done. */
static struct kfd_event g_pending[MAX_PENDING];
static unsigned g_n_pending;
static uint64_t g_dropped_pending;

/* ---- files under the root ---- */

static int mkdir_p(const char *path) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = 0;
                        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Writes root/rel atomically (tmp + rename), mode 0444 like KFD_SYSFS_FILE_MODE. */
_printf_(2, 3) static int write_file(const char *rel, const char *fmt, ...) {
        char path[PATH_MAX], tmp[PATH_MAX + 16], dir[PATH_MAX], text[4096];
        va_list ap;
        int fd, n;

        snprintf(path, sizeof(path), "%s/%s", g_root, rel);
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = 0;
        va_start(ap, fmt);
        n = vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t) n >= sizeof(text))
                return -EINVAL;
        snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int) getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
        if (fd < 0 && errno == ENOENT && mkdir_p(dir) >= 0)
                fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
        if (fd < 0)
                return -errno;
        if (write(fd, text, (size_t) n) != n) {
                int r = -errno;
                close(fd);
                unlink(tmp);
                return r;
        }
        close(fd);
        return RET_NERRNO(rename(tmp, path));
}

static void rm_rf(const char *path) {
        DIR *d = opendir(path);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        char sub[PATH_MAX];
                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                        rm_rf(sub);
                }
                closedir(d);
                rmdir(path);
        } else
                unlink(path);
}

/* ---- configuration: $FAKEKFD_ROOT/etc/fakekfd.conf, key=value lines ---- */

static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || end == s)
                return -EINVAL;
        switch (*end) {
        case 'G': v <<= 30; end++; break;
        case 'M': v <<= 20; end++; break;
        case 'K': v <<= 10; end++; break;
        }
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int load_config(struct kfd_config *c, struct shared *sh) {
        char path[PATH_MAX], line[256];
        unsigned lineno = 0;
        const char *env = getenv("FAKEKFD_CONFIG");

        kfd_config_default(2, c);
        sh->smi_fifo_bytes = 1024;
        if (env)
                snprintf(path, sizeof(path), "%s", env);
        else
                snprintf(path, sizeof(path), "%s/etc/fakekfd.conf", g_root);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT && !env ? 0 : -errno;
        while (fgets(line, sizeof(line), f)) {
                char *k = line, *v, *hash = strchr(line, '#');
                uint64_t val;
                int idx = -1;
                lineno++;
                if (hash)
                        *hash = 0;
                k += strspn(k, " \t");
                k[strcspn(k, "\r\n")] = 0;
                for (char *e = k + strlen(k); e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
                        e[-1] = 0;
                if (!*k)
                        continue;
                v = strchr(k, '=');
                if (!v)
                        goto bad;
                *v++ = 0;
                char *dot = strchr(k, '.');
                if (dot) {
                        *dot = 0;
                        idx = atoi(dot + 1);
                        if (idx < 0 || idx >= KFD_MAX_GPUS)
                                goto bad;
                }
                if (!strcmp(k, "memory")) {
                        c->mem_mode = !strcmp(v, "coherent") ? KFD_MEM_COHERENT :
                                      !strcmp(v, "private") ? KFD_MEM_PRIVATE :
                                      !strcmp(v, "apu") ? KFD_MEM_APU : _KFD_MEM_MODE_MAX;
                        if (c->mem_mode == _KFD_MEM_MODE_MAX)
                                goto bad;
                        continue;
                }
                if (parse_size(v, &val) < 0)
                        goto bad;
                unsigned lo = idx < 0 ? 0 : (unsigned) idx, hi = idx < 0 ? KFD_MAX_GPUS : (unsigned) idx + 1;
                if (!strcmp(k, "gpus") && idx < 0 && val <= KFD_MAX_GPUS) {
                        struct kfd_config d;
                        kfd_config_default((unsigned) val, &d);
                        c->n_gpus = d.n_gpus;
                        for (unsigned i = 0; i < KFD_MAX_GPUS; i++)
                                if (c->gpu[i].gpu_id == 0)
                                        c->gpu[i] = d.gpu[i];
                } else if (!strcmp(k, "vram"))
                        for (unsigned i = lo; i < hi; i++)
                                c->gpu[i].vram_bytes = val;
                else if (!strcmp(k, "gpu_id") && idx >= 0)
                        c->gpu[idx].gpu_id = (uint32_t) val;
                else if (!strcmp(k, "hive"))
                        for (unsigned i = lo; i < hi; i++)
                                c->gpu[i].hive_id = val;
                else if (!strcmp(k, "svm"))
                        for (unsigned i = lo; i < hi; i++)
                                c->gpu[i].svm = val != 0;
                else if (!strcmp(k, "xnack_capable"))
                        for (unsigned i = lo; i < hi; i++)
                                c->gpu[i].xnack_capable = val != 0;
                else if (!strcmp(k, "xnack") && idx < 0)
                        c->xnack_default = val != 0;
                else if (!strcmp(k, "kfd_minor") && idx < 0)
                        c->kfd_minor = (uint32_t) val;
                else if (!strcmp(k, "vram_prefetch_errors") && idx < 0)
                        c->vram_prefetch_errors = val != 0;
                else if (!strcmp(k, "smi_fifo") && idx < 0 && val >= 64 && val <= KFD_SMI_FIFO_MAX)
                        sh->smi_fifo_bytes = (uint32_t) val;
                else
                        goto bad;
        }
        return kfd_config_validate(c) < 0 ? (fprintf(stderr, "fakekfd: %s: invalid GPU ids\n", path), -EINVAL) : 0;
bad:
        fprintf(stderr, "fakekfd: %s:%u: bad line\n", path, lineno);
        return -EINVAL;
}

/* ---- what the driver publishes ---- */

static void publish_topology(void) {
        const struct kfd_config *c = &g_sh->node.cfg;
        write_file("dev/kfd", "fake KFD character device (see docs/fakekfd.md)\n");
        write_file("sys/class/kfd/kfd/topology/generation_id", "1\n");
        write_file("sys/class/kfd/kfd/topology/system_properties",
                   "platform_oem 0\nplatform_id 0\nplatform_rev 0\n");
        write_file("sys/class/kfd/kfd/topology/nodes/0/gpu_id", "0\n");
        write_file("sys/class/kfd/kfd/topology/nodes/0/name", "\n");
        write_file("sys/class/kfd/kfd/topology/nodes/0/properties",
                   "cpu_cores_count 64\nsimd_count 0\nmem_banks_count 1\ncaches_count 0\n"
                   "io_links_count %u\ncpu_core_id_base 0\nsimd_id_base 0\nlocation_id 0\n"
                   "drm_render_minor 0\nhive_id 0\nlocal_mem_size 0\n", c->n_gpus);
        write_file("sys/class/kfd/kfd/topology/nodes/0/mem_banks/0/properties",
                   "heap_type 0\nsize_in_bytes %llu\nflags 0\nwidth 64\nmem_clk_max 1600\n",
                   512ULL << 30);
        for (unsigned i = 0; i < c->n_gpus; i++) {
                const struct kfd_gpu_config *g = &c->gpu[i];
                char rel[128];
                snprintf(rel, sizeof(rel), "sys/class/kfd/kfd/topology/nodes/%u/gpu_id", i + 1);
                write_file(rel, "%u\n", g->gpu_id);
                snprintf(rel, sizeof(rel), "sys/class/kfd/kfd/topology/nodes/%u/name", i + 1);
                write_file(rel, "gfx90a\n");
                snprintf(rel, sizeof(rel), "sys/class/kfd/kfd/topology/nodes/%u/properties", i + 1);
                write_file(rel,
                           "cpu_cores_count 0\nsimd_count 440\nmem_banks_count 1\ncaches_count 0\n"
                           "io_links_count 1\ncpu_core_id_base 0\nsimd_id_base %u\nmax_waves_per_simd 8\n"
                           "lds_size_in_kb 64\ngds_size_in_kb 0\nwave_front_size 64\narray_count 8\n"
                           "simd_arrays_per_engine 1\ncu_per_simd_array 14\nsimd_per_cu 4\n"
                           "max_slots_scratch_cu 32\nvendor_id 4098\ndevice_id 29704\nlocation_id %u\n"
                           "domain 0\ndrm_render_minor %u\nhive_id %llu\nunique_id %llu\n"
                           "local_mem_size %llu\nfw_version 78\ncapability %u\nsdma_fw_version 8\n"
                           "num_sdma_engines 2\nnum_sdma_xgmi_engines 6\nnum_gws 64\n",
                           0x80000000u + 0x1000u * i, g->location_id, 128 + i,
                           (unsigned long long) g->hive_id, 0x5a17000000000000ULL + i,
                           (unsigned long long) g->vram_bytes, g->svm ? 1u << 27 : 0);
                snprintf(rel, sizeof(rel), "sys/class/kfd/kfd/topology/nodes/%u/mem_banks/0/properties", i + 1);
                write_file(rel, "heap_type 1\nsize_in_bytes %llu\nflags 0\nwidth 4096\nmem_clk_max 1600\n",
                           (unsigned long long) g->vram_bytes);
                snprintf(rel, sizeof(rel), "sys/class/drm/card%u/device/mem_info_vram_total", i);
                write_file(rel, "%llu\n", (unsigned long long) g->vram_bytes);
                snprintf(rel, sizeof(rel), "sys/class/drm/card%u/device/mem_info_vram_used", i);
                write_file(rel, "%llu\n", (unsigned long long) g_sh->node.vram_used[i]);
        }
}

/* The counters of every process that changed, and the GPUs' VRAM use. Called under the lock. */
static void publish_dynamic(void) {
        struct kfd_node *n = &g_sh->node;
        char rel[160];

        for (unsigned i = 0; i < n->cfg.n_gpus; i++) {
                if (g_sh->published_vram[i] == n->vram_used[i])
                        continue;
                snprintf(rel, sizeof(rel), "sys/class/drm/card%u/device/mem_info_vram_used", i);
                if (write_file(rel, "%llu\n", (unsigned long long) n->vram_used[i]) >= 0)
                        g_sh->published_vram[i] = n->vram_used[i];
        }
        for (unsigned k = 0; k < KFD_MAX_PROCS; k++) {
                struct kfd_process *p = &n->procs[k];
                if (!p->pid || !p->dirty)
                        continue;
                p->dirty = false;
                bool fresh = g_sh->published_pid[k] != p->pid;
                if (fresh) {
                        snprintf(rel, sizeof(rel), "sys/class/kfd/kfd/proc/%d/pasid", p->pid);
                        write_file(rel, "%d\n", 0x8000 + k);
                        g_sh->published_pid[k] = p->pid;
                }
                for (unsigned g = 0; g < n->cfg.n_gpus; g++) {
                        uint32_t id = n->cfg.gpu[g].gpu_id;
                        const struct kfd_counters *c = &p->c[g];
                        struct kfd_counters *old = &g_sh->published[k][g];
                        /* One file per changed value; the kernel's names and units. */
                        const struct { const char *dir, *file; uint64_t now, *was; bool svm_only; } f[] = {
                                { "vram_", "", c->vram_bytes, &old->vram_bytes, false },
                                { "stats_", "/evicted_ms", c->evicted_ns / 1000000, &old->evicted_ns, false },
                                { "counters_", "/faults", c->faults, &old->faults, true },
                                { "counters_", "/page_in", c->page_in, &old->page_in, true },
                                { "counters_", "/page_out", c->page_out, &old->page_out, true },
                        };
                        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                                char name[64];
                                if ((f[i].svm_only && !n->cfg.gpu[g].svm) || (!fresh && *f[i].was == f[i].now))
                                        continue;
                                snprintf(name, sizeof(name), "%s%u%s", f[i].dir, id, f[i].file);
                                snprintf(rel, sizeof(rel), "sys/class/kfd/kfd/proc/%d/%s", p->pid, name);
                                if (write_file(rel, "%llu\n", (unsigned long long) f[i].now) >= 0)
                                        *f[i].was = f[i].now;
                        }
                }
        }
}

static void process_gone(int32_t pid) {
        char path[PATH_MAX];
        kfd_process_exit(&g_sh->node, pid);
        snprintf(path, sizeof(path), "%s/sys/class/kfd/kfd/proc/%d", g_root, pid);
        rm_rf(path);
}

/* The kernel drops a KFD process when its mm goes away; here, when the pid no longer exists. */
static void reap_dead(void) {
        for (unsigned k = 0; k < KFD_MAX_PROCS; k++) {
                int32_t pid = g_sh->node.procs[k].pid;
                if (pid && kill(pid, 0) < 0 && errno == ESRCH)
                        process_gone(pid);
        }
}

/* ---- SMI: one named FIFO per client under run/smi/ ---- */

static void collect(void *userdata, const struct kfd_event *ev) {
        if (g_n_pending < MAX_PENDING)
                g_pending[g_n_pending++] = *ev;
        else
                g_dropped_pending++;
}

struct smi_client {
        uint32_t gpu_id;
        int32_t pid;
        uint64_t mask;
        bool suser;
};

static int read_client(const char *conf, struct smi_client *ret) {
        _cleanup_fclose_ FILE *f = fopen(conf, "re");
        struct stat st;
        int suser = 1;
        unsigned long long mask;

        if (!f || fstat(fileno(f), &st) < 0)
                return -errno;
        if (fscanf(f, "gpu_id=%" SCNu32 " pid=%" SCNd32 " mask=%llx suser=%d", &ret->gpu_id, &ret->pid,
                   &mask, &suser) < 3)
                return -EINVAL;
        ret->mask = mask;
        /* CAP_SYS_ADMIN of the reader: the conf file's owner is root, and it did not drop it. */
        ret->suser = st.st_uid == 0 && suser != 0;
        return 0;
}

/* Delivers the pending events to every client, under the node lock so the fifo accounting is
 * exact: a line that does not fit in the client's fifo_bytes is dropped silently. */
static void deliver(void) {
        char dir[PATH_MAX];
        DIR *d;
        struct dirent *de;

        if (g_n_pending == 0)
                return;
        snprintf(dir, sizeof(dir), "%s/run/smi", g_root);
        d = opendir(dir);
        while (d && (de = readdir(d))) {
                char conf[PATH_MAX + 300], fifo[PATH_MAX + 300];
                struct smi_client cl;
                size_t len = strlen(de->d_name);
                if (len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0)
                        continue;
                snprintf(conf, sizeof(conf), "%s/%s", dir, de->d_name);
                snprintf(fifo, sizeof(fifo), "%s", conf);
                memcpy(fifo + strlen(fifo) - 5, ".fifo", 5);
                if (read_client(conf, &cl) < 0)
                        continue;
                _cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENXIO || errno == ENOENT) { /* the reader is gone */
                                unlink(fifo);
                                unlink(conf);
                        }
                        continue;
                }
                for (unsigned i = 0; i < g_n_pending; i++) {
                        const struct kfd_event *ev = &g_pending[i];
                        char line[KFD_EV_MSG_SIZE];
                        int queued = 0;
                        if (g_sh->node.cfg.gpu[ev->dev].gpu_id != cl.gpu_id ||
                            !kfd_smi_wants(cl.mask, cl.pid, cl.suser, ev))
                                continue;
                        int k = kfd_smi_format(ev, line, sizeof(line));
                        if (ioctl(fd, FIONREAD, &queued) < 0 || (uint32_t) queued + (uint32_t) k > g_sh->smi_fifo_bytes)
                                continue; /* kfifo full: dropped, nobody is told */
                        (void) !write(fd, line, (size_t) k); /* < PIPE_BUF: all or nothing */
                }
        }
        if (d)
                closedir(d);
        g_n_pending = 0;
}

/* ---- the shared node ---- */

static void lock_node(void) {
        int r = pthread_mutex_lock(&g_sh->lock);
        if (r == EOWNERDEAD) /* a process died holding it: the model state is still consistent
                              * enough for a fake (every op is short); carry on */
                pthread_mutex_consistent(&g_sh->lock);
}

static void unlock_node(void) {
        deliver();
        publish_dynamic();
        pthread_mutex_unlock(&g_sh->lock);
}

static int attach_locked(int fd);

/* Maps (creating and initializing on first use) the shared node. Returns 0 or -errno. */
static int attach(void) {
        const char *root = getenv("FAKEKFD_ROOT");
        char path[PATH_MAX];
        int r = 0;

        if (g_sh)
                return 0;
        if (!root || !*root || strlen(root) >= sizeof(g_root))
                return -ENOENT;
        snprintf(g_root, sizeof(g_root), "%s", root);
        snprintf(path, sizeof(path), "%s/run/fakekfd", g_root);
        if ((r = mkdir_p(path)) < 0)
                return r;
        snprintf(path, sizeof(path), "%s/run/fakekfd/state", g_root);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        /* The mapping keeps the open file alive after close(): unlock explicitly, or every
         * later process of the node waits here forever. */
        r = attach_locked(fd);
        (void) flock(fd, LOCK_UN);
        return r;
}

static int attach_locked(int fd) {
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        bool fresh = st.st_size == 0;
        if (fresh && ftruncate(fd, sizeof(struct shared)) < 0)
                return -errno;
        if (!fresh && (size_t) st.st_size != sizeof(struct shared))
                return -EINVAL;
        struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (sh == MAP_FAILED)
                return -errno;
        if (fresh || sh->magic != SHARED_MAGIC) {
                struct kfd_config c;
                pthread_mutexattr_t a;
                if ((r = load_config(&c, sh)) < 0 || (r = kfd_node_init(&sh->node, &c)) < 0) {
                        munmap(sh, sizeof(*sh));
                        if (fresh)
                                (void) ftruncate(fd, 0);
                        return r;
                }
                pthread_mutexattr_init(&a);
                pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
                pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
                pthread_mutex_init(&sh->lock, &a);
                pthread_mutexattr_destroy(&a);
                sh->magic = SHARED_MAGIC;
                g_sh = sh;
                publish_topology();
        } else if ((r = kfd_node_check(&sh->node)) < 0) {
                munmap(sh, sizeof(*sh));
                return r;
        }
        g_sh = sh;
        return 0;
}

/* The caller's VMAs from /proc/self/maps, sorted. Returns the count, or SIZE_MAX when they do
 * not fit (or cannot be read): the model then checks nothing rather than refuse valid spans. */
static size_t read_vmas(struct kfd_vma *v, size_t max) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/maps", "re");
        char line[PATH_MAX + 128];
        size_t n = 0;

        if (!f)
                return SIZE_MAX;
        while (fgets(line, sizeof(line), f)) {
                if (n == max)
                        return SIZE_MAX;
                unsigned long long s, e;
                char perms[8] = "", name[PATH_MAX] = "";
                if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %4095[^\n]", &s, &e, perms, name) < 3)
                        continue;
                uint32_t flags = perms[1] == 'w' ? KFD_VMA_WRITE : 0;
                /* vvar/vsyscall are VM_PFNMAP/VM_IO; device files are treated the same. */
                if (!strcmp(name, "[vvar]") || !strcmp(name, "[vsyscall]") || !strncmp(name, "/dev/", 5))
                        flags |= KFD_VMA_IO;
                else if (!strcmp(name, "[heap]"))
                        flags |= KFD_VMA_HEAP;
                else if (!strncmp(name, "[stack", 6))
                        flags |= KFD_VMA_STACK;
                v[n++] = (struct kfd_vma) { s, e, flags };
        }
        return n;
}

static uint64_t boottime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

struct op {
        struct kfd_ctx ctx;
        struct kfd_vma vmas[MAX_VMAS];
};

/* Starts an operation of the calling process: the lock, fresh VMAs (munmaps seen late), the
 * clock. Returns 0, or -EBADF when this process has no KFD open (or is a forked child). */
static int op_begin(struct op *op, bool need_open) {
        if (!g_sh || (need_open && (g_open_count == 0 || g_forked || g_owner != getpid())))
                return -EBADF;
        size_t n = read_vmas(op->vmas, MAX_VMAS);
        op->ctx = (struct kfd_ctx) {
                .vmas = n == SIZE_MAX ? NULL : op->vmas, .n_vmas = n == SIZE_MAX ? 0 : n,
                .emit = collect, .now_ns = boottime_ns(),
        };
        lock_node();
        g_sh->ops++;
        reap_dead();
        if (kfd_process_get(&g_sh->node, getpid()))
                (void) kfd_sync_vmas(&g_sh->node, &op->ctx, getpid());
        return 0;
}

static struct op *op_new(void) {
        return malloc(sizeof(struct op));
}

/* ---- thunk helpers (ROCT 5.2.3 semantics) ---- */

static HSAKMT_STATUS check_open(void) {
        if (g_open_count == 0 || g_forked)
                return HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
        if (g_sh->node.cfg.kfd_minor < 5)
                return HSAKMT_STATUS_NOT_SUPPORTED;
        return HSAKMT_STATUS_SUCCESS;
}

static unsigned num_nodes(void) {
        return 1 + g_sh->node.cfg.n_gpus;
}

/* "hsakmt_validate_nodeid": node id -> gpu_id (CPU nodes -> 0). */
static HSAKMT_STATUS node_to_gpu_id(uint32_t node, uint32_t *ret) {
        if (!g_props || node >= num_nodes())
                return HSAKMT_STATUS_INVALID_NODE_UNIT;
        *ret = node == 0 ? 0 : g_sh->node.cfg.gpu[node - 1].gpu_id;
        return HSAKMT_STATUS_SUCCESS;
}

static HSAKMT_STATUS gpu_id_to_node(uint32_t gpu_id, uint32_t *ret) {
        int g = kfd_gpu_index(&g_sh->node, gpu_id);
        if (g < 0)
                return HSAKMT_STATUS_INVALID_NODE_UNIT;
        *ret = (uint32_t) g + 1;
        return HSAKMT_STATUS_SUCCESS;
}

/* ---- the hsaKmt API ---- */

static void atfork_child(void) {
        g_forked = true; /* ROCT's is_forked_child(): the child must open KFD again */
        pthread_mutex_init(&g_lib_lock, NULL);
}

static void atfork_parent(void) {
        if (g_sh && g_open_count && !g_forked) {
                pthread_mutex_lock(&g_sh->lock);
                kfd_fork(&g_sh->node, getpid());
                pthread_mutex_unlock(&g_sh->lock);
        }
}

__attribute__((constructor)) static void fakekfd_init(void) {
        pthread_atfork(NULL, atfork_parent, atfork_child);
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtOpenKFD(void) {
        HSAKMT_STATUS s = HSAKMT_STATUS_SUCCESS;
        char path[PATH_MAX];
        int r;

        pthread_mutex_lock(&g_lib_lock);
        if (g_forked) { /* a forked child starts over with its own KFD process */
                if (g_kfd_fd >= 0)
                        close(g_kfd_fd);
                g_kfd_fd = -EBADF;
                g_open_count = 0;
                g_forked = false;
                g_props = false;
                for (size_t i = 0; i < ELEMENTSOF(g_queues); i++) { /* the parent's queues */
                        free(g_queues[i].words);
                        g_queues[i] = (struct fake_queue) {};
                }
        }
        if (g_open_count > 0) {
                g_open_count++;
                s = HSAKMT_STATUS_KERNEL_ALREADY_OPENED;
                goto out;
        }
        if ((r = attach()) < 0) {
                s = HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
                goto out;
        }
        /* The fd names its owner, so a process handed it (fork, SCM_RIGHTS) can be refused. */
        snprintf(path, sizeof(path), "%s/run/fakekfd/kfd.%d", g_root, (int) getpid());
        g_kfd_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (g_kfd_fd < 0) {
                s = HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
                goto out;
        }
        lock_node();
        reap_dead();
        r = kfd_process_open(&g_sh->node, getpid());
        if (r >= 0)
                kfd_process_get(&g_sh->node, getpid())->dirty = true;
        unlock_node();
        if (r < 0) {
                close(g_kfd_fd);
                g_kfd_fd = -EBADF;
                s = HSAKMT_STATUS_NO_MEMORY;
                goto out;
        }
        g_owner = getpid();
        g_open_count = 1;
out:
        pthread_mutex_unlock(&g_lib_lock);
        return s;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtCloseKFD(void) {
        HSAKMT_STATUS s = HSAKMT_STATUS_SUCCESS;

        pthread_mutex_lock(&g_lib_lock);
        if (g_open_count == 0 || g_forked)
                s = HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
        else if (--g_open_count == 0) {
                /* Ranges outlive the fd until the mm goes (the MMU notifier holds the process);
                 * reap_dead() frees them when the pid is gone. */
                close(g_kfd_fd);
                g_kfd_fd = -EBADF;
                g_props = false;
        }
        pthread_mutex_unlock(&g_lib_lock);
        return s;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtGetVersion(HsaVersionInfo *v) {
        HSAKMT_STATUS s = check_open();
        if (s != HSAKMT_STATUS_SUCCESS && s != HSAKMT_STATUS_NOT_SUPPORTED)
                return s;
        if (!v)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        v->KernelInterfaceMajorVersion = g_sh->node.cfg.kfd_major;
        v->KernelInterfaceMinorVersion = g_sh->node.cfg.kfd_minor;
        return HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtAcquireSystemProperties(HsaSystemProperties *p) {
        if (g_open_count == 0 || g_forked)
                return HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
        if (!p)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        *p = (HsaSystemProperties) { .NumNodes = num_nodes() };
        g_props = true;
        return HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtReleaseSystemProperties(void) {
        if (g_open_count == 0 || g_forked)
                return HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
        g_props = false;
        return HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtGetNodeProperties(HSAuint32 node, HsaNodeProperties *p) {
        if (g_open_count == 0 || g_forked)
                return HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
        if (!p)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        if (!g_props)
                return HSAKMT_STATUS_ERROR;
        if (node >= num_nodes())
                return HSAKMT_STATUS_INVALID_NODE_UNIT;
        memset(p, 0, sizeof(*p));
        p->NumMemoryBanks = 1;
        if (node == 0) {
                p->NumCPUCores = 64;
                p->NumIOLinks = g_sh->node.cfg.n_gpus;
                return HSAKMT_STATUS_SUCCESS;
        }
        const struct kfd_gpu_config *g = &g_sh->node.cfg.gpu[node - 1];
        const char *name = "AMD Instinct MI250X (fake KFD)";
        p->NumFComputeCores = 440;
        p->NumIOLinks = 1;
        p->FComputeIdLo = 0x80000000u + 0x1000u * (node - 1);
        p->Capability.ui32.SVMAPISupported = g->svm;
        p->Capability.ui32.CoherentHostAccess = g_sh->node.cfg.mem_mode != KFD_MEM_PRIVATE;
        p->MaxWavesPerSIMD = 8;
        p->LDSSizeInKB = 64;
        p->WaveFrontSize = 64;
        p->NumShaderBanks = 8;
        p->NumArrays = 1;
        p->NumCUPerArray = 14;
        p->NumSIMDPerCU = 4;
        p->EngineId.ui32.Major = 9;
        p->EngineId.ui32.Stepping = 10;
        p->VendorId = 0x1002;
        p->DeviceId = 0x740c;
        p->LocationId = g->location_id;
        p->LocalMemSize = g->vram_bytes;
        p->DrmRenderMinor = 128 + (int) node - 1;
        for (size_t i = 0; name[i] && i + 1 < HSA_PUBLIC_NAME_SIZE; i++)
                p->MarketingName[i] = (HSAuint16) name[i];
        snprintf((char *) p->AMDName, sizeof(p->AMDName), "gfx90a");
        p->HiveID = g->hive_id;
        p->NumSdmaEngines = 2;
        p->NumSdmaXgmiEngines = 6;
        p->UniqueID = 0x5a17000000000000ULL + node - 1;
        return HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtGetNodeMemoryProperties(HSAuint32 node, HSAuint32 n,
                                                            HsaMemoryProperties *m) {
        if (g_open_count == 0 || g_forked)
                return HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED;
        if (!m)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        if (!g_props || node >= num_nodes())
                return HSAKMT_STATUS_INVALID_NODE_UNIT;
        memset(m, 0, sizeof(*m) * n);
        if (n == 0)
                return HSAKMT_STATUS_SUCCESS;
        m[0].HeapType = node == 0 ? HSA_HEAPTYPE_SYSTEM : HSA_HEAPTYPE_FRAME_BUFFER_PUBLIC;
        m[0].SizeInBytes = node == 0 ? 512ULL << 30 : g_sh->node.cfg.gpu[node - 1].vram_bytes;
        m[0].Width = node == 0 ? 64 : 4096;
        return HSAKMT_STATUS_SUCCESS;
}

static bool is_location_or_access(uint32_t type) {
        return type <= HSA_SVM_ATTR_NO_ACCESS;
}

/* The kernel side of AMDKFD_IOC_SVM for the calling process (values are gpu_ids). */
static int svm_ioctl(uint32_t op_code, uint64_t start, uint64_t size, uint32_t nattr,
                     struct kfd_svm_attr *attrs) {
        _cleanup_free_ struct op *op = op_new();
        int r;

        if (!op)
                return -ENOMEM;
        if ((r = op_begin(op, true)) < 0)
                return r;
        if (op_code == 0)
                r = kfd_svm_set(&g_sh->node, &op->ctx, getpid(), start, size, nattr, attrs, NULL);
        else if (op_code == 1)
                r = kfd_svm_get(&g_sh->node, &op->ctx, getpid(), start, size, nattr, attrs);
        else
                r = -EINVAL;
        unlock_node();
        return r;
}

static HSAKMT_STATUS svm_set_get(bool set, void *start, HSAuint64 size, unsigned nattr,
                                 HSA_SVM_ATTRIBUTE *attrs) {
        HSAKMT_STATUS s = check_open();
        uint64_t page = 1ULL << g_sh->node.cfg.page_shift;

        if (s != HSAKMT_STATUS_SUCCESS)
                return s;
        if (!start || !size || ((uintptr_t) start & (page - 1)) || (size & (page - 1)))
                return HSAKMT_STATUS_INVALID_PARAMETER;
        if (nattr && !attrs)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        _cleanup_free_ struct kfd_svm_attr *a = calloc(nattr ? nattr : 1, sizeof(*a));
        if (!a)
                return HSAKMT_STATUS_NO_MEMORY;
        for (unsigned i = 0; i < nattr; i++) {
                a[i] = (struct kfd_svm_attr) { attrs[i].type, attrs[i].value };
                if (!set && attrs[i].type < HSA_SVM_ATTR_ACCESS)
                        continue; /* GET translates only the access types' nodes */
                if (!is_location_or_access(attrs[i].type))
                        continue;
                if (attrs[i].type == HSA_SVM_ATTR_PREFERRED_LOC && attrs[i].value == INVALID_NODEID) {
                        a[i].value = KFD_LOCATION_UNDEFINED;
                        continue;
                }
                s = node_to_gpu_id(attrs[i].value, &a[i].value);
                if (s != HSAKMT_STATUS_SUCCESS)
                        return s;
                if (a[i].value == 0 && attrs[i].type >= HSA_SVM_ATTR_ACCESS)
                        return HSAKMT_STATUS_INVALID_NODE_UNIT; /* CPU node for an access attr */
        }
        if (svm_ioctl(set ? 0 : 1, (uintptr_t) start, size, nattr, a) < 0)
                return HSAKMT_STATUS_ERROR;
        if (set)
                return HSAKMT_STATUS_SUCCESS;
        for (unsigned i = 0; i < nattr; i++) {
                attrs[i].type = a[i].type;
                attrs[i].value = a[i].value;
                if (!is_location_or_access(a[i].type))
                        continue;
                if (a[i].value == KFD_LOCATION_SYSMEM)
                        attrs[i].value = 0;
                else if (a[i].value == KFD_LOCATION_UNDEFINED)
                        attrs[i].value = INVALID_NODEID;
                else if ((s = gpu_id_to_node(a[i].value, &attrs[i].value)) != HSAKMT_STATUS_SUCCESS)
                        return s;
        }
        return HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtSVMSetAttr(void *start, HSAuint64 size, unsigned int nattr,
                                               HSA_SVM_ATTRIBUTE *attrs) {
        return svm_set_get(true, start, size, nattr, attrs);
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtSVMGetAttr(void *start, HSAuint64 size, unsigned int nattr,
                                               HSA_SVM_ATTRIBUTE *attrs) {
        return svm_set_get(false, start, size, nattr, attrs);
}

static HSAKMT_STATUS set_get_xnack(HSAint32 *enable) {
        _cleanup_free_ struct op *op = op_new();
        HSAKMT_STATUS s = check_open();
        int r;

        if (s != HSAKMT_STATUS_SUCCESS)
                return s;
        if (!op || op_begin(op, true) < 0)
                return HSAKMT_STATUS_ERROR;
        r = kfd_set_xnack(&g_sh->node, getpid(), *enable, enable);
        unlock_node();
        if (r == -EPERM)
                return HSAKMT_STATUS_NOT_SUPPORTED;
        return r < 0 ? HSAKMT_STATUS_ERROR : HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtSetXNACKMode(HSAint32 enable) {
        return set_get_xnack(&enable);
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtGetXNACKMode(HSAint32 *enable) {
        if (!enable)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        *enable = -1;
        return set_get_xnack(enable);
}

static int queue_update(uint32_t node, int delta);

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtCreateQueue(HSAuint32 node, HSA_QUEUE_TYPE type, HSAuint32 percentage,
                                                HSA_QUEUE_PRIORITY priority, void *address, HSAuint64 size,
                                                HsaEvent *event, HsaQueueResource *res) {
        HSAKMT_STATUS s = check_open();
        if (s != HSAKMT_STATUS_SUCCESS)
                return s;
        if (!res || percentage > 100)
                return HSAKMT_STATUS_INVALID_PARAMETER;
        if (node == 0 || node >= num_nodes())
                return HSAKMT_STATUS_INVALID_NODE_UNIT;
        pthread_mutex_lock(&g_lib_lock);
        struct fake_queue *q = NULL;
        for (size_t i = 0; i < ELEMENTSOF(g_queues) && !q; i++)
                if (g_queues[i].id == 0)
                        q = &g_queues[i];
        if (!q || !(q->words = calloc(4, sizeof(uint64_t)))) {
                pthread_mutex_unlock(&g_lib_lock);
                return HSAKMT_STATUS_OUT_OF_RESOURCES;
        }
        if (queue_update(node, 1) < 0) {
                free(q->words);
                q->words = NULL;
                pthread_mutex_unlock(&g_lib_lock);
                return HSAKMT_STATUS_ERROR;
        }
        q->id = (HSA_QUEUEID) (q - g_queues) + 1;
        q->node = node;
        *res = (HsaQueueResource) {
                .QueueId = q->id,
                .Queue_DoorBell_aql = &q->words[0],
                .Queue_write_ptr_aql = &q->words[1],
                .Queue_read_ptr_aql = &q->words[2],
                .ErrorReason = (volatile HSAint64 *) &q->words[3],
        };
        pthread_mutex_unlock(&g_lib_lock);
        return HSAKMT_STATUS_SUCCESS;
}

EXPORT HSAKMT_STATUS HSAKMTAPI hsaKmtDestroyQueue(HSA_QUEUEID id) {
        HSAKMT_STATUS s = check_open();
        if (s != HSAKMT_STATUS_SUCCESS)
                return s;
        if (id == 0 || id > ELEMENTSOF(g_queues))
                return HSAKMT_STATUS_INVALID_HANDLE;
        pthread_mutex_lock(&g_lib_lock);
        struct fake_queue *q = &g_queues[id - 1];
        if (q->id != id) {
                pthread_mutex_unlock(&g_lib_lock);
                return HSAKMT_STATUS_INVALID_HANDLE;
        }
        (void) queue_update(q->node, -1);
        free(q->words);
        *q = (struct fake_queue) {};
        pthread_mutex_unlock(&g_lib_lock);
        return HSAKMT_STATUS_SUCCESS;
}

/* ---- the test-only API ---- */

static void copy_result(const struct kfd_result *r, struct fakekfd_result *ret) {
        if (!ret)
                return;
        *ret = (struct fakekfd_result) {
                .pages = r->pages, .faults = r->faults, .dup_faults = r->dup_faults,
                .migrations = r->migrations, .pages_in = r->pages_in, .pages_out = r->pages_out,
                .evicted_pages = r->evicted_pages, .failed_pages = r->failed_pages, .fatal = r->fatal,
        };
        for (unsigned i = 0; i < FAKEKFD_MAX_LOCS && i < SPM_MAX_LOCS; i++)
                ret->pages_at[i] = r->pages_at[i];
}

#define WITH_OP(op, need_open)                                          \
        _cleanup_free_ struct op *op = op_new();                        \
        if (!op)                                                        \
                return -ENOMEM;                                         \
        {                                                               \
                int _r = op_begin(op, need_open);                       \
                if (_r < 0)                                             \
                        return _r;                                      \
        }

static int gpu_index(uint32_t node) {
        return node >= 1 && node < num_nodes() ? (int) node - 1 : -EINVAL;
}

EXPORT int fakekfd_gpu_access(uint32_t node, const void *addr, size_t len, int write,
                              struct fakekfd_result *ret) {
        struct kfd_result res = {};
        if (!g_sh || gpu_index(node) < 0)
                return -EINVAL;
        WITH_OP(op, true);
        int r = kfd_gpu_access(&g_sh->node, &op->ctx, getpid(), (unsigned) gpu_index(node),
                               (uintptr_t) addr, len, write, &res);
        unlock_node();
        copy_result(&res, ret);
        return r;
}

EXPORT int fakekfd_cpu_access(const void *addr, size_t len, int write, struct fakekfd_result *ret) {
        struct kfd_result res = {};
        WITH_OP(op, true);
        int r = kfd_cpu_access(&g_sh->node, &op->ctx, getpid(), (uintptr_t) addr, len, write, &res);
        unlock_node();
        copy_result(&res, ret);
        return r;
}

static int queue_update(uint32_t node, int delta) {
        if (!g_sh || gpu_index(node) < 0)
                return -EINVAL;
        WITH_OP(op, true);
        int r = kfd_queue_update(&g_sh->node, getpid(), (unsigned) gpu_index(node), delta);
        unlock_node();
        return r;
}

EXPORT int fakekfd_queue_create(uint32_t node) {
        return queue_update(node, 1);
}

EXPORT int fakekfd_queue_destroy(uint32_t node) {
        return queue_update(node, -1);
}

EXPORT int fakekfd_munmap(void *addr, size_t len) {
        if (munmap(addr, len) < 0)
                return -errno;
        if (!g_sh || g_open_count == 0 || g_forked)
                return 0;
        WITH_OP(op, true); /* op_begin's VMA sync sees the hole */
        int r = kfd_unmap(&g_sh->node, &op->ctx, getpid(), (uintptr_t) addr, len);
        unlock_node();
        return r;
}

EXPORT int fakekfd_pin(const void *addr, size_t len, int pin) {
        WITH_OP(op, true);
        int r = kfd_pin(&g_sh->node, &op->ctx, getpid(), (uintptr_t) addr, len, pin);
        unlock_node();
        return r;
}

EXPORT int fakekfd_register_bo(const void *addr, size_t len) {
        WITH_OP(op, true);
        int r = kfd_register_kfd_bo(&g_sh->node, getpid(), (uintptr_t) addr, len);
        unlock_node();
        return r;
}

EXPORT int fakekfd_vram_alloc(uint32_t node, uint64_t bytes) {
        if (!g_sh || gpu_index(node) < 0)
                return -EINVAL;
        WITH_OP(op, true);
        int r = kfd_vram_alloc(&g_sh->node, &op->ctx, getpid(), (unsigned) gpu_index(node), bytes);
        unlock_node();
        return r;
}

EXPORT int fakekfd_vram_free(int bo) {
        WITH_OP(op, true);
        int r = bo > 0 ? kfd_vram_free(&g_sh->node, (uint32_t) bo) : -EINVAL;
        unlock_node();
        return r;
}

EXPORT int fakekfd_residency(const void *addr, size_t len, uint64_t ret_pages[FAKEKFD_MAX_LOCS]) {
        uint64_t pages[SPM_MAX_LOCS];
        WITH_OP(op, false);
        kfd_residency(&g_sh->node, getpid(), (uintptr_t) addr, len, pages);
        unlock_node();
        for (unsigned i = 0; i < FAKEKFD_MAX_LOCS; i++)
                ret_pages[i] = i < SPM_MAX_LOCS ? pages[i] : 0;
        return 0;
}

EXPORT int fakekfd_kfd_fd(void) {
        return g_kfd_fd;
}

EXPORT int fakekfd_ioctl_svm(int fd, uint32_t op_code, uint64_t start, uint64_t size, uint32_t nattr,
                             uint32_t *attrs) {
        char link[64], target[PATH_MAX];
        ssize_t k;
        int owner = 0;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        k = readlink(link, target, sizeof(target) - 1);
        if (k < 0)
                return -EBADF;
        target[k] = 0;
        const char *base = strrchr(target, '/');
        if (!base || sscanf(base, "/kfd.%d", &owner) != 1)
                return -ENOTTY; /* not a KFD fd */
        int r = kfd_check_caller(owner, getpid());
        if (r < 0)
                return r;
        if (!g_sh)
                return -EBADF;
        /* The process behind the fd is the caller (checked above), so the model acts on it even
         * when the library's own open count says otherwise. */
        _cleanup_free_ struct op *op = op_new();
        if (!op)
                return -ENOMEM;
        op_begin(op, false);
        if (!kfd_process_get(&g_sh->node, getpid()))
                r = -EBADF;
        else if (op_code == 0)
                r = kfd_svm_set(&g_sh->node, &op->ctx, getpid(), start, size, nattr,
                                (struct kfd_svm_attr *) attrs, NULL);
        else if (op_code == 1)
                r = kfd_svm_get(&g_sh->node, &op->ctx, getpid(), start, size, nattr,
                                (struct kfd_svm_attr *) attrs);
        else
                r = -EINVAL;
        unlock_node();
        return r;
}

EXPORT int fakekfd_smi_open(uint32_t gpu_id, uint64_t mask, int suser, int *ret_fd) {
        static unsigned seq;
        char base[PATH_MAX], fifo[PATH_MAX + 8], conf[PATH_MAX + 8], tmp[PATH_MAX + 16];
        int r;

        if (!ret_fd)
                return -EINVAL;
        if ((r = attach()) < 0)
                return r;
        if (kfd_gpu_index(&g_sh->node, gpu_id) < 0)
                return -EINVAL;
        snprintf(base, sizeof(base), "%s/run/smi", g_root);
        if ((r = mkdir_p(base)) < 0)
                return r;
        snprintf(base, sizeof(base), "%s/run/smi/%d.%u", g_root, (int) getpid(), seq++);
        snprintf(fifo, sizeof(fifo), "%s.fifo", base);
        snprintf(conf, sizeof(conf), "%s.conf", base);
        snprintf(tmp, sizeof(tmp), "%s.conf.tmp", base);
        if (mkfifo(fifo, 0600) < 0)
                return -errno;
        int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_fclose_ FILE *f = fopen(tmp, "we");
        if (!f || fprintf(f, "gpu_id=%u pid=%d mask=%llx suser=%d\n", gpu_id, (int) getpid(),
                          (unsigned long long) mask, suser ? 1 : 0) < 0 || fflush(f) != 0 ||
            rename(tmp, conf) < 0) {
                r = -errno;
                close(fd);
                unlink(fifo);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

EXPORT const char *fakekfd_root(void) {
        return g_sh ? g_root : getenv("FAKEKFD_ROOT");
}

EXPORT int fakekfd_setup(void) {
        int r = attach();
        if (r < 0)
                return r;
        lock_node();
        unlock_node();
        return 0;
}
