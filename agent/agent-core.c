/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include <hsakmt.h>

#include "agent-core.h"
#include "spmtier/macro.h"

static int read_u64(const char *path, uint64_t *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned long long v;
        if (!f)
                return -errno;
        if (fscanf(f, "%llu", &v) != 1)
                return -EINVAL;
        *ret = v;
        return 0;
}

int spm_agent_topology_read(const char *root, struct spm_agent_topology *ret) {
        struct spm_agent_topology t = {};
        char path[PATH_MAX];

        for (unsigned node = 0;; node++) {
                uint64_t id;
                snprintf(path, sizeof(path), "%s/sys/class/kfd/kfd/topology/nodes/%u/gpu_id", root, node);
                int r = read_u64(path, &id);
                if (r == -ENOENT)
                        break;
                if (r < 0 || id > 0xffff)
                        return r < 0 ? r : -EINVAL;
                t.n_nodes = node + 1;
                if (id == 0) /* a CPU node */
                        continue;
                if (t.n_gpus >= SPM_AGENT_MAX_GPUS)
                        break;
                t.gpu_id[t.n_gpus] = (uint32_t) id;
                t.node[t.n_gpus] = node;
                t.n_gpus++;
        }
        if (t.n_nodes == 0)
                return -ENOENT;
        *ret = t;
        return 0;
}

int spm_agent_node_of(const struct spm_agent_topology *t, uint32_t gpu_id) {
        if (gpu_id == 0)
                return 0;
        for (unsigned i = 0; i < t->n_gpus; i++)
                if (t->gpu_id[i] == gpu_id)
                        return (int) t->node[i];
        return -ENODEV;
}

static uint32_t gpu_id_of_node(const struct spm_agent_topology *t, uint32_t node) {
        if (node == INVALID_NODEID)
                return UINT32_MAX;
        for (unsigned i = 0; i < t->n_gpus; i++)
                if (t->node[i] == node)
                        return t->gpu_id[i];
        return 0;
}

int spm_agent_parse_maps(FILE *f, struct spm_agent_range *v, size_t max, bool *ret_more) {
        char line[PATH_MAX + 128];
        size_t n = 0;
        bool more = false;

        while (fgets(line, sizeof(line), f)) {
                unsigned long long s, e;
                char perms[8] = "", name[PATH_MAX] = "";
                unsigned long long off, ino;
                char dev[32];
                if (sscanf(line, "%llx-%llx %7s %llx %31s %llu %4095[^\n]", &s, &e, perms, &off, dev, &ino,
                           name) < 6 || strlen(perms) != 4 || e <= s)
                        return -EINVAL;
                const char *nm = name + strspn(name, " ");
                bool is_private = perms[3] == 'p', accessible = perms[0] == 'r' || perms[1] == 'w';
                if (!is_private || !accessible || !strncmp(nm, "/dev/", 5) || !strncmp(nm, "[stack", 6) ||
                    !strcmp(nm, "[vvar]") || !strcmp(nm, "[vdso]") || !strcmp(nm, "[vsyscall]"))
                        continue;
                struct spm_agent_range r = { s, e, nm[0] == '/', !strcmp(nm, "[heap]") };
                if (n > 0 && v[n - 1].end == r.start && v[n - 1].file == r.file && v[n - 1].heap == r.heap) {
                        v[n - 1].end = r.end;
                        continue;
                }
                if (n == max) {
                        more = true;
                        continue;
                }
                v[n++] = r;
        }
        if (ret_more)
                *ret_more = more;
        return (int) MIN(n, (size_t) INT_MAX);
}

int spm_agent_errno(int s) {
        switch (s) {
        case HSAKMT_STATUS_SUCCESS:
                return 0;
        case HSAKMT_STATUS_INVALID_PARAMETER:
                return -EINVAL;
        case HSAKMT_STATUS_INVALID_NODE_UNIT:
                return -ENODEV;
        case HSAKMT_STATUS_KERNEL_IO_CHANNEL_NOT_OPENED:
                return -EBADF;
        case HSAKMT_STATUS_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case HSAKMT_STATUS_NO_MEMORY:
        case HSAKMT_STATUS_OUT_OF_RESOURCES:
                return -ENOMEM;
        default:
                return -EIO; /* HSAKMT_STATUS_ERROR: the kernel's errno is lost in the thunk */
        }
}

