/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spm-workload: a GPU "application" for the fake KFD. It allocates a buffer, registers it for
 * SVM like hipMallocManaged + an accessed-by advice, then runs phases whose hot set moves: each
 * iteration the GPU reads the hot set many times and sweeps the rest once, and the CPU touches
 * a little of it. Every touch goes through the fake (fakekfd_gpu_access/cpu_access), so faults,
 * migrations and residency follow the KFD model, and whatever an agent or daemon moved is
 * where the accesses land. The workload reports its own modelled time from the machine
 * profile (include/spmtier/machine.h): access cost by where each page was served from, plus
 * fault and migration costs.
 *
 * --stream MiB adds a second, large input buffer (--stream-size MiB) that the GPU reads once
 * per iteration, --stream MiB at a time, moving on each iteration (batches of input, a halo, a
 * sparse matrix's values): data touched once per sweep. Under the driver's default each batch
 * faults into VRAM and TTM evicts the least recently used BOs for it, the hot set included.
 *
 * --no-sweep leaves out the cold sweep (one pass over a slice of the rest of the buffer each
 * iteration).
 *
 * Every migration of the process's pages is charged at the link's migration rate, also those
 * it did not ask for: pages moved by an agent's prefetches or by evictions show in the
 * process's page_in/page_out counters and are charged per phase like its own faults' moves. The
 * same rule holds with or without a daemon.
 *
 *   FAKEKFD_ROOT=... LD_LIBRARY_PATH=build/fakekfd spm-workload [--size MiB] [--hot MiB]
 *       [--phases N] [--iters N] [--passes N] [--stream MiB] [--stream-size MiB] [--no-sweep] [--gpu NODE]
 *       [--xnack 0|1] [--prefer-ram] [--sleep-ms N] [--profile NAME] [--json]
 */

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <hsakmt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fakekfd.h"
#include "spmtier/machine.h"

#define MiB (1024ULL * 1024)

struct totals {
        double access_usec, fault_usec, migrate_usec;
        uint64_t faults, pages_in, pages_out, gpu_pages_vram, gpu_pages_ram;
        uint64_t other_pages; /* moved by someone else (agent, eviction) */
};

/* Pages moved in and out of every GPU for this process: the sum of its sysfs counters. */
static uint64_t counter_pages(void) {
        const char *root = getenv("FAKEKFD_ROOT");
        char path[4096];
        uint64_t sum = 0;

        for (uint32_t node = 0; root && node < FAKEKFD_MAX_LOCS; node++) {
                unsigned gpu_id = 0;
                snprintf(path, sizeof(path), "%s/sys/class/kfd/kfd/topology/nodes/%" PRIu32 "/gpu_id",
                         root, node);
                FILE *f = fopen(path, "re");
                if (!f)
                        break;
                if (fscanf(f, "%u", &gpu_id) != 1)
                        gpu_id = 0;
                fclose(f);
                for (int dir = 0; gpu_id && dir < 2; dir++) {
                        unsigned long long v;
                        snprintf(path, sizeof(path), "%s/sys/class/kfd/kfd/proc/%d/counters_%u/%s", root,
                                 (int) getpid(), gpu_id, dir ? "page_out" : "page_in");
                        if ((f = fopen(path, "re"))) {
                                if (fscanf(f, "%llu", &v) == 1)
                                        sum += v;
                                fclose(f);
                        }
                }
        }
        return sum;
}

static int (*gpu_access)(uint32_t, const void *, size_t, int, struct fakekfd_result *);
static int (*cpu_access)(const void *, size_t, int, struct fakekfd_result *);

static void charge(const struct spm_machine *m, unsigned accessor, const struct fakekfd_result *r,
                   unsigned passes, struct totals *t) {
        const double per_page = 4096.0 / SPM_ACCESS_BYTES;
        for (unsigned loc = 0; loc < m->n_locs && loc < FAKEKFD_MAX_LOCS; loc++)
                t->access_usec += (double) r->pages_at[loc] * per_page * passes *
                                  spm_machine_access_ns(m, accessor, loc) / 1000.0;
        uint64_t moved = (r->pages_in + r->pages_out) * 4096;
        t->fault_usec += (double) r->faults * m->fault_usec;
        if (r->migrations)
                t->migrate_usec += spm_machine_migrate_usec(m, moved);
        t->faults += r->faults;
        t->pages_in += r->pages_in;
        t->pages_out += r->pages_out;
        if (accessor != SPM_ACC_CPU) {
                t->gpu_pages_ram += r->pages_at[0];
                for (unsigned loc = 1; loc < FAKEKFD_MAX_LOCS; loc++)
                        t->gpu_pages_vram += r->pages_at[loc];
        }
}

static void usage(void) {
        fprintf(stderr, "usage: spm-workload [--size MiB] [--hot MiB] [--phases N] [--iters N] [--passes N]\n"
                        "                    [--stream MiB] [--stream-size MiB] [--no-sweep] [--gpu NODE] [--xnack 0|1]\n"
                        "                    [--prefer-ram] [--sleep-ms N] [--profile NAME] [--json]\n");
}

/* --prefer-ram also sets PREFERRED_LOC to system memory on the buffer (hipMemAdvise
 * SetPreferredLocation CPU): with XNACK on, a GPU fault then only maps the page, and nothing
 * but an explicit prefetch (spmtier's agent) brings data into VRAM. */
static bool prefer_ram;

static int parse_uint(const char *s, const char *what, unsigned long *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0) {
                fprintf(stderr, "spm-workload: --%s: expected a positive integer, got '%s'\n", what, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int main(int argc, char **argv) {
        unsigned long size_mb = 256, hot_mb = 32, phases = 4, iters = 10, passes = 16, gpu = 1, sleep_ms = 0, xnack = 0;
        unsigned long stream_mb = 0, stream_size_mb = 512;
        const char *profile = "mi250x-gcd";
        bool json = false, sweep = true;
        static const struct option opts[] = {
                { "prefer-ram", no_argument, NULL, 'R' },
                { "size", required_argument, NULL, 's' }, { "hot", required_argument, NULL, 'h' },
                { "phases", required_argument, NULL, 'p' }, { "iters", required_argument, NULL, 'i' },
                { "passes", required_argument, NULL, 'n' }, { "gpu", required_argument, NULL, 'g' },
                { "xnack", required_argument, NULL, 'x' }, { "sleep-ms", required_argument, NULL, 'z' },
                { "profile", required_argument, NULL, 'P' }, { "json", no_argument, NULL, 'j' },
                { "stream", required_argument, NULL, 'S' }, { "stream-size", required_argument, NULL, 'T' },
                { "no-sweep", no_argument, NULL, 'N' }, {},
        };
        for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
                int r = 0;
                switch (c) {
                case 'R': prefer_ram = true; break;
                case 's': r = parse_uint(optarg, "size", &size_mb); break;
                case 'h': r = parse_uint(optarg, "hot", &hot_mb); break;
                case 'p': r = parse_uint(optarg, "phases", &phases); break;
                case 'i': r = parse_uint(optarg, "iters", &iters); break;
                case 'n': r = parse_uint(optarg, "passes", &passes); break;
                case 'g': r = parse_uint(optarg, "gpu", &gpu); break;
                case 'z': r = parse_uint(optarg, "sleep-ms", &sleep_ms); break;
                case 'S': r = parse_uint(optarg, "stream", &stream_mb); break;
                case 'T': r = parse_uint(optarg, "stream-size", &stream_size_mb); break;
                case 'x': xnack = strcmp(optarg, "0") != 0; break;
                case 'P': profile = optarg; break;
                case 'j': json = true; break;
                case 'N': sweep = false; break;
                default: usage(); return 2;
                }
                if (r < 0)
                        return 2;
        }
        if (optind < argc || hot_mb > size_mb || stream_mb > stream_size_mb) {
                usage();
                return 2;
        }

        struct spm_machine m;
        if (spm_machine_profile(profile, &m) < 0) {
                fprintf(stderr, "spm-workload: unknown machine profile '%s'\n", profile);
                return 2;
        }
        *(void **) &gpu_access = dlsym(RTLD_DEFAULT, "fakekfd_gpu_access");
        *(void **) &cpu_access = dlsym(RTLD_DEFAULT, "fakekfd_cpu_access");
        HsaSystemProperties sp;
        if (!gpu_access || !cpu_access) {
                fprintf(stderr, "spm-workload: needs the fake libhsakmt (LD_LIBRARY_PATH=<build>/fakekfd)\n");
                return 1;
        }
        if (hsaKmtOpenKFD() != HSAKMT_STATUS_SUCCESS || hsaKmtAcquireSystemProperties(&sp) != HSAKMT_STATUS_SUCCESS) {
                fprintf(stderr, "spm-workload: cannot open KFD (is FAKEKFD_ROOT set?)\n");
                return 1;
        }
        if (gpu >= sp.NumNodes) {
                fprintf(stderr, "spm-workload: --gpu %lu: the node has %u nodes\n", gpu, sp.NumNodes);
                return 2;
        }
        if (hsaKmtSetXNACKMode((HSAint32) xnack) != HSAKMT_STATUS_SUCCESS) {
                fprintf(stderr, "spm-workload: cannot set XNACK %lu\n", xnack);
                return 1;
        }

        size_t size = size_mb * MiB, hot = hot_mb * MiB;
        char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (buf == MAP_FAILED) {
                perror("spm-workload: mmap");
                return 1;
        }
        HSA_SVM_ATTRIBUTE home = { HSA_SVM_ATTR_PREFERRED_LOC, 0 };
        if (prefer_ram && hsaKmtSVMSetAttr(buf, size, 1, &home) != HSAKMT_STATUS_SUCCESS) {
                fprintf(stderr, "spm-workload: hsaKmtSVMSetAttr(PREFERRED_LOC) failed\n");
                return 1;
        }
        /* hipMallocManaged + hipMemAdvise(AccessedBy): the GPU may map it, data starts in RAM. */
        HSA_SVM_ATTRIBUTE a = { HSA_SVM_ATTR_ACCESS, (HSAuint32) gpu };
        if (hsaKmtSVMSetAttr(buf, size, 1, &a) != HSAKMT_STATUS_SUCCESS) {
                fprintf(stderr, "spm-workload: hsaKmtSVMSetAttr failed\n");
                return 1;
        }

        size_t stream = stream_mb * MiB, stream_size = stream_mb ? stream_size_mb * MiB : 0, stream_off = 0;
        char *in = NULL;
        if (stream_size) {
                in = mmap(NULL, stream_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                          -1, 0);
                if (in == MAP_FAILED) {
                        perror("spm-workload: mmap");
                        return 1;
                }
                if (hsaKmtSVMSetAttr(in, stream_size, 1, &a) != HSAKMT_STATUS_SUCCESS) {
                        fprintf(stderr, "spm-workload: hsaKmtSVMSetAttr failed\n");
                        return 1;
                }
        }

        if (!json)
                printf("buffers: main %p (%lu MiB)%s", (void *) buf, size_mb, in ? "" : "\n");
        if (!json && in)
                printf(", stream %p (%lu MiB)\n", (void *) in, stream_size_mb);
        struct totals all = {};
        if (!json)
                printf("pid %d: %lu MiB, hot %lu MiB, stream %lu MiB of %lu MiB per iteration, %lu phases x %lu "
                       "iterations, GPU node %lu, XNACK %s, profile %s\n", (int) getpid(), size_mb, hot_mb,
                       stream_mb, stream_mb ? stream_size_mb : 0, phases, iters, gpu, xnack ? "on" : "off", profile);
        for (unsigned long ph = 0; ph < phases; ph++) {
                struct totals t = {};
                size_t off = (ph * hot) % size;
                uint64_t counted = counter_pages();
                for (unsigned long it = 0; it < iters; it++) {
                        struct fakekfd_result r;
                        if (gpu_access((uint32_t) gpu, buf + off, hot, 0, &r) < 0) {
                                fprintf(stderr, "spm-workload: GPU memory exception at %p\n", (void *) (buf + off));
                                return 1;
                        }
                        charge(&m, SPM_ACC_GPU(gpu - 1), &r, (unsigned) passes, &t);
                        /* The cold sweep: one pass over a slice of the rest. */
                        size_t cold = (off + hot + it * hot) % size;
                        if (sweep && gpu_access((uint32_t) gpu, buf + cold, hot / 4, 0, &r) == 0)
                                charge(&m, SPM_ACC_GPU(gpu - 1), &r, 1, &t);
                        /* The stream: the next batch of input, read once. */
                        if (stream && gpu_access((uint32_t) gpu, in + stream_off, stream, 0, &r) == 0)
                                charge(&m, SPM_ACC_GPU(gpu - 1), &r, 1, &t);
                        stream_off = (stream_off + stream) % (stream_size - stream + 1);
                        /* The CPU writes a small header of the hot set. */
                        if (cpu_access(buf + off, 64 * 1024, 1, &r) == 0)
                                charge(&m, SPM_ACC_CPU, &r, 1, &t);
                        if (sleep_ms)
                                usleep((useconds_t) sleep_ms * 1000);
                }
                /* Moves the process did not make itself: an agent's prefetches, evictions. */
                uint64_t moved = counter_pages() - counted, own = t.pages_in + t.pages_out;
                if (moved > own) {
                        t.other_pages = moved - own;
                        t.migrate_usec += spm_machine_migrate_usec(&m, t.other_pages * 4096);
                }
                double total = t.access_usec + t.fault_usec + t.migrate_usec;
                if (json)
                        printf("{\"phase\":%lu,\"usec\":%.1f,\"faults\":%llu,\"pages_in\":%llu,\"pages_out\":%llu,"
                               "\"gpu_vram_fraction\":%.3f}\n", ph, total, (unsigned long long) t.faults,
                               (unsigned long long) t.pages_in, (unsigned long long) t.pages_out,
                               (double) t.gpu_pages_vram / (double) (t.gpu_pages_vram + t.gpu_pages_ram + !(t.gpu_pages_vram + t.gpu_pages_ram)));
                else
                        printf("phase %lu: %.1f ms modelled (access %.1f, faults %.1f, migration %.1f), GPU hits in VRAM %.0f%%\n",
                               ph, total / 1000, t.access_usec / 1000, t.fault_usec / 1000, t.migrate_usec / 1000,
                               100.0 * (double) t.gpu_pages_vram / (double) (t.gpu_pages_vram + t.gpu_pages_ram + !(t.gpu_pages_vram + t.gpu_pages_ram)));
                all.access_usec += t.access_usec;
                all.fault_usec += t.fault_usec;
                all.migrate_usec += t.migrate_usec;
                all.faults += t.faults;
                all.pages_in += t.pages_in;
                all.pages_out += t.pages_out;
                all.other_pages += t.other_pages;
        }
        double total = all.access_usec + all.fault_usec + all.migrate_usec;
        if (json)
                printf("{\"total_usec\":%.1f,\"faults\":%llu,\"bytes_migrated\":%llu,\"bytes_migrated_for_it\":%llu}\n",
                       total, (unsigned long long) all.faults, (unsigned long long) ((all.pages_in + all.pages_out) * 4096),
                       (unsigned long long) (all.other_pages * 4096));
        else
                printf("total: %.1f ms modelled, %llu faults, %llu MiB migrated by its faults, %llu MiB for it "
                       "(prefetches, evictions)\n", total / 1000, (unsigned long long) all.faults,
                       (unsigned long long) ((all.pages_in + all.pages_out) * 4096 / MiB),
                       (unsigned long long) (all.other_pages * 4096 / MiB));
        return 0;
}
