/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Persisted state: the job registry (leases, processes, hints, per-job settings and
 * counters, the node-wide freeze and policy overrides) as one JSON document,
 * <state-dir>/state.json, replaced atomically on every change. Internal jobs are not
 * saved (the daemon makes them again from its config).
 */

#include <json-c/json.h>
#include <stddef.h>

#include "jobs.h"

#define STATE_FILE "state.json"
#define STATE_VERSION 1

/* Builds the document. Returns 0 or -ENOMEM. */
int state_to_json(const struct registry *r, struct json_object **ret);
/* Fills an empty registry `r` (limits set) from a document. Every field is checked; on a
 * bad document returns -EBADMSG with a description in msg, leaving r empty. Limits are not
 * enforced on load: a lowered MaxJobs must not lose saved jobs. */
int state_from_json(struct json_object *doc, struct registry *r, char *msg, size_t msg_size);

/* Writes <dir>/state.json atomically. Returns 0 or a negative errno. */
int state_save(const struct registry *r, const char *dir);
/* Loads <dir>/state.json into the empty registry r. Returns 1 (loaded), 0 (no state file:
 * r stays empty), -EBADMSG (corrupt: msg says why, r stays empty) or another negative errno. */
int state_load(const char *dir, struct registry *r, char *msg, size_t msg_size);
/* Renames a corrupt state file to state.json.corrupt (replacing an older one) so the daemon
 * can start fresh without destroying the evidence. Returns 0 or a negative errno. */
int state_move_aside(const char *dir);