/* Pages this process moved, by counters_<gpuid>: into the target's VRAM, or out of every GPU. */
static int pages_moved(const struct spm_agent_topology *t, const char *root, uint32_t to_gpu_id,
                       uint64_t *ret) {
        char path[PATH_MAX];
        uint64_t sum = 0;
        for (unsigned i = 0; i < t->n_gpus; i++) {
                uint64_t v;
                if (to_gpu_id && t->gpu_id[i] != to_gpu_id)
                        continue;
                snprintf(path, sizeof(path), "%s/sys/class/kfd/kfd/proc/%d/counters_%" PRIu32 "/%s", root,
                         (int) getpid(), t->gpu_id[i], to_gpu_id ? "page_in" : "page_out");
                int r = read_u64(path, &v);
                if (r == -ENOENT)
                        continue; /* no SVM counters for this GPU (yet) */
                if (r < 0)
                        return r;
                sum += v;
        }
        *ret = sum;
        return 0;
}

int spm_agent_move(const struct spm_agent_topology *t, const char *root, const struct spm_agent_move *m,
                   struct spm_agent_outcome *ret) {
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE), s, e, before = 0, after = 0;
        HSA_SVM_ATTRIBUTE a[3];
        unsigned na = 0;
        int target, access = 0;

        if (m->length == 0 || m->start + m->length < m->start)
                return -EINVAL;
        if ((target = spm_agent_node_of(t, m->to_gpu_id)) < 0)
                return target;
        if (m->access_gpu_id && (access = spm_agent_node_of(t, m->access_gpu_id)) <= 0)
                return -ENODEV;
        s = ALIGN_DOWN(m->start, page);
        e = ALIGN_UP(m->start + m->length, page);

        struct spm_agent_outcome o = {};
        int r = pages_moved(t, root, m->to_gpu_id, &before);
        if (r < 0)
                return r;
        HSAuint32 preferred = m->preferred == SPM_AGENT_PREFER_NONE ? INVALID_NODEID : (HSAuint32) target;
        if (access)
                a[na++] = (HSA_SVM_ATTRIBUTE) { HSA_SVM_ATTR_ACCESS, (HSAuint32) access };
        a[na++] = (HSA_SVM_ATTRIBUTE) { HSA_SVM_ATTR_PREFERRED_LOC, preferred };
        if (!m->pin_only)
                a[na++] = (HSA_SVM_ATTRIBUTE) { HSA_SVM_ATTR_PREFETCH_LOC, (HSAuint32) target };
        o.status = spm_agent_errno(hsaKmtSVMSetAttr((void *) (uintptr_t) s, e - s, na, a));

        if (o.status == 0) {
                /* GET reports what was requested (never residency): a mismatch means another
                 * writer (the application's own hipMemAdvise) raced us. */
                HSA_SVM_ATTRIBUTE q[2] = { { HSA_SVM_ATTR_PREFERRED_LOC, 0 }, { HSA_SVM_ATTR_PREFETCH_LOC, 0 } };
                o.status = spm_agent_errno(hsaKmtSVMGetAttr((void *) (uintptr_t) s, e - s, 2, q));
                o.preferred_gpu_id = gpu_id_of_node(t, q[0].value);
                o.prefetch_gpu_id = gpu_id_of_node(t, q[1].value);
                if (o.status == 0 && (q[0].value != preferred ||
                                      (!m->pin_only && q[1].value != (HSAuint32) target)))
                        o.status = -ESTALE;
        }
        /* Residency from the counters: success does not mean "moved" for VRAM targets. Other
         * migrations of this process in the window (GPU faults) count too; the daemon treats
         * the number as an upper bound. */
        if (pages_moved(t, root, m->to_gpu_id, &after) == 0 && after > before)
                o.moved_bytes = MIN((after - before) * page, e - s);
        *ret = o;
        return 0;
}
