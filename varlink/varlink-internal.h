/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Pieces shared by the server and the client side of libspmvarlink; not public API. */

#include <stddef.h>
#include <sys/socket.h>

#include "spmtier/json-util.h"
#include "varlink.h"

/* Wire serialisation: compact, and "/" left alone (json-c escapes it by default, which is
 * valid JSON but makes socket paths unreadable in logs and differs from every other peer). */
#define VARLINK_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* A growable byte buffer with a consumed head: [start, end) holds unread data. */
struct vl_buffer {
        char *data;
        size_t start, end, alloc;
};

void vl_buffer_free(struct vl_buffer *b);
static inline size_t vl_buffer_len(const struct vl_buffer *b) {
        return b->end - b->start;
}
/* Makes room for at least `want` more bytes at the end (compacting first). Returns 0 or
 * -ENOMEM. */
int vl_buffer_reserve(struct vl_buffer *b, size_t want);
/* Appends `len` bytes and one NUL. */
int vl_buffer_append_frame(struct vl_buffer *b, const char *data, size_t len);

/*
 * Finds the next complete frame in `b` (searching from *scan, an offset relative to
 * b->start that remembers how far earlier calls looked). Returns 1 with *ret_frame and *ret_len
 * (the JSON text without its NUL; the NUL is at ret_frame[len]) and advances b->start past
 * the NUL; 0 when no complete frame is buffered; -E2BIG when more than VARLINK_MESSAGE_MAX
 * bytes are buffered without a NUL, or when the frame is longer than that.
 */
int vl_buffer_next_frame(struct vl_buffer *b, size_t *scan, const char **ret_frame,
                         size_t *ret_len);

/*
 * Parses one frame (`len` bytes followed by a NUL) as one JSON object, strictly: no trailing
 * garbage, valid UTF-8, nesting within json-c's default depth. Returns 0 with a new
 * reference, -EBADMSG for anything that is not exactly one JSON object.
 */
int vl_parse_object(const char *frame, size_t len, struct json_object **ret);

struct sockaddr_un;
/* Parses "unix:/path", "unix:@abstract" or a plain path (";mode=…" suffixes ignored) into a
 * sockaddr_un. Returns 0, -EINVAL (empty) or -ENAMETOOLONG. */
int vl_address_to_sockaddr(const char *address, struct sockaddr_un *ret, socklen_t *ret_len);

/* Serialises `o` into a new frame at the end of `b`; -E2BIG over VARLINK_MESSAGE_MAX. */
int vl_append_json(struct vl_buffer *b, struct json_object *o);
