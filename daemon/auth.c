/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "spmtier/macro.h"

static int proc_status_open(const char *proc_root, uint32_t pid, FILE **ret) {
        char path[4096];
        FILE *f;

        if (pid == 0)
                return -ESRCH;
        if ((size_t) snprintf(path, sizeof(path), "%s/%" PRIu32 "/status", proc_root, pid) >=
            sizeof(path))
                return -ENAMETOOLONG;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        *ret = f;
        return 0;
}

int auth_proc_uid(const char *proc_root, uint32_t pid, uint32_t *ret_uid) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[512];
        int r;

        r = proc_status_open(proc_root, pid, &f);
        if (r < 0)
                return r;
        while (fgets(line, sizeof(line), f)) {
                uint32_t uid;
                /* "Uid:\treal\teffective\tsaved\tfs": the real uid owns the process. */
                if (strncmp(line, "Uid:", 4) != 0)
                        continue;
                if (sscanf(line + 4, "%" SCNu32, &uid) != 1)
                        return -EBADMSG;
                *ret_uid = uid;
                return 0;
        }
        return -EBADMSG;
}

int auth_proc_in_group(const char *proc_root, uint32_t pid, uint32_t gid) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[8192];
        int r;

        r = proc_status_open(proc_root, pid, &f);
        if (r < 0)
                return r;
        while (fgets(line, sizeof(line), f)) {
                bool groups = strncmp(line, "Groups:", 7) == 0;
                if (!groups && strncmp(line, "Gid:", 4) != 0)
                        continue;
                char *p = line + (groups ? 7 : 4), *end;
                for (;;) {
                        errno = 0;
                        unsigned long g = strtoul(p, &end, 10);
                        if (end == p || errno != 0)
                                break;
                        if (g == gid)
                                return 1;
                        p = end;
                        if (!groups)
                                break; /* Gid: real gid first; the rest are the same class */
                }
        }
        return 0;
}

void auth_peer_init(uint32_t uid, uint32_t gid, uint32_t pid, int64_t admin_gid,
                    const char *proc_root, struct auth_peer *ret) {
        bool admin = uid == 0;

        if (!admin && admin_gid >= 0)
                admin = gid == (uint32_t) admin_gid ||
                        auth_proc_in_group(proc_root, pid, (uint32_t) admin_gid) > 0;
        *ret = (struct auth_peer) { .uid = uid, .gid = gid, .pid = pid, .admin = admin };
}

int auth_check_admin(const struct auth_peer *p) {
        return p->admin ? 0 : -EPERM;
}

int auth_check_job(const struct auth_peer *p, uint32_t job_uid) {
        return p->admin || p->uid == job_uid ? 0 : -EPERM;
}

int auth_check_process(const struct auth_peer *p, uint32_t job_uid, const char *proc_root,
                       uint32_t pid) {
        uint32_t uid;
        int r;

        if (p->admin)
                return 0;
        if (p->uid != job_uid)
                return -EPERM;
        r = auth_proc_uid(proc_root, pid, &uid);
        if (r == -ESRCH)
                return r;
        if (r < 0)
                return -EPERM; /* unreadable is not proof of ownership */
        return uid == p->uid ? 0 : -EPERM;
}
