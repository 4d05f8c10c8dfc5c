/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The part of libspmtier-agent that acts on KFD, independent of how commands arrive: GPU naming
 * (KFD gpu_id <-> this process's HSA node id), range discovery from /proc/self/maps, and one
 * migration carried out with hsaKmtSVMSetAttr and verified. Runs inside the job's process (the
 * kernel only lets a process migrate its own SVM ranges). Built against Debian's hsakmt.h; on
 * the fake KFD the same code runs with LD_LIBRARY_PATH at the fake (docs/fakekfd.md).
 *
 * All paths are below a sysfs root ("/" on hardware, $FAKEKFD_ROOT on the fake). Functions
 * return 0 or a negative errno and never exit, abort or log.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SPM_AGENT_MAX_GPUS 8

/* GPUs by KFD gpu_id, with the HSA node id this process uses for each. ROCT 5.2.3 numbers user
 * nodes like sysfs nodes unless a render node cannot be opened; the agent reads sysfs and
 * cross-checks the count with hsaKmtAcquireSystemProperties() (-EXDEV when they differ). */
struct spm_agent_topology {
        unsigned n_gpus;
        uint32_t gpu_id[SPM_AGENT_MAX_GPUS];
        uint32_t node[SPM_AGENT_MAX_GPUS];
        unsigned n_nodes; /* all nodes, CPU included */
};

/* Reads <root>/sys/class/kfd/kfd/topology/nodes/N/gpu_id. Returns 0, -ENOENT (no KFD
 * topology), -EINVAL (a malformed gpu_id file). */
int spm_agent_topology_read(const char *root, struct spm_agent_topology *ret);

/* HSA node of a gpu_id (0 = system memory maps to node 0). Returns it, or -ENODEV. */
int spm_agent_node_of(const struct spm_agent_topology *t, uint32_t gpu_id);

/* A mapping SVM can migrate: private, accessible, not a device or special mapping. */
struct spm_agent_range {
        uint64_t start, end;
        bool file;  /* file-backed (private) rather than anonymous */
        bool heap;
};

/* Parses /proc/<pid>/maps text from f, keeps the migratable mappings (anonymous and
 * file-backed private ones; not [stack], [vvar], [vdso], [vsyscall], /dev/ mappings such as
 * hipMalloc'd BOs and doorbells, shared mappings, or PROT_NONE guards), and merges adjacent
 * ones of the same kind. Returns the count written (at most max; *ret_more is set when some did
 * not fit), or -EINVAL for a line that is not a maps line. */
int spm_agent_parse_maps(FILE *f, struct spm_agent_range *v, size_t max, bool *ret_more);

/* One command from the daemon. to_gpu_id 0 = demote to system memory. By default the
 * preferred location is set to the target too, so GPU faults do not pull demoted data straight
 * back (nor evict promoted data's room by faulting it away). */
enum spm_agent_preferred {
        SPM_AGENT_PREFER_TARGET,  /* PREFERRED_LOC = the target */
        SPM_AGENT_PREFER_NONE,    /* PREFERRED_LOC undefined: the driver's faults decide */
};

struct spm_agent_move {
        uint64_t start, length;   /* bytes; widened to whole pages */
        uint32_t to_gpu_id;
        uint32_t access_gpu_id;   /* GPU that must keep (ACCESS) its mapping, 0 = none */
        enum spm_agent_preferred preferred;
        bool pin_only;            /* set PREFERRED_LOC only, no PREFETCH_LOC: nothing moves */
};

struct spm_agent_outcome {
        int status;               /* 0, or what the SET/verification failed with */
        uint64_t moved_bytes;     /* from the counters: a VRAM prefetch can succeed unmoved */
        uint32_t preferred_gpu_id, prefetch_gpu_id; /* what GET reports afterwards */
};

/* Carries out one move for the calling process: SET (ACCESS, PREFERRED_LOC, PREFETCH_LOC;
 * without PREFETCH_LOC for pin_only),
 * GET to verify the attributes, and page_in/page_out of counters_<gpuid> (under root) to see
 * what moved. KFD must be open and the system properties acquired. Returns 0 with *ret filled
 * (ret->status may still be negative: the call itself worked, the move did not), or -EINVAL
 * for a bad command, -ENODEV for an unknown gpu_id. */
int spm_agent_move(const struct spm_agent_topology *t, const char *root, const struct spm_agent_move *m,
                   struct spm_agent_outcome *ret);

/* hsaKmt status -> negative errno (the thunk does not pass the kernel's errno on). */
int spm_agent_errno(int hsakmt_status);
