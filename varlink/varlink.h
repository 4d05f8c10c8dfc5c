/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * libspmvarlink: a small varlink (https://varlink.org) server on sd-event and a blocking
 * client, on json-c. Debian 12's libsystemd (252) has no public sd-varlink, so this is ours.
 *
 * Wire protocol: every message is one JSON object followed by one NUL byte.
 *   call:  {"method": "iface.Method", "parameters": {...}, "more": bool, "oneway": bool,
 *           "upgrade": bool}
 *   reply: {"parameters": {...}, "continues": bool, "error": "iface.ErrorName"}
 * A connection carries one call at a time; replies come back in call order. Calls pipelined
 * behind a call that is still open (a `more` stream, or a call answered later) wait until it
 * ends: a client that needs a stream and other calls at once opens a second connection.
 *
 * Server side:
 *
 *     static int method_ping(struct varlink_call *call, struct json_object *parameters,
 *                            void *userdata) {
 *             struct ping_args { const char *text; } a = {};
 *             static const struct varlink_field fields[] = {
 *                     { "text", VARLINK_STRING, 0, offsetof(struct ping_args, text) },
 *                     {}
 *             };
 *             _cleanup_json_ struct json_object *out = NULL;
 *             int r = varlink_call_dispatch(call, parameters, fields, 0, &a);
 *             if (r < 0)
 *                     return r;              (InvalidParameter was already sent)
 *             out = json_object_new_object();
 *             json_object_object_add(out, "text", json_object_new_string(a.text));
 *             return varlink_call_reply(call, out);
 *     }
 *     static const struct varlink_method methods[] = { { "Ping", method_ping, 0 }, {} };
 *     static const struct varlink_interface iface = {
 *             .name = "io.example.ping", .description = IDL_TEXT, .methods = methods };
 *
 *     varlink_server_new(event, &info, &server);
 *     varlink_server_add_interface(server, &iface, manager);
 *     varlink_server_listen_path(server, "/run/x/io.example.ping", 0666);   (or _listen_fd)
 *
 * Everything runs on the sd-event loop's thread; nothing here is thread-safe. Errors are
 * negative errno values. The server never exits or aborts because of what a peer sent: a
 * peer that breaks the protocol (bad JSON, a message that is not an object, a message over
 * VARLINK_MESSAGE_MAX, a call without "method") is disconnected.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

/* Largest message (JSON text without its NUL) either side accepts; bigger closes the
 * connection. Same as systemd's VARLINK_BUFFER_MAX. */
#define VARLINK_MESSAGE_MAX (16U * 1024U * 1024U)
/* Replies queued for a peer that does not read; beyond this the server disconnects it
 * rather than grow without bound (a stalled Monitor client must not eat the daemon). */
#define VARLINK_OUTPUT_MAX (4U * VARLINK_MESSAGE_MAX)
/* Default connection caps (systemd uses the same numbers). */
#define VARLINK_CONNECTIONS_MAX 4096U
#define VARLINK_CONNECTIONS_PER_UID_MAX 1024U

#define VARLINK_TIMEOUT_INFINITY UINT64_MAX
#define VARLINK_DEFAULT_TIMEOUT_USEC (45ULL * 1000000ULL)

/* Errors of org.varlink.service (fully qualified, as they go on the wire). */
#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
#define VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
/* Sent when a method handler fails with a negative errno and had not replied yet:
 * parameters {"errno": N}. */
#define VARLINK_ERROR_SYSTEM "io.spmtier.varlink.System"

/* Flags of a call (what the caller asked for) and of a sent call (client side). */
enum {
        VARLINK_CALL_MORE = 1U << 0,    /* the caller accepts several replies */
        VARLINK_CALL_ONEWAY = 1U << 1,  /* the caller wants no reply */
};

/* Method table flags. */
enum {
        /* Calls without "more" get org.varlink.service.ExpectedMore (streams like Monitor). */
        VARLINK_METHOD_REQUIRES_MORE = 1U << 0,
};

struct varlink_server;
struct varlink_call;
struct varlink_client;

/*
 * A method handler. `parameters` is always a JSON object (a missing or null "parameters"
 * arrives as {}), borrowed: it stays valid as long as the call does.
 * The handler answers with varlink_call_reply()/_error() now, or takes a reference with
 * varlink_call_ref() and answers later (streams, work finished by a later event).
 * Returns 0, or a negative errno: if the call was not answered yet, the server then sends
 * VARLINK_ERROR_SYSTEM {"errno": -r}; if it was, the return value is ignored (so
 * `if (r < 0) return r;` after varlink_call_dispatch() is right). A call that is neither
 * answered nor referenced when the handler returns gets VARLINK_ERROR_SYSTEM {"errno":
 * ENODATA}: every non-oneway call gets exactly one final reply.
 */
typedef int (*varlink_method_fn)(struct varlink_call *call, struct json_object *parameters,
                                 void *userdata);

struct varlink_method {
        const char *name;       /* short name, "GetStatus" ([A-Z][A-Za-z0-9]*) */
        varlink_method_fn func;
        unsigned flags;         /* VARLINK_METHOD_* */
};

struct varlink_interface {
        const char *name;        /* lowercase reverse-domain, "io.spmtier.daemon" */
        const char *description; /* the IDL text, served by GetInterfaceDescription; it must
                                  * declare "interface <name>" */
        const struct varlink_method *methods; /* terminated by an entry with name == NULL */
};

/* What org.varlink.service.GetInfo reports; strings are copied. */
struct varlink_server_info {
        const char *vendor;
        const char *product;
        const char *version;
        const char *url;
};

/* Log callback: level is a syslog level (LOG_ERR..LOG_DEBUG). Protocol violations by peers
 * are logged at LOG_DEBUG/LOG_INFO; the library never prints by itself. */
typedef void (*varlink_log_fn)(void *userdata, int level, const char *msg);

/* Called once when a connection closes (peer hung up, protocol error, cap, server freed). */
typedef void (*varlink_disconnect_fn)(struct varlink_server *s, uint64_t connection_id,
                                      const struct ucred *peer, void *userdata);

/* [a-z]([-]*[a-z0-9])*(\.[a-z0-9]([-]*[a-z0-9])*)+ : lowercase reverse-domain (varlink-go's
 * IDL parser rejects mixed case, so we refuse it too). */
bool varlink_interface_name_is_valid(const char *name);
/* <interface name>.<Name>: what method and error names look like on the wire. */
bool varlink_qualified_name_is_valid(const char *name);

/* ---- server ------------------------------------------------------------------------- */

/* Creates a server on `event` (referenced). `info` may be NULL (GetInfo then reports empty
 * strings). Returns 0 or -ENOMEM. */
int varlink_server_new(sd_event *event, const struct varlink_server_info *info,
                       struct varlink_server **ret);
/* Closes every listener and connection (held calls become disconnected: their disconnect
 * handlers run and replies return -ENOTCONN) and frees the server. Accepts NULL; returns
 * NULL. */
struct varlink_server *varlink_server_free(struct varlink_server *s);

/* Registers an interface; `iface` and everything it points to must outlive the server
 * (static tables). `userdata` is passed to its handlers. Returns -EINVAL for a bad interface
 * name, method name or a description that does not declare the interface, -EEXIST if it is
 * already registered. org.varlink.service is built in. */
int varlink_server_add_interface(struct varlink_server *s, const struct varlink_interface *iface,
                                 void *userdata);

/* Binds and listens on a unix socket path (an "unix:" prefix is accepted; ";mode=…" suffixes
 * are ignored), replacing a stale socket file there, and chmods it to `mode`. Returns 0 or
 * a negative errno (-ENAMETOOLONG for a path that does not fit sockaddr_un). */
int varlink_server_listen_path(struct varlink_server *s, const char *path, mode_t mode);
/* Adopts a listening socket (socket activation); the server owns it from now on, even on
 * failure. */
int varlink_server_listen_fd(struct varlink_server *s, int fd);
/* Adopts the socket-activated fd named "varlink" (LISTEN_FDNAMES) or, when there is exactly
 * one unnamed fd, that one. Returns 1 if one was adopted, 0 if none was passed, or a
 * negative errno. */
int varlink_server_listen_activation(struct varlink_server *s);
/* Serves an already connected socket (socketpair in tests, or an accepted fd); the server
 * owns it from now on, even on failure. Returns the connection id (> 0), -EUSERS when a
 * connection cap is hit, or another negative errno. */
int64_t varlink_server_add_connection(struct varlink_server *s, int fd);

/* Connection caps: 0 keeps the current value. Applies to new connections only; over the cap
 * an accepted connection is closed at once. */
void varlink_server_set_connections_max(struct varlink_server *s, unsigned total,
                                        unsigned per_uid);
void varlink_server_set_log(struct varlink_server *s, varlink_log_fn fn, void *userdata);
void varlink_server_set_disconnect_handler(struct varlink_server *s, varlink_disconnect_fn fn,
                                           void *userdata);
unsigned varlink_server_n_connections(const struct varlink_server *s);

/* ---- calls (server side) ------------------------------------------------------------- */

struct varlink_call *varlink_call_ref(struct varlink_call *c);
struct varlink_call *varlink_call_unref(struct varlink_call *c); /* accepts NULL, returns NULL */

const char *varlink_call_method(const struct varlink_call *c); /* fully qualified */
unsigned varlink_call_flags(const struct varlink_call *c);     /* VARLINK_CALL_* */
/* SO_PEERCRED of the connection, read when it was accepted. Never NULL. */
const struct ucred *varlink_call_peer(const struct varlink_call *c);
uint64_t varlink_call_connection_id(const struct varlink_call *c);
/* False once the connection is gone. */
bool varlink_call_is_connected(const struct varlink_call *c);

/*
 * Replies. `parameters` is borrowed (NULL means {}); it is serialised at once.
 * varlink_call_reply() and varlink_call_error() are final; varlink_call_reply_continues()
 * sends a reply with "continues": true and needs a call with VARLINK_CALL_MORE.
 * For oneway calls replies are accepted and dropped. Returns 0, or:
 *   -ENOTCONN   the connection is gone (drop your reference),
 *   -EALREADY   the call was already answered,
 *   -EPROTO     reply_continues on a call without "more",
 *   -E2BIG      the message would exceed VARLINK_MESSAGE_MAX (nothing sent; the call stays
 *               open so an error can still be sent),
 *   -ENOBUFS    the peer does not read and its queue passed VARLINK_OUTPUT_MAX (it is
 *               disconnected),
 *   -EINVAL     a bad error name, -ENOMEM.
 */
int varlink_call_reply(struct varlink_call *c, struct json_object *parameters);
int varlink_call_reply_continues(struct varlink_call *c, struct json_object *parameters);
/* `error` must be fully qualified ("io.spmtier.daemon.NoSuchJob"). */
int varlink_call_error(struct varlink_call *c, const char *error, struct json_object *parameters);
/* org.varlink.service.InvalidParameter {"parameter": parameter}. */
int varlink_call_error_invalid_parameter(struct varlink_call *c, const char *parameter);
/* VARLINK_ERROR_SYSTEM {"errno": err}; err positive or negative. */
int varlink_call_error_errno(struct varlink_call *c, int err);

/* Called once if the connection closes while the call is still open and referenced (a
 * stream's subscriber went away). The callee usually unrefs its reference there. */
typedef void (*varlink_call_disconnect_fn)(struct varlink_call *c, void *userdata);
void varlink_call_set_disconnect_handler(struct varlink_call *c, varlink_call_disconnect_fn fn,
                                         void *userdata);

/* ---- parameter validation ------------------------------------------------------------- */

enum varlink_type {
        VARLINK_BOOL,    /* bool */
        VARLINK_INT,     /* int64_t; a JSON integer */
        VARLINK_UINT,    /* uint64_t; a non-negative JSON integer */
        VARLINK_UINT32,  /* uint32_t (pids, uids); 0..UINT32_MAX */
        VARLINK_FLOAT,   /* double; a JSON number (integers accepted) */
        VARLINK_STRING,  /* const char *, borrowed from the parameters */
        VARLINK_OBJECT,  /* struct json_object * (a JSON object), borrowed */
        VARLINK_ARRAY,   /* struct json_object * (a JSON array), borrowed */
        VARLINK_ANY,     /* struct json_object * of any type, borrowed */
};

enum {
        VARLINK_FIELD_OPTIONAL = 1U << 0, /* may be absent or null; the destination is left
                                           * untouched then (set defaults first) */
};

/* One expected field; tables end with an entry whose name is NULL. */
struct varlink_field {
        const char *name;
        enum varlink_type type;
        unsigned flags;     /* VARLINK_FIELD_* */
        size_t offset;      /* where the value goes in the destination struct */
};

enum {
        VARLINK_DISPATCH_ALLOW_UNKNOWN = 1U << 0, /* ignore fields not in the table (default:
                                                   * an unknown field is invalid) */
};

/*
 * Checks `parameters` against `fields` and stores each value at dest + offset. Returns 0; or
 * -EINVAL for a missing required field, a wrong type or an unknown field, with the field's
 * name in *ret_bad_field (borrowed from `fields` or from `parameters`) when ret_bad_field is
 * not NULL. dest may be partly written on failure.
 */
int varlink_validate(struct json_object *parameters, const struct varlink_field *fields,
                     unsigned flags, void *dest, const char **ret_bad_field);
/* varlink_validate(), and on -EINVAL replies org.varlink.service.InvalidParameter
 * {"parameter": name} before returning -EINVAL. */
int varlink_call_dispatch(struct varlink_call *c, struct json_object *parameters,
                          const struct varlink_field *fields, unsigned flags, void *dest);

/* ---- client (blocking) ---------------------------------------------------------------- */

/*
 * Connects to "unix:/path", "unix:@abstract" or a plain path, waiting at most timeout_usec
 * (also the default timeout for every later read). Returns 0, -ETIMEDOUT, or the connect
 * errno (-ENOENT / -ECONNREFUSED when nobody listens).
 */
int varlink_client_connect(const char *address, uint64_t timeout_usec,
                           struct varlink_client **ret);
/* Wraps a connected socket; the client owns it from now on, even on failure. */
int varlink_client_new_fd(int fd, struct varlink_client **ret);
struct varlink_client *varlink_client_free(struct varlink_client *c); /* accepts NULL */
void varlink_client_set_timeout(struct varlink_client *c, uint64_t timeout_usec);
int varlink_client_get_fd(const struct varlink_client *c);

/*
 * Sends one call (`parameters` borrowed; NULL sends none). flags: VARLINK_CALL_MORE,
 * VARLINK_CALL_ONEWAY. Calls may be pipelined; read their replies in order.
 * Returns 0, -E2BIG, -EPIPE/-ECONNRESET, -ETIMEDOUT.
 */
int varlink_client_send(struct varlink_client *c, const char *method,
                        struct json_object *parameters, unsigned flags);
/*
 * Reads the next reply. *ret_parameters gets a new reference ({} when the reply has none;
 * the caller puts it); *ret_error the error name or NULL on success (valid until the next
 * read/call on this client). Either pointer may be NULL. Returns 1 when more replies of the
 * same call follow ("continues": true), 0 for the last reply, or: -ETIMEDOUT, -EAGAIN (timeout
 * 0 and no complete reply yet), -ECONNRESET (peer closed), -EBADMSG (not a valid reply),
 * -E2BIG (over VARLINK_MESSAGE_MAX). After a negative return other than -EAGAIN/-ETIMEDOUT
 * the client is unusable.
 */
int varlink_client_read(struct varlink_client *c, struct json_object **ret_parameters,
                        const char **ret_error);
/*
 * send + read for a plain call. Returns 0 when a reply arrived (check *ret_error: a varlink
 * error reply is a successful exchange), or a negative errno as above; -EBADMSG if the server
 * answered with "continues".
 */
int varlink_client_call(struct varlink_client *c, const char *method,
                        struct json_object *parameters, struct json_object **ret_parameters,
                        const char **ret_error);

static inline void varlink_server_freep(struct varlink_server **p) {
        if (*p)
                *p = varlink_server_free(*p);
}
static inline void varlink_call_unrefp(struct varlink_call **p) {
        if (*p)
                *p = varlink_call_unref(*p);
}
static inline void varlink_client_freep(struct varlink_client **p) {
        if (*p)
                *p = varlink_client_free(*p);
}
