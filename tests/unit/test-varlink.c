/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libspmvarlink through socketpairs: the server runs on an sd-event loop in this thread and
 * the test plays the peer with raw bytes (framing, garbage) or with the blocking client in
 * non-blocking mode (timeout 0), turning the loop between reads.
 */

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "spmtier/json-util.h"
#include "test.h"
#include "varlink.h"

static const char test_idl[] =
        "# A test interface.\n"
        "interface io.spmtier.test\n"
        "\n"
        "method Echo(text: string, n: ?int) -> (text: string, n: int)\n"
        "method Stream(count: int) -> (i: int)\n"
        "method Late() -> ()\n"
        "method Fail() -> ()\n"
        "method Silent() -> ()\n"
        "method Subscribe() -> (event: string)\n"
        "method Unimplemented() -> ()\n"
        "method Huge() -> (text: string)\n"
        "method Path() -> (path: string)\n"
        "method Flood() -> (blob: string)\n";

struct fixture {
        sd_event *event;
        struct varlink_server *server;
        unsigned echo_calls;
        struct varlink_call *held;        /* Late, Subscribe */
        unsigned call_disconnects;
        unsigned server_disconnects;
        int huge_reply_r;
        int flood_r;
        unsigned flood_sent;
};

static int method_echo(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct fixture *f = userdata;
        struct args {
                const char *text;
                int64_t n;
        } a = { .n = 7 };
        static const struct varlink_field fields[] = {
                { "text", VARLINK_STRING, 0, offsetof(struct args, text) },
                { "n", VARLINK_INT, VARLINK_FIELD_OPTIONAL, offsetof(struct args, n) },
                {}
        };
        _cleanup_json_ struct json_object *out = NULL;
        int r;

        f->echo_calls++;
        r = varlink_call_dispatch(call, parameters, fields, 0, &a);
        if (r < 0)
                return r;
        out = json_object_new_object();
        json_object_object_add(out, "text", json_object_new_string(a.text));
        json_object_object_add(out, "n", json_object_new_int64(a.n));
        return varlink_call_reply(call, out);
}

static int method_stream(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct args {
                int64_t count;
        } a = {};
        static const struct varlink_field fields[] = {
                { "count", VARLINK_INT, 0, offsetof(struct args, count) },
                {}
        };
        int r = varlink_call_dispatch(call, parameters, fields, 0, &a);
        if (r < 0)
                return r;
        for (int64_t i = 0; i < a.count; i++) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                json_object_object_add(o, "i", json_object_new_int64(i));
                r = i + 1 < a.count ? varlink_call_reply_continues(call, o)
                                    : varlink_call_reply(call, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int method_late(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct fixture *f = userdata;
        f->held = varlink_call_ref(call);
        return 0;
}

static int method_fail(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        return -ENOENT;
}

static int method_silent(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        return 0;   /* neither answers nor keeps the call */
}

static void on_call_disconnect(struct varlink_call *call, void *userdata) {
        struct fixture *f = userdata;
        f->call_disconnects++;
}

static int method_subscribe(struct varlink_call *call, struct json_object *parameters,
                            void *userdata) {
        struct fixture *f = userdata;
        f->held = varlink_call_ref(call);
        varlink_call_set_disconnect_handler(call, on_call_disconnect, f);
        return 0;
}

static int method_huge(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct fixture *f = userdata;
        _cleanup_json_ struct json_object *o = json_object_new_object();
        _cleanup_free_ char *s = malloc(VARLINK_MESSAGE_MAX + 1);

        memset(s, 'x', VARLINK_MESSAGE_MAX);
        s[VARLINK_MESSAGE_MAX] = '\0';
        json_object_object_add(o, "text", json_object_new_string(s));
        f->huge_reply_r = varlink_call_reply(call, o);
        /* The call is still open after -E2BIG: answer it properly. */
        return varlink_call_error(call, "io.spmtier.test.TooBig", NULL);
}

static int method_path(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        _cleanup_json_ struct json_object *o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string("/run/spmtierd/io.spmtier.daemon"));
        return varlink_call_reply(call, o);
}

/* Streams 1 MiB replies to a peer that does not read, until the server gives up on it. */
static int method_flood(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct fixture *f = userdata;
        _cleanup_free_ char *s = malloc(1024 * 1024 + 1);
        _cleanup_json_ struct json_object *o = json_object_new_object();

        memset(s, 'y', 1024 * 1024);
        s[1024 * 1024] = '\0';
        json_object_object_add(o, "blob", json_object_new_string(s));
        for (f->flood_sent = 0; f->flood_sent < 1000; f->flood_sent++) {
                f->flood_r = varlink_call_reply_continues(call, o);
                if (f->flood_r < 0)
                        break;
        }
        return f->flood_r;
}

static const struct varlink_method test_methods[] = {
        { "Echo", method_echo, 0 },
        { "Stream", method_stream, VARLINK_METHOD_REQUIRES_MORE },
        { "Late", method_late, 0 },
        { "Fail", method_fail, 0 },
        { "Silent", method_silent, 0 },
        { "Subscribe", method_subscribe, VARLINK_METHOD_REQUIRES_MORE },
        { "Unimplemented", NULL, 0 },
        { "Huge", method_huge, 0 },
        { "Path", method_path, 0 },
        { "Flood", method_flood, VARLINK_METHOD_REQUIRES_MORE },
        {}
};

static const struct varlink_interface test_interface = {
        .name = "io.spmtier.test",
        .description = test_idl,
        .methods = test_methods,
};

static void on_server_disconnect(struct varlink_server *s, uint64_t id, const struct ucred *peer,
                                 void *userdata) {
        struct fixture *f = userdata;
        f->server_disconnects++;
}

static void fixture_init(struct fixture *f) {
        static const struct varlink_server_info info = {
                .vendor = "spmtier", .product = "test", .version = "1", .url = "https://x/y",
        };
        *f = (struct fixture) {};
        ASSERT_OK(sd_event_new(&f->event));
        ASSERT_OK(varlink_server_new(f->event, &info, &f->server));
        ASSERT_OK(varlink_server_add_interface(f->server, &test_interface, f));
        varlink_server_set_disconnect_handler(f->server, on_server_disconnect, f);
}

static void fixture_done(struct fixture *f) {
        f->held = varlink_call_unref(f->held);
        f->server = varlink_server_free(f->server);
        f->event = sd_event_unref(f->event);
}

/* A connected pair: returns our end, the server serves the other. */
static int connect_peer(struct fixture *f) {
        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_GT(varlink_server_add_connection(f->server, sv[1]), 0);
        return sv[0];
}

static void turn(struct fixture *f) {
        /* Run everything that is ready, a few rounds (defer sources, then I/O). */
        for (int i = 0; i < 8; i++)
                ASSERT_OK(sd_event_run(f->event, 0));
}

static void send_raw(int fd, const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
                ASSERT_GT(n, 0);
                data += n;
                len -= (size_t) n;
        }
}

