/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kfd-smi collector: amdkfd's SMI event stream, one client per GPU, in all-process mode
 * (mask bit 63; the kernel wants CAP_SYS_ADMIN for other processes' events). On hardware the
 * client comes from the raw AMDKFD_IOC_SMI_EVENTS ioctl on /dev/kfd (libhsakmt 5.2.3 has no
 * wrapper); on the fake KFD it is a FIFO under <root>/run/smi (docs/fakekfd.md). Either way
 * the bytes go through the same parser (libpolicy/kfd-smi.c), which survives split reads,
 * unknown ids, garbage and the fifo's silent drops.
 *
 * What the engine learns: GPU faults (PAGE_FAULT_END: where, which GPU, migrated or only
 * mapped) and the driver's own migrations (MIGRATE_END after a GPU fault, a CPU fault or a
 * TTM eviction: where the data really is now). MIGRATE_END of our own prefetches (trigger 0)
 * confirms where their pages landed, page by page: the agent's report says how much moved,
 * the events say which pages (a VRAM prefetch that moved nothing has none).
 * A fault on a span no agent reported becomes a granule-sized range of that process.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector.h"
#include "kfd-topology.h"
#include "spmtier/kfd-model.h"
#include "spmtier/macro.h"

#define PAGE 4096ULL
#define FAULT_RANGE (2ULL << 20) /* a range made up for a fault: the default SVM granule */
#define READ_MAX (64 * 1024)     /* bytes read per GPU per epoch: the rest waits */
#define TRIGGER_PREFETCH 0

/* From linux/kfd_ioctl.h (uapi, KFD 1.4+), which cannot be included without libdrm's
 * drm/drm.h. */
struct kfd_ioctl_smi_events_args {
        uint32_t gpuid;   /* to KFD */
        uint32_t anon_fd; /* from KFD */
};
#define AMDKFD_IOC_SMI_EVENTS _IOWR('K', 0x1F, struct kfd_ioctl_smi_events_args)

struct smi_client {
        uint32_t gpu_id;
        int fd;
        char fifo[4096]; /* fake only: removed at free */
        struct kfd_smi_parser parser;
};

struct kfd_smi {
        struct smi_client c[SPM_MAX_GPUS];
        uint32_t gpu_ids[SPM_MAX_GPUS];
        unsigned n;
        const struct spm_collector_sink *sink; /* during collect */
        int fed;
        bool nomem;
        uint64_t faults, migrations, prefetched, ranges_made, unused;
};

static const uint64_t MASK = KFD_EV_MASK(KFD_EV_MIGRATE_END) | KFD_EV_MASK(KFD_EV_PAGE_FAULT_END) |
                             KFD_EV_MASK(KFD_EV_ALL_PROCESS);

