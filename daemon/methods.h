/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * io.spmtier.daemon over varlink: the method table and its thin handlers (STYLE R15):
 * decode and validate, authorise, one manager call, encode with a build_*() function.
 */

#include <json-c/json.h>

#include "jobs.h"
#include "spmtier/policy.h"
#include "varlink.h"

struct manager;

extern const struct varlink_interface methods_interface;
/* The IDL text (daemon/io.spmtier.daemon.varlink), generated into the build. */
extern const char spmtierd_idl[];

struct json_object *methods_build_move(const struct manager *m, const struct spm_move *mv);
struct json_object *methods_build_job_counters(const struct job_counters *c);
/* A JobSummary of job j, which ended at `now` (realtime usec) for reason `ended`. */
struct json_object *methods_build_job_summary(const struct job *j, const char *ended,
                                              uint64_t now);