static void send_str(int fd, const char *s) {
        send_raw(fd, s, strlen(s) + 1);   /* with the NUL */
}

/* Reads one NUL-terminated message from the raw peer, turning the loop while waiting.
 * Returns NULL if the server closed the connection. Buffers leftovers in a static buffer. */
static char rx[1 << 16];
static size_t rx_len;

static void rx_reset(void) {
        rx_len = 0;
}

static struct json_object *read_msg(struct fixture *f, int fd) {
        for (int spins = 0; spins < 1000; spins++) {
                char *nul = memchr(rx, '\0', rx_len);
                if (nul) {
                        size_t len = (size_t) (nul - rx);
                        struct json_object *o = json_tokener_parse(rx);
                        memmove(rx, nul + 1, rx_len - len - 1);
                        rx_len -= len + 1;
                        ASSERT_NOT_NULL(o);
                        return o;
                }
                turn(f);
                ssize_t n = recv(fd, rx + rx_len, sizeof(rx) - rx_len, MSG_DONTWAIT);
                if (n == 0)
                        return NULL;
                if (n < 0) {
                        ASSERT_TRUE(errno == EAGAIN);
                        continue;
                }
                rx_len += (size_t) n;
        }
        test_fail(__FILE__, __LINE__, "no reply");
        return NULL;
}

/* True if the server closed our connection (after turning the loop). */
static bool peer_closed(struct fixture *f, int fd) {
        char b[4096];
        for (int spins = 0; spins < 100; spins++) {
                turn(f);
                ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
                if (n == 0)
                        return true;
                if (n < 0 && errno == ECONNRESET)
                        return true;
                if (n < 0 && errno == EAGAIN)
                        continue;
        }
        return false;
}