static int open_hardware(const char *device, uint32_t gpu_id, char *msg, size_t size) {
        struct kfd_ioctl_smi_events_args a = { .gpuid = gpu_id };
        uint64_t mask = MASK;
        int kfd = open(device, O_RDWR | O_CLOEXEC);

        if (kfd < 0) {
                snprintf(msg, size, "cannot open %s: %s", device, strerror(errno));
                return -errno;
        }
        if (ioctl(kfd, AMDKFD_IOC_SMI_EVENTS, &a) < 0) {
                int r = -errno;
                snprintf(msg, size, "AMDKFD_IOC_SMI_EVENTS on gpu_id %" PRIu32 ": %s", gpu_id,
                         strerror(errno));
                close(kfd);
                return r;
        }
        close(kfd);
        int fd = (int) a.anon_fd;
        /* Without CAP_SYS_ADMIN the kernel keeps bit 63 but sends only our own events. */
        if (write(fd, &mask, sizeof(mask)) != sizeof(mask)) {
                int r = -errno;
                snprintf(msg, size, "setting the SMI mask: %s", strerror(errno));
                close(fd);
                return r;
        }
        (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        return fd;
}

/* The fake's client: a FIFO we read, then the .conf that makes writers feed it. */
static int open_fake(const char *root, struct smi_client *c, char *msg, size_t size) {
        char dir[2048], conf[4096], tmp[4200];
        int fd;

        snprintf(dir, sizeof(dir), "%s/run/smi", root);
        (void) mkdir(dir, 0755);
        snprintf(c->fifo, sizeof(c->fifo), "%s/spmtierd-%d-%" PRIu32 ".fifo", dir, (int) getpid(),
                 c->gpu_id);
        snprintf(conf, sizeof(conf), "%s/spmtierd-%d-%" PRIu32 ".conf", dir, (int) getpid(),
                 c->gpu_id);
        (void) unlink(c->fifo);
        if (mkfifo(c->fifo, 0600) < 0 ||
            (fd = open(c->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
                int r = -errno;
                snprintf(msg, size, "cannot make SMI FIFO %s: %s", c->fifo, strerror(errno));
                c->fifo[0] = '\0';
                return r;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", conf);
        FILE *f = fopen(tmp, "we");
        if (!f || fprintf(f, "gpu_id=%" PRIu32 " pid=%d mask=%" PRIx64 " suser=1\n", c->gpu_id,
                          (int) getpid(), MASK) < 0 || fclose(f) != 0 || rename(tmp, conf) < 0) {
                int r = -errno ? -errno : -EIO;
                snprintf(msg, size, "cannot write %s: %s", conf, strerror(errno));
                close(fd);
                return r;
        }
        return fd;
}

static void smi_free(void *state) {
        struct kfd_smi *k = state;

        if (!k)
                return;
        for (unsigned i = 0; i < k->n; i++) {
                if (k->c[i].fd >= 0)
                        close(k->c[i].fd);
                if (k->c[i].fifo[0]) {
                        char conf[4200];
                        size_t l = strlen(k->c[i].fifo);
                        snprintf(conf, sizeof(conf), "%.*s.conf", (int) (l - 5), k->c[i].fifo);
                        (void) unlink(conf);
                        (void) unlink(k->c[i].fifo);
                }
        }
        free(k);
}

static int smi_init(const struct spm_collector_args *args, void **ret, char *msg, size_t size) {
        struct kfd_smi *k = calloc(1, sizeof(*k));
        int n, r;

        if (!k)
                return -ENOMEM;
        n = kfd_topology_gpu_ids(args->sys_root, k->gpu_ids);
        if (n <= 0) {
                snprintf(msg, size, "no KFD GPU under %s/class/kfd/kfd/topology/nodes",
                         args->sys_root);
                free(k);
                return n < 0 ? n : -ENODEV;
        }
        n = (int) MIN((unsigned) n, args->n_gpus ? args->n_gpus : (unsigned) n);
        for (int i = 0; i < n; i++) {
                struct smi_client *c = &k->c[k->n++];
                c->gpu_id = k->gpu_ids[i];
                kfd_smi_parser_init(&c->parser);
                r = args->fake_kfd_root && *args->fake_kfd_root
                            ? open_fake(args->fake_kfd_root, c, msg, size)
                            : open_hardware(args->kfd_device ? args->kfd_device : "/dev/kfd",
                                            c->gpu_id, msg, size);
                c->fd = r;
                if (r < 0) {
                        smi_free(k);
                        return r;
                }
        }
        *ret = k;
        return 0;
}

static void on_event(void *userdata, const struct kfd_event *ev) {
        struct kfd_smi *k = userdata;
        const struct spm_collector_sink *s = k->sink;
        uint64_t addr = ev->addr * PAGE;
        int r, gpu;

        if (k->nomem || ev->pid <= 0)
                return;
        if (ev->id == KFD_EV_PAGE_FAULT_END) {
                gpu = kfd_topology_gpu_index(k->gpu_ids, k->n, ev->gpu_id);
                if (gpu < 0)
                        return;
                k->faults++;
                /* The driver serves a fault a granule at a time (the default 2 MiB): so does
                 * the heat, or regions would split at every faulting page. */
                addr = ALIGN_DOWN(addr, FAULT_RANGE);
                r = s->gpu_fault(s->userdata, (uint32_t) ev->pid, addr, FAULT_RANGE,
                                 (unsigned) gpu, ev->c == 'M');
                if (r == -ENOENT &&
                    s->range(s->userdata, (uint32_t) ev->pid, addr, FAULT_RANGE) >= 0) {
                        k->ranges_made++;
                        r = s->gpu_fault(s->userdata, (uint32_t) ev->pid, addr, FAULT_RANGE,
                                         (unsigned) gpu, ev->c == 'M');
                }
        } else if (ev->id == KFD_EV_MIGRATE_END) {
                unsigned loc = 0;
                if (ev->to) {
                        gpu = kfd_topology_gpu_index(k->gpu_ids, k->n, ev->to);
                        if (gpu < 0)
                                return;
                        loc = SPM_LOC_GPU((unsigned) gpu);
                }
                if (ev->trigger == TRIGGER_PREFETCH)
                        k->prefetched++;
                else
                        k->migrations++;
                r = s->locate(s->userdata, (uint32_t) ev->pid, addr, ev->npages * PAGE, loc);
        } else
                return;
        if (r == -ENOMEM)
                k->nomem = true;
        else if (r < 0)
                k->unused++;
        else
                k->fed++;
}

static int smi_collect(void *state, const struct spm_collector_sink *sink, char *msg, size_t size) {
        struct kfd_smi *k = state;
        char buf[4096];

        k->sink = sink;
        k->fed = 0;
        k->nomem = false;
        for (unsigned i = 0; i < k->n; i++) {
                struct smi_client *c = &k->c[i];
                for (size_t total = 0; total < READ_MAX && !k->nomem;) {
                        ssize_t l = read(c->fd, buf, sizeof(buf));
                        if (l < 0 && errno == EINTR)
                                continue;
                        if (l <= 0)
                                break; /* EAGAIN: drained; 0: no writer right now (fake) */
                        total += (size_t) l;
                        kfd_smi_parser_feed(&c->parser, buf, (size_t) l, on_event, k);
                }
        }
        k->sink = NULL;
        if (k->nomem) {
                snprintf(msg, size, "out of memory");
                return -ENOMEM;
        }
        return k->fed;
}

static void smi_describe(void *state, char *buf, size_t size) {
        struct kfd_smi *k = state;
        uint64_t garbage = 0, unknown = 0;

        for (unsigned i = 0; i < k->n; i++) {
                garbage += k->c[i].parser.garbage + k->c[i].parser.overlong_lines;
                unknown += k->c[i].parser.unknown;
        }
        snprintf(buf, size, "kfd-smi: %u GPUs, %" PRIu64 " faults, %" PRIu64 " driver migrations, %"
                 PRIu64 " prefetches seen landing, %" PRIu64 " ranges made from faults, %" PRIu64
                 " events of unknown spans, %" PRIu64 " unknown ids, %" PRIu64 " bad lines", k->n,
                 k->faults, k->migrations, k->prefetched, k->ranges_made, k->unused, unknown,
                 garbage);
}

const struct spm_collector_ops spm_collector_kfd_smi = {
        .name = "kfd-smi",
        .init = smi_init,
        .free = smi_free,
        .collect = smi_collect,
        .describe = smi_describe,
};
