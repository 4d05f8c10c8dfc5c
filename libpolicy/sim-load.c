/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loads a trace file (plain or gzip'd) into a spm_simtrace. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/sim.h"
#include "spmtier/trace.h"

int spm_simtrace_load(const char *path, uint64_t granule, struct spm_simtrace **ret,
                      char *error, size_t error_size) {
        _cleanup_(spm_trace_closep) struct spm_trace_reader *rd = NULL;
        _cleanup_(spm_simtrace_freep) struct spm_simtrace *t = NULL;
        struct spm_trace_record rec;
        int r;

        r = spm_trace_open(path, &rd);
        if (r < 0) {
                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        for (;;) {
                r = spm_trace_next(rd, &rec);
                if (r == 0)
                        break;
                if (r < 0) {
                        const char *e = spm_trace_error(rd);

                        if (e)
                                snprintf(error, error_size, "%s", e);
                        else
                                snprintf(error, error_size, "%s:%lu: %s", path, spm_trace_line(rd),
                                         strerror(-r));
                        return r;
                }
                if (!t) {
                        r = spm_simtrace_new(granule, spm_trace_header(rd)->epoch_usec, &t);
                        if (r < 0) {
                                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                                return r;
                        }
                }
                if (rec.kind == SPM_TRACE_ROW)
                        r = spm_simtrace_add(t, rec.epoch, &rec.access);
                else if (rec.kind == SPM_TRACE_HINT)
                        r = spm_simtrace_add_hint(t, rec.epoch, &rec.hint);
                else
                        r = 0;
                if (r < 0) {
                        snprintf(error, error_size, "%s:%lu: %s", path, spm_trace_line(rd),
                                 r == -ENOMEM ? "out of memory" : "row out of range");
                        return r;
                }
        }
        if (!t || t->rows == 0) {
                snprintf(error, error_size, "%s: no access rows", path);
                return -EINVAL;
        }
        r = spm_simtrace_finish(t);
        if (r < 0) {
                snprintf(error, error_size, "%s: %s", path, strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}