static bool nothing_pending(struct fixture *f, int fd) {
        char b[16];
        turn(f);
        return rx_len == 0 && recv(fd, b, sizeof(b), MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

static const char *get_str(struct json_object *o, const char *path1, const char *path2) {
        struct json_object *v = o;
        if (!json_object_object_get_ex(v, path1, &v))
                return NULL;
        if (path2 && !json_object_object_get_ex(v, path2, &v))
                return NULL;
        return json_object_get_string(v);
}

static int64_t get_int(struct json_object *o, const char *p1, const char *p2) {
        struct json_object *v = o;
        ASSERT_TRUE(json_object_object_get_ex(v, p1, &v));
        if (p2)
                ASSERT_TRUE(json_object_object_get_ex(v, p2, &v));
        return json_object_get_int64(v);
}

static bool has_key(struct json_object *o, const char *k) {
        return json_object_object_get_ex(o, k, NULL);
}

/* Sends one call and checks the reply is the error `error` with `key` = `value`. */
static void expect_error(struct fixture *f, int fd, const char *call, const char *error,
                         const char *key, const char *value) {
        _cleanup_json_ struct json_object *r = NULL;
        send_str(fd, call);
        r = read_msg(f, fd);
        ASSERT_NOT_NULL(r);
        ASSERT_STREQ(get_str(r, "error", NULL), error);
        if (key)
                ASSERT_STREQ(get_str(r, "parameters", key), value);
}

/* ---- pure parts ------------------------------------------------------------------------ */

TEST(interface_names) {
        static const struct {
                const char *name;
                bool valid;
        } cases[] = {
                { "io.spmtier.daemon", true },
                { "org.varlink.service", true },
                { "org.example.ftl", true },
                { "a.b", true },
                { "a-b.c-d", true },
                { "a--b.c1", true },
                { "io.systemd.Resolve", false },   /* mixed case: varlink-go refuses it */
                { "io", false },
                { "io.", false },
                { ".io.x", false },
                { "io..x", false },
                { "1o.x", false },
                { "io-.x", false },
                { "io.x-", false },
                { "io.x_y", false },
                { "", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (varlink_interface_name_is_valid(cases[i].name) != cases[i].valid)
                        test_fail(__FILE__, __LINE__, "%s", cases[i].name);
                test_assertions++;
        }
        ASSERT_FALSE(varlink_interface_name_is_valid(NULL));
        ASSERT_TRUE(varlink_qualified_name_is_valid("io.spmtier.daemon.GetStatus"));
        ASSERT_TRUE(varlink_qualified_name_is_valid("org.varlink.service.InvalidParameter"));
        ASSERT_FALSE(varlink_qualified_name_is_valid("io.spmtier.daemon.getStatus"));
        ASSERT_FALSE(varlink_qualified_name_is_valid("io.spmtier.daemon."));
        ASSERT_FALSE(varlink_qualified_name_is_valid("GetStatus"));
        ASSERT_FALSE(varlink_qualified_name_is_valid("io.GetStatus"));
        ASSERT_FALSE(varlink_qualified_name_is_valid("io.spmtier.daemon.Get_Status"));
}

TEST(validate_types) {
        struct args {
                bool b;
                int64_t i;
                uint64_t u;
                uint32_t u32;
                double d;
                const char *s;
                struct json_object *o, *a, *any;
        } a;
        static const struct varlink_field fields[] = {
                { "b", VARLINK_BOOL, 0, offsetof(struct args, b) },
                { "i", VARLINK_INT, 0, offsetof(struct args, i) },
                { "u", VARLINK_UINT, 0, offsetof(struct args, u) },
                { "u32", VARLINK_UINT32, 0, offsetof(struct args, u32) },
                { "d", VARLINK_FLOAT, 0, offsetof(struct args, d) },
                { "s", VARLINK_STRING, 0, offsetof(struct args, s) },
                { "o", VARLINK_OBJECT, VARLINK_FIELD_OPTIONAL, offsetof(struct args, o) },
                { "a", VARLINK_ARRAY, VARLINK_FIELD_OPTIONAL, offsetof(struct args, a) },
                { "any", VARLINK_ANY, VARLINK_FIELD_OPTIONAL, offsetof(struct args, any) },
                {}
        };
        static const char good[] =
                "{\"b\": true, \"i\": -9223372036854775808, \"u\": 18446744073709551615,"
                " \"u32\": 4294967295, \"d\": 3, \"s\": \"/x\", \"o\": {}, \"a\": [1], \"any\": 1.5}";
        static const struct {
                const char *json;
                const char *bad;    /* NULL: valid */
        } cases[] = {
                { "{\"b\": 1, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\"}", "b" },
                { "{\"b\": true, \"i\": 1.5, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\"}", "i" },
                { "{\"b\": true, \"i\": \"1\", \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\"}", "i" },
                { "{\"b\": true, \"i\": 9223372036854775808, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\"}", "i" },
                { "{\"b\": true, \"i\": 0, \"u\": -1, \"u32\": 0, \"d\": 0, \"s\": \"\"}", "u" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 4294967296, \"d\": 0, \"s\": \"\"}", "u32" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": -1, \"d\": 0, \"s\": \"\"}", "u32" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": \"x\", \"s\": \"\"}", "d" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": 5}", "s" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0}", "s" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": null}", "s" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\", \"o\": []}", "o" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\", \"a\": {}}", "a" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\", \"zz\": 1}", "zz" },
                { "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\", \"o\": null}", NULL },
        };
        _cleanup_json_ struct json_object *g = json_tokener_parse(good);
        const char *bad = NULL;

        memset(&a, 0, sizeof(a));
        ASSERT_OK(varlink_validate(g, fields, 0, &a, &bad));
        ASSERT_TRUE(a.b);
        ASSERT_EQ(a.i, INT64_MIN);
        ASSERT_EQ_U(a.u, UINT64_MAX);
        ASSERT_EQ_U(a.u32, UINT32_MAX);
        ASSERT_NEAR(a.d, 3.0, 0);
        ASSERT_STREQ(a.s, "/x");
        ASSERT_NOT_NULL(a.o);
        ASSERT_EQ(json_object_array_length(a.a), 1);
        ASSERT_NEAR(json_object_get_double(a.any), 1.5, 0);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ struct json_object *p = json_tokener_parse(cases[i].json);
                ASSERT_NOT_NULL(p);
                bad = NULL;
                int r = varlink_validate(p, fields, 0, &a, &bad);
                if (!cases[i].bad) {
                        ASSERT_OK(r);
                        continue;
                }
                ASSERT_ERROR(r, EINVAL);
                ASSERT_STREQ(bad, cases[i].bad);
        }
        /* Unknown fields pass when the caller allows them. */
        {
                _cleanup_json_ struct json_object *p = json_tokener_parse(
                        "{\"b\": true, \"i\": 0, \"u\": 0, \"u32\": 0, \"d\": 0, \"s\": \"\", \"zz\": 1}");
                ASSERT_OK(varlink_validate(p, fields, VARLINK_DISPATCH_ALLOW_UNKNOWN, &a, NULL));
        }
}

TEST(add_interface_checks) {
        struct fixture f;
        static const struct varlink_method m[] = { { "Ping", method_fail, 0 }, {} };
        static const struct varlink_method missing[] = { { "Pong", method_fail, 0 }, {} };
        static const struct varlink_method prefix[] = { { "Pin", method_fail, 0 }, {} };
        struct varlink_interface ok = { "io.example.ping", "interface io.example.ping\nmethod Ping() -> ()\n", m };
        struct varlink_interface upper = { "io.example.Ping", "interface io.example.Ping\nmethod Ping() -> ()\n", m };
        struct varlink_interface wrong_decl = { "io.example.pong", "interface io.example.ping\nmethod Ping() -> ()\n", m };
        struct varlink_interface undeclared = { "io.example.x", "interface io.example.x\nmethod Ping() -> ()\n", missing };
        struct varlink_interface partial = { "io.example.y", "interface io.example.y\nmethod Ping() -> ()\n", prefix };

        fixture_init(&f);
        ASSERT_OK(varlink_server_add_interface(f.server, &ok, NULL));
        ASSERT_ERROR(varlink_server_add_interface(f.server, &ok, NULL), EEXIST);
        ASSERT_ERROR(varlink_server_add_interface(f.server, &upper, NULL), EINVAL);
        ASSERT_ERROR(varlink_server_add_interface(f.server, &wrong_decl, NULL), EINVAL);
        ASSERT_ERROR(varlink_server_add_interface(f.server, &undeclared, NULL), EINVAL);
        ASSERT_ERROR(varlink_server_add_interface(f.server, &partial, NULL), EINVAL);
        fixture_done(&f);
}

