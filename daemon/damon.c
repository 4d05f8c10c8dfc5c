/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The damon collector over DAMON sysfs. Paths are relative to the admin root:
 *
 *   kdamonds/nr_kdamonds
 *   kdamonds/0/{state,pid}                              K
 *   kdamonds/0/contexts/0/...                           C
 *     avail_operations, operations
 *     monitoring_attrs/intervals/{sample_us,aggr_us,update_us}
 *     monitoring_attrs/nr_regions/{min,max}
 *     targets/nr_targets, targets/N/pid_target
 *     schemes/nr_schemes, schemes/N/action, schemes/N/access_pattern/{sz,nr_accesses,age}/{min,max}
 *     schemes/N/filters/nr_filters, schemes/N/filters/0/{type,damon_target_idx,matching}
 *     schemes/N/tried_regions/M/{start,end,nr_accesses,age}
 *
 * Checked on Debian's 6.12 cloud kernel (tests/vm): a new scheme's access_pattern ranges are
 * min = max = 0, so the wide-open maxima must be written, and a filter with matching = N
 * filters out what does not match, i.e. keeps only its target.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "damon.h"
#include "spmtier/macro.h"
#include "sysfs-io.h"

#define K "kdamonds/0"
#define C K "/contexts/0"

struct spm_damon {
        struct spm_damon_config config;
        char *admin_root;
        char *state_file;
        uint32_t *pids;          /* target i = pids[i] = scheme i */
        size_t n_pids;
        bool running;
        int kdamond_pid;
        uint64_t started_usec;   /* CLOCK_MONOTONIC of the last (re)start */
        char error[512];
};

static _printf_(3, 4) int fail(struct spm_damon *d, int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(d->error, sizeof(d->error), fmt, ap);
        va_end(ap);
        return err;
}

