/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The SMI event text stream, read side: the inverse of kfd_smi_format() (kfd-model.c), for the
 * daemon's collector and the fuzz target. Formats from kfd_smi_events.c (Linux 6.1), plus the
 * optional trailing fields later kernels added (MIGRATE_END's error code, QUEUE_RESTORE's 'R').
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spmtier/kfd-model.h"
#include "spmtier/macro.h"

void kfd_smi_parser_init(struct kfd_smi_parser *p) {
        memset(p, 0, sizeof(*p));
}

/* sscanf that must consume the whole line: "%n" at the end tells how far it got. */
#define SCAN_ALL(line, fmt, nfields, ...)                                                      \
        ({                                                                                     \
                int _n = -1;                                                                   \
                sscanf(line, fmt "%n", __VA_ARGS__, &_n) == (nfields) && _n >= 0 &&            \
                        (size_t) _n == strlen(line);                                           \
        })

int kfd_smi_parse_line(const char *text, size_t len, struct kfd_event *ret) {
        char line[sizeof(((struct kfd_smi_parser *) 0)->line) + 1];
        struct kfd_event ev = {};
        unsigned id, from, to, pf, pref, gpu;
        long long ns;
        unsigned long addr, np;
        int pid, trig, err, skip = -1;
        char c;

        if (len == 0 || len >= sizeof(line) || memchr(text, '\0', len))
                return -EINVAL;
        memcpy(line, text, len);
        line[len] = 0;
        if (sscanf(line, "%x %n", &id, &skip) != 1 || skip <= 0 || line[0] == ' ' || line[0] == '-')
                return -EINVAL;
        const char *rest = line + skip;

        switch (id) {
        case KFD_EV_MIGRATE_START:
                if (!SCAN_ALL(rest, "%lld -%d @%lx(%lx) %x->%x %x:%x %d", 9, &ns, &pid, &addr, &np, &from, &to,
                              &pf, &pref, &trig))
                        return -EINVAL;
                ev = (struct kfd_event) { .addr = addr, .npages = np, .from = from, .to = to,
                                          .prefetch = pf, .preferred = pref, .trigger = trig };
                break;
        case KFD_EV_MIGRATE_END:
                if (!SCAN_ALL(rest, "%lld -%d @%lx(%lx) %x->%x %d", 7, &ns, &pid, &addr, &np, &from, &to, &trig) &&
                    !SCAN_ALL(rest, "%lld -%d @%lx(%lx) %x->%x %d %d", 8, &ns, &pid, &addr, &np, &from, &to, &trig,
                              &err))
                        return -EINVAL;
                ev = (struct kfd_event) { .addr = addr, .npages = np, .from = from, .to = to, .trigger = trig };
                break;
        case KFD_EV_PAGE_FAULT_START:
        case KFD_EV_PAGE_FAULT_END:
                if (!SCAN_ALL(rest, "%lld -%d @%lx(%x) %c", 5, &ns, &pid, &addr, &gpu, &c) ||
                    !strchr(id == KFD_EV_PAGE_FAULT_START ? "RW" : "MU", c))
                        return -EINVAL;
                ev = (struct kfd_event) { .addr = addr, .gpu_id = gpu, .c = c };
                break;
        case KFD_EV_QUEUE_EVICTION:
                if (!SCAN_ALL(rest, "%lld -%d %x %d", 4, &ns, &pid, &gpu, &trig))
                        return -EINVAL;
                ev = (struct kfd_event) { .gpu_id = gpu, .trigger = trig };
                break;
        case KFD_EV_QUEUE_RESTORE:
                c = 0;
                if (!SCAN_ALL(rest, "%lld -%d %x", 3, &ns, &pid, &gpu) &&
                    !(SCAN_ALL(rest, "%lld -%d %x %c", 4, &ns, &pid, &gpu, &c) && c == 'R'))
                        return -EINVAL;
                ev = (struct kfd_event) { .gpu_id = gpu, .c = c };
                break;
        case KFD_EV_UNMAP_FROM_GPU:
                if (!SCAN_ALL(rest, "%lld -%d @%lx(%lx) %x %d", 6, &ns, &pid, &addr, &np, &gpu, &trig))
                        return -EINVAL;
                ev = (struct kfd_event) { .addr = addr, .npages = np, .gpu_id = gpu, .trigger = trig };
                break;
        case KFD_EV_VMFAULT: {
                char task[64];
                unsigned upid;
                if (!SCAN_ALL(rest, "%x:%63s", 2, &upid, task))
                        return -EINVAL;
                ev = (struct kfd_event) { .id = id, .pid = (int32_t) upid };
                *ret = ev;
                return 0;
        }
        default:
                return -EOPNOTSUPP;
        }
        if (ns < 0 || pid < 0)
                return -EINVAL;
        ev.id = id;
        ev.ns = (uint64_t) ns;
        ev.pid = pid;
        *ret = ev;
        return 0;
}

static void finish_line(struct kfd_smi_parser *p, kfd_event_fn fn, void *userdata, unsigned *count) {
        struct kfd_event ev;
        int r = kfd_smi_parse_line(p->line, p->len, &ev);
        if (r == 0) {
                p->events++;
                (*count)++;
                if (fn)
                        fn(userdata, &ev);
        } else if (r == -EOPNOTSUPP)
                p->unknown++;
        else
                p->garbage++;
}

unsigned kfd_smi_parser_feed(struct kfd_smi_parser *p, const char *data, size_t n, kfd_event_fn fn,
                             void *userdata) {
        unsigned count = 0;

        for (size_t i = 0; i < n; i++) {
                char ch = data[i];
                if (ch == '\n') {
                        if (p->overlong)
                                p->overlong_lines++;
                        else if (p->len > 0)
                                finish_line(p, fn, userdata, &count);
                        p->len = 0;
                        p->overlong = false;
                        continue;
                }
                if (p->overlong)
                        continue;
                if (p->len + 1 >= sizeof(p->line)) {
                        p->overlong = true; /* not a KFD line: skip to its end */
                        continue;
                }
                p->line[p->len++] = ch;
        }
        return count;
}
