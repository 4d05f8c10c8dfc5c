/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * org.varlink.certification on libspmvarlink: the service the varlink project uses to
 * certify an implementation (https://varlink.org/Language-Bindings). A reference client
 * (Debian's `varlink-go-certification -client`) walks Start, Test01..Test11, End, feeding
 * each reply into the next call; we check every value it sends, like the reference
 * services do, and additionally check the order of the calls.
 *
 *   varlink-cert-service [--exit-after-end] unix:PATH|PATH
 *
 * With --exit-after-end the service exits after the first End call: status 0 when that
 * client got through every step with correct values, 1 otherwise (so a test learns our
 * side's verdict, not only the client's).
 */

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cert-common.h"

static const char certification_idl[] =
        "# The varlink certification interface: a client calls Start, Test01 ... Test11 and\n"
        "# End in this order, passing what each reply returned into the next call.\n"
        "interface org.varlink.certification\n"
        "\n"
        "type Interface (\n"
        "  foo: ?[]?[string](foo, bar, baz),\n"
        "  anon: (foo: bool, bar: bool)\n"
        ")\n"
        "\n"
        "type MyType (\n"
        "  object: object,\n"
        "  enum: (one, two, three),\n"
        "  struct: (first: int, second: string),\n"
        "  array: []string,\n"
        "  dictionary: [string]string,\n"
        "  stringset: [string](),\n"
        "  nullable: ?string,\n"
        "  nullable_array_struct: ?[](first: int, second: string),\n"
        "  interface: Interface\n"
        ")\n"
        "\n"
        "method Start() -> (client_id: string)\n"
        "\n"
        "method Test01(client_id: string) -> (bool: bool)\n"
        "\n"
        "method Test02(client_id: string, bool: bool) -> (int: int)\n"
        "\n"
        "method Test03(client_id: string, int: int) -> (float: float)\n"
        "\n"
        "method Test04(client_id: string, float: float) -> (string: string)\n"
        "\n"
        "method Test05(client_id: string, string: string) -> (\n"
        "  bool: bool,\n"
        "  int: int,\n"
        "  float: float,\n"
        "  string: string\n"
        ")\n"
        "\n"
        "method Test06(\n"
        "  client_id: string,\n"
        "  bool: bool,\n"
        "  int: int,\n"
        "  float: float,\n"
        "  string: string\n"
        ") -> (\n"
        "  struct: (\n"
        "    bool: bool,\n"
        "    int: int,\n"
        "    float: float,\n"
        "    string: string\n"
        "  )\n"
        ")\n"
        "\n"
        "method Test07(\n"
        "  client_id: string,\n"
        "  struct: (\n"
        "    bool: bool,\n"
        "    int: int,\n"
        "    float: float,\n"
        "    string: string\n"
        "  )\n"
        ") -> (map: [string]string)\n"
        "\n"
        "method Test08(client_id: string, map: [string]string) -> (set: [string]())\n"
        "\n"
        "method Test09(client_id: string, set: [string]()) -> (mytype: MyType)\n"
        "\n"
        "# Replies ten times (\"continues\" on all but the last); needs \"more\".\n"
        "method Test10(client_id: string, mytype: MyType) -> (string: string)\n"
        "\n"
        "# Called with \"oneway\": the ten strings Test10 streamed, in order.\n"
        "method Test11(\n"
        "  client_id: string,\n"
        "  last_more_replies: []string\n"
        ") -> ()\n"
        "\n"
        "method End(client_id: string) -> (all_ok: bool)\n"
        "\n"
        "error ClientIdError ()\n"
        "\n"
        "error CertificationError (wants: object, got: object)\n";

#define CERT_ERROR_CLIENT_ID "org.varlink.certification.ClientIdError"
#define CERT_ERROR "org.varlink.certification.CertificationError"
#define MAX_CLIENTS 64

struct cert_client {
        char id[40];
        int next;          /* the test number expected next: 1..11, 12 = End */
        bool ok;           /* every check so far passed */
        bool used;
};

struct cert {
        struct cert_client clients[MAX_CLIENTS];
        unsigned n_started;
        bool exit_after_end;
        int verdict;       /* exit status once End was called */
        sd_event *event;
};

static struct json_object *parse(const char *s) {
        return json_tokener_parse(s);
}

static int cert_error(struct varlink_call *call, struct cert_client *cl, struct json_object *wants,
                      struct json_object *got) {
        _cleanup_json_ struct json_object *p = json_object_new_object();

        if (cl)
                cl->ok = false;
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "wants", wants ? json_object_get(wants) : json_object_new_object());
        json_object_object_add(p, "got", got ? json_object_get(got) : json_object_new_object());
        fprintf(stderr, "cert-service: %s: certification error\n", varlink_call_method(call));
        return varlink_call_error(call, CERT_ERROR, p);
}

/* Finds the caller's client, checks it is at test `step`, and checks the parameters are
 * exactly `expected` (plus client_id). Returns the client, or NULL after replying. */
static struct cert_client *cert_check(struct cert *cert, struct varlink_call *call,
                                      struct json_object *parameters, int step,
                                      const char *expected) {
        _cleanup_json_ struct json_object *want = NULL, *got = NULL;
        struct json_object *id;
        struct cert_client *cl = NULL;

        if (!json_object_object_get_ex(parameters, "client_id", &id) ||
            !json_object_is_type(id, json_type_string)) {
                (void) varlink_call_error(call, CERT_ERROR_CLIENT_ID, NULL);
                return NULL;
        }
        for (size_t i = 0; i < MAX_CLIENTS; i++)
                if (cert->clients[i].used && strcmp(cert->clients[i].id, json_object_get_string(id)) == 0)
                        cl = &cert->clients[i];
        if (!cl) {
                (void) varlink_call_error(call, CERT_ERROR_CLIENT_ID, NULL);
                return NULL;
        }
        want = parse(expected);
        got = json_object_get(parameters);
        /* Compare everything but client_id: copy the parameters without it. */
        _cleanup_json_ struct json_object *rest = json_object_new_object();
        json_object_object_foreach(parameters, k, v)
                if (strcmp(k, "client_id") != 0)
                        json_object_object_add(rest, k, json_object_get(v));
        if (cl->next != step || !want || !json_same(want, rest)) {
                if (cl->next != step)
                        fprintf(stderr, "cert-service: expected test %d, got %d\n", cl->next, step);
                (void) cert_error(call, cl, want, rest);
                return NULL;
        }
        cl->next = step + 1;
        return cl;
}

static int reply_json(struct varlink_call *call, const char *json) {
        _cleanup_json_ struct json_object *o = parse(json);
        if (!o)
                return -ENOMEM;
        return varlink_call_reply(call, o);
}

static int method_start(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        static const struct varlink_field fields[] = { {} };
        struct cert *cert = userdata;
        struct cert_client *cl = NULL;
        _cleanup_json_ struct json_object *out = NULL;
        int r;

        r = varlink_call_dispatch(call, parameters, fields, 0, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; i < MAX_CLIENTS && !cl; i++)
                if (!cert->clients[i].used)
                        cl = &cert->clients[i];
        if (!cl)
                return -EUSERS;
        *cl = (struct cert_client) { .used = true, .next = 1, .ok = true };
        snprintf(cl->id, sizeof(cl->id), "cert-%u-%d", ++cert->n_started, (int) varlink_call_peer(call)->pid);
        out = json_object_new_object();
        json_object_object_add(out, "client_id", json_object_new_string(cl->id));
        return varlink_call_reply(call, out);
}

#define SIMPLE_TEST(fn, step, in, out)                                                        \
        static int fn(struct varlink_call *call, struct json_object *parameters,              \
                      void *userdata) {                                                       \
                if (!cert_check(userdata, call, parameters, step, in))                        \
                        return 0;                                                             \
                return reply_json(call, out);                                                 \
        }

SIMPLE_TEST(method_test01, 1, "{}", "{\"bool\": true}")
SIMPLE_TEST(method_test02, 2, "{\"bool\": true}", "{\"int\": 1}")
SIMPLE_TEST(method_test03, 3, "{\"int\": 1}", "{\"float\": 1.0}")
SIMPLE_TEST(method_test04, 4, "{\"float\": 1.0}", "{\"string\": \"ping\"}")
SIMPLE_TEST(method_test05, 5, "{\"string\": \"ping\"}", STRUCT6)
SIMPLE_TEST(method_test06, 6, STRUCT6, "{\"struct\": " STRUCT6 "}")
SIMPLE_TEST(method_test07, 7, "{\"struct\": " STRUCT6 "}", "{\"map\": {\"foo\": \"Foo\", \"bar\": \"Bar\"}}")
SIMPLE_TEST(method_test08, 8, "{\"map\": {\"foo\": \"Foo\", \"bar\": \"Bar\"}}",
            "{\"set\": {\"one\": {}, \"two\": {}, \"three\": {}}}")

static int method_test09(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        _cleanup_json_ struct json_object *out = NULL;

        if (!cert_check(userdata, call, parameters, 9,
                        "{\"set\": {\"one\": {}, \"two\": {}, \"three\": {}}}"))
                return 0;
        out = json_object_new_object();
        json_object_object_add(out, "mytype", parse(mytype_json));
        return varlink_call_reply(call, out);
}

static int method_test10(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        _cleanup_free_ char *expected = NULL;
        struct cert_client *cl;

        if (asprintf(&expected, "{\"mytype\": %s}", mytype_json) < 0)
                return -ENOMEM;
        cl = cert_check(userdata, call, parameters, 10, expected);
        if (!cl)
                return 0;
        if (!(varlink_call_flags(call) & VARLINK_CALL_MORE))
                return cert_error(call, cl, NULL, NULL);
        for (int i = 1; i <= 10; i++) {
                _cleanup_json_ struct json_object *o = json_object_new_object();
                char s[32];
                int r;

                snprintf(s, sizeof(s), "Reply number %d", i);
                json_object_object_add(o, "string", json_object_new_string(s));
                r = i < 10 ? varlink_call_reply_continues(call, o) : varlink_call_reply(call, o);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int method_test11(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct cert_client *cl;

        cl = cert_check(userdata, call, parameters, 11,
                        "{\"last_more_replies\": [\"Reply number 1\", \"Reply number 2\","
                        " \"Reply number 3\", \"Reply number 4\", \"Reply number 5\","
                        " \"Reply number 6\", \"Reply number 7\", \"Reply number 8\","
                        " \"Reply number 9\", \"Reply number 10\"]}");
        if (!cl)
                return 0;
        if (!(varlink_call_flags(call) & VARLINK_CALL_ONEWAY)) {
                fprintf(stderr, "cert-service: Test11 was not called oneway\n");
                return cert_error(call, cl, NULL, NULL);
        }
        return varlink_call_reply(call, NULL);   /* dropped: oneway */
}

static int method_end(struct varlink_call *call, struct json_object *parameters, void *userdata) {
        struct cert *cert = userdata;
        _cleanup_json_ struct json_object *out = NULL;
        struct cert_client *cl;
        bool ok;
        int r;

        cl = cert_check(cert, call, parameters, 12, "{}");
        if (!cl) {
                cert->verdict = 1;
                if (cert->exit_after_end)
                        (void) sd_event_exit(cert->event, 0);
                return 0;
        }
        ok = cl->ok;
        cl->used = false;
        out = json_object_new_object();
        json_object_object_add(out, "all_ok", json_object_new_boolean(ok));
        r = varlink_call_reply(call, out);
        cert->verdict = ok && r >= 0 ? 0 : 1;
        fprintf(stderr, "cert-service: End: all_ok=%s\n", ok ? "true" : "false");
        if (cert->exit_after_end)
                (void) sd_event_exit(cert->event, 0);
        return r;
}

static const struct varlink_method cert_methods[] = {
        { "Start", method_start, 0 },
        { "Test01", method_test01, 0 },
        { "Test02", method_test02, 0 },
        { "Test03", method_test03, 0 },
        { "Test04", method_test04, 0 },
        { "Test05", method_test05, 0 },
        { "Test06", method_test06, 0 },
        { "Test07", method_test07, 0 },
        { "Test08", method_test08, 0 },
        { "Test09", method_test09, 0 },
        { "Test10", method_test10, 0 },
        { "Test11", method_test11, 0 },
        { "End", method_end, 0 },
        {}
};

static const struct varlink_interface cert_interface = {
        .name = "org.varlink.certification",
        .description = certification_idl,
        .methods = cert_methods,
};

static void log_stderr(void *userdata, int level, const char *msg) {
        fprintf(stderr, "cert-service: <%d> %s\n", level, msg);
}

int main(int argc, char **argv) {
        static const struct varlink_server_info info = {
                .vendor = "spmtier",
                .product = "varlink certification service",
                .version = "1",
                .url = "https://example.invalid/spmtier",
        };
        _cleanup_(varlink_server_freep) struct varlink_server *server = NULL;
        struct cert cert = { .verdict = 1 };
        const char *address = NULL;
        sigset_t ss;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--exit-after-end") == 0)
                        cert.exit_after_end = true;
                else
                        address = argv[i];
        }
        if (!address) {
                fprintf(stderr, "usage: %s [--exit-after-end] unix:PATH\n", argv[0]);
                return 2;
        }
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigprocmask(SIG_BLOCK, &ss, NULL);

        r = sd_event_default(&cert.event);
        if (r >= 0)
                r = sd_event_add_signal(cert.event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(cert.event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = varlink_server_new(cert.event, &info, &server);
        if (r >= 0)
                r = varlink_server_add_interface(server, &cert_interface, &cert);
        if (r >= 0)
                r = varlink_server_listen_path(server, address, 0600);
        if (r < 0) {
                fprintf(stderr, "cert-service: setup failed: %s\n", strerror(-r));
                return 1;
        }
        if (getenv("CERT_SERVICE_DEBUG"))
                varlink_server_set_log(server, log_stderr, NULL);
        r = sd_event_loop(cert.event);
        server = varlink_server_free(server);
        sd_event_unref(cert.event);
        if (r < 0) {
                fprintf(stderr, "cert-service: event loop failed: %s\n", strerror(-r));
                return 1;
        }
        return cert.exit_after_end ? cert.verdict : 0;
}