void spm_damon_config_defaults(struct spm_damon_config *c) {
        *c = (struct spm_damon_config) {
                .sample_usec = 5000,
                .aggr_usec = 100000,
                .update_usec = 1000000,
                .min_regions = 10,
                .max_regions = 1000,
                .page_size = 4096,
                .lines_per_page = 64,
                .warmup_usec = 1000000,
        };
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int spm_damon_probe(const char *admin_root, char *why, size_t why_size) {
        const char *root = admin_root ? admin_root : SPM_DAMON_ADMIN_ROOT;
        char ops[256];
        uint64_t n;
        int r;

        if (!why) {
                why = ops;
                why_size = sizeof(ops);
        }
        r = sysfs_read_u64(&n, root, "kdamonds/nr_kdamonds");
        if (r == -ENOENT || r == -ENOTDIR) {
                snprintf(why, why_size,
                         "DAMON sysfs is missing (%s: no kdamonds/nr_kdamonds): the kernel has no "
                         "CONFIG_DAMON_SYSFS (Debian 12's 6.1 kernel has no DAMON at all; its 6.12 "
                         "kernels have it)", root);
                return -ENOENT;
        }
        if (r < 0) {
                snprintf(why, why_size, "cannot read %s/kdamonds/nr_kdamonds: %s", root,
                         strerror(-r));
                return r;
        }
        if (access(root, W_OK) < 0) {
                snprintf(why, why_size, "DAMON sysfs at %s is not writable: %s (needs root)",
                         root, strerror(errno));
                return -EACCES;
        }
        if (n > 0) {
                r = sysfs_read(ops, sizeof(ops), root, C "/avail_operations");
                if (r >= 0 && !strstr(ops, "vaddr")) {
                        for (char *p = ops; *p; p++)
                                if (*p == '\n')
                                        *p = ' ';
                        snprintf(why, why_size,
                                 "DAMON has no vaddr (virtual address) operations (avail_operations: %s): "
                                 "the kernel has no CONFIG_DAMON_VADDR", ops);
                        return -EOPNOTSUPP;
                }
        }
        snprintf(why, why_size, "DAMON sysfs at %s", root);
        return 0;
}

int spm_damon_new(const struct spm_damon_config *c, struct spm_damon **ret) {
        _cleanup_(spm_damon_freep) struct spm_damon *d = NULL;
        struct spm_damon_config def;

        spm_damon_config_defaults(&def);
        if (!c)
                c = &def;
        if (c->sample_usec == 0 || c->aggr_usec < c->sample_usec ||
            c->update_usec < c->aggr_usec || c->min_regions < 3 ||
            c->max_regions < c->min_regions || !IS_POWER_OF_2(c->page_size) ||
            c->lines_per_page == 0)
                return -EINVAL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->config = *c;
        d->kdamond_pid = -1;
        d->admin_root = strdup(c->admin_root ? c->admin_root : SPM_DAMON_ADMIN_ROOT);
        if (!d->admin_root)
                return -ENOMEM;
        if (c->state_file) {
                d->state_file = strdup(c->state_file);
                if (!d->state_file)
                        return -ENOMEM;
        }
        d->config.admin_root = d->admin_root;
        d->config.state_file = d->state_file;
        *ret = TAKE_PTR(d);
        return 0;
}

struct spm_damon *spm_damon_free(struct spm_damon *d) {
        if (!d)
                return NULL;
        (void) spm_damon_stop(d);
        free(d->admin_root);
        free(d->state_file);
        free(d->pids);
        free(d);
        return NULL;
}

bool spm_damon_running(const struct spm_damon *d) {
        return d->running;
}

int spm_damon_kdamond_pid(const struct spm_damon *d) {
        return d->running ? d->kdamond_pid : -1;
}

const char *spm_damon_error(const struct spm_damon *d) {
        return d->error;
}

/* The kdamond pid a previous run of ours left in the state file, or -1. */
static int read_state_file(const struct spm_damon *d) {
        uint64_t pid;

        if (!d->state_file || sysfs_read_u64(&pid, NULL, "%s", d->state_file) < 0 ||
            pid == 0 || pid > INT32_MAX)
                return -1;
        return (int) pid;
}

static int write_state_file(struct spm_damon *d, int kpid) {
        char tmp[4096], buf[32];
        _cleanup_close_ int fd = -EBADF;
        int n;

        if (!d->state_file)
                return 0;
        /* Atomic replace: a crash leaves the old or the new pid, never half a number. */
        snprintf(tmp, sizeof(tmp), "%s.tmp", d->state_file);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        n = snprintf(buf, sizeof(buf), "%d\n", kpid);
        if (write(fd, buf, (size_t) n) != n || fsync(fd) < 0) {
                int r = -errno;

                (void) unlink(tmp);
                return r ? r : -EIO;
        }
        if (rename(tmp, d->state_file) < 0)
                return -errno;
        return 0;
}

/* Turns off running kdamonds that are ours (this object's, or the state file's), refuses
 * foreign ones. */
static int recover(struct spm_damon *d) {
        const char *root = d->admin_root;
        int ours = d->running ? d->kdamond_pid : read_state_file(d);
        uint64_t n;
        int r;

        r = sysfs_read_u64(&n, root, "kdamonds/nr_kdamonds");
        if (r == -ENOENT || r == -ENOTDIR)
                return fail(d, -ENOENT,
                            "DAMON sysfs is missing (%s): the kernel has no CONFIG_DAMON_SYSFS "
                            "(Debian 12's 6.1 kernel has no DAMON)", root);
        if (r < 0)
                return fail(d, r, "cannot read %s/kdamonds/nr_kdamonds: %s", root, strerror(-r));
        for (uint64_t i = 0; i < n; i++) {
                char state[32];
                uint64_t kpid;

                r = sysfs_read(state, sizeof(state), root, "kdamonds/%" PRIu64 "/state", i);
                if (r < 0)
                        return fail(d, r, "cannot read kdamond %" PRIu64 " state: %s", i,
                                    strerror(-r));
                if (strcmp(state, "on") != 0)
                        continue;
                r = sysfs_read_u64(&kpid, root, "kdamonds/%" PRIu64 "/pid", i);
                if (r < 0)
                        return fail(d, r, "cannot read kdamond %" PRIu64 " pid: %s", i,
                                    strerror(-r));
                if (ours < 0 || kpid != (uint64_t) ours)
                        return fail(d, -EBUSY,
                                    "DAMON is in use by someone else (kdamond %" PRIu64
                                    ", pid %" PRIu64 ", is on and was not started by us); "
                                    "not touching it",
                                    i, kpid);
                r = sysfs_write("off", root, "kdamonds/%" PRIu64 "/state", i);
                if (r < 0)
                        return fail(d, r, "cannot turn off our leftover kdamond (pid %" PRIu64
                                    "): %s", kpid, strerror(-r));
        }
        d->running = false;
        d->kdamond_pid = -1;
        return 0;
}

static int setup_scheme(struct spm_damon *d, size_t i, bool filters) {
        static const struct {
                const char *name, *max;
        } ranges[] = {
                /* The kernel's defaults are min = max = 0: only empty regions would match. */
                { "sz", "18446744073709551615" },
                { "nr_accesses", "4294967295" },
                { "age", "4294967295" },
        };
        const char *root = d->admin_root;
        int r;

        r = sysfs_write("stat", root, C "/schemes/%zu/action", i);
        for (size_t k = 0; r >= 0 && k < ELEMENTSOF(ranges); k++) {
                r = sysfs_write("0", root, C "/schemes/%zu/access_pattern/%s/min", i,
                                ranges[k].name);
                if (r >= 0)
                        r = sysfs_write(ranges[k].max, root,
                                        C "/schemes/%zu/access_pattern/%s/max", i, ranges[k].name);
        }
        if (r >= 0 && filters) {
                r = sysfs_write("1", root, C "/schemes/%zu/filters/nr_filters", i);
                if (r >= 0)
                        r = sysfs_write("target", root, C "/schemes/%zu/filters/0/type", i);
                if (r >= 0)
                        r = sysfs_write_u64(i, root, C "/schemes/%zu/filters/0/damon_target_idx",
                                            i);
                if (r >= 0)
                        r = sysfs_write("N", root, C "/schemes/%zu/filters/0/matching", i);
        }
        if (r < 0)
                return fail(d, r, "cannot set up DAMON scheme %zu: %s", i, strerror(-r));
        return 0;
}

static int configure(struct spm_damon *d, const uint32_t *pids, size_t n) {
        const struct spm_damon_config *c = &d->config;
        const char *root = d->admin_root;
        char ops[256], path[4096];
        struct stat st;
        bool filters;
        int r;

        r = sysfs_write("1", root, "kdamonds/nr_kdamonds");
        if (r < 0)
                return fail(d, r, "cannot create a kdamond (%s/kdamonds/nr_kdamonds): %s", root,
                            strerror(-r));
        r = sysfs_write("1", root, K "/contexts/nr_contexts");
        if (r < 0)
                return fail(d, r, "cannot create a DAMON context: %s", strerror(-r));
        r = sysfs_read(ops, sizeof(ops), root, C "/avail_operations");
        if (r >= 0 && !strstr(ops, "vaddr"))
                return fail(d, -EOPNOTSUPP,
                            "DAMON has no vaddr (virtual address) operations (avail_operations: %s): "
                            "the kernel has no CONFIG_DAMON_VADDR", ops);
        r = sysfs_write("vaddr", root, C "/operations");
        if (r < 0)
                return fail(d, r == -EINVAL ? -EOPNOTSUPP : r,
                            "DAMON refuses vaddr operations: %s", strerror(-r));

        r = sysfs_write_u64(c->sample_usec, root, C "/monitoring_attrs/intervals/sample_us");
        if (r >= 0)
                r = sysfs_write_u64(c->aggr_usec, root, C "/monitoring_attrs/intervals/aggr_us");
        if (r >= 0)
                r = sysfs_write_u64(c->update_usec, root,
                                    C "/monitoring_attrs/intervals/update_us");
        if (r >= 0)
                r = sysfs_write_u64(c->min_regions, root, C "/monitoring_attrs/nr_regions/min");
        if (r >= 0)
                r = sysfs_write_u64(c->max_regions, root, C "/monitoring_attrs/nr_regions/max");
        if (r < 0)
                return fail(d, r, "cannot set DAMON monitoring attributes: %s", strerror(-r));

        r = sysfs_write_u64(n, root, C "/targets/nr_targets");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sysfs_write_u64(pids[i], root, C "/targets/%zu/pid_target", i);
        if (r < 0)
                return fail(d, r, "cannot set DAMON targets: %s", strerror(-r));

        r = sysfs_write_u64(n, root, C "/schemes/nr_schemes");
        if (r < 0)
                return fail(d, r, "cannot create DAMON schemes: %s", strerror(-r));
        snprintf(path, sizeof(path), "%s/" C "/schemes/0/filters", root);
        filters = stat(path, &st) == 0;
        if (!filters && n > 1)
                return fail(d, -EOPNOTSUPP,
                            "DAMON has no scheme filters (kernel < 6.3): cannot tell %zu targets' "
                            "regions apart", n);
        for (size_t i = 0; i < n; i++) {
                r = setup_scheme(d, i, filters);
                if (r < 0)
                        return r;
        }
        return 0;
}

int spm_damon_set_targets(struct spm_damon *d, const uint32_t *pids, size_t n) {
        _cleanup_free_ uint32_t *copy = NULL;
        uint64_t kpid;
        int r;

        d->error[0] = '\0';
        if (n == 0)
                return spm_damon_stop(d);
        for (size_t i = 0; i < n; i++)
                if (pids[i] == 0 || (kill((pid_t) pids[i], 0) < 0 && errno == ESRCH))
                        return fail(d, -ESRCH, "cannot monitor pid %" PRIu32 ": no such process",
                                    pids[i]);
        copy = malloc(n * sizeof(*copy));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, pids, n * sizeof(*copy));

        r = recover(d);
        if (r < 0)
                return r;
        r = configure(d, pids, n);
        if (r < 0)
                return r;
        r = sysfs_write("on", d->admin_root, K "/state");
        if (r < 0)
                return fail(d, r, "DAMON refused to start (%s/" K "/state = on): %s",
                            d->admin_root, strerror(-r));
        r = sysfs_read_u64(&kpid, d->admin_root, K "/pid");
        if (r < 0 || kpid > INT32_MAX) {
                (void) sysfs_write("off", d->admin_root, K "/state");
                return fail(d, r < 0 ? r : -EBADMSG, "cannot read the kdamond's pid");
        }
        d->running = true;
        d->kdamond_pid = (int) kpid;
        d->started_usec = now_usec();
        free(d->pids);
        d->pids = TAKE_PTR(copy);
        d->n_pids = n;
        r = write_state_file(d, d->kdamond_pid);
        if (r < 0)
                return fail(d, r, "kdamond %d runs, but its pid cannot be saved to %s: %s",
                            d->kdamond_pid, d->state_file, strerror(-r));
        return 0;
}

