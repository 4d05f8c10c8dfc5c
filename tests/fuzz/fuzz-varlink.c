/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fuzzes libspmvarlink's framing and dispatch from both ends.
 *
 * Server side: the input is written, in chunks whose sizes come from the input itself, into
 * a socketpair a real server (sd-event, an interface with plain, streaming, late-answered,
 * failing and subscribing methods, parameter validation) serves; the loop runs between
 * chunks and replies are read back, then the peer hangs up with calls possibly still open.
 * Client side: the same bytes are fed as "replies" to the blocking client.
 *
 * Input layout: byte 0 picks the chunk size (1..64 or everything); the rest is the stream.
 */

#include <sys/socket.h>

#include "spmtier/json-util.h"
#include "varlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_idl[] =
        "interface io.spmtier.fuzz\n"
        "method Echo(text: string, n: ?int, f: ?float, u: ?int, b: ?bool, o: ?object) -> (text: string)\n"
        "method Stream(count: int) -> (i: int)\n"
        "method Late() -> ()\n"
        "method Fail() -> ()\n"
        "method Subscribe() -> (event: string)\n";

struct fuzz_state {
        struct varlink_call *held[4];
        size_t n_held;
};

static int method_echo(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct args {
                const char *text;
                int64_t n;
                double f;
                uint32_t u;
                bool b;
                struct json_object *o;
        } a = {};
        static const struct varlink_field fields[] = {
                { "text", VARLINK_STRING, 0, offsetof(struct args, text) },
                { "n", VARLINK_INT, VARLINK_FIELD_OPTIONAL, offsetof(struct args, n) },
                { "f", VARLINK_FLOAT, VARLINK_FIELD_OPTIONAL, offsetof(struct args, f) },
                { "u", VARLINK_UINT32, VARLINK_FIELD_OPTIONAL, offsetof(struct args, u) },
                { "b", VARLINK_BOOL, VARLINK_FIELD_OPTIONAL, offsetof(struct args, b) },
                { "o", VARLINK_OBJECT, VARLINK_FIELD_OPTIONAL, offsetof(struct args, o) },
                {}
        };
        _cleanup_json_ struct json_object *out = NULL;
        int r;

        r = varlink_call_dispatch(call, parameters, fields, 0, &a);
        if (r < 0)
                return r;
        out = json_object_new_object();
        json_object_object_add(out, "text", json_object_new_string(a.text));
        if (a.o)
                json_object_object_add(out, "o", json_object_get(a.o));
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
        a.count = a.count < 1 ? 1 : a.count > 8 ? 8 : a.count;
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

static void hold(struct fuzz_state *st, struct varlink_call *call) {
        if (st->n_held < 4)
                st->held[st->n_held++] = varlink_call_ref(call);
}

static int method_late(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        hold(userdata, call);
        return 0;
}

static int method_fail(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        return -EIO;
}

static void on_disconnect(struct varlink_call *call, void *userdata) {
        /* A subscriber went away: the reference stays with the state and is dropped at the
         * end; replying now must fail cleanly. */
        (void) varlink_call_reply_continues(call, NULL);
}

static int method_subscribe(struct varlink_call *call, struct json_object *parameters,
                            void *userdata) {
        varlink_call_set_disconnect_handler(call, on_disconnect, userdata);
        hold(userdata, call);
        return varlink_call_reply_continues(call, NULL);
}

static const struct varlink_method fuzz_methods[] = {
        { "Echo", method_echo, 0 },
        { "Stream", method_stream, VARLINK_METHOD_REQUIRES_MORE },
        { "Late", method_late, 0 },
        { "Fail", method_fail, 0 },
        { "Subscribe", method_subscribe, 0 },
        {}
};

static const struct varlink_interface fuzz_interface = {
        .name = "io.spmtier.fuzz",
        .description = fuzz_idl,
        .methods = fuzz_methods,
};

static void drain(int fd) {
        char buf[65536];
        while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
}

static void turn(sd_event *e) {
        for (int i = 0; i < 4; i++)
                if (sd_event_run(e, 0) <= 0)
                        break;
}

static void fuzz_server(const uint8_t *data, size_t size, size_t chunk) {
        sd_event *e = NULL;
        struct varlink_server *s = NULL;
        struct fuzz_state st = {};
        int sv[2];

        if (sd_event_new(&e) < 0)
                return;
        if (varlink_server_new(e, NULL, &s) < 0 ||
            varlink_server_add_interface(s, &fuzz_interface, &st) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                goto out;
        if (varlink_server_add_connection(s, sv[1]) < 0) {
                close(sv[0]);
                goto out;
        }
        for (size_t off = 0; off < size;) {
                size_t n = MIN(chunk, size - off);
                ssize_t w = send(sv[0], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN)
                        break;   /* the server closed us: fine */
                if (w > 0)
                        off += (size_t) w;
                turn(e);
                drain(sv[0]);
                /* Answer held calls now and then: late replies in the middle of traffic. */
                if (st.n_held > 0 && (off & 3) == 0) {
                        struct varlink_call *c = st.held[--st.n_held];
                        (void) varlink_call_reply(c, NULL);
                        varlink_call_unref(c);
                }
        }
        turn(e);
        drain(sv[0]);
        close(sv[0]);
        turn(e);
out:
        for (size_t i = 0; i < st.n_held; i++)
                varlink_call_unref(st.held[i]);
        varlink_server_free(s);
        sd_event_unref(e);
}

static void fuzz_client(const uint8_t *data, size_t size) {
        struct varlink_client *c = NULL;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return;
        if (varlink_client_new_fd(sv[0], &c) < 0) {
                close(sv[1]);
                return;
        }
        varlink_client_set_timeout(c, 0);
        for (size_t off = 0; off < size;) {
                ssize_t w = send(sv[1], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w <= 0)
                        break;
                off += (size_t) w;
                for (;;) {
                        struct json_object *p = NULL;
                        const char *error = NULL;
                        int r = varlink_client_read(c, &p, &error);
                        json_object_put(p);
                        if (r < 0)
                                break;
                }
        }
        close(sv[1]);
        varlink_client_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t chunk;

        if (size < 1 || size > 1024 * 1024)
                return 0;
        chunk = data[0] >= 64 ? SIZE_MAX : (size_t) data[0] + 1;
        fuzz_server(data + 1, size - 1, chunk);
        fuzz_client(data + 1, size - 1);
        return 0;
}
