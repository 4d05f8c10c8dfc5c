/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Names shared by every libpolicy module (engine, trace I/O, workloads): one table each. */

#include <string.h>

#include "spmtier/policy.h"

static const char *const hint_names[_SPM_HINT_KIND_MAX] = {
        [SPM_HINT_HOT] = "hot",
        [SPM_HINT_COLD] = "cold",
        [SPM_HINT_PIN_GPU] = "pin-gpu",
        [SPM_HINT_PIN_RAM] = "pin-ram",
        [SPM_HINT_STREAMING] = "streaming",
        [SPM_HINT_NONE] = "none",
};

const char *spm_hint_kind_to_string(enum spm_hint_kind k) {
        if ((unsigned) k >= _SPM_HINT_KIND_MAX)
                return NULL;
        return hint_names[k];
}

enum spm_hint_kind spm_hint_kind_from_string(const char *s) {
        if (!s)
                return _SPM_HINT_KIND_INVALID;
        for (unsigned k = 0; k < _SPM_HINT_KIND_MAX; k++)
                if (strcmp(s, hint_names[k]) == 0)
                        return (enum spm_hint_kind) k;
        return _SPM_HINT_KIND_INVALID;
}
