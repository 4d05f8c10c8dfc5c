/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libspmtier-agent end to end on the fake KFD, with this test as the daemon: a varlink server
 * serving io.spmtier.agent on a socket under the fake root. The agent runs in this process
 * (linked, started with spmtier_agent_init()), so moves act on our own memory and we can check
 * residency behind its reports.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <systemd/sd-event.h>

#include "spmtier-agent.h"
#include "spmtier/json-util.h"
#include "spmtier/macro.h"
#include "varlink.h"
#include "fk.h"

static const char CONF[] = "gpus=2\nvram=16M\nmemory=coherent\n";
static char idl[8192]; /* agent/io.spmtier.agent.varlink, the interface under test */

static struct {
        sd_event *event;
        struct varlink_server *server;
        struct varlink_call *stream;
        int connects, reports, set_ranges;
        int64_t connect_pid, last_id, last_status, last_moved, last_prefetch;
        struct json_object *gpus, *ranges;
} d;

static char *region; /* 4 MiB the daemon moves around */

static int m_connect(struct varlink_call *call, struct json_object *params, void *userdata) {
        struct json_object *v;
        d.connects++;
        d.connect_pid = json_object_object_get_ex(params, "pid", &v) ? json_object_get_int64(v) : -1;
        if (d.connect_pid != getpid()) /* a forked child: accept, send nothing */
                return varlink_call_reply_continues(call, NULL);
        json_object_put(d.gpus);
        json_object_put(d.ranges);
        d.gpus = json_object_object_get_ex(params, "gpus", &v) ? json_object_get(v) : NULL;
        d.ranges = json_object_object_get_ex(params, "ranges", &v) ? json_object_get(v) : NULL;
        d.stream = varlink_call_unref(d.stream);
        d.stream = varlink_call_ref(call);
        return varlink_call_reply_continues(call, NULL);
}

static int m_report(struct varlink_call *call, struct json_object *params, void *userdata) {
        struct json_object *v;
        d.reports++;
        d.last_id = json_object_object_get_ex(params, "id", &v) ? json_object_get_int64(v) : -1;
        d.last_status = json_object_object_get_ex(params, "status", &v) ? json_object_get_int64(v) : -999;
        d.last_moved = json_object_object_get_ex(params, "moved_bytes", &v) ? json_object_get_int64(v) : -1;
        d.last_prefetch = json_object_object_get_ex(params, "prefetch", &v) ? json_object_get_int64(v) : -2;
        return varlink_call_reply(call, NULL);
}

static int m_set_ranges(struct varlink_call *call, struct json_object *params, void *userdata) {
        struct json_object *v;
        d.set_ranges++;
        json_object_put(d.ranges);
        d.ranges = json_object_object_get_ex(params, "ranges", &v) ? json_object_get(v) : NULL;
        return varlink_call_reply(call, NULL);
}

static const struct varlink_method methods[] = {
        { "Connect", m_connect, VARLINK_METHOD_REQUIRES_MORE },
        { "Report", m_report, 0 },
        { "SetRanges", m_set_ranges, 0 },
        {},
};
static struct varlink_interface iface = { .name = "io.spmtier.agent", .description = idl, .methods = methods };

static void load_idl(void) {
        char path[600];
        const char *src = getenv("SPMTIER_SOURCE_ROOT");
        snprintf(path, sizeof(path), "%s/agent/io.spmtier.agent.varlink", src ? src : "..");
        FILE *f = fopen(path, "re");
        ASSERT_NOT_NULL(f);
        size_t n = fread(idl, 1, sizeof(idl) - 1, f);
        fclose(f);
        idl[n] = 0;
        ASSERT_GT(n, 100);
}

static void socket_path(char *buf, size_t n) {
        snprintf(buf, n, "%s/daemon.sock", fk_root);
}

static void daemon_start(void) {
        static const struct varlink_server_info info = { "spmtier", "test-agent", "1", "https://x" };
        char path[300];
        socket_path(path, sizeof(path));
        unlink(path);
        if (!d.event) {
                ASSERT_OK(sd_event_new(&d.event));
                load_idl();
        }
        ASSERT_OK(varlink_server_new(d.event, &info, &d.server));
        ASSERT_OK(varlink_server_add_interface(d.server, &iface, NULL));
        ASSERT_OK(varlink_server_listen_path(d.server, path, 0600));
}

static void daemon_stop(void) {
        d.stream = varlink_call_unref(d.stream);
        d.server = varlink_server_free(d.server);
}

/* Turns the daemon's loop until *counter exceeds `than` or 20 s pass. */
static void wait_for(int *counter, int than) {
        for (int i = 0; i < 400 && *counter <= than; i++)
                ASSERT_OK(sd_event_run(d.event, 50000));
        ASSERT_GT(*counter, than);
}