int spm_damon_start(struct spm_damon *d, const uint32_t *pids, size_t n) {
        if (n == 0)
                return fail(d, -EINVAL, "no process to monitor");
        return spm_damon_set_targets(d, pids, n);
}

int spm_damon_stop(struct spm_damon *d) {
        char state[32];
        int r = 0, q;

        if (!d->running)
                return 0;
        q = sysfs_read(state, sizeof(state), d->admin_root, K "/state");
        if (q >= 0 && strcmp(state, "on") == 0)
                q = sysfs_write("off", d->admin_root, K "/state");
        if (q < 0 && q != -ENOENT)
                r = fail(d, q, "cannot turn DAMON off: %s", strerror(-q));
        q = sysfs_write("0", d->admin_root, "kdamonds/nr_kdamonds");
        if (q < 0 && r == 0)
                r = fail(d, q, "cannot remove the kdamond directories: %s", strerror(-q));
        if (d->state_file && unlink(d->state_file) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        d->running = false;
        d->kdamond_pid = -1;
        return r;
}

static int region_cmp(const void *a, const void *b) {
        const struct spm_damon_region *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return (x->start > y->start) - (x->start < y->start);
}

/* Appends scheme i's tried regions to *v. */
static int read_tried(struct spm_damon *d, size_t i, struct spm_damon_region **v, size_t *n,
                      size_t *n_alloc) {
        char path[4096];
        _cleanup_closedir_ DIR *dir = NULL;
        struct dirent *de;

        snprintf(path, sizeof(path), "%s/" C "/schemes/%zu/tried_regions", d->admin_root, i);
        dir = opendir(path);
        if (!dir)
                return fail(d, -errno, "cannot read %s: %s", path, strerror(errno));
        while ((de = readdir(dir))) {
                static const char *const names[] = { "start", "end", "nr_accesses", "age" };
                uint64_t val[4];
                char *end;
                int r;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue; /* ".", "..", total_bytes */
                (void) strtoul(de->d_name, &end, 10);
                if (*end)
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                        r = sysfs_read_u64(&val[k], path, "%s/%s", de->d_name, names[k]);
                        if (r < 0)
                                return fail(d, r,
                                            "tried region %s/%s/%s: %s", path, de->d_name,
                                            names[k], strerror(-r));
                }
                if (val[1] <= val[0] || val[2] > UINT32_MAX || val[3] > UINT32_MAX)
                        return fail(d, -EBADMSG, "tried region %s/%s is not a region "
                                    "([%#" PRIx64 ", %#" PRIx64 ") nr_accesses %" PRIu64 ")",
                                    path, de->d_name, val[0], val[1], val[2]);
                if (*n == *n_alloc) {
                        size_t na = MAX(*n_alloc * 2, (size_t) 64);
                        struct spm_damon_region *nv = realloc(*v, na * sizeof(**v));

                        if (!nv)
                                return -ENOMEM;
                        *v = nv;
                        *n_alloc = na;
                }
                (*v)[(*n)++] = (struct spm_damon_region) {
                        .pid = d->pids[i], .start = val[0], .end = val[1],
                        .nr_accesses = (uint32_t) val[2], .age = (uint32_t) val[3],
                };
        }
        return 0;
}

