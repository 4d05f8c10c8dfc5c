/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: the workload config parser (libspmworkload), and the generator for configs
 * small enough to run quickly. Invariants: errors name "fuzz.conf:LINE:"; generated records
 * come in epoch order; rows are non-empty and inside the footprint's count of spans.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spmtier/macro.h"
#include "spmtier/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
        uint64_t last_epoch;
        uint64_t n;
};

static int emit(const struct spm_trace_record *rec, void *userdata) {
        struct state *s = userdata;

        if (rec->epoch < s->last_epoch)
                abort();
        if (rec->kind == SPM_TRACE_ROW && rec->access.reads == 0 && rec->access.writes == 0)
                abort();
        s->last_epoch = rec->epoch;
        return ++s->n > 200000 ? -E2BIG : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(spm_workload_freep) struct spm_workload *w = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        struct spm_workload_info info;
        struct state st = {};
        char err[512];
        int r;

        if (size == 0)
                return 0;
        f = fmemopen((void *) data, size, "r");
        if (!f)
                return 0;
        r = spm_workload_parse(f, "fuzz.conf", &w, err, sizeof(err));
        if (r == -EINVAL && strncmp(err, "fuzz.conf:", 10) != 0)
                abort();
        if (r < 0)
                return 0;
        spm_workload_get_info(w, &info);
        /* Generation walks every span of every region each epoch: keep it short. */
        if (info.epochs <= 64 && info.footprint / (2ULL << 20) * info.epochs <= (1 << 16))
                (void) spm_workload_generate(w, emit, &st);
        return 0;
}