/* ---- wire ------------------------------------------------------------------------------ */

TEST(split_at_every_byte) {
        static const char calls[] =
                "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"h\\u00e9llo\",\"n\":-3}}\0"
                "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"two\"}}";
        size_t total = sizeof(calls);   /* includes the final NUL */
        struct fixture f;

        fixture_init(&f);
        for (size_t k = 0; k <= total; k++) {
                _cleanup_json_ struct json_object *r1 = NULL, *r2 = NULL;
                int fd = connect_peer(&f);

                rx_reset();
                send_raw(fd, calls, k);
                turn(&f);
                send_raw(fd, calls + k, total - k);
                r1 = read_msg(&f, fd);
                r2 = read_msg(&f, fd);
                ASSERT_STREQ(get_str(r1, "parameters", "text"), "h\xc3\xa9llo");
                ASSERT_EQ(get_int(r1, "parameters", "n"), -3);
                ASSERT_STREQ(get_str(r2, "parameters", "text"), "two");
                ASSERT_EQ(get_int(r2, "parameters", "n"), 7);
                ASSERT_FALSE(has_key(r1, "continues"));
                ASSERT_FALSE(has_key(r1, "error"));
                close(fd);
                turn(&f);
        }
        ASSERT_EQ(f.echo_calls, 2 * (total + 1));
        ASSERT_EQ(varlink_server_n_connections(f.server), 0);
        fixture_done(&f);
}

TEST(several_messages_in_one_write) {
        struct fixture f;
        char buf[4096];
        size_t len = 0;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        for (int i = 0; i < 20; i++)
                len += (size_t) snprintf(buf + len, sizeof(buf) - len,
                                         "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"m%d\"}}", i) + 1;
        send_raw(fd, buf, len);
        for (int i = 0; i < 20; i++) {
                _cleanup_json_ struct json_object *r = read_msg(&f, fd);
                char want[16];
                snprintf(want, sizeof(want), "m%d", i);
                ASSERT_STREQ(get_str(r, "parameters", "text"), want);   /* in call order */
        }
        ASSERT_TRUE(nothing_pending(&f, fd));
        close(fd);
        fixture_done(&f);
}

TEST(oversize_message_closes) {
        struct fixture f;
        char chunk[65536];
        size_t sent = 0;

        fixture_init(&f);
        int fd = connect_peer(&f);
        int other = connect_peer(&f);
        memset(chunk, ' ', sizeof(chunk));
        chunk[0] = '{';
        /* Past 16 MiB without a NUL: the server must give up on us, whatever follows. */
        while (sent <= VARLINK_MESSAGE_MAX + sizeof(chunk)) {
                ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EPIPE || errno == ECONNRESET)
                                break;
                        ASSERT_TRUE(errno == EAGAIN);
                        turn(&f);
                        continue;
                }
                sent += (size_t) n;
                chunk[0] = ' ';
        }
        ASSERT_TRUE(peer_closed(&f, fd));
        ASSERT_EQ(varlink_server_n_connections(f.server), 1);
        /* Everybody else is still served. */
        rx_reset();
        _cleanup_json_ struct json_object *r = NULL;
        send_str(other, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"alive\"}}");
        r = read_msg(&f, other);
        ASSERT_STREQ(get_str(r, "parameters", "text"), "alive");
        close(fd);
        close(other);
        fixture_done(&f);
}

TEST(bad_messages_close) {
        static const char *bad[] = {
                "{bad",
                "[1,2]",
                "\"str\"",
                "42",
                "",
                "{\"method\":\"io.spmtier.test.Echo\"} x",
                "{\"method\":\"io.spmtier.test.Echo\"}{}",
                "{'method':'io.spmtier.test.Echo'}",
                "{\"parameters\":{}}",                                     /* no method */
                "{\"method\":5}",
                "{\"method\":\"io.spmtier.test.Echo\",\"more\":\"yes\"}",
                "{\"method\":\"io.spmtier.test.Echo\",\"oneway\":true,\"more\":true}",
                "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"\xff\xfe\"}}",
        };
        struct fixture f;

        fixture_init(&f);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int fd = connect_peer(&f);
                send_str(fd, bad[i]);
                if (!peer_closed(&f, fd))
                        test_fail(__FILE__, __LINE__, "not closed after: %s", bad[i]);
                test_assertions++;
                close(fd);
        }
        ASSERT_EQ(varlink_server_n_connections(f.server), 0);
        ASSERT_EQ(f.server_disconnects, ELEMENTSOF(bad));
        ASSERT_EQ(f.echo_calls, 0);
        /* Whitespace around the object is fine. */
        int fd = connect_peer(&f);
        _cleanup_json_ struct json_object *r = NULL;
        rx_reset();
        send_str(fd, " \n{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"ws\"}}\n ");
        r = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r, "parameters", "text"), "ws");
        close(fd);
        fixture_done(&f);
}

