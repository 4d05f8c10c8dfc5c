/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The KFD SVM model: what amdkfd does with SVM ranges, faults, migrations, VRAM pressure and SMI
 * events, as shared/reference/kfd-svm.md §9 lists it. Pure: no syscalls, no clock, no globals.
 * Callers pass the time (boottime ns), the caller's VMAs and an event sink in a struct kfd_ctx.
 *
 * The whole node lives in one flat struct kfd_node (fixed-size tables, indices not pointers),
 * so the fake libhsakmt can mmap it from a shared file and every process on the "node" sees the
 * same VRAM capacity; the simulator keeps it on the heap. Values at the ioctl layer are KFD
 * gpu_ids (0 = system memory, KFD_LOCATION_UNDEFINED = don't care), exactly as the
 * kernel takes them; inside, a location is 0 (RAM) or 1 + GPU index.
 *
 * Functions return 0 or a negative errno: the errno the real kernel returns where there is one
 * (-EINVAL, -EFAULT, -EADDRINUSE, -EBUSY, -EPERM, -EBADF, -EACCES), -ENOSPC when a fixed table
 * is full (the call then changes nothing).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/machine.h"

/* The uapi of linux/kfd_ioctl.h (KFD 1.11, Linux 6.1), restated so the model does not need the
 * kernel/libdrm headers; same numbers as the kernel (the fake's tests check them against the
 * real header values through hsakmttypes.h). */
#define KFD_VERSION_MAJOR 1
#define KFD_VERSION_MINOR 11
#define KFD_LOCATION_SYSMEM 0u
#define KFD_LOCATION_UNDEFINED 0xffffffffu

enum {
        KFD_ATTR_PREFERRED_LOC, KFD_ATTR_PREFETCH_LOC, KFD_ATTR_ACCESS, KFD_ATTR_ACCESS_IN_PLACE,
        KFD_ATTR_NO_ACCESS, KFD_ATTR_SET_FLAGS, KFD_ATTR_CLR_FLAGS, KFD_ATTR_GRANULARITY,
};

#define KFD_FLAG_HOST_ACCESS 0x01
#define KFD_FLAG_COHERENT 0x02
#define KFD_FLAG_HIVE_LOCAL 0x04
#define KFD_FLAG_GPU_RO 0x08
#define KFD_FLAG_GPU_EXEC 0x10
#define KFD_FLAG_GPU_READ_MOSTLY 0x20
#define KFD_FLAG_GPU_ALWAYS_MAPPED 0x40

struct kfd_svm_attr { /* struct kfd_ioctl_svm_attribute */
        uint32_t type, value;
};

enum { /* SMI event ids */
        KFD_EV_VMFAULT = 1, KFD_EV_THERMAL_THROTTLE, KFD_EV_GPU_PRE_RESET, KFD_EV_GPU_POST_RESET,
        KFD_EV_MIGRATE_START, KFD_EV_MIGRATE_END, KFD_EV_PAGE_FAULT_START, KFD_EV_PAGE_FAULT_END,
        KFD_EV_QUEUE_EVICTION, KFD_EV_QUEUE_RESTORE, KFD_EV_UNMAP_FROM_GPU,
        KFD_EV_ALL_PROCESS = 64,
};
#define KFD_EV_MASK(i) (1ULL << ((i) - 1))
#define KFD_EV_MSG_SIZE 96

enum { KFD_MIG_PREFETCH, KFD_MIG_PAGEFAULT_GPU, KFD_MIG_PAGEFAULT_CPU, KFD_MIG_TTM_EVICTION };
enum { KFD_QEV_SVM, KFD_QEV_USERPTR, KFD_QEV_TTM, KFD_QEV_SUSPEND };
enum { KFD_UNMAP_MMU_NOTIFY, KFD_UNMAP_MMU_NOTIFY_MIGRATE, KFD_UNMAP_FROM_CPU };

#define KFD_MAX_GPUS SPM_MAX_GPUS
#define KFD_MAX_PROCS 64
#define KFD_MAX_ENTRIES 8192
#define KFD_MAX_BOS 2048
#define KFD_MAX_SPANS 256
#define KFD_NODE_MAGIC 0x4b46444d4f44454cULL /* "KFDMODEL" */
#define KFD_NODE_VERSION 1

#define KFD_LOC_RAM 0 /* internal location index; GPU i is 1 + i */
#define KFD_DEFAULT_GRANULARITY 9 /* log2 pages: 2 MiB (svm_default_granularity) */
#define KFD_MAX_GRANULARITY 0x3f
#define KFD_DUP_FAULT_NS 2000000ULL    /* AMDGPU_SVM_RANGE_RETRY_FAULT_PENDING: 2 ms */
#define KFD_RESTORE_DELAY_NS 1000000ULL /* AMDGPU_SVM_RANGE_RESTORE_DELAY_MS: 1 ms */
#define KFD_SMI_FIFO_MAX 8192

enum kfd_mem_mode {
        KFD_MEM_COHERENT, /* MEMORY_DEVICE_COHERENT: the CPU reads and writes VRAM in place */
        KFD_MEM_PRIVATE,  /* MEMORY_DEVICE_PRIVATE: a CPU touch migrates the span back */
        KFD_MEM_APU,      /* apu_prefer_gtt: best prefetch/restore location is always the CPU */
        _KFD_MEM_MODE_MAX,
};

struct kfd_gpu_config {
        uint32_t gpu_id;     /* 16-bit hash, non-zero */
        uint32_t location_id; /* PCI BDF */
        uint64_t vram_bytes;
        uint64_t hive_id;    /* XGMI hive, 0 = none */
        bool svm;            /* SVMAPISupported */
        bool xnack_capable;  /* can run with XNACK on (retry faults) */
};

struct kfd_config {
        unsigned n_gpus;
        struct kfd_gpu_config gpu[KFD_MAX_GPUS];
        enum kfd_mem_mode mem_mode;
        unsigned page_shift;       /* 12 */
        bool xnack_default;        /* per-process mode when a process opens KFD */
        uint32_t kfd_major, kfd_minor; /* reported version: SVM needs minor >= 5 */
        bool vram_prefetch_errors; /* 5.15-era kernels: a failed VRAM prefetch returns -ENOSPC */
};

/* Fills *ret with n_gpus GPUs shaped like the machine profile (capacity, granule, memory kind). */
void kfd_config_from_machine(const struct spm_machine *m, struct kfd_config *ret);

/* Default node: n_gpus MI250X GCDs, 64 GiB each, one hive, coherent VRAM, XNACK off. */
void kfd_config_default(unsigned n_gpus, struct kfd_config *ret);

/* Checks ids (non-zero, distinct, 16-bit), counts and page size. Returns 0 or -EINVAL. */
int kfd_config_validate(const struct kfd_config *c);

/* One SMI event before formatting. Addresses and sizes are in pages, as on the wire. */
struct kfd_event {
        uint32_t id;       /* KFD_EV_* */
        unsigned dev;      /* GPU index whose SMI clients receive it */
        uint64_t ns;       /* ktime_get_boottime_ns() */
        int32_t pid;       /* 0 = every client */
        uint64_t addr;     /* page number */
        uint64_t npages;
        uint32_t from, to; /* gpu_ids, 0 = RAM */
        uint32_t prefetch, preferred; /* gpu_ids */
        uint32_t gpu_id;
        int32_t trigger;
        char c;            /* 'R'/'W' (fault start), 'M'/'U' (fault end), 0 or 'R' (restore) */
};

typedef void (*kfd_event_fn)(void *userdata, const struct kfd_event *ev);

#define KFD_VMA_IO 0x1    /* VM_IO|VM_PFNMAP|VM_MIXEDMAP: not SVM-capable */
#define KFD_VMA_HEAP 0x2  /* [heap]: auto-created ranges prefer system memory */
#define KFD_VMA_STACK 0x4
#define KFD_VMA_WRITE 0x8

struct kfd_vma {
        uint64_t start, end; /* bytes, [start, end) */
        uint32_t flags;
};

/* Per-call environment. vmas sorted by start; vmas == NULL means "every address is mapped"
 * (the simulator). emit may be NULL. */
struct kfd_ctx {
        uint64_t now_ns;
        const struct kfd_vma *vmas;
        size_t n_vmas;
        kfd_event_fn emit;
        void *userdata;
};

/* One range fragment: uniform attributes, location and mappings over [start, start+npages). */
struct kfd_entry {
        int32_t pid;
        uint32_t flags;
        uint64_t start, npages; /* pages */
        uint32_t preferred, prefetch; /* gpu_ids or UNDEFINED */
        uint32_t bo;                  /* SVM BO holding the pages when in VRAM, 0 otherwise */
        uint64_t validate_ns;         /* last GPU fault validation (duplicate-fault window) */
        uint8_t granularity;
        uint8_t loc;                  /* KFD_LOC_RAM or 1 + GPU index */
        uint8_t access, in_place;     /* bitmaps over GPU indices */
        uint8_t mapped;               /* GPUs whose page tables map it now */
        uint8_t cow;                  /* shared with a forked child: a CPU write re-maps */
        uint32_t range_id;            /* fragments of one prange share it (events, BO rules) */
};

struct kfd_counters {
        uint64_t faults, page_in, page_out; /* faults: retry faults; page_*: pages */
        uint64_t vram_bytes;                /* vram_<gpuid>: KFD VRAM of the process */
        uint64_t evicted_ns;                /* stats_<gpuid>/evicted_ms * 1e6 */
};

struct kfd_process {
        int32_t pid;      /* 0 = free slot */
        bool xnack;
        bool dirty;       /* counters changed since kfd_take_dirty() */
        uint32_t n_queues[KFD_MAX_GPUS];
        struct kfd_counters c[KFD_MAX_GPUS];
};

struct kfd_bo {
        uint32_t id;      /* 0 = free slot */
        int32_t pid;
        uint8_t gpu;
        bool svm;         /* SVM BO (evictable) or a plain KFD VRAM BO (hipMalloc) */
        uint64_t pages;   /* allocated size */
        uint64_t live;    /* pages still resident; the BO is freed when it reaches 0 */
        uint64_t lru;
};

#define KFD_SPAN_PIN 1    /* long-term pinned pages: skipped by migrate_vma */
#define KFD_SPAN_KFD_BO 2 /* VA of a KFD BO (hipMalloc): SVM calls return -EADDRINUSE */

struct kfd_span {
        int32_t pid;      /* 0 = free slot */
        uint32_t kind;
        uint64_t start, npages;
};

struct kfd_node {
        uint64_t magic;
        uint32_t version, size;
        struct kfd_config cfg;
        uint64_t vram_used[KFD_MAX_GPUS]; /* bytes: SVM BOs + plain KFD BOs */
        uint64_t lru_clock;
        uint32_t next_bo, next_range;
        struct kfd_process procs[KFD_MAX_PROCS];
        uint32_t n_entries;
        struct kfd_entry e[KFD_MAX_ENTRIES]; /* sorted by (pid, start), never overlapping */
        struct kfd_bo bos[KFD_MAX_BOS];
        struct kfd_span spans[KFD_MAX_SPANS];
};

/* What one access (or one call) did. */
struct kfd_result {
        uint64_t pages;             /* pages accessed */
        uint64_t pages_at[SPM_MAX_LOCS]; /* where the accessed pages were served from */
        uint64_t faults;            /* GPU retry faults or CPU faults handled */
        uint64_t dup_faults;        /* GPU faults dropped inside the 2 ms window */
        uint64_t migrations;        /* MIGRATE_START/END pairs */
        uint64_t pages_in, pages_out; /* pages moved into / out of VRAM */
        uint64_t bytes_moved;       /* bytes copied by this call's own migrations */
        uint64_t evicted_pages;     /* pages other BOs lost to make room (TTM) */
        uint64_t failed_pages;      /* pages a VRAM migration could not place */
        uint64_t skipped_pages;     /* pinned pages migrate_vma skipped */
        bool fatal;                 /* XNACK-off or -EACCES GPU fault: memory exception */
};

/* Initializes a node from a validated config. Returns 0 or -EINVAL. */
int kfd_node_init(struct kfd_node *n, const struct kfd_config *c);

/* Returns 0 when n looks like a node this code wrote (magic, version, size), else -EINVAL. */
int kfd_node_check(const struct kfd_node *n);

/* GPU index for a gpu_id, or -EINVAL. */
int kfd_gpu_index(const struct kfd_node *n, uint32_t gpu_id);

/* Creates the KFD process for pid (open of /dev/kfd). Returns 0 (also when it exists),
 * -ENOSPC when the table is full. */
int kfd_process_open(struct kfd_node *n, int32_t pid);

/* The process is gone (mm teardown): frees its ranges, BOs and spans, no events. */
void kfd_process_exit(struct kfd_node *n, int32_t pid);

/* The process, or NULL. */
struct kfd_process *kfd_process_get(struct kfd_node *n, int32_t pid);

/* kfd_ioctl()'s first check: the fd was opened by owner_pid and used by caller_pid. Returns 0, or
 * -EBADF ("Using KFD FD in wrong process") -- also for a forked child and SCM_RIGHTS. */
int kfd_check_caller(int32_t owner_pid, int32_t caller_pid);

/* AMDKFD_IOC_SVM SET_ATTR on [start, start+size) bytes with gpu_id values. All-or-nothing for
 * validation and structure; PREFETCH_LOC always triggers a migration. Returns 0, -EINVAL,
 * -EFAULT, -EADDRINUSE, -ENOSPC (table full, or a VRAM prefetch failure when
 * cfg.vram_prefetch_errors), or the error of a failed migration to RAM. res may be NULL. */
int kfd_svm_set(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t start,
                uint64_t size, unsigned nattr, const struct kfd_svm_attr *attrs,
                struct kfd_result *res);

/* AMDKFD_IOC_SVM GET_ATTR: the intersection over the existing ranges in the span (defaults when
 * there are none). Writes attrs[] in place; never reports residency. Returns 0, -EINVAL, -EFAULT,
 * -EADDRINUSE. */
int kfd_svm_get(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t start,
                uint64_t size, unsigned nattr, struct kfd_svm_attr *attrs);

/* AMDKFD_IOC_SET_XNACK_MODE: enable < 0 queries into *ret_enable. Returns 0, -EBUSY while the
 * process has queues, -EPERM when a GPU cannot run with XNACK on. */
int kfd_set_xnack(struct kfd_node *n, int32_t pid, int32_t enable, int32_t *ret_enable);

/* A user queue on GPU index gpu was created (+1) or destroyed (-1). Returns 0 or -EINVAL. */
int kfd_queue_update(struct kfd_node *n, int32_t pid, unsigned gpu, int delta);

/* GPU index gpu accessed [addr, addr+len): with XNACK on, unmapped pages fault and migrate by the
 * best restore location; with XNACK off an unmapped page is a fatal memory exception
 * (res->fatal, returns -EFAULT). Returns 0 or a negative errno. */
int kfd_gpu_access(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, unsigned gpu,
                   uint64_t addr, uint64_t len, bool write, struct kfd_result *res);

/* The CPU accessed [addr, addr+len): in place for RAM and DEVICE_COHERENT VRAM; DEVICE_PRIVATE
 * VRAM faults and migrates the granule back (trigger PAGEFAULT_CPU); a write to a page shared
 * with a forked child breaks COW and invalidates the GPU mappings. */
int kfd_cpu_access(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t addr,
                   uint64_t len, bool write, struct kfd_result *res);

/* munmap of [addr, addr+len): ranges split or vanish, VRAM is released, UNMAP_FROM_GPU
 * (trigger UNMAP_FROM_CPU) for mapped fragments. */
int kfd_unmap(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t addr,
              uint64_t len);

/* Unmaps every part of pid's ranges that ctx->vmas no longer covers (munmap seen late). */
int kfd_sync_vmas(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid);

/* fork(): the parent's mapped RAM pages become copy-on-write. */
void kfd_fork(struct kfd_node *n, int32_t parent_pid);

/* Long-term pin (RDMA) of [addr, addr+len): migrate_vma skips these pages; in COHERENT mode
 * pinned VRAM pages first move to RAM. pin = false removes pins in the span. */
int kfd_pin(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, uint64_t addr,
            uint64_t len, bool pin);

/* Registers the VA span of a KFD BO (hipMalloc) so SVM calls on it fail with -EADDRINUSE. */
int kfd_register_kfd_bo(struct kfd_node *n, int32_t pid, uint64_t addr, uint64_t len);

/* A plain (non-SVM) KFD VRAM allocation of bytes on GPU index gpu: TTM evicts whole SVM BOs, LRU
 * first, to make room. Returns the BO id (> 0), -ENOMEM when it cannot fit. */
int kfd_vram_alloc(struct kfd_node *n, const struct kfd_ctx *ctx, int32_t pid, unsigned gpu,
                   uint64_t bytes);
int kfd_vram_free(struct kfd_node *n, uint32_t bo_id);

/* Pages of pid's ranges in [addr, addr+len) at each location (what the driver would know;
 * for tests and the simulator, the real API cannot ask this). */
void kfd_residency(const struct kfd_node *n, int32_t pid, uint64_t addr, uint64_t len,
                   uint64_t ret_pages[SPM_MAX_LOCS]);

/* Number of range fragments of pid (table use). */
unsigned kfd_entry_count(const struct kfd_node *n, int32_t pid);

/* Formats ev as the kernel's SMI line ("%x " id, then the event's format, '\n'), at most
 * KFD_EV_MSG_SIZE bytes including the NUL. Returns the length. */
int kfd_smi_format(const struct kfd_event *ev, char *buf, size_t size);

/* kfd_smi_ev_enabled(): does a client (pid, CAP_SYS_ADMIN, mask) receive ev? */
bool kfd_smi_wants(uint64_t mask, int32_t client_pid, bool suser, const struct kfd_event *ev);

/* The per-client kfifo: fixed size (1024 or 8192), silent drops when full. */
struct kfd_smi_fifo {
        uint32_t size, head, len;
        uint64_t dropped;
        char buf[KFD_SMI_FIFO_MAX];
};

void kfd_smi_fifo_init(struct kfd_smi_fifo *f, uint32_t size);
/* Queues a whole line or drops it silently. Returns true when queued. */
bool kfd_smi_fifo_push(struct kfd_smi_fifo *f, const char *line, size_t len);
/* read(): copies at most size bytes (at most 8 with old_kernel_quirk). Returns the count, or
 * -EAGAIN when empty. */
int kfd_smi_fifo_read(struct kfd_smi_fifo *f, char *buf, size_t size, bool old_kernel_quirk);

/*
 * Reading an SMI stream (the daemon's kfd-smi collector): bytes come in reads that may split
 * lines anywhere (old kernels return at most 8 bytes per read), the fifo drops lines silently
 * when full, ids may be unknown (later kernels add and renumber events) and nothing guarantees
 * well-formed input. The parser keeps the partial line, parses whole lines by id and counts
 * what it could not use; it never fails as a whole.
 */
struct kfd_smi_parser {
        char line[128];       /* the partial line so far (KFD lines are < 96 bytes) */
        size_t len;
        bool overlong;        /* skipping to the next '\n' */
        uint64_t events;      /* lines parsed into events */
        uint64_t unknown;     /* well-formed "%x ..." lines with an id we do not know */
        uint64_t garbage;     /* lines that did not match their id's format */
        uint64_t overlong_lines;
};

void kfd_smi_parser_init(struct kfd_smi_parser *p);

/* Feeds n bytes; calls fn for every event completed by them. Returns the number of events. */
unsigned kfd_smi_parser_feed(struct kfd_smi_parser *p, const char *data, size_t n, kfd_event_fn fn,
                             void *userdata);

/* Parses one line without its '\n'. Returns 0, -EOPNOTSUPP for an unknown id, -EINVAL when
 * the line does not match its id's format. */
int kfd_smi_parse_line(const char *line, size_t len, struct kfd_event *ret);
