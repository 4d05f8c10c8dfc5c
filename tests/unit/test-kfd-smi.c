/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The SMI stream parser: the formatter's lines come back as the same events, whatever the read
 * sizes, with unknown ids, garbage, overlong lines and fifo drops in between. */
#include <errno.h>

#include "spmtier/kfd-model.h"
#include "spmtier/macro.h"
#include "test.h"

static struct kfd_event got[512];
static unsigned n_got;

static void sink(void *userdata, const struct kfd_event *ev) {
        if (n_got < 512)
                got[n_got++] = *ev;
}

/* One event of every kind the fake emits, with values that exercise every field. */
static unsigned sample(struct kfd_event *v) {
        unsigned n = 0;
        v[n++] = (struct kfd_event) { .id = KFD_EV_MIGRATE_START, .ns = 123456789012ULL, .pid = 4242,
                                      .addr = 0x7f3a40000ULL, .npages = 0x200, .from = 0, .to = 0x1a2b,
                                      .prefetch = 0x1a2b, .preferred = 0xffffffffu, .trigger = 0 };
        v[n++] = (struct kfd_event) { .id = KFD_EV_MIGRATE_END, .ns = 123456789999ULL, .pid = 4242,
                                      .addr = 0x7f3a40000ULL, .npages = 0x200, .from = 0x1a2b, .to = 0, .trigger = 3 };
        v[n++] = (struct kfd_event) { .id = KFD_EV_PAGE_FAULT_START, .ns = 5, .pid = 1, .addr = 0x10, .gpu_id = 0xbeef, .c = 'W' };
        v[n++] = (struct kfd_event) { .id = KFD_EV_PAGE_FAULT_END, .ns = 6, .pid = 1, .addr = 0x10, .gpu_id = 0xbeef, .c = 'U' };
        v[n++] = (struct kfd_event) { .id = KFD_EV_QUEUE_EVICTION, .ns = 7, .pid = 99, .gpu_id = 0x2d5b, .trigger = 2 };
        v[n++] = (struct kfd_event) { .id = KFD_EV_QUEUE_RESTORE, .ns = 8, .pid = 99, .gpu_id = 0x2d5b };
        v[n++] = (struct kfd_event) { .id = KFD_EV_QUEUE_RESTORE, .ns = 9, .pid = 99, .gpu_id = 0x2d5b, .c = 'R' };
        v[n++] = (struct kfd_event) { .id = KFD_EV_UNMAP_FROM_GPU, .ns = 10, .pid = 7, .addr = 0x400, .npages = 0x20,
                                      .gpu_id = 0x9c01, .trigger = 2 };
        return n;
}

static void assert_same(const struct kfd_event *a, const struct kfd_event *b) {
        ASSERT_EQ(a->id, b->id);
        ASSERT_EQ_U(a->ns, b->ns);
        ASSERT_EQ(a->pid, b->pid);
        ASSERT_EQ_U(a->addr, b->addr);
        ASSERT_EQ_U(a->npages, b->npages);
        ASSERT_EQ_U(a->from, b->from);
        ASSERT_EQ_U(a->to, b->to);
        ASSERT_EQ_U(a->gpu_id, b->gpu_id);
        ASSERT_EQ(a->trigger, b->trigger);
        ASSERT_EQ(a->c, b->c);
        if (a->id == KFD_EV_MIGRATE_START) {
                ASSERT_EQ_U(a->prefetch, b->prefetch);
                ASSERT_EQ_U(a->preferred, b->preferred);
        }
}

