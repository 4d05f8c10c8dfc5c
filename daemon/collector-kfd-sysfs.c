/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kfd-sysfs collector: what amdkfd publishes per process under
 * <sys>/class/kfd/kfd/proc/<pid>/ (pasid, vram_<gpuid>, counters_<gpuid>/{faults,page_in,
 * page_out}; reference/kfd-svm.md §3.2) for the pids jobs own, and each GPU's VRAM use from
 * amdgpu's mem_info_vram_used/_total (§3.3). Every epoch it turns the cumulative counters into
 * deltas and hands them to the sink with the VRAM figures.
 *
 * sysfs is read file by file, so a process can exit between two reads and a pid can be reused
 * between two epochs. A missing proc/<pid> means no KFD process (yet, or any more): the
 * baseline is dropped. A pasid that changed or a counter that went backwards means another
 * process: the counts start over from its zero. A file with garbage in it costs that GPU's
 * sample for the epoch and is logged once per kind of trouble.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "kfd-topology.h"
#include "log.h"
#include "spmtier/macro.h"
#include "sysfs-io.h"

#define PROC "class/kfd/kfd/proc"

struct kfd_values {
        uint64_t faults, page_in, page_out, vram;
        bool svm;  /* counters_<gpuid>/ exists */
        bool have; /* a baseline for this GPU */
};

struct tracked {
        uint32_t pid;
        uint64_t pasid; /* 0: no baseline */
        struct kfd_values v[SPM_MAX_GPUS];
};

enum trouble {
        TROUBLE_GARBAGE,
        TROUBLE_READ,
        TROUBLE_NO_VRAM_INFO,
        _TROUBLE_MAX,
};

struct kfd_sysfs {
        char *sys_root;
        uint32_t gpu_ids[SPM_MAX_GPUS];
        unsigned n;
        char dev[SPM_MAX_GPUS][64]; /* the GPU's amdgpu device dir under sys_root, or "" */
        uint64_t vram_used[SPM_MAX_GPUS], vram_total[SPM_MAX_GPUS];
        struct tracked *t;
        size_t n_t;
        unsigned logged; /* 1 << enum trouble, once each */
        uint64_t resets, vanished, garbage, faults, pages_in, pages_out;
};

static void trouble(struct kfd_sysfs *k, enum trouble what, int error, const char *fmt, ...)
        _printf_(4, 5);
static void trouble(struct kfd_sysfs *k, enum trouble what, int error, const char *fmt, ...) {
        char line[512];
        va_list ap;

        if (what == TROUBLE_GARBAGE)
                k->garbage++;
        if (k->logged & (1U << what))
                return;
        k->logged |= 1U << what;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        log_warning_errno(error, "kfd-sysfs: %s (%m; reported once)", line);
}

/* The drm_render_minor of the topology node whose gpu_id is gpu_id, or -errno. */
static int render_minor(const char *sys_root, uint32_t gpu_id) {
        for (unsigned node = 0; node < 64; node++) {
                char props[4096], *p;
                uint64_t id;
                int r;

                r = sysfs_read_u64(&id, sys_root, "class/kfd/kfd/topology/nodes/%u/gpu_id", node);
                if (r < 0)
                        return r;
                if (id != gpu_id)
                        continue;
                r = sysfs_read(props, sizeof(props), sys_root,
                               "class/kfd/kfd/topology/nodes/%u/properties", node);
                if (r < 0)
                        return r;
                p = strstr(props, "drm_render_minor ");
                if (!p)
                        return -ENOENT;
                unsigned long minor = strtoul(p + strlen("drm_render_minor "), NULL, 10);
                return minor < 1U << 20 ? (int) minor : -EBADMSG;
        }
        return -ENOENT;
}

/* The amdgpu device of a GPU: renderD<minor>/device, as on hardware, or card<minor-128>/
 * device (the fake KFD publishes only cards). */
static void find_device(struct kfd_sysfs *k, unsigned gpu) {
        int minor = render_minor(k->sys_root, k->gpu_ids[gpu]);
        uint64_t total;

        if (minor < 0)
                return;
        snprintf(k->dev[gpu], sizeof(k->dev[gpu]), "class/drm/renderD%d/device", minor);
        if (sysfs_read_u64(&total, k->sys_root, "%s/mem_info_vram_total", k->dev[gpu]) >= 0)
                return;
        snprintf(k->dev[gpu], sizeof(k->dev[gpu]), "class/drm/card%d/device", minor - 128);
        if (minor >= 128 &&
            sysfs_read_u64(&total, k->sys_root, "%s/mem_info_vram_total", k->dev[gpu]) >= 0)
                return;
        k->dev[gpu][0] = '\0';
}