TEST(service_errors) {
        struct fixture f;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        expect_error(&f, fd, "{\"method\":\"io.spmtier.nosuch.Foo\"}", VARLINK_ERROR_INTERFACE_NOT_FOUND,
                     "interface", "io.spmtier.nosuch");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.NoSuch\"}", VARLINK_ERROR_METHOD_NOT_FOUND,
                     "method", "io.spmtier.test.NoSuch");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.noSuch\"}", VARLINK_ERROR_METHOD_NOT_FOUND,
                     "method", "io.spmtier.test.noSuch");
        expect_error(&f, fd, "{\"method\":\"Echo\"}", VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", "Echo");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Unimplemented\"}",
                     VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, "method", "io.spmtier.test.Unimplemented");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":1}}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "text");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{}}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "text");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"a\",\"n\":\"1\"}}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "n");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"a\",\"x\":1}}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "x");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":[1]}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "parameters");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Echo\",\"upgrade\":true,\"parameters\":{\"text\":\"a\"}}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "upgrade");
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Stream\",\"parameters\":{\"count\":2}}",
                     VARLINK_ERROR_EXPECTED_MORE, NULL, NULL);
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Fail\"}", VARLINK_ERROR_SYSTEM, NULL, NULL);
        expect_error(&f, fd, "{\"method\":\"io.spmtier.test.Silent\"}", VARLINK_ERROR_SYSTEM, NULL, NULL);
        expect_error(&f, fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
                             "\"parameters\":{\"interface\":\"io.nope.x\"}}",
                     VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", "io.nope.x");
        expect_error(&f, fd, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{\"x\":1}}",
                     VARLINK_ERROR_INVALID_PARAMETER, "parameter", "x");
        {
                _cleanup_json_ struct json_object *r = NULL;
                send_str(fd, "{\"method\":\"io.spmtier.test.Fail\"}");
                r = read_msg(&f, fd);
                ASSERT_EQ(get_int(r, "parameters", "errno"), ENOENT);
        }
        {
                _cleanup_json_ struct json_object *r = NULL;
                send_str(fd, "{\"method\":\"io.spmtier.test.Silent\"}");
                r = read_msg(&f, fd);
                ASSERT_EQ(get_int(r, "parameters", "errno"), ENODATA);
        }
        /* Unknown top-level keys and null parameters are fine; the connection survived all
         * of the above. */
        {
                _cleanup_json_ struct json_object *r = NULL;
                send_str(fd, "{\"method\":\"io.spmtier.test.Path\",\"parameters\":null,\"io.example\":{}}");
                r = read_msg(&f, fd);
                ASSERT_STREQ(get_str(r, "parameters", "path"), "/run/spmtierd/io.spmtier.daemon");
        }
        ASSERT_EQ(varlink_server_n_connections(f.server), 1);
        close(fd);
        fixture_done(&f);
}

TEST(no_slash_escaping_on_the_wire) {
        struct fixture f;
        char buf[512];
        ssize_t n = 0;

        fixture_init(&f);
        int fd = connect_peer(&f);
        send_str(fd, "{\"method\":\"io.spmtier.test.Path\"}");
        for (int i = 0; i < 100 && n <= 0; i++) {
                turn(&f);
                n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        }
        ASSERT_GT(n, 0);
        buf[n] = '\0';
        ASSERT_NOT_NULL(strstr(buf, "\"/run/spmtierd/io.spmtier.daemon\""));
        ASSERT_NULL(strstr(buf, "\\/"));
        ASSERT_EQ(buf[n - 1], '\0');
        ASSERT_STREQ(buf, "{\"parameters\":{\"path\":\"/run/spmtierd/io.spmtier.daemon\"}}");
        close(fd);
        fixture_done(&f);
}

TEST(get_info_and_description) {
        struct fixture f;
        _cleanup_json_ struct json_object *info = NULL, *d = NULL, *d2 = NULL;
        struct json_object *list;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"org.varlink.service.GetInfo\"}");
        info = read_msg(&f, fd);
        ASSERT_STREQ(get_str(info, "parameters", "vendor"), "spmtier");
        ASSERT_STREQ(get_str(info, "parameters", "product"), "test");
        ASSERT_STREQ(get_str(info, "parameters", "version"), "1");
        ASSERT_STREQ(get_str(info, "parameters", "url"), "https://x/y");
        ASSERT_TRUE(json_object_object_get_ex(json_object_object_get(info, "parameters"), "interfaces", &list));
        ASSERT_EQ(json_object_array_length(list), 2);
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(list, 0)), "org.varlink.service");
        ASSERT_STREQ(json_object_get_string(json_object_array_get_idx(list, 1)), "io.spmtier.test");

        send_str(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"io.spmtier.test\"}}");
        d = read_msg(&f, fd);
        ASSERT_STREQ(get_str(d, "parameters", "description"), test_idl);
        send_str(fd, "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":\"org.varlink.service\"}}");
        d2 = read_msg(&f, fd);
        ASSERT_NOT_NULL(strstr(get_str(d2, "parameters", "description"), "interface org.varlink.service\n"));
        close(fd);
        fixture_done(&f);
}

TEST(oneway_gets_no_reply) {
        struct fixture f;
        _cleanup_json_ struct json_object *r = NULL;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"oneway\":true,\"parameters\":{\"text\":\"quiet\"}}");
        /* Errors of oneway calls are swallowed too. */
        send_str(fd, "{\"method\":\"io.spmtier.test.NoSuch\",\"oneway\":true}");
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"oneway\":true,\"parameters\":{}}");
        ASSERT_TRUE(nothing_pending(&f, fd));
        ASSERT_EQ(f.echo_calls, 2);
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"loud\"}}");
        r = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r, "parameters", "text"), "loud");
        /* A oneway call followed by an immediate close still runs. */
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"oneway\":true,\"parameters\":{\"text\":\"bye\"}}");
        close(fd);
        turn(&f);
        ASSERT_EQ(f.echo_calls, 4);
        ASSERT_EQ(varlink_server_n_connections(f.server), 0);
        fixture_done(&f);
}