int spm_damon_collect(struct spm_damon *d, struct spm_damon_region **ret, size_t *ret_n) {
        _cleanup_free_ struct spm_damon_region *v = NULL;
        size_t n = 0, n_alloc = 0;
        char state[32];
        int r;

        if (!d->running)
                return fail(d, -ENOTCONN, "DAMON monitoring is not running");
        r = sysfs_read(state, sizeof(state), d->admin_root, K "/state");
        if (r < 0)
                return fail(d, r, "cannot read the kdamond state: %s", strerror(-r));
        if (strcmp(state, "on") != 0) {
                /* vaddr kdamonds end by themselves when every target has exited; their
                 * directories and our state file stay until removed (a daemon stopping after
                 * its last job's processes exited left nr_kdamonds at 1 in the VM test). */
                (void) spm_damon_stop(d);
                return fail(d, -ESRCH, "the kdamond has stopped (state %s): its targets exited",
                            state);
        }
        if (now_usec() - d->started_usec < d->config.warmup_usec)
                return fail(d, -EAGAIN, "DAMON is still forming its regions (warm-up)");
        /* Blocks until the kdamond has refilled the directories (one or two aggregation
         * intervals). Now and then the kernel hands back no region at all although the
         * targets live (seen on 6.12 under load): one more round then. */
        for (int round = 0; round < 2 && n == 0; round++) {
                r = sysfs_write("update_schemes_tried_regions", d->admin_root, K "/state");
                if (r < 0)
                        return fail(d, r, "update_schemes_tried_regions failed: %s",
                                    strerror(-r));
                for (size_t i = 0; i < d->n_pids; i++) {
                        r = read_tried(d, i, &v, &n, &n_alloc);
                        if (r < 0)
                                return r;
                }
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), region_cmp);
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

