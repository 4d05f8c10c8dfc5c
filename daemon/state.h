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
/* Hints since the last snapshot, one JSON object per line, appended in O(1) so a Hint does
 * not rewrite the whole state; replayed on load, emptied by every snapshot. */
#define STATE_JOURNAL "hints.journal"
#define STATE_VERSION 1

/* Builds the document. Returns 0 or -ENOMEM. */
int state_to_json(const struct registry *r, struct json_object **ret);
/* Fills an empty registry `r` (limits set) from a document. Every field is checked; on a
 * bad document returns -EBADMSG with a description in msg, leaving r empty. Limits are not
 * enforced on load: a lowered MaxJobs must not lose saved jobs. */
int state_from_json(struct json_object *doc, struct registry *r, char *msg, size_t msg_size);

/* Writes <dir>/state.json atomically; `durable` also fsyncs (see write_file_atomic()).
 * Returns 0 or a negative errno. */
int state_save(const struct registry *r, const char *dir, bool durable);
/* Loads <dir>/state.json into the empty registry r, then replays the hint journal. Returns 1
 * (loaded), 0 (no state file: r stays empty), -EBADMSG (corrupt: msg says why, r stays
 * empty) or another negative errno. A torn last journal line (a crash mid-append) is
 * ignored; any other bad line makes the state corrupt. */
int state_load(const char *dir, struct registry *r, char *msg, size_t msg_size);
/* Opens <dir>/hints.journal for appending (created 0600). Returns an fd or a negative errno. */
int state_journal_open(const char *dir);
/* Appends one hint (kind none = a clear) of a job. Returns 0 or a negative errno. */
int state_journal_append(int fd, const struct job_hint *h);
/* Empties the journal after a snapshot made it redundant; `durable` fsyncs. */
int state_journal_reset(int fd, bool durable);

/* Renames a corrupt state file to state.json.corrupt (replacing an older one) so the daemon
 * can start fresh without destroying the evidence. Returns 0 or a negative errno. */
int state_move_aside(const char *dir);