TEST(more_and_continues) {
        struct fixture f;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Stream\",\"more\":true,\"parameters\":{\"count\":5}}");
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"after\"}}");
        for (int i = 0; i < 5; i++) {
                _cleanup_json_ struct json_object *r = read_msg(&f, fd);
                struct json_object *c = NULL;
                ASSERT_EQ(get_int(r, "parameters", "i"), i);
                bool has = json_object_object_get_ex(r, "continues", &c);
                /* continues: true on every reply but the last, which omits it */
                ASSERT_EQ(has, i < 4);
                if (has)
                        ASSERT_TRUE(json_object_get_boolean(c));
        }
        _cleanup_json_ struct json_object *r = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r, "parameters", "text"), "after");
        /* "more" on a plain method: one reply without continues (the spec allows that). */
        _cleanup_json_ struct json_object *r2 = NULL;
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"more\":true,\"parameters\":{\"text\":\"m\"}}");
        r2 = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r2, "parameters", "text"), "m");
        ASSERT_FALSE(has_key(r2, "continues"));
        close(fd);
        fixture_done(&f);
}

TEST(late_reply_keeps_order) {
        struct fixture f;
        _cleanup_json_ struct json_object *r1 = NULL, *r2 = NULL;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Late\"}");
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"queued\"}}");
        turn(&f);
        ASSERT_NOT_NULL(f.held);
        /* The pipelined call waits behind the open one. */
        ASSERT_TRUE(nothing_pending(&f, fd));
        ASSERT_EQ(f.echo_calls, 0);
        ASSERT_STREQ(varlink_call_method(f.held), "io.spmtier.test.Late");
        ASSERT_EQ(varlink_call_peer(f.held)->uid, getuid());
        ASSERT_EQ(varlink_call_peer(f.held)->pid, getpid());
        ASSERT_TRUE(varlink_call_is_connected(f.held));

        ASSERT_OK(varlink_call_reply(f.held, NULL));
        ASSERT_ERROR(varlink_call_reply(f.held, NULL), EALREADY);
        ASSERT_ERROR(varlink_call_reply_continues(f.held, NULL), EALREADY);
        f.held = varlink_call_unref(f.held);
        r1 = read_msg(&f, fd);
        ASSERT_TRUE(has_key(r1, "parameters"));
        ASSERT_FALSE(has_key(r1, "error"));
        r2 = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r2, "parameters", "text"), "queued");
        close(fd);
        fixture_done(&f);
}

TEST(reply_misuse) {
        struct fixture f;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Late\"}");
        turn(&f);
        ASSERT_NOT_NULL(f.held);
        ASSERT_ERROR(varlink_call_reply_continues(f.held, NULL), EPROTO);   /* no "more" */
        ASSERT_ERROR(varlink_call_error(f.held, "NotQualified", NULL), EINVAL);
        ASSERT_ERROR(varlink_call_error(f.held, NULL, NULL), EINVAL);
        ASSERT_OK(varlink_call_error(f.held, "io.spmtier.test.Nope", NULL));
        _cleanup_json_ struct json_object *r = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r, "error", NULL), "io.spmtier.test.Nope");
        ASSERT_EQ(json_object_object_length(json_object_object_get(r, "parameters")), 0);
        close(fd);
        fixture_done(&f);
}

TEST(oversize_reply_refused) {
        struct fixture f;
        _cleanup_json_ struct json_object *r = NULL;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Huge\"}");
        r = read_msg(&f, fd);
        ASSERT_ERROR(f.huge_reply_r, E2BIG);
        ASSERT_STREQ(get_str(r, "error", NULL), "io.spmtier.test.TooBig");
        close(fd);
        fixture_done(&f);
}

TEST(slow_reader_dropped) {
        struct fixture f;

        fixture_init(&f);
        int fd = connect_peer(&f);
        send_str(fd, "{\"method\":\"io.spmtier.test.Flood\",\"more\":true}");
        turn(&f);
        ASSERT_ERROR(f.flood_r, ENOBUFS);
        /* 64 MiB queued (the socket took a little more) and not one reply beyond that. */
        ASSERT_GE(f.flood_sent, VARLINK_OUTPUT_MAX / (1024 * 1024) - 1);
        ASSERT_LE(f.flood_sent, VARLINK_OUTPUT_MAX / (1024 * 1024) + 8);
        ASSERT_EQ(varlink_server_n_connections(f.server), 0);
        ASSERT_EQ(f.server_disconnects, 1);
        close(fd);
        fixture_done(&f);
}