int spm_damon_to_accesses(const struct spm_damon *d, const struct spm_damon_region *r, size_t n,
                          struct spm_access **ret) {
        _cleanup_free_ struct spm_access *a = NULL;
        size_t k = 0;

        a = calloc(n ? n : 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                uint64_t pages = DIV_ROUND_UP(r[i].end - r[i].start, d->config.page_size);

                if (r[i].nr_accesses == 0)
                        continue;
                a[k++] = (struct spm_access) {
                        .pid = r[i].pid,
                        .accessor = SPM_ACC_CPU,
                        .addr = r[i].start,
                        .len = r[i].end - r[i].start,
                        .reads = (uint64_t) r[i].nr_accesses * pages * d->config.lines_per_page,
                        .writes = 0,
                };
        }
        *ret = TAKE_PTR(a);
        return (int) k;
}

size_t spm_damon_clip(struct spm_access *a, size_t n, uint32_t pid, uint64_t lo, uint64_t hi) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                struct spm_access x = a[i];
                uint64_t s, e;

                if (x.pid == pid) {
                        s = MAX(x.addr, lo);
                        e = MIN(x.addr + x.len, hi);
                        if (s >= e)
                                continue;
                        if (e - s != x.len) {
                                double part = (double) (e - s) / (double) x.len;

                                x.reads = (uint64_t) ((double) x.reads * part + 0.5);
                                x.writes = (uint64_t) ((double) x.writes * part + 0.5);
                                x.addr = s;
                                x.len = e - s;
                        }
                }
                a[k++] = x;
        }
        return k;
}
