/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the certification service and client both need: the values the protocol walks
 * through, and a JSON comparison tolerant of what an encoder may legitimately change. */

#include <stdbool.h>
#include <string.h>

#include "spmtier/json-util.h"
#include "varlink.h"

/* The reference services' values, as the client must echo them back. */
static const char mytype_json[] _unused_ =
        "{\"object\": {\"method\": \"org.varlink.certification.Test09\","
        "              \"parameters\": {\"map\": {\"foo\": \"Foo\", \"bar\": \"Bar\"}}},"
        " \"enum\": \"two\","
        " \"struct\": {\"first\": 1, \"second\": \"2\"},"
        " \"array\": [\"one\", \"two\", \"three\"],"
        " \"dictionary\": {\"foo\": \"Foo\", \"bar\": \"Bar\"},"
        " \"stringset\": {\"one\": {}, \"two\": {}, \"three\": {}},"
        " \"interface\": {\"foo\": [null, {\"Foo\": \"foo\", \"Bar\": \"bar\"}, null,"
        "                          {\"one\": \"foo\", \"two\": \"bar\"}],"
        "                 \"anon\": {\"foo\": true, \"bar\": false}}}";

#define PI_TEXT "3.141592653589793"
#define STRUCT6 "{\"bool\": false, \"int\": 2, \"float\": " PI_TEXT ", \"string\": \"a lot of string\"}"

/* JSON equality where an absent member equals null and integers equal the same double:
 * what the client's encoder may legitimately change on the way back. */
static inline bool json_same(struct json_object *a, struct json_object *b) {
        enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

        if ((ta == json_type_int || ta == json_type_double) &&
            (tb == json_type_int || tb == json_type_double))
                return ta == json_type_int && tb == json_type_int
                               ? json_object_get_int64(a) == json_object_get_int64(b)
                               : json_object_get_double(a) == json_object_get_double(b);
        if (ta != tb)
                return false;
        switch (ta) {
        case json_type_null:
                return true;
        case json_type_boolean:
                return json_object_get_boolean(a) == json_object_get_boolean(b);
        case json_type_string:
                return strcmp(json_object_get_string(a), json_object_get_string(b)) == 0;
        case json_type_array:
                if (json_object_array_length(a) != json_object_array_length(b))
                        return false;
                for (size_t i = 0; i < json_object_array_length(a); i++)
                        if (!json_same(json_object_array_get_idx(a, i),
                                       json_object_array_get_idx(b, i)))
                                return false;
                return true;
        case json_type_object: {
                json_object_object_foreach(a, ka, va) {
                        struct json_object *vb = NULL;
                        (void) json_object_object_get_ex(b, ka, &vb);
                        if (!json_same(va, vb))
                                return false;
                }
                json_object_object_foreach(b, kb, vb) {
                        struct json_object *in_a = NULL;
                        (void) json_object_object_get_ex(a, kb, &in_a);
                        if (!json_same(in_a, vb))
                                return false;
                }
                return true;
        }
        default:
                return false;
        }
}

