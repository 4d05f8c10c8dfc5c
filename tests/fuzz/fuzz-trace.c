/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: the trace reader (libspmtrace). The input is a whole trace file, plain or
 * gzip'd, read through a memfd with the strict reader to the end or the first error; every
 * line is also fed to the pure line parser. Invariants checked: an error always names the
 * file; rows are page aligned, non-empty and never wrap; epochs never decrease.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spmtier/macro.h"
#include "spmtier/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_lines(const uint8_t *data, size_t size) {
        struct spm_trace_header hdr;
        _cleanup_free_ char *line = malloc(size + 1);

        if (!line)
                return;
        spm_trace_header_init(&hdr);
        for (size_t i = 0; i < size;) {
                size_t n = 0;
                struct spm_trace_record rec;
                const char *e = NULL;

                while (i + n < size && data[i + n] != '\n')
                        n++;
                memcpy(line, data + i, n);
                line[n] = '\0';
                if (spm_trace_parse_line(line, &hdr, &rec, &e) < 0) {
                        if (!e || !e[0])
                                abort();
                } else if (rec.kind == SPM_TRACE_ROW) {
                        if (rec.access.len == 0 || rec.access.addr % hdr.page_size ||
                            rec.access.addr + rec.access.len < rec.access.addr)
                                abort();
                }
                i += n + 1;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(spm_trace_closep) struct spm_trace_reader *r = NULL;
        _cleanup_close_ int fd = memfd_create("fuzz-trace", MFD_CLOEXEC);
        char path[64];
        uint64_t last = 0;
        int k;

        check_lines(data, size);
        if (fd < 0 || write(fd, data, size) != (ssize_t) size)
                return 0;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (spm_trace_open(path, &r) < 0)
                return 0;
        for (;;) {
                struct spm_trace_record rec;

                k = spm_trace_next(r, &rec);
                if (k <= 0)
                        break;
                if (rec.epoch < last)
                        abort();
                last = rec.epoch;
        }
        if (k == -EINVAL && (!spm_trace_error(r) || !strstr(spm_trace_error(r), path)))
                abort();
        return 0;
}
