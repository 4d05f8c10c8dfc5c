/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM test's workload: one anonymous buffer of three 16 MiB parts (A, B, C), first touched
 * on the slow node, then a loop that keeps one part hot. SIGUSR1 moves the hot part from A to
 * B (the phase change); SIGTERM ends it, after checking that every page still holds what was
 * written (migration must not lose data).
 *
 * usage: spm-vm-workload SLOW_NODE
 * Prints "READY <addr> <bytes> <part bytes>" on stdout once the buffer sits on SLOW_NODE.
 * Exit: 0 data intact, 2 data corrupted, 1 setup failed.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/mempolicy.h>

#define PAGE 4096UL
#define PART (16UL << 20)
#define PARTS 3

static volatile sig_atomic_t phase, stop;

static void on_usr1(int sig) {
        phase = 1;
}

static void on_term(int sig) {
        stop = 1;
}

int main(int argc, char **argv) {
        size_t len = PARTS * PART, pages = len / PAGE;
        unsigned long mask;
        uint64_t *buf;
        int slow;

        if (argc != 2 || (slow = atoi(argv[1])) < 0 || slow >= 64) {
                fprintf(stderr, "usage: spm-vm-workload SLOW_NODE\n");
                return 1;
        }
        buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) {
                perror("mmap");
                return 1;
        }
        /* 4 KiB pages: a THP would move as one 2 MiB unit and blur the per-page counts. */
        if (madvise(buf, len, MADV_NOHUGEPAGE) < 0)
                perror("madvise(MADV_NOHUGEPAGE)");
        mask = 1UL << slow;
        if (syscall(SYS_mbind, buf, len, MPOL_BIND, &mask, 64, 0) < 0) {
                perror("mbind(MPOL_BIND slow node)");
                return 1;
        }
        for (size_t i = 0; i < pages; i++)
                buf[i * (PAGE / 8)] = i;
        /* Back to the default policy: the daemon decides from here on. */
        if (syscall(SYS_mbind, buf, len, MPOL_DEFAULT, NULL, 0, 0) < 0) {
                perror("mbind(MPOL_DEFAULT)");
                return 1;
        }
        signal(SIGUSR1, on_usr1);
        signal(SIGTERM, on_term);
        printf("READY %#" PRIxPTR " %zu %lu\n", (uintptr_t) buf, len, PART);
        fflush(stdout);

        while (!stop) {
                /* One read-modify-write per page of the hot part, then a short pause so the
                 * loop does not starve the emulated CPUs the daemon and DAMON need. */
                size_t first = (phase ? PART : 0) / PAGE;

                for (size_t i = first; i < first + PART / PAGE; i++)
                        buf[i * (PAGE / 8) + 1]++;
                nanosleep(&(struct timespec) { .tv_nsec = 2 * 1000 * 1000 }, NULL);
        }
        for (size_t i = 0; i < pages; i++)
                if (buf[i * (PAGE / 8)] != i) {
                        fprintf(stderr, "page %zu corrupted: %" PRIu64 "\n", i,
                                buf[i * (PAGE / 8)]);
                        return 2;
                }
        return 0;
}
