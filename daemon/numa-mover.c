/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The numa mover: plan moves -> move_pages(2) batches on the job's pid.
 *
 * move_pages is called directly (syscall(2)), not through libnuma, so the mover links into
 * static test binaries and depends on nothing but the kernel. Status semantics (mm/migrate.c,
 * do_pages_move): per page, the node the page is on afterwards, or -ENOENT (not present),
 * -EFAULT (zero page, no VMA), -EACCES (mapped by several processes without MOVE_ALL), -EBUSY,
 * -ENOMEM; a whole call fails with -ESRCH (no such pid), -EPERM (no ptrace access), -ENODEV
 * (node not online or without memory), -EACCES (node outside the task's cpuset), and then the
 * pages before the bad entry may already have moved, so the batch is read back.
 */

#include <errno.h>
#include <limits.h>
#include <linux/mempolicy.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "numa-mover.h"
#include "spmtier/macro.h"

#define DEFAULT_BATCH_PAGES 1024
#define STATUS_UNSET INT_MIN

struct queued_move {
        struct spm_numa_move_result res;
        uint64_t offset;        /* bytes of the move attempted so far */
        int first_page_error;   /* first error among pages_other */
};

struct spm_numa_mover {
        struct spm_numa_mover_config config;
        struct queued_move *queue;
        size_t head, n, n_alloc; /* queue[head..n) are pending */
        void **pages;            /* one batch of move_pages arguments */
        int *nodes;
        int *status;
};

static long sys_move_pages(pid_t pid, unsigned long count, void **pages, const int *nodes,
                           int *status, int flags) {
        return syscall(SYS_move_pages, pid, count, pages, nodes, status, flags);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int spm_numa_mover_new(const struct spm_numa_mover_config *c, struct spm_numa_mover **ret) {
        _cleanup_(spm_numa_mover_freep) struct spm_numa_mover *m = NULL;

        if (!c || c->n_locs == 0 || c->n_locs > SPM_MAX_LOCS)
                return -EINVAL;
        for (unsigned l = 0; l < c->n_locs; l++)
                if (c->loc_node[l] < 0 || c->loc_node[l] >= SPM_NUMA_MAX_NODES)
                        return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->config = *c;
        if (m->config.batch_pages == 0)
                m->config.batch_pages = DEFAULT_BATCH_PAGES;
        if (m->config.page_size == 0)
                m->config.page_size = (size_t) sysconf(_SC_PAGESIZE);
        if (!IS_POWER_OF_2(m->config.page_size))
                return -EINVAL;
        m->pages = calloc(m->config.batch_pages, sizeof(*m->pages));
        m->nodes = calloc(m->config.batch_pages, sizeof(*m->nodes));
        m->status = calloc(m->config.batch_pages, sizeof(*m->status));
        if (!m->pages || !m->nodes || !m->status)
                return -ENOMEM;
        *ret = TAKE_PTR(m);
        return 0;
}

struct spm_numa_mover *spm_numa_mover_free(struct spm_numa_mover *m) {
        if (!m)
                return NULL;
        free(m->queue);
        free(m->pages);
        free(m->nodes);
        free(m->status);
        free(m);
        return NULL;
}

int spm_numa_mover_submit(struct spm_numa_mover *m, const struct spm_move *moves, size_t n) {
        uint64_t ps = m->config.page_size;

        for (size_t i = 0; i < n; i++) {
                const struct spm_move *mv = &moves[i];

                if (mv->to >= m->config.n_locs || mv->length == 0 || mv->start % ps ||
                    mv->length % ps)
                        return -EINVAL;
        }
        if (m->head > 0 && m->head == m->n)
                m->head = m->n = 0;
        if (m->n + n > m->n_alloc) {
                size_t pending = m->n - m->head, want = MAX(pending + n, 2 * m->n_alloc);
                struct queued_move *q = malloc(MAX(want, (size_t) 16) * sizeof(*q));

                if (!q)
                        return -ENOMEM;
                /* Compact while growing: finished moves before head are dropped. */
                if (pending)
                        memcpy(q, m->queue + m->head, pending * sizeof(*q));
                free(m->queue);
                m->queue = q;
                m->n_alloc = MAX(want, (size_t) 16);
                m->head = 0;
                m->n = pending;
        }
        for (size_t i = 0; i < n; i++)
                m->queue[m->n++] = (struct queued_move) {
                        .res = { .move = moves[i], .pages = moves[i].length / ps },
                };
        return 0;
}

size_t spm_numa_mover_pending(const struct spm_numa_mover *m, uint64_t *ret_bytes) {
        uint64_t bytes = 0;

        for (size_t i = m->head; i < m->n; i++)
                bytes += m->queue[i].res.move.length - m->queue[i].offset;
        if (ret_bytes)
                *ret_bytes = bytes;
        return m->n - m->head;
}

static void count_status(struct queued_move *q, int s, int node) {
        struct spm_numa_move_result *r = &q->res;

        if (s == node)
                r->pages_moved++;
        else if (s == -ENOENT)
                r->pages_absent++;
        else if (s == -EBUSY)
                r->pages_busy++;
        else if (s == -ENOMEM)
                r->pages_nomem++;
        else if (s == -EACCES)
                r->pages_acces++;
        else if (s == -EFAULT)
                r->pages_fault++;
        else {
                /* Another node (not moved, no error given) or an unexpected error. */
                r->pages_other++;
                if (q->first_page_error == 0)
                        q->first_page_error = s < 0 ? s : -EAGAIN;
        }
}

/* One move_pages call over npages pages from addr. Returns the call's error (0 = the call
 * ran; the per-page statuses are counted either way). */
static int move_batch(struct spm_numa_mover *m, struct queued_move *q, uint64_t addr,
                      size_t npages) {
        const struct spm_move *mv = &q->res.move;
        int node = m->config.loc_node[mv->to];
        int flags = m->config.move_all ? MPOL_MF_MOVE_ALL : MPOL_MF_MOVE;
        uint64_t t0;
        long rc;
        int err = 0;

        for (size_t i = 0; i < npages; i++) {
                m->pages[i] = (void *) (uintptr_t) (addr + i * m->config.page_size);
                m->nodes[i] = node;
                m->status[i] = STATUS_UNSET;
        }
        t0 = now_usec();
        rc = sys_move_pages((pid_t) mv->pid, npages, m->pages, m->nodes, m->status, flags);
        if (rc < 0) {
                err = -errno;
                /* The pages before the offending entry may have moved: read the batch back. */
                if (sys_move_pages((pid_t) mv->pid, npages, m->pages, NULL, m->status, 0) < 0)
                        for (size_t i = 0; i < npages; i++)
                                m->status[i] = err;
        }
        q->res.usec += now_usec() - t0;
        q->res.calls++;
        for (size_t i = 0; i < npages; i++) {
                int s = m->status[i];

                /* After a failed call, a page that did not reach the node failed with it. */
                if (err < 0 && s != node && s != -ENOENT)
                        s = err;
                count_status(q, s, node);
        }
        if (err < 0 && q->res.call_error == 0)
                q->res.call_error = err;
        return err;
}

/* Fills status and moved_bytes from the page counts (see spm_numa_move_result). */
static void finish(struct spm_numa_mover *m, struct queued_move *q) {
        struct spm_numa_move_result *r = &q->res;
        uint64_t attempted = q->offset / m->config.page_size;
        uint64_t done = r->pages_moved + r->pages_absent;
        struct {
                uint64_t n;
                int err;
        } worst = { 0, 0 }, cand[] = {
                { r->pages_busy, -EBUSY },   { r->pages_nomem, -ENOMEM },
                { r->pages_acces, -EACCES }, { r->pages_fault, -EFAULT },
                { r->pages_other, q->first_page_error ? q->first_page_error : -EIO },
        };

        /* Pages never attempted (the call failed for the whole process) failed too. */
        r->pages_other += r->pages - attempted;
        r->moved_bytes = done * m->config.page_size;
        if (done > 0) {
                r->status = 0;
                return;
        }
        if (r->call_error < 0) {
                r->status = r->call_error;
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(cand); i++)
                if (cand[i].n > worst.n)
                        worst = cand[i];
        r->status = worst.err ? worst.err : -EIO;
}

/* Errors after which the rest of a move cannot succeed either. */
static bool fatal_for_move(int err) {
        return err == -ESRCH || err == -EPERM || err == -ENODEV || err == -EACCES ||
               err == -EINVAL;
}

int64_t spm_numa_mover_run(struct spm_numa_mover *m, uint64_t budget_bytes, spm_numa_result_fn cb,
                           void *userdata) {
        uint64_t ps = m->config.page_size, spent = 0;

        while (m->head < m->n) {
                struct queued_move *q = &m->queue[m->head];
                uint64_t left = q->res.move.length - q->offset, chunk = left;
                bool stop = false;

                if (budget_bytes) {
                        uint64_t room = budget_bytes > spent ? budget_bytes - spent : 0;

                        /* Always make progress: the first page of a run goes even over a
                         * budget smaller than a page. */
                        chunk = MIN(chunk, ALIGN_DOWN(room, ps));
                        if (chunk == 0 && spent == 0)
                                chunk = ps;
                        if (chunk == 0)
                                break;
                }
                for (uint64_t done = 0; done < chunk;) {
                        size_t npages = (size_t) MIN((chunk - done) / ps,
                                                     (uint64_t) m->config.batch_pages);
                        int err = move_batch(m, q, q->res.move.start + q->offset + done, npages);

                        done += npages * ps;
                        if (fatal_for_move(err)) {
                                stop = true;
                                q->offset += done;
                                spent += done;
                                break;
                        }
                        if (done == chunk) {
                                q->offset += done;
                                spent += done;
                        }
                }
                if (stop || q->offset == q->res.move.length) {
                        finish(m, q);
                        m->head++;
                        if (cb)
                                cb(&q->res, userdata);
                }
                if (budget_bytes && spent >= budget_bytes)
                        break;
        }
        return (int64_t) spent;
}

size_t spm_numa_mover_cancel_pid(struct spm_numa_mover *m, uint32_t pid, spm_numa_result_fn cb,
                                 void *userdata) {
        size_t kept = m->head, dropped = 0;

        for (size_t i = m->head; i < m->n; i++) {
                struct queued_move q = m->queue[i];

                if (q.res.move.pid != pid) {
                        m->queue[kept++] = q;
                        continue;
                }
                if (q.res.call_error == 0)
                        q.res.call_error = -ESRCH;
                finish(m, &q);
                dropped++;
                if (cb)
                        cb(&q.res, userdata);
        }
        m->n = kept;
        return dropped;
}

int spm_numa_query(pid_t pid, uint64_t start, uint64_t len, size_t page_size,
                   struct spm_numa_placement *ret) {
        _cleanup_free_ void **pages = NULL;
        _cleanup_free_ int *status = NULL;
        struct spm_numa_placement p = {};
        size_t batch = DEFAULT_BATCH_PAGES;

        if (page_size == 0)
                page_size = (size_t) sysconf(_SC_PAGESIZE);
        if (!IS_POWER_OF_2(page_size) || start % page_size || len % page_size)
                return -EINVAL;
        pages = calloc(batch, sizeof(*pages));
        status = calloc(batch, sizeof(*status));
        if (!pages || !status)
                return -ENOMEM;
        for (uint64_t off = 0; off < len;) {
                size_t n = (size_t) MIN((len - off) / page_size, (uint64_t) batch);

                for (size_t i = 0; i < n; i++)
                        pages[i] = (void *) (uintptr_t) (start + off + i * page_size);
                if (sys_move_pages(pid, n, pages, NULL, status, 0) < 0)
                        return -errno;
                for (size_t i = 0; i < n; i++) {
                        int s = status[i];

                        if (s >= 0 && s < SPM_NUMA_MAX_NODES)
                                p.on_node[s]++;
                        else if (s == -ENOENT)
                                p.absent++;
                        else
                                p.errors++;
                }
                p.pages += n;
                off += (uint64_t) n * page_size;
        }
        *ret = p;
        return 0;
}

int spm_numa_query_sample(pid_t pid, uint64_t start, uint64_t len, size_t page_size,
                          size_t max_pages, struct spm_numa_placement *ret) {
        _cleanup_free_ void **pages = NULL;
        _cleanup_free_ int *status = NULL;
        struct spm_numa_placement p = {};
        uint64_t npages, stride;

        if (page_size == 0)
                page_size = (size_t) sysconf(_SC_PAGESIZE);
        if (!IS_POWER_OF_2(page_size) || start % page_size || len % page_size || max_pages == 0)
                return -EINVAL;
        npages = len / page_size;
        if (npages <= max_pages)
                return spm_numa_query(pid, start, len, page_size, ret);
        stride = npages / max_pages;
        pages = calloc(max_pages, sizeof(*pages));
        status = calloc(max_pages, sizeof(*status));
        if (!pages || !status)
                return -ENOMEM;
        for (size_t i = 0; i < max_pages; i++)
                pages[i] = (void *) (uintptr_t) (start + i * stride * page_size);
        if (sys_move_pages(pid, max_pages, pages, NULL, status, 0) < 0)
                return -errno;
        for (size_t i = 0; i < max_pages; i++) {
                if (status[i] >= 0 && status[i] < SPM_NUMA_MAX_NODES)
                        p.on_node[status[i]]++;
                else if (status[i] == -ENOENT)
                        p.absent++;
                else
                        p.errors++;
        }
        p.pages = max_pages;
        *ret = p;
        return 0;
}

int spm_numa_placement_majority(const struct spm_numa_placement *p) {
        int best = -ENOENT;
        uint64_t most = 0;

        for (int n = 0; n < SPM_NUMA_MAX_NODES; n++)
                if (p->on_node[n] > most) {
                        most = p->on_node[n];
                        best = n;
                }
        return best;
}