static void sysfs_free(void *state) {
        struct kfd_sysfs *k = state;

        if (!k)
                return;
        free(k->t);
        free(k->sys_root);
        free(k);
}

static int sysfs_init(const struct spm_collector_args *args, void **ret, char *msg, size_t size) {
        struct kfd_sysfs *k = calloc(1, sizeof(*k));
        int n;

        if (!k)
                return -ENOMEM;
        k->sys_root = strdup(args->sys_root ? args->sys_root : "/sys");
        if (!k->sys_root) {
                free(k);
                return -ENOMEM;
        }
        n = kfd_topology_gpu_ids(k->sys_root, k->gpu_ids);
        if (n <= 0) {
                snprintf(msg, size, "no KFD GPU under %s/class/kfd/kfd/topology/nodes",
                         k->sys_root);
                sysfs_free(k);
                return n < 0 ? n : -ENODEV;
        }
        k->n = args->n_gpus ? MIN((unsigned) n, args->n_gpus) : (unsigned) n;
        for (unsigned g = 0; g < k->n; g++)
                find_device(k, g);
        *ret = k;
        return 0;
}

static int cmp_tracked(const void *a, const void *b) {
        uint32_t x = ((const struct tracked *) a)->pid, y = ((const struct tracked *) b)->pid;

        return (x > y) - (x < y);
}

/* Follows pids (sorted); baselines of pids still followed are kept. */
static int sysfs_track(void *state, const uint32_t *pids, size_t n, char *msg, size_t size) {
        struct kfd_sysfs *k = state;
        struct tracked *t = calloc(MAX(n, (size_t) 1), sizeof(*t));

        if (!t) {
                snprintf(msg, size, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct tracked key = { .pid = pids[i] };
                const struct tracked *old =
                        k->n_t ? bsearch(&key, k->t, k->n_t, sizeof(*k->t), cmp_tracked) : NULL;
                t[i] = old ? *old : key;
        }
        free(k->t);
        k->t = t;
        k->n_t = n;
        return 0;
}

/* Reads one counter file; -ENOENT passes through, garbage is reported. */
static int read_counter(struct kfd_sysfs *k, uint64_t *ret, uint32_t pid, const char *name) {
        int r = sysfs_read_u64(ret, k->sys_root, PROC "/%" PRIu32 "/%s", pid, name);

        if (r == -EBADMSG)
                trouble(k, TROUBLE_GARBAGE, r, "%s/" PROC "/%" PRIu32 "/%s holds no number",
                        k->sys_root, pid, name);
        else if (r < 0 && r != -ENOENT)
                trouble(k, TROUBLE_READ, r, "cannot read %s/" PROC "/%" PRIu32 "/%s",
                        k->sys_root, pid, name);
        return r;
}

/* Reads the files of pid on GPU g into v. Returns 0, -ENOENT when the process has gone (or
 * never had this GPU), or another negative errno. */
static int read_gpu(struct kfd_sysfs *k, uint32_t pid, unsigned g, struct kfd_values *v) {
        uint32_t id = k->gpu_ids[g];
        char name[64];
        int r;

        *v = (struct kfd_values) { .have = true };
        snprintf(name, sizeof(name), "vram_%" PRIu32, id);
        r = read_counter(k, &v->vram, pid, name);
        if (r < 0)
                return r;
        const struct { const char *file; uint64_t *val; } c[] = {
                { "faults", &v->faults }, { "page_in", &v->page_in }, { "page_out", &v->page_out },
        };
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                snprintf(name, sizeof(name), "counters_%" PRIu32 "/%s", id, c[i].file);
                r = read_counter(k, c[i].val, pid, name);
                if (r == -ENOENT && i == 0)
                        return 0; /* a GPU without SVM has no counters */
                if (r < 0)
                        return r;
        }
        v->svm = true;
        return 0;
}

static uint64_t delta(uint64_t now, uint64_t was, bool reset) {
        return reset ? now : now - was;
}

