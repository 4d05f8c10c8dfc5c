/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Test-only API of the fake libhsakmt (docs/fakekfd.md). The real libhsakmt does not have these
 * symbols: programs built against Debian's libhsakmt resolve them at run time with
 * fakekfd_resolve() (dlsym), so the binary under test is the binary that ships.
 *
 * GPUs are named by HSA node id, as in the hsaKmt API (node 0 is the CPU). Every function
 * returns 0 (or a documented positive value) or a negative errno; -EBADF when the process has
 * not opened KFD (hsaKmtOpenKFD) or is a forked child of the process that did.
 */

#include <stddef.h>
#include <stdint.h>

#define FAKEKFD_MAX_LOCS 9 /* RAM + 8 GPUs: index 0 is RAM, node n is index n */

struct fakekfd_result {
        uint64_t pages;                   /* pages accessed */
        uint64_t pages_at[FAKEKFD_MAX_LOCS]; /* where they were served from */
        uint64_t faults, dup_faults;      /* GPU retry faults or CPU faults handled */
        uint64_t migrations;              /* MIGRATE_START/END pairs */
        uint64_t pages_in, pages_out;     /* pages moved into / out of VRAM */
        uint64_t evicted_pages;           /* other BOs' pages TTM evicted to make room */
        uint64_t failed_pages;            /* pages a VRAM migration could not place */
        int fatal;                        /* the GPU raised a memory exception */
};

/* GPU `node` touched [addr, addr+len): XNACK on faults and migrates, XNACK off without a mapping
 * is fatal (-EFAULT, res->fatal). res may be NULL. */
int fakekfd_gpu_access(uint32_t node, const void *addr, size_t len, int write, struct fakekfd_result *res);

/* The CPU touched [addr, addr+len) (device-private VRAM faults back; coherent VRAM is in place). */
int fakekfd_cpu_access(const void *addr, size_t len, int write, struct fakekfd_result *res);

/* A user queue on GPU `node` now exists / is gone (XNACK switching needs none). */
int fakekfd_queue_create(uint32_t node);
int fakekfd_queue_destroy(uint32_t node);

/* munmap(2) plus an immediate MMU notifier (other calls notice unmaps by re-reading maps). */
int fakekfd_munmap(void *addr, size_t len);

/* Long-term pin (RDMA) or unpin of [addr, addr+len): migration skips pinned pages. */
int fakekfd_pin(const void *addr, size_t len, int pin);

/* Declares [addr, addr+len) a KFD BO (hipMalloc): SVM calls on it fail (-EADDRINUSE). */
int fakekfd_register_bo(const void *addr, size_t len);

/* A plain VRAM BO on GPU node (returns its id > 0; TTM evicts SVM BOs to make room), freed by
 * fakekfd_vram_free(). */
int fakekfd_vram_alloc(uint32_t node, uint64_t bytes);
int fakekfd_vram_free(int bo);

/* Pages of [addr, addr+len) by location (index 0 RAM, index n GPU node n). The real API cannot
 * ask this; tests and workloads use it to check the truth behind counters and SMI. */
int fakekfd_residency(const void *addr, size_t len, uint64_t ret_pages[FAKEKFD_MAX_LOCS]);

/* The KFD file descriptor of this process's libhsakmt (-EBADF before hsaKmtOpenKFD). */
int fakekfd_kfd_fd(void);

/* The raw AMDKFD_IOC_SVM ioctl on a KFD fd, values as gpu_ids (kernel layer, not node ids).
 * attrs is nattr pairs {type, value}. Returns 0 or the kernel's -errno; -EBADF when fd was opened
 * by another process (kfd_ioctl(): "Using KFD FD in wrong process"). */
int fakekfd_ioctl_svm(int fd, uint32_t op, uint64_t start, uint64_t size, uint32_t nattr, uint32_t *attrs);

/* Registers an SMI client on gpu_id with an event mask (bit id-1; bit 63 = all processes, needs
 * suser) and returns a non-blocking read fd (*ret_fd); read() gives event lines, may split them,
 * and returns EAGAIN when empty. Same files a collector creates by hand (docs/fakekfd.md). */
int fakekfd_smi_open(uint32_t gpu_id, uint64_t mask, int suser, int *ret_fd);

/* The fake root in use ($FAKEKFD_ROOT), or NULL. */
const char *fakekfd_root(void);

/* Creates (or checks) the node state and the sysfs tree under $FAKEKFD_ROOT without opening
 * KFD, so a daemon can start before any GPU process. Returns 0 or a negative errno. */
int fakekfd_setup(void);