TEST(socket_activation) {
        struct fixture f;
        _cleanup_(varlink_client_freep) struct varlink_client *c = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        char dir[] = "/tmp/test-varlink-XXXXXX", path[64], pid[32];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *error = NULL;
        int fd, r;

        /* What systemd passes: fds from 3 on, our pid and the names; fd 3 is a decoy. Set
         * them up before the event loop takes its own fds. */
        ASSERT_TRUE(fcntl(3, F_GETFD) < 0 && fcntl(4, F_GETFD) < 0);   /* no leaked fds */
        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/sock", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        ASSERT_EQ(fd, 3);
        ASSERT_OK(bind(fd, (struct sockaddr *) &sa, sizeof(sa)));
        ASSERT_OK(listen(fd, 16));
        ASSERT_EQ(dup2(fd, 4), 4);

        fixture_init(&f);
        unsetenv("LISTEN_FDS");
        ASSERT_EQ(varlink_server_listen_activation(f.server), 0);   /* nothing passed */
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "other:varlink", 1);
        ASSERT_EQ(varlink_server_listen_activation(f.server), 1);
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        close(3);   /* the decoy; the server adopted fd 4 */

        ASSERT_OK(varlink_client_connect(path, 1000000, &c));
        varlink_client_set_timeout(c, 0);
        ASSERT_OK(varlink_client_send(c, "io.spmtier.test.Path", NULL, 0));
        for (r = -EAGAIN; r == -EAGAIN;) {
                turn(&f);
                r = varlink_client_read(c, &out, &error);
        }
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(get_str(out, "path", NULL), "/run/spmtierd/io.spmtier.daemon");
        c = varlink_client_free(c);

        /* Over the per-uid cap, an accepted connection is closed at once. */
        _cleanup_(varlink_client_freep) struct varlink_client *c1 = NULL, *c2 = NULL;
        varlink_server_set_connections_max(f.server, 0, 1);
        turn(&f);
        ASSERT_OK(varlink_client_connect(path, 1000000, &c1));
        turn(&f);
        ASSERT_OK(varlink_client_connect(path, 1000000, &c2));
        turn(&f);
        ASSERT_EQ(varlink_server_n_connections(f.server), 1);
        varlink_client_set_timeout(c2, 0);
        ASSERT_ERROR(varlink_client_read(c2, NULL, NULL), ECONNRESET);
        fixture_done(&f);
        unlink(path);
        rmdir(dir);
}

TEST(disconnect_mid_stream) {
        struct fixture f;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Subscribe\",\"more\":true}");
        turn(&f);
        ASSERT_NOT_NULL(f.held);
        ASSERT_TRUE(varlink_call_flags(f.held) & VARLINK_CALL_MORE);
        {
                _cleanup_json_ struct json_object *ev = json_object_new_object();
                json_object_object_add(ev, "event", json_object_new_string("one"));
                ASSERT_OK(varlink_call_reply_continues(f.held, ev));
                _cleanup_json_ struct json_object *r = read_msg(&f, fd);
                ASSERT_STREQ(get_str(r, "parameters", "event"), "one");
                ASSERT_TRUE(has_key(r, "continues"));
        }
        close(fd);
        turn(&f);
        ASSERT_EQ(f.call_disconnects, 1);
        ASSERT_EQ(f.server_disconnects, 1);
        ASSERT_EQ(varlink_server_n_connections(f.server), 0);
        ASSERT_FALSE(varlink_call_is_connected(f.held));
        ASSERT_ERROR(varlink_call_reply_continues(f.held, NULL), ENOTCONN);
        ASSERT_ERROR(varlink_call_reply(f.held, NULL), ENOTCONN);
        /* The peer data stays readable after the disconnect. */
        ASSERT_EQ(varlink_call_peer(f.held)->pid, getpid());
        f.held = varlink_call_unref(f.held);
        fixture_done(&f);
}

TEST(server_free_with_held_call) {
        struct fixture f;

        fixture_init(&f);
        int fd = connect_peer(&f);
        send_str(fd, "{\"method\":\"io.spmtier.test.Subscribe\",\"more\":true}");
        turn(&f);
        ASSERT_NOT_NULL(f.held);
        f.server = varlink_server_free(f.server);
        ASSERT_EQ(f.call_disconnects, 1);
        ASSERT_ERROR(varlink_call_reply(f.held, NULL), ENOTCONN);
        char b[8];
        ASSERT_EQ(recv(fd, b, sizeof(b), MSG_DONTWAIT), 0);   /* closed */
        close(fd);
        fixture_done(&f);
}

TEST(half_close_still_answered) {
        struct fixture f;
        _cleanup_json_ struct json_object *r = NULL;

        fixture_init(&f);
        int fd = connect_peer(&f);
        rx_reset();
        send_str(fd, "{\"method\":\"io.spmtier.test.Echo\",\"parameters\":{\"text\":\"half\"}}");
        ASSERT_OK(shutdown(fd, SHUT_WR));
        r = read_msg(&f, fd);
        ASSERT_STREQ(get_str(r, "parameters", "text"), "half");
        ASSERT_TRUE(peer_closed(&f, fd));
        ASSERT_EQ(varlink_server_n_connections(f.server), 0);
        close(fd);
        fixture_done(&f);
}

TEST(per_uid_cap) {
        struct fixture f;
        int fds[3], sv[2];

        fixture_init(&f);
        varlink_server_set_connections_max(f.server, 0, 2);
        fds[0] = connect_peer(&f);
        fds[1] = connect_peer(&f);
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_ERROR(varlink_server_add_connection(f.server, sv[1]), EUSERS);
        /* The server closed its end: we see EOF. */
        char b[8];
        ASSERT_EQ(recv(sv[0], b, sizeof(b), MSG_DONTWAIT), 0);
        close(sv[0]);
        ASSERT_EQ(varlink_server_n_connections(f.server), 2);
        /* A slot frees up when a connection goes. */
        close(fds[0]);
        turn(&f);
        ASSERT_EQ(varlink_server_n_connections(f.server), 1);
        fds[2] = connect_peer(&f);
        ASSERT_EQ(varlink_server_n_connections(f.server), 2);
        /* The total cap applies too. */
        varlink_server_set_connections_max(f.server, 2, 100);
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_ERROR(varlink_server_add_connection(f.server, sv[1]), EUSERS);
        close(sv[0]);
        close(fds[1]);
        close(fds[2]);
        fixture_done(&f);
}

