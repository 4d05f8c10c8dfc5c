/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The certification walk from the client side, on libspmvarlink's blocking client, against
 * a reference server (`varlink-go-certification -varlink unix:PATH`): Start, Test01..Test09
 * (each call's parameters are the previous reply plus client_id), Test10 with "more" (ten
 * replies), Test11 oneway, End. Every reply is compared with what the protocol defines.
 * Also GetInfo, GetInterfaceDescription and an unknown method, to read a reference
 * server's service interface and error replies.
 *
 *   varlink-cert-client unix:PATH      exit status 0 = every step matched
 */

#include <stdio.h>

#include "cert-common.h"

static int failures;

#define CHECK(cond, ...)                                                                  \
        do {                                                                              \
                if (!(cond)) {                                                            \
                        fprintf(stderr, "cert-client: FAIL: " __VA_ARGS__);               \
                        fputc('\n', stderr);                                              \
                        failures++;                                                       \
                }                                                                         \
        } while (0)

/* Calls `method` with `parameters` + client_id and checks the reply equals `expected`.
 * (NULL: any reply). Returns the reply parameters (a new reference) or NULL. */
static struct json_object *step(struct varlink_client *c, const char *method,
                                struct json_object *parameters, const char *client_id,
                                const char *expected) {
        _cleanup_json_ struct json_object *in = json_object_new_object(), *want = NULL;
        struct json_object *out = NULL;
        const char *error = NULL;
        int r;

        if (parameters) {
                json_object_object_foreach(parameters, k, v)
                        json_object_object_add(in, k, json_object_get(v));
        }
        if (client_id)
                json_object_object_add(in, "client_id", json_object_new_string(client_id));
        r = varlink_client_call(c, method, in, &out, &error);
        if (r < 0) {
                CHECK(false, "%s: transport error %s", method, strerror(-r));
                return NULL;
        }
        if (error) {
                CHECK(false, "%s: error %s %s", method, error,
                      json_object_to_json_string(out));
                json_object_put(out);
                return NULL;
        }
        want = expected ? json_tokener_parse(expected) : NULL;
        CHECK(!expected || (want && json_same(want, out)), "%s: got %s, want %s", method,
              json_object_to_json_string(out), expected);
        printf("%s: %s\n", method, json_object_to_json_string_ext(out, JSON_C_TO_STRING_NOSLASHESCAPE));
        return out;
}

static void check_service(struct varlink_client *c) {
        _cleanup_json_ struct json_object *out = NULL, *in = NULL, *desc = NULL;
        struct json_object *v;
        const char *error = NULL;
        int r;

        r = varlink_client_call(c, "org.varlink.service.GetInfo", NULL, &out, &error);
        CHECK(r == 0 && !error, "GetInfo failed: %d %s", r, error ? error : "");
        CHECK(out && json_object_object_get_ex(out, "interfaces", &v) &&
                      json_object_is_type(v, json_type_array),
              "GetInfo: no interfaces list");
        printf("GetInfo: %s\n", out ? json_object_to_json_string(out) : "(none)");

        in = json_tokener_parse("{\"interface\": \"org.varlink.certification\"}");
        r = varlink_client_call(c, "org.varlink.service.GetInterfaceDescription", in, &desc, &error);
        CHECK(r == 0 && !error, "GetInterfaceDescription failed: %d", r);
        CHECK(desc && json_object_object_get_ex(desc, "description", &v) &&
                      strstr(json_object_get_string(v), "interface org.varlink.certification"),
              "GetInterfaceDescription: no description");

        json_object_put(out);
        out = NULL;
        r = varlink_client_call(c, "org.varlink.certification.NoSuchMethod", NULL, &out, &error);
        CHECK(r == 0 && error && strcmp(error, VARLINK_ERROR_METHOD_NOT_FOUND) == 0,
              "unknown method: %d %s", r, error ? error : "(no error)");
        printf("NoSuchMethod: %s %s\n", error ? error : "", out ? json_object_to_json_string(out) : "");
}

