/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Framing, strict parsing, addresses, name rules and parameter validation: the parts of
 * varlink that need no event loop. */

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/un.h>

#include "varlink-internal.h"

void vl_buffer_free(struct vl_buffer *b) {
        free(b->data);
        *b = (struct vl_buffer) {};
}

int vl_buffer_reserve(struct vl_buffer *b, size_t want) {
        size_t len = vl_buffer_len(b), need;

        if (b->alloc - b->end >= want)
                return 0;
        /* Compact before growing: the consumed head is dead space. */
        if (b->start > 0) {
                memmove(b->data, b->data + b->start, len);
                b->start = 0;
                b->end = len;
                if (b->alloc - b->end >= want)
                        return 0;
        }
        if (!ADD_SAFE(&need, len, want))
                return -ENOMEM;
        size_t n = MAX(b->alloc, (size_t) 4096);
        while (n < need) {
                if (!MUL_SAFE(&n, n, 2))
                        return -ENOMEM;
        }
        char *d = realloc(b->data, n);
        if (!d)
                return -ENOMEM;
        b->data = d;
        b->alloc = n;
        return 0;
}

int vl_buffer_append_frame(struct vl_buffer *b, const char *data, size_t len) {
        int r = vl_buffer_reserve(b, len + 1);
        if (r < 0)
                return r;
        memcpy(b->data + b->end, data, len);
        b->data[b->end + len] = '\0';
        b->end += len + 1;
        return 0;
}

int vl_buffer_next_frame(struct vl_buffer *b, size_t *scan, const char **ret_frame,
                         size_t *ret_len) {
        size_t len = vl_buffer_len(b);
        const char *base;

        if (len == 0)
                return 0;
        base = b->data + b->start;
        if (*scan < len) {
                const char *nul = memchr(base + *scan, '\0', len - *scan);
                if (nul) {
                        size_t flen = (size_t) (nul - base);
                        if (flen > VARLINK_MESSAGE_MAX)
                                return -E2BIG;
                        *ret_frame = base;
                        *ret_len = flen;
                        b->start += flen + 1;
                        *scan = 0;
                        if (b->start == b->end)
                                b->start = b->end = 0;
                        return 1;
                }
                *scan = len;
        }
        if (len > VARLINK_MESSAGE_MAX)
                return -E2BIG;
        return 0;
}