TEST(listen_path_and_client) {
        struct fixture f;
        char dir[] = "/tmp/test-varlink-XXXXXX", path[128];
        _cleanup_(varlink_client_freep) struct varlink_client *c = NULL;
        _cleanup_json_ struct json_object *in = NULL, *out = NULL;
        const char *error = NULL;
        struct stat st;
        int r;

        ASSERT_NOT_NULL(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/sock", dir);
        fixture_init(&f);
        ASSERT_OK(varlink_server_listen_path(f.server, path, 0660));
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 0777, 0660);
        ASSERT_TRUE(S_ISSOCK(st.st_mode));

        char addr[160];
        snprintf(addr, sizeof(addr), "unix:%s;mode=0660", path);
        ASSERT_OK(varlink_client_connect(addr, 1000000, &c));
        varlink_client_set_timeout(c, 0);   /* we turn the server loop ourselves */
        in = json_tokener_parse("{\"text\":\"via client\"}");
        ASSERT_OK(varlink_client_send(c, "io.spmtier.test.Echo", in, 0));
        for (r = -EAGAIN; r == -EAGAIN;) {
                turn(&f);
                r = varlink_client_read(c, &out, &error);
        }
        ASSERT_EQ(r, 0);
        ASSERT_NULL(error);
        ASSERT_STREQ(get_str(out, "text", NULL), "via client");
        json_object_put(TAKE_PTR(out));

        /* An error reply: r == 0 and the name. */
        ASSERT_OK(varlink_client_send(c, "io.spmtier.test.Nope", NULL, 0));
        for (r = -EAGAIN; r == -EAGAIN;) {
                turn(&f);
                r = varlink_client_read(c, &out, &error);
        }
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(error, VARLINK_ERROR_METHOD_NOT_FOUND);
        json_object_put(TAKE_PTR(out));

        /* A stream: read returns 1 while replies continue. */
        json_object_put(in);
        in = json_tokener_parse("{\"count\":3}");
        ASSERT_OK(varlink_client_send(c, "io.spmtier.test.Stream", in, VARLINK_CALL_MORE));
        for (int i = 0; i < 3; i++) {
                for (r = -EAGAIN; r == -EAGAIN;) {
                        turn(&f);
                        r = varlink_client_read(c, &out, &error);
                }
                ASSERT_EQ(r, i < 2 ? 1 : 0);
                ASSERT_EQ(get_int(out, "i", NULL), i);
                json_object_put(TAKE_PTR(out));
        }
        ASSERT_ERROR(varlink_client_send(c, "io.spmtier.test.Echo", NULL,
                                         VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY), EINVAL);

        /* A second listen on the same path replaces the stale socket. */
        c = varlink_client_free(c);
        fixture_done(&f);
        fixture_init(&f);
        ASSERT_OK(varlink_server_listen_path(f.server, path, 0600));
        fixture_done(&f);
        /* Nobody listening: a clear errno. */
        ASSERT_ERROR(varlink_client_connect(path, 100000, &c), ECONNREFUSED);
        unlink(path);
        rmdir(dir);
        ASSERT_ERROR(varlink_client_connect(path, 100000, &c), ENOENT);
        {
                char longpath[200];
                memset(longpath, 'a', sizeof(longpath) - 1);
                longpath[0] = '/';
                longpath[sizeof(longpath) - 1] = '\0';
                fixture_init(&f);
                ASSERT_ERROR(varlink_server_listen_path(f.server, longpath, 0600), ENAMETOOLONG);
                ASSERT_ERROR(varlink_client_connect(longpath, 100000, &c), ENAMETOOLONG);
                fixture_done(&f);
        }
}

TEST(client_timeout_and_reset) {
        _cleanup_(varlink_client_freep) struct varlink_client *c = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        const char *error = NULL;
        int sv[2];

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        ASSERT_OK(varlink_client_new_fd(sv[0], &c));
        varlink_client_set_timeout(c, 20000);   /* 20 ms */
        ASSERT_ERROR(varlink_client_call(c, "io.x.y.Z", NULL, &out, &error), ETIMEDOUT);
        /* A reply split over two writes, then a continues to a plain call = protocol error. */
        send_raw(sv[1], "{\"parameters\":{\"a\"", 18);
        send_raw(sv[1], ":1}}", 5);
        ASSERT_EQ(varlink_client_read(c, &out, &error), 0);
        ASSERT_EQ(get_int(out, "a", NULL), 1);
        json_object_put(TAKE_PTR(out));
        send_str(sv[1], "{\"parameters\":{},\"continues\":true}");
        ASSERT_ERROR(varlink_client_call(c, "io.x.y.Z", NULL, &out, &error), EBADMSG);
        ASSERT_ERROR(varlink_client_read(c, &out, &error), ENOTCONN);   /* unusable now */
        c = varlink_client_free(c);
        close(sv[1]);

        /* Garbage and EOF. */
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv + 0));
        ASSERT_OK(varlink_client_new_fd(sv[0], &c));
        send_str(sv[1], "{\"error\":\"not qualified\"}");
        ASSERT_ERROR(varlink_client_read(c, &out, &error), EBADMSG);
        c = varlink_client_free(c);
        ASSERT_OK(varlink_client_new_fd(sv[1], &c));   /* the other end: peer now closed */
        ASSERT_ERROR(varlink_client_read(c, &out, &error), ECONNRESET);
}

TEST_MAIN()