int main(int argc, char **argv) {
        _cleanup_(varlink_client_freep) struct varlink_client *c = NULL;
        _cleanup_json_ struct json_object *start = NULL, *p = NULL, *mytype = NULL,
                                          *more = NULL, *in = NULL, *end = NULL;
        struct json_object *v;
        const char *id, *error = NULL;
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s unix:PATH\n", argv[0]);
                return 2;
        }
        r = varlink_client_connect(argv[1], 10 * 1000000ULL, &c);
        if (r < 0) {
                fprintf(stderr, "cert-client: connect %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        check_service(c);

        start = step(c, "org.varlink.certification.Start", NULL, NULL, NULL);
        if (!start || !json_object_object_get_ex(start, "client_id", &v) ||
            !json_object_is_type(v, json_type_string)) {
                fprintf(stderr, "cert-client: Start gave no client_id\n");
                return 1;
        }
        id = json_object_get_string(v);

        static const struct {
                const char *method;
                const char *reply;
        } steps[] = {
                { "org.varlink.certification.Test01", "{\"bool\": true}" },
                { "org.varlink.certification.Test02", "{\"int\": 1}" },
                { "org.varlink.certification.Test03", "{\"float\": 1.0}" },
                { "org.varlink.certification.Test04", "{\"string\": \"ping\"}" },
                { "org.varlink.certification.Test05", STRUCT6 },
                { "org.varlink.certification.Test06", "{\"struct\": " STRUCT6 "}" },
                { "org.varlink.certification.Test07", "{\"map\": {\"foo\": \"Foo\", \"bar\": \"Bar\"}}" },
                { "org.varlink.certification.Test08", "{\"set\": {\"one\": {}, \"two\": {}, \"three\": {}}}" },
        };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                struct json_object *next = step(c, steps[i].method, p, id, steps[i].reply);
                json_object_put(p);
                p = next;
                if (!p)
                        return 1;
        }
        {
                _cleanup_free_ char *want = NULL;
                if (asprintf(&want, "{\"mytype\": %s}", mytype_json) < 0)
                        return 1;
                mytype = step(c, "org.varlink.certification.Test09", p, id, want);
                if (!mytype)
                        return 1;
        }

        /* Test10: a stream of ten replies. */
        in = json_object_get(mytype);
        json_object_object_add(in, "client_id", json_object_new_string(id));
        r = varlink_client_send(c, "org.varlink.certification.Test10", in, VARLINK_CALL_MORE);
        CHECK(r == 0, "Test10 send: %s", strerror(-r));
        more = json_object_new_array();
        for (int n = 1;; n++) {
                _cleanup_json_ struct json_object *out = NULL;
                char want[32];

                r = varlink_client_read(c, &out, &error);
                if (r < 0 || error) {
                        CHECK(false, "Test10 reply %d: %s", n, r < 0 ? strerror(-r) : error);
                        return 1;
                }
                snprintf(want, sizeof(want), "Reply number %d", n);
                CHECK(json_object_object_get_ex(out, "string", &v) &&
                              strcmp(json_object_get_string(v), want) == 0,
                      "Test10 reply %d: %s", n, json_object_to_json_string(out));
                json_object_array_add(more, json_object_get(v));
                if (r == 0) {
                        CHECK(n == 10, "Test10: %d replies, want 10", n);
                        break;
                }
                if (n > 10) {
                        CHECK(false, "Test10: more than 10 replies");
                        return 1;
                }
        }
        printf("Test10: %s\n", json_object_to_json_string(more));

        json_object_put(in);
        in = json_object_new_object();
        json_object_object_add(in, "client_id", json_object_new_string(id));
        json_object_object_add(in, "last_more_replies", json_object_get(more));
        r = varlink_client_send(c, "org.varlink.certification.Test11", in, VARLINK_CALL_ONEWAY);
        CHECK(r == 0, "Test11 send: %s", strerror(-r));

        end = step(c, "org.varlink.certification.End", NULL, id, "{\"all_ok\": true}");
        if (!end)
                return 1;
        printf("%s\n", failures ? "FAILED" : "PASSED");
        return failures ? 1 : 0;
}
