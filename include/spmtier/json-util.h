/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* json-c ownership helpers (the daemon, spmctl and spmsim use json-c; libpolicy does not). */

#include <json-c/json.h>

#include "spmtier/macro.h"

static inline void json_object_putp(struct json_object **p) {
        if (*p)
                (void) json_object_put(*p);
        *p = NULL;
}
#define _cleanup_json_ _cleanup_(json_object_putp)
