/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: the DAMON JSON importer (cli/damon-import.c). Invariants: errors name the
 * file; rows come sorted by epoch, pid and address, are non-empty and stay inside one span.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "damon-import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct spm_damon_options o;
        struct spm_damon_trace t;
        char err[1024];
        int r;

        spm_damon_options_defaults(&o);
        o.max_rows = 1 << 16;
        r = spm_damon_import("fuzz.json", (const char *) data, size, &o, &t, err, sizeof(err));
        if (r == -EINVAL && strncmp(err, "fuzz.json", 9) != 0)
                abort();
        if (r < 0)
                return 0;
        for (size_t i = 0; i < t.n_rows; i++) {
                const struct spm_damon_row *x = &t.rows[i];

                if (x->len == 0 || x->addr / o.span != (x->addr + x->len - 1) / o.span)
                        abort();
                if (i > 0 && x->epoch < t.rows[i - 1].epoch)
                        abort();
        }
        free(t.rows);
        return 0;
}