static void command(int64_t id, void *start, uint64_t len, uint32_t to, uint32_t access) {
        _cleanup_json_ struct json_object *p = json_object_new_object(), *c = json_object_new_object();
        json_object_object_add(c, "id", json_object_new_int64(id));
        json_object_object_add(c, "start", json_object_new_int64((int64_t) (uintptr_t) start));
        json_object_object_add(c, "length", json_object_new_int64((int64_t) len));
        json_object_object_add(c, "to_gpu", json_object_new_int64(to));
        json_object_object_add(c, "access_gpu", json_object_new_int64(access));
        json_object_object_add(p, "command", json_object_get(c));
        ASSERT_NOT_NULL(d.stream);
        ASSERT_OK(varlink_call_reply_continues(d.stream, p));
}

static bool ranges_cover(void *p, uint64_t len) {
        for (size_t i = 0; d.ranges && i < json_object_array_length(d.ranges); i++) {
                struct json_object *r = json_object_array_get_idx(d.ranges, i), *s, *l;
                if (!json_object_object_get_ex(r, "start", &s) || !json_object_object_get_ex(r, "length", &l))
                        continue;
                uint64_t a = (uint64_t) json_object_get_int64(s), b = a + (uint64_t) json_object_get_int64(l);
                if (a <= (uintptr_t) p && (uintptr_t) p + len <= b)
                        return true;
        }
        return false;
}

TEST(idle_without_daemon) {
        fk_init(CONF);
        char path[300];
        socket_path(path, sizeof(path));
        setenv("SPMTIER_SOCKET", path, 1);
        setenv("SPMTIER_AGENT_RESCAN_MS", "100", 1);
        region = fk_map(4 * MiB);
        memset(region, 1, 4 * MiB);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        ASSERT_OK(spmtier_agent_init());
        ASSERT_OK(spmtier_agent_init()); /* once per process */
        clock_gettime(CLOCK_MONOTONIC, &b);
        /* init returns at once even though nobody listens; the agent retries on its own. */
        ASSERT_LT((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec), 100000000LL);
        usleep(300000);
}

TEST(connect_move_report) {
        fk_init(CONF);
        daemon_start();
        wait_for(&d.connects, 0);
        ASSERT_EQ(d.connect_pid, getpid());
        ASSERT_NOT_NULL(d.gpus);
        ASSERT_EQ(json_object_array_length(d.gpus), 2);
        ASSERT_EQ(json_object_get_int64(json_object_array_get_idx(d.gpus, 1)), fk_gpu_id(2));
        ASSERT_TRUE(ranges_cover(region, 4 * MiB));

        uint32_t g1 = fk_gpu_id(1);
        command(1, region, 4 * MiB, g1, g1);
        wait_for(&d.reports, 0);
        ASSERT_EQ(d.last_id, 1);
        ASSERT_EQ(d.last_status, 0);
        ASSERT_EQ(d.last_moved, (int64_t) (4 * MiB));
        ASSERT_EQ(d.last_prefetch, g1);
        ASSERT_EQ_U(fk_resident(region, 4 * MiB, 1), 1024);

        command(2, region, 4 * MiB, 0, g1); /* demote */
        wait_for(&d.reports, 1);
        ASSERT_EQ(d.last_status, 0);
        ASSERT_EQ(d.last_moved, (int64_t) (4 * MiB));
        ASSERT_EQ(d.last_prefetch, 0);
        ASSERT_EQ_U(fk_resident(region, 4 * MiB, 0), 1024);

        /* VRAM full: the SET succeeds, the report says nothing moved. */
        int bo = fk.vram_alloc(1, 14 * MiB);
        ASSERT_GT(bo, 0);
        command(3, region, 4 * MiB, g1, g1);
        wait_for(&d.reports, 2);
        ASSERT_EQ(d.last_status, 0);
        ASSERT_EQ(d.last_moved, 0);
        ASSERT_EQ(fk.vram_free(bo), 0);

        /* A bad command is reported, not fatal. */
        command(4, region, 4 * MiB, 0x7777, 0);
        wait_for(&d.reports, 3);
        ASSERT_EQ(d.last_id, 4);
        ASSERT_EQ(d.last_status, -ENODEV);
}

TEST(ranges_follow_munmap) {
        fk_init(CONF);
        int before = d.set_ranges;
        ASSERT_EQ(fk.munmap(region, 4 * MiB), 0);
        wait_for(&d.set_ranges, before);
        ASSERT_FALSE(ranges_cover(region, 4 * MiB));
}

TEST(survives_daemon_restart) {
        fk_init(CONF);
        int before = d.connects;
        daemon_stop();
        usleep(200000);
        daemon_start();
        wait_for(&d.connects, before);
        ASSERT_EQ(d.connect_pid, getpid());
}

TEST(forked_child_gets_its_own_agent) {
        fk_init(CONF);
        int before = d.connects;
        fflush(stdout);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                usleep(3000000);
                _exit(0);
        }
        for (int i = 0; i < 400 && d.connect_pid != pid; i++)
                ASSERT_OK(sd_event_run(d.event, 50000));
        ASSERT_EQ(d.connect_pid, pid);
        ASSERT_GT(d.connects, before);
        kill(pid, SIGKILL);
        ASSERT_EQ(waitpid(pid, NULL, 0), pid);
        daemon_stop();
        json_object_put(d.gpus);
        json_object_put(d.ranges);
        d.event = sd_event_unref(d.event);
}

TEST_MAIN()