TEST(round_trip_any_read_size) {
        struct kfd_event v[16];
        unsigned n = sample(v);
        char stream[4096];
        size_t len = 0;
        for (unsigned i = 0; i < n; i++)
                len += (size_t) kfd_smi_format(&v[i], stream + len, sizeof(stream) - len);
        for (size_t chunk = 1; chunk <= 97; chunk += 8) {
                struct kfd_smi_parser p;
                kfd_smi_parser_init(&p);
                n_got = 0;
                for (size_t off = 0; off < len; off += chunk)
                        kfd_smi_parser_feed(&p, stream + off, MIN(chunk, len - off), sink, NULL);
                ASSERT_EQ(n_got, n);
                ASSERT_EQ_U(p.garbage + p.unknown + p.overlong_lines, 0);
                for (unsigned i = 0; i < n; i++)
                        assert_same(&got[i], &v[i]);
        }
}

TEST(unknown_garbage_overlong_are_counted_and_skipped) {
        struct kfd_smi_parser p;
        kfd_smi_parser_init(&p);
        n_got = 0;
        char big[400];
        memset(big, 'x', sizeof(big));
        static const char *const lines[] = {
                "c 100 -5 1\n",                        /* PROCESS_START on later kernels: unknown */
                "5 abc\n",                             /* garbage after a known id */
                "7 1 -2 @10(1a2b) Q\n",               /* bad fault kind */
                "zz top\n",
                "\n",
                "6 5 -9 @10(20) abc->0 3 -28\n",      /* newer MIGRATE_END with an error code */
                "a 5 -9 abc R\n",
                "b 5 -9 @10(20) abc 2 trailing\n",    /* garbage at the end */
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                kfd_smi_parser_feed(&p, lines[i], strlen(lines[i]), sink, NULL);
        kfd_smi_parser_feed(&p, big, sizeof(big), sink, NULL);
        kfd_smi_parser_feed(&p, "\n9 7 -99 2d5b 2\n", 16, sink, NULL);
        ASSERT_EQ(n_got, 3);
        ASSERT_EQ(got[0].id, KFD_EV_MIGRATE_END);
        ASSERT_EQ(got[1].c, 'R');
        ASSERT_EQ(got[2].id, KFD_EV_QUEUE_EVICTION);
        ASSERT_EQ_U(p.unknown, 1);
        ASSERT_EQ_U(p.garbage, 4);
        ASSERT_EQ_U(p.overlong_lines, 1);
        struct kfd_event ev;
        ASSERT_ERROR(kfd_smi_parse_line("5", 1, &ev), EINVAL);
        ASSERT_ERROR(kfd_smi_parse_line("d 1 -1", 6, &ev), EOPNOTSUPP);
        ASSERT_ERROR(kfd_smi_parse_line("7 1 --2 @10(1a2b) R", 19, &ev), EINVAL);
        ASSERT_OK(kfd_smi_parse_line("1 1f90:myapp", 12, &ev));
        ASSERT_EQ(ev.pid, 0x1f90);
}

TEST(drops_and_eight_byte_reads) {
        /* A 1024-byte kfifo, a burst nobody reads, then an old kernel's 8-byte reads. */
        static struct kfd_smi_fifo f;
        struct kfd_event v[16];
        unsigned n = sample(v), queued = 0;
        kfd_smi_fifo_init(&f, 1024);
        for (int round = 0; round < 20; round++)
                for (unsigned i = 0; i < n; i++) {
                        char line[KFD_EV_MSG_SIZE];
                        int k = kfd_smi_format(&v[i], line, sizeof(line));
                        queued += kfd_smi_fifo_push(&f, line, (size_t) k);
                }
        ASSERT_GT(f.dropped, 0);
        struct kfd_smi_parser p;
        kfd_smi_parser_init(&p);
        n_got = 0;
        char buf[64];
        int k;
        while ((k = kfd_smi_fifo_read(&f, buf, sizeof(buf), true)) > 0) {
                ASSERT_LE(k, 8);
                kfd_smi_parser_feed(&p, buf, (size_t) k, sink, NULL);
        }
        ASSERT_EQ(k, -EAGAIN);
        ASSERT_EQ(n_got, queued); /* whole lines were dropped, every queued one parses */
        ASSERT_EQ_U(p.garbage, 0);
}

TEST_MAIN()
