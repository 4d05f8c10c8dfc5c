/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Authorisation decisions (STYLE R16), from the peer's SO_PEERCRED: root, or a member of the
 * configured admin group, may do everything; any other user may act only on its own jobs,
 * and on processes that are both its own (the real uid in <proc>/<pid>/status) and attached
 * to one of its own jobs. The /proc root is a parameter so tests use a fake tree.
 */

#include <stdbool.h>
#include <stdint.h>

#define AUTH_NO_GROUP (-1)

struct auth_peer {
        uint32_t uid;
        uint32_t gid;
        uint32_t pid;
        bool admin;
};

/* Reads the real uid of pid from <proc_root>/<pid>/status. Returns 0, -ESRCH (no such
 * process), -EBADMSG (no parsable Uid: line) or another negative errno. */
int auth_proc_uid(const char *proc_root, uint32_t pid, uint32_t *ret_uid);

/* True when gid is pid's primary or a supplementary group (<proc>/<pid>/status Gid:, Groups:).
 * Returns 1, 0, or a negative errno. */
int auth_proc_in_group(const char *proc_root, uint32_t pid, uint32_t gid);

/* Fills *ret for a connection's credentials: admin when uid 0, when admin_gid
 * (AUTH_NO_GROUP = none) is the peer's gid, or when the peer process is in that group. */
void auth_peer_init(uint32_t uid, uint32_t gid, uint32_t pid, int64_t admin_gid,
                    const char *proc_root, struct auth_peer *ret);

/* 0 or -EPERM. */
int auth_check_admin(const struct auth_peer *p);
/* May p act on a job owned by job_uid? 0 or -EPERM. */
int auth_check_job(const struct auth_peer *p, uint32_t job_uid);
/* May p act on process pid of a job owned by job_uid? Admins may name any pid (collectors
 * and tests use pids that are not live processes). Others: the job must be theirs and the
 * process must exist and run as their uid. Returns 0, -EPERM or -ESRCH (no such process). */
int auth_check_process(const struct auth_peer *p, uint32_t job_uid, const char *proc_root,
                       uint32_t pid);
