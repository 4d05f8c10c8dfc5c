/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "spmtier/macro.h"
#include "test.h"

static char root[] = "/tmp/test-auth-XXXXXX";

static void fake_proc(uint32_t pid, uint32_t uid, uint32_t gid, const char *groups) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%u", root, pid);
        ASSERT_EQ(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%u/status", root, pid);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fprintf(f, "Name:\tjob\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%u\nPid:\t%u\n"
                   "Uid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\nFDSize:\t64\nGroups:\t%s\n",
                pid, pid, uid, uid, uid, uid, gid, gid, gid, gid, groups);
        ASSERT_EQ(fclose(f), 0);
}

TEST(setup) {
        ASSERT_NOT_NULL(mkdtemp(root));
        fake_proc(100, 1000, 1000, "1000 27 ");
        fake_proc(200, 2000, 2000, "");
        fake_proc(300, 0, 0, "");
        /* A process whose status has no Uid line (a broken fake) proves nothing. */
        char path[256];
        snprintf(path, sizeof(path), "%s/400", root);
        ASSERT_EQ(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/400/status", root);
        FILE *f = fopen(path, "we");
        fputs("Name:\tx\n", f);
        fclose(f);
}

TEST(proc_readers) {
        uint32_t uid;

        ASSERT_OK(auth_proc_uid(root, 100, &uid));
        ASSERT_EQ_U(uid, 1000);
        ASSERT_ERROR(auth_proc_uid(root, 999, &uid), ESRCH);
        ASSERT_ERROR(auth_proc_uid(root, 0, &uid), ESRCH);
        ASSERT_ERROR(auth_proc_uid(root, 400, &uid), EBADMSG);
        ASSERT_EQ(auth_proc_in_group(root, 100, 27), 1);
        ASSERT_EQ(auth_proc_in_group(root, 100, 1000), 1);
        ASSERT_EQ(auth_proc_in_group(root, 100, 28), 0);
        ASSERT_EQ(auth_proc_in_group(root, 200, 27), 0);
        ASSERT_ERROR(auth_proc_in_group(root, 999, 27), ESRCH);
}

TEST(admin_decisions) {
        struct auth_peer p;

        auth_peer_init(0, 0, 300, AUTH_NO_GROUP, root, &p);
        ASSERT_TRUE(p.admin);
        auth_peer_init(1000, 1000, 100, AUTH_NO_GROUP, root, &p);
        ASSERT_FALSE(p.admin);
        ASSERT_ERROR(auth_check_admin(&p), EPERM);
        /* Admin group as a supplementary group of the peer process... */
        auth_peer_init(1000, 1000, 100, 27, root, &p);
        ASSERT_TRUE(p.admin);
        ASSERT_OK(auth_check_admin(&p));
        /* ...or as its primary gid; a peer without it stays a user. */
        auth_peer_init(2000, 27, 200, 27, root, &p);
        ASSERT_TRUE(p.admin);
        auth_peer_init(2000, 2000, 200, 27, root, &p);
        ASSERT_FALSE(p.admin);
        /* A peer whose process vanished is not in any group. */
        auth_peer_init(2000, 2000, 999, 27, root, &p);
        ASSERT_FALSE(p.admin);
}

TEST(user_may_touch_only_own_processes_of_own_jobs) {
        struct auth_peer user, other, admin;

        auth_peer_init(1000, 1000, 100, AUTH_NO_GROUP, root, &user);
        auth_peer_init(2000, 2000, 200, AUTH_NO_GROUP, root, &other);
        auth_peer_init(0, 0, 1, AUTH_NO_GROUP, root, &admin);

        ASSERT_OK(auth_check_job(&user, 1000));
        ASSERT_ERROR(auth_check_job(&user, 2000), EPERM);
        ASSERT_OK(auth_check_job(&admin, 2000));

        ASSERT_OK(auth_check_process(&user, 1000, root, 100));
        /* own job, but the pid is another user's process */
        ASSERT_ERROR(auth_check_process(&user, 1000, root, 200), EPERM);
        ASSERT_ERROR(auth_check_process(&user, 1000, root, 300), EPERM);
        /* own process, other user's job */
        ASSERT_ERROR(auth_check_process(&user, 2000, root, 100), EPERM);
        ASSERT_ERROR(auth_check_process(&other, 1000, root, 100), EPERM);
        ASSERT_ERROR(auth_check_process(&user, 1000, root, 999), ESRCH);
        ASSERT_ERROR(auth_check_process(&user, 1000, root, 400), EPERM);
        /* Admins may name pids that are not live processes (replay, tests). */
        ASSERT_OK(auth_check_process(&admin, 1000, root, 999));
}

TEST(cleanup) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        ASSERT_EQ(system(cmd), 0);
}

TEST_MAIN()