int vl_parse_object(const char *frame, size_t len, struct json_object **ret) {
        struct json_tokener *tok;
        struct json_object *o;

        if (len > VARLINK_MESSAGE_MAX)
                return -E2BIG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        /* STRICT refuses trailing characters, single quotes, bare words and the like, which
         * json-c's default mode lets through; passing the NUL as part of the input tells the
         * tokener the text ends there. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, frame, (int) len + 1);
        enum json_tokener_error err = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || err != json_tokener_success || end < len) {
                json_object_put(o);
                return -EBADMSG;
        }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

int vl_append_json(struct vl_buffer *b, struct json_object *o) {
        size_t len = 0;
        const char *s = json_object_to_json_string_length(o, VARLINK_JSON_FLAGS, &len);

        if (!s)
                return -ENOMEM;
        if (len > VARLINK_MESSAGE_MAX)
                return -E2BIG;
        return vl_buffer_append_frame(b, s, len);
}

/* ---- addresses ---------------------------------------------------------------------- */

/* "unix:/path;mode=0666" -> "/path"; "unix:@name" -> abstract. Fills a sockaddr_un. */
int vl_address_to_sockaddr(const char *address, struct sockaddr_un *ret, socklen_t *ret_len) {
        const char *p = address;
        size_t len;

        if (strncmp(p, "unix:", 5) == 0)
                p += 5;
        len = strcspn(p, ";");
        if (len == 0)
                return -EINVAL;
        if (len >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;
        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(ret->sun_path, p, len);
        if (ret->sun_path[0] == '@')
                ret->sun_path[0] = '\0';
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len +
                                (ret->sun_path[0] ? 1 : 0));
        return 0;
}

/* ---- names ------------------------------------------------------------------------------ */

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One dot-separated label: [a-z0-9]([-]*[a-z0-9])*, the first label starting with a letter. */
static size_t label_len(const char *s, bool first) {
        size_t i = 0;

        if (first ? !(s[0] >= 'a' && s[0] <= 'z') : !is_lower_alnum(s[0]))
                return 0;
        for (i = 1; s[i] == '-' || is_lower_alnum(s[i]); i++)
                ;
        if (s[i - 1] == '-')    /* a dash must be followed by a letter or digit */
                return 0;
        return i;
}

bool varlink_interface_name_is_valid(const char *name) {
        size_t n, labels = 0;

        if (!name)
                return false;
        for (const char *p = name;; p++) {
                n = label_len(p, labels == 0);
                if (n == 0)
                        return false;
                labels++;
                p += n;
                if (*p == '\0')
                        break;
                if (*p != '.')
                        return false;
        }
        return labels >= 2;
}

static bool member_name_is_valid(const char *s) {
        if (!(s[0] >= 'A' && s[0] <= 'Z'))
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9')))
                        return false;
        return true;
}

bool varlink_qualified_name_is_valid(const char *name) {
        const char *dot;
        char iface[256];

        if (!name)
                return false;
        dot = strrchr(name, '.');
        if (!dot || (size_t) (dot - name) >= sizeof(iface))
                return false;
        memcpy(iface, name, (size_t) (dot - name));
        iface[dot - name] = '\0';
        return varlink_interface_name_is_valid(iface) && member_name_is_valid(dot + 1);
}

/* ---- parameter validation ------------------------------------------------------------ */

static int field_store(const struct varlink_field *f, struct json_object *v, void *dest) {
        char *p = (char *) dest + f->offset;
        enum json_type t = json_object_get_type(v);
        int64_t i;
        uint64_t u;

        switch (f->type) {
        case VARLINK_BOOL:
                if (t != json_type_boolean)
                        return -EINVAL;
                *(bool *) p = json_object_get_boolean(v);
                return 0;
        case VARLINK_INT:
                if (t != json_type_int)
                        return -EINVAL;
                i = json_object_get_int64(v);
                /* json-c keeps values above INT64_MAX as uint64 and clamps get_int64(). */
                if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                        return -EINVAL;
                *(int64_t *) p = i;
                return 0;
        case VARLINK_UINT:
        case VARLINK_UINT32:
                if (t != json_type_int || json_object_get_int64(v) < 0)
                        return -EINVAL;
                u = json_object_get_uint64(v);
                if (f->type == VARLINK_UINT32) {
                        if (u > UINT32_MAX)
                                return -EINVAL;
                        *(uint32_t *) p = (uint32_t) u;
                } else
                        *(uint64_t *) p = u;
                return 0;
        case VARLINK_FLOAT:
                if (t != json_type_double && t != json_type_int)
                        return -EINVAL;
                *(double *) p = json_object_get_double(v);
                return 0;
        case VARLINK_STRING:
                if (t != json_type_string)
                        return -EINVAL;
                *(const char **) p = json_object_get_string(v);
                return 0;
        case VARLINK_OBJECT:
                if (t != json_type_object)
                        return -EINVAL;
                *(struct json_object **) p = v;
                return 0;
        case VARLINK_ARRAY:
                if (t != json_type_array)
                        return -EINVAL;
                *(struct json_object **) p = v;
                return 0;
        case VARLINK_ANY:
                *(struct json_object **) p = v;
                return 0;
        }
        return -EINVAL;
}

int varlink_validate(struct json_object *parameters, const struct varlink_field *fields,
                     unsigned flags, void *dest, const char **ret_bad_field) {
        const char *bad = NULL;

        if (parameters && !json_object_is_type(parameters, json_type_object)) {
                bad = "parameters";
                goto invalid;
        }
        for (const struct varlink_field *f = fields; f->name; f++) {
                struct json_object *v = NULL;

                if (parameters)
                        (void) json_object_object_get_ex(parameters, f->name, &v);
                if (!v) {   /* absent, or JSON null */
                        if (f->flags & VARLINK_FIELD_OPTIONAL)
                                continue;
                        bad = f->name;
                        goto invalid;
                }
                if (field_store(f, v, dest) < 0) {
                        bad = f->name;
                        goto invalid;
                }
        }
        if (parameters && !(flags & VARLINK_DISPATCH_ALLOW_UNKNOWN)) {
                json_object_object_foreach(parameters, key, val) {
                        const struct varlink_field *f;
                        (void) val;
                        for (f = fields; f->name; f++)
                                if (strcmp(f->name, key) == 0)
                                        break;
                        if (!f->name) {
                                bad = key;
                                goto invalid;
                        }
                }
        }
        return 0;

invalid:
        if (ret_bad_field)
                *ret_bad_field = bad;
        return -EINVAL;
}