/* One epoch of one process. Returns the samples fed, or -ENOMEM. */
static int collect_pid(struct kfd_sysfs *k, struct tracked *t, const struct spm_collector_sink *s) {
        struct kfd_values now[SPM_MAX_GPUS];
        int bad[SPM_MAX_GPUS];
        uint64_t pasid, check;
        int r, fed = 0;

        r = read_counter(k, &pasid, t->pid, "pasid");
        for (unsigned g = 0; r >= 0 && g < k->n; g++)
                bad[g] = read_gpu(k, t->pid, g, &now[g]);
        /* A process that exits between two reads takes the whole directory with it; one that
         * replaced it changed the pasid. Either way these reads are not one process's. */
        if (r >= 0 && (read_counter(k, &check, t->pid, "pasid") < 0 || check != pasid))
                r = -ENOENT;
        if (r < 0) {
                if (t->pasid)
                        k->vanished++;
                *t = (struct tracked) { .pid = t->pid };
                return 0;
        }
        bool new_process = t->pasid && t->pasid != pasid;
        if (new_process) {
                k->resets++;
                for (unsigned g = 0; g < k->n; g++)
                        t->v[g].have = false;
        }
        t->pasid = pasid;
        for (unsigned g = 0; g < k->n; g++) {
                struct kfd_values *was = &t->v[g], *v = &now[g];

                if (bad[g] < 0)
                        continue; /* garbage, or a GPU the process does not use */
                if (!was->have && !new_process) {
                        *was = *v; /* counts from before we looked are no epoch's */
                        continue;
                }
                bool reset = new_process || v->faults < was->faults ||
                             v->page_in < was->page_in || v->page_out < was->page_out;
                if (reset && !new_process)
                        k->resets++;
                struct spm_kfd_sample smp = {
                        .pid = t->pid, .gpu = g, .svm = v->svm, .reset = reset,
                        .faults = delta(v->faults, was->faults, reset),
                        .pages_in = delta(v->page_in, was->page_in, reset),
                        .pages_out = delta(v->page_out, was->page_out, reset),
                        .vram_bytes = v->vram,
                };
                *was = *v;
                k->faults += smp.faults;
                k->pages_in += smp.pages_in;
                k->pages_out += smp.pages_out;
                if (!s->kfd_counters)
                        continue;
                r = s->kfd_counters(s->userdata, &smp);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0)
                        fed++;
        }
        return fed;
}

static int sysfs_collect(void *state, const struct spm_collector_sink *s, char *msg,
                         size_t size) {
        struct kfd_sysfs *k = state;
        int r, fed = 0;

        for (unsigned g = 0; g < k->n; g++) {
                uint64_t used, total;

                if (!k->dev[g][0]) {
                        trouble(k, TROUBLE_NO_VRAM_INFO, ENOENT,
                                "no mem_info_vram_total for gpu_id %" PRIu32 " under %s/class/drm",
                                k->gpu_ids[g], k->sys_root);
                        continue;
                }
                r = sysfs_read_u64(&used, k->sys_root, "%s/mem_info_vram_used", k->dev[g]);
                if (r >= 0)
                        r = sysfs_read_u64(&total, k->sys_root, "%s/mem_info_vram_total",
                                           k->dev[g]);
                if (r < 0) {
                        trouble(k, r == -EBADMSG ? TROUBLE_GARBAGE : TROUBLE_READ, r,
                                "%s/%s/mem_info_vram_*: %s", k->sys_root, k->dev[g],
                                r == -EBADMSG ? "no number" : "unreadable");
                        continue;
                }
                k->vram_used[g] = used;
                k->vram_total[g] = total;
                if (s->vram) {
                        r = s->vram(s->userdata, g, used, total);
                        if (r == -ENOMEM)
                                goto nomem;
                        if (r >= 0)
                                fed++;
                }
        }
        for (size_t i = 0; i < k->n_t; i++) {
                r = collect_pid(k, &k->t[i], s);
                if (r < 0)
                        goto nomem;
                fed += r;
        }
        return fed;
nomem:
        snprintf(msg, size, "out of memory");
        return -ENOMEM;
}

static void sysfs_describe(void *state, char *buf, size_t size) {
        struct kfd_sysfs *k = state;
        size_t live = 0, l;

        for (size_t i = 0; i < k->n_t; i++)
                live += k->t[i].pasid != 0;
        l = (size_t) snprintf(buf, size, "kfd-sysfs: %zu of %zu processes on KFD, %" PRIu64
                              " faults, %" PRIu64 " pages in, %" PRIu64 " pages out, %" PRIu64
                              " resets, %" PRIu64 " vanished, %" PRIu64 " bad files; VRAM",
                              live, k->n_t, k->faults, k->pages_in, k->pages_out, k->resets,
                              k->vanished, k->garbage);
        for (unsigned g = 0; g < k->n && l < size; g++)
                l += (size_t) snprintf(buf + l, size - l, " gpu%u %" PRIu64 "/%" PRIu64 " MiB", g,
                                       k->vram_used[g] >> 20, k->vram_total[g] >> 20);
}

const struct spm_collector_ops spm_collector_kfd_sysfs = {
        .name = "kfd-sysfs",
        .init = sysfs_init,
        .free = sysfs_free,
        .collect = sysfs_collect,
        .track = sysfs_track,
        .describe = sysfs_describe,
};
