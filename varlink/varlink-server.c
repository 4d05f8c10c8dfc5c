/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The varlink server: listeners and connections on sd-event, call dispatch, replies.
 *
 * Lifetimes. A connection is reference counted: the server's list holds one reference while
 * it is open, every call holds one, and event callbacks hold one while they run, so a
 * connection that closes inside a handler (the peer vanished while we wrote) stays valid
 * memory until the last user lets go. The open call of a connection is referenced by the
 * connection until its final reply or the disconnect, which breaks the call <-> connection
 * cycle.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>

#include <systemd/sd-daemon.h>

#include "varlink-internal.h"

struct vl_entry {
        const struct varlink_interface *iface;
        void *userdata;
};

struct vl_listener {
        int fd;
        sd_event_source *source;
};

struct vl_connection {
        unsigned n_ref;
        struct varlink_server *server;  /* NULL once closed */
        struct vl_connection *prev, *next;
        uint64_t id;
        int fd;
        sd_event_source *io, *defer;
        struct ucred peer;
        struct vl_buffer in, out;
        size_t scan;
        struct varlink_call *current;   /* the open call, referenced */
        bool dispatching;               /* inside conn_process(): no defer needed */
        bool read_eof;
        bool dead;
        uint32_t events;                /* what io is armed for */
};

struct varlink_call {
        unsigned n_ref;
        struct vl_connection *conn;     /* referenced */
        char *method;
        struct json_object *parameters;
        unsigned flags;
        bool answered;                  /* final reply (or error) sent */
        varlink_call_disconnect_fn disconnect_fn;
        void *disconnect_userdata;
};

struct varlink_server {
        sd_event *event;
        char *vendor, *product, *version, *url;
        struct vl_entry *entries;
        size_t n_entries;
        struct vl_listener *listeners;
        size_t n_listeners;
        struct vl_connection *connections;
        unsigned n_connections;
        unsigned max_connections, max_per_uid;
        uint64_t next_id;
        varlink_log_fn log_fn;
        void *log_userdata;
        varlink_disconnect_fn disconnect_fn;
        void *disconnect_userdata;
};

static const char service_description[] =
        "# The interface every varlink service provides: who it is and what it speaks.\n"
        "interface org.varlink.service\n"
        "\n"
        "# Vendor, product, version and URL of the service, and the interfaces it implements.\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "# The interface definition text of one interface of the service.\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "# The interface is not implemented by this service.\n"
        "error InterfaceNotFound (interface: string)\n"
        "\n"
        "# The interface has no such method.\n"
        "error MethodNotFound (method: string)\n"
        "\n"
        "# The method is declared but this service does not implement it.\n"
        "error MethodNotImplemented (method: string)\n"
        "\n"
        "# A parameter is missing, has the wrong type or a value out of range.\n"
        "error InvalidParameter (parameter: string)\n"
        "\n"
        "# The caller may not call this method.\n"
        "error PermissionDenied ()\n"
        "\n"
        "# The method streams its replies and must be called with \"more\".\n"
        "error ExpectedMore ()\n";

static void conn_close(struct vl_connection *c, const char *why);
static void conn_process(struct vl_connection *c);
static int conn_update_events(struct vl_connection *c);

_printf_(3, 4)
static void vl_log(struct varlink_server *s, int level, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        if (!s || !s->log_fn)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        s->log_fn(s->log_userdata, level, msg);
}

/* ---- connections ------------------------------------------------------------------------ */

static struct vl_connection *conn_ref(struct vl_connection *c) {
        c->n_ref++;
        return c;
}

static struct vl_connection *conn_unref(struct vl_connection *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->defer);
        safe_close(c->fd);
        vl_buffer_free(&c->in);
        vl_buffer_free(&c->out);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vl_connection *, conn_unref);

/* Writes what is queued. Returns 0 (all or part written), or a negative errno when the peer
 * is gone. */
static int conn_flush(struct vl_connection *c) {
        while (vl_buffer_len(&c->out) > 0) {
                ssize_t n = send(c->fd, c->out.data + c->out.start, vl_buffer_len(&c->out),
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                c->out.start += (size_t) n;
        }
        c->out.start = c->out.end = 0;
        return 0;
}

/* Closes a read-side-shut connection once nothing more can happen on it. */
static bool conn_finished(const struct vl_connection *c) {
        return c->read_eof && !c->current && vl_buffer_len(&c->out) == 0;
}

static int conn_update_events(struct vl_connection *c) {
        uint32_t ev = 0;

        if (c->dead)
                return 0;
        /* Keep reading while no call is open (we need the next one), and while one is open
         * only up to one message's worth: pipelined calls wait, the buffer stays bounded, and
         * EPOLLHUP still tells us when the peer goes away. */
        if (!c->read_eof && (!c->current || vl_buffer_len(&c->in) <= VARLINK_MESSAGE_MAX))
                ev |= EPOLLIN;
        if (vl_buffer_len(&c->out) > 0)
                ev |= EPOLLOUT;
        if (ev == c->events)
                return 0;
        c->events = ev;
        return sd_event_source_set_io_events(c->io, ev);
}

/* Queues one serialised message and tries to send it at once. */
static int conn_send(struct vl_connection *c, struct json_object *msg) {
        size_t before = vl_buffer_len(&c->out);
        int r;

        r = vl_append_json(&c->out, msg);
        if (r < 0)
                return r;
        if (vl_buffer_len(&c->out) > VARLINK_OUTPUT_MAX) {
                conn_close(c, "peer does not read its replies");
                return -ENOBUFS;
        }
        if (before == 0) {
                r = conn_flush(c);
                if (r < 0) {
                        conn_close(c, "write failed");
                        return -ENOTCONN;
                }
        }
        return conn_update_events(c);
}

static void conn_schedule(struct vl_connection *c) {
        if (!c->dead && !c->dispatching)
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

/* ---- calls ------------------------------------------------------------------------------ */

struct varlink_call *varlink_call_ref(struct varlink_call *c) {
        if (c)
                c->n_ref++;
        return c;
}

struct varlink_call *varlink_call_unref(struct varlink_call *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        conn_unref(c->conn);
        free(c->method);
        json_object_put(c->parameters);
        free(c);
        return NULL;
}

const char *varlink_call_method(const struct varlink_call *c) {
        return c->method;
}

unsigned varlink_call_flags(const struct varlink_call *c) {
        return c->flags;
}

const struct ucred *varlink_call_peer(const struct varlink_call *c) {
        return &c->conn->peer;
}

uint64_t varlink_call_connection_id(const struct varlink_call *c) {
        return c->conn->id;
}

bool varlink_call_is_connected(const struct varlink_call *c) {
        return !c->conn->dead;
}

void varlink_call_set_disconnect_handler(struct varlink_call *c, varlink_call_disconnect_fn fn,
                                         void *userdata) {
        c->disconnect_fn = fn;
        c->disconnect_userdata = userdata;
}

/* The call got its final reply: the connection may serve the next one. */
static void call_finish(struct varlink_call *call) {
        struct vl_connection *c = call->conn;

        call->answered = true;
        if (c->current == call) {
                c->current = NULL;
                varlink_call_unref(call);   /* the connection's reference; ours remain */
                if (conn_finished(c))
                        conn_close(c, "peer closed its side");
                else {
                        (void) conn_update_events(c);
                        conn_schedule(c);
                }
        }
}

static int call_send(struct varlink_call *call, const char *error, struct json_object *parameters,
                     bool continues) {
        _cleanup_json_ struct json_object *msg = NULL;
        struct vl_connection *c = call->conn;
        int r;

        if (call->answered)
                return -EALREADY;
        if (continues && !(call->flags & VARLINK_CALL_MORE))
                return -EPROTO;
        if (error && !varlink_qualified_name_is_valid(error))
                return -EINVAL;
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;
        if (call->flags & VARLINK_CALL_ONEWAY) {
                if (!continues)
                        call->answered = true;
                return 0;
        }
        if (c->dead)
                return -ENOTCONN;

        msg = json_object_new_object();
        if (!msg)
                return -ENOMEM;
        if (error && json_object_object_add(msg, "error", json_object_new_string(error)) < 0)
                return -ENOMEM;
        if (json_object_object_add(msg, "parameters",
                                   parameters ? json_object_get(parameters)
                                              : json_object_new_object()) < 0)
                return -ENOMEM;
        if (continues && json_object_object_add(msg, "continues", json_object_new_boolean(1)) < 0)
                return -ENOMEM;

        r = conn_send(c, msg);
        if (r == -E2BIG || r == -ENOMEM)
                return r;        /* nothing was queued: the call stays open */
        if (!continues || r < 0)
                call_finish(call);
        return r;
}

int varlink_call_reply(struct varlink_call *c, struct json_object *parameters) {
        return call_send(c, NULL, parameters, false);
}

int varlink_call_reply_continues(struct varlink_call *c, struct json_object *parameters) {
        return call_send(c, NULL, parameters, true);
}

int varlink_call_error(struct varlink_call *c, const char *error, struct json_object *parameters) {
        if (!error)
                return -EINVAL;
        return call_send(c, error, parameters, false);
}

static int call_error_string(struct varlink_call *c, const char *error, const char *key,
                             const char *value) {
        _cleanup_json_ struct json_object *p = json_object_new_object();

        if (!p || json_object_object_add(p, key, json_object_new_string(value ? value : "")) < 0)
                return -ENOMEM;
        return varlink_call_error(c, error, p);
}

int varlink_call_error_invalid_parameter(struct varlink_call *c, const char *parameter) {
        return call_error_string(c, VARLINK_ERROR_INVALID_PARAMETER, "parameter", parameter);
}

int varlink_call_error_errno(struct varlink_call *c, int err) {
        _cleanup_json_ struct json_object *p = json_object_new_object();

        if (!p || json_object_object_add(p, "errno", json_object_new_int(abs(err))) < 0)
                return -ENOMEM;
        return varlink_call_error(c, VARLINK_ERROR_SYSTEM, p);
}

int varlink_call_dispatch(struct varlink_call *c, struct json_object *parameters,
                          const struct varlink_field *fields, unsigned flags, void *dest) {
        const char *bad = NULL;
        int r;

        r = varlink_validate(parameters, fields, flags, dest, &bad);
        if (r == -EINVAL) {
                (void) varlink_call_error_invalid_parameter(c, bad);
                return -EINVAL;
        }
        return r;
}

/* ---- org.varlink.service ---------------------------------------------------------------- */

static const struct vl_entry *server_find(const struct varlink_server *s, const char *iface,
                                          size_t len) {
        for (size_t i = 0; i < s->n_entries; i++) {
                const char *n = s->entries[i].iface->name;
                if (strlen(n) == len && strncmp(n, iface, len) == 0)
                        return &s->entries[i];
        }
        return NULL;
}

static int method_get_info(struct varlink_call *call, struct json_object *parameters,
                           void *userdata) {
        static const struct varlink_field fields[] = { {} };
        struct varlink_server *s = userdata;
        _cleanup_json_ struct json_object *out = NULL;
        struct json_object *list;
        int r;

        r = varlink_call_dispatch(call, parameters, fields, 0, NULL);
        if (r < 0)
                return r;
        out = json_object_new_object();
        list = json_object_new_array();
        if (!out || !list) {
                json_object_put(list);
                return -ENOMEM;
        }
        if (json_object_object_add(out, "vendor", json_object_new_string(s->vendor)) < 0 ||
            json_object_object_add(out, "product", json_object_new_string(s->product)) < 0 ||
            json_object_object_add(out, "version", json_object_new_string(s->version)) < 0 ||
            json_object_object_add(out, "url", json_object_new_string(s->url)) < 0 ||
            json_object_object_add(out, "interfaces", list) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_entries; i++)
                if (json_object_array_add(list,
                                          json_object_new_string(s->entries[i].iface->name)) < 0)
                        return -ENOMEM;
        return varlink_call_reply(call, out);
}

static int method_get_interface_description(struct varlink_call *call,
                                            struct json_object *parameters, void *userdata) {
        struct args {
                const char *interface;
        } a = {};
        static const struct varlink_field fields[] = {
                { "interface", VARLINK_STRING, 0, offsetof(struct args, interface) },
                {}
        };
        struct varlink_server *s = userdata;
        const struct vl_entry *e;
        _cleanup_json_ struct json_object *out = NULL;
        int r;

        r = varlink_call_dispatch(call, parameters, fields, 0, &a);
        if (r < 0)
                return r;
        /* libvarlink answers InterfaceNotFound here (varlink-go: InvalidParameter); the
         * error names what is missing, so we follow libvarlink. */
        e = server_find(s, a.interface, strlen(a.interface));
        if (!e)
                return call_error_string(call, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface",
                                         a.interface);
        out = json_object_new_object();
        if (!out || json_object_object_add(out, "description",
                                           json_object_new_string(e->iface->description)) < 0)
                return -ENOMEM;
        return varlink_call_reply(call, out);
}

static const struct varlink_method service_methods[] = {
        { "GetInfo", method_get_info, 0 },
        { "GetInterfaceDescription", method_get_interface_description, 0 },
        {}
};

static const struct varlink_interface service_interface = {
        .name = "org.varlink.service",
        .description = service_description,
        .methods = service_methods,
};

/* ---- dispatch --------------------------------------------------------------------------- */

/* Reads an optional boolean member of the call; -EBADMSG for another type. */
static int call_flag(struct json_object *msg, const char *key, bool *ret) {
        struct json_object *v;

        *ret = false;
        if (!json_object_object_get_ex(msg, key, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return -EBADMSG;
        *ret = json_object_get_boolean(v);
        return 0;
}

/*
 * Handles one call message. Returns 0, or -EBADMSG when the message is not a varlink call
 * at all (then the connection is closed). The spec leaves broken framing undefined; systemd
 * and varlink-go both drop such a peer, and so do we: after garbage we cannot trust where
 * the next message starts, and a peer that sends it is not speaking varlink.
 */
static int conn_dispatch(struct vl_connection *c, struct json_object *msg) {
        struct varlink_server *s = c->server;
        struct json_object *m, *p = NULL;
        const struct varlink_method *method = NULL;
        const struct vl_entry *e;
        bool more, oneway, upgrade;
        const char *name, *dot;
        _cleanup_(varlink_call_unrefp) struct varlink_call *call = NULL;
        int r;

        if (!json_object_object_get_ex(msg, "method", &m) || !json_object_is_type(m, json_type_string))
                return -EBADMSG;
        if (call_flag(msg, "more", &more) < 0 || call_flag(msg, "oneway", &oneway) < 0 ||
            call_flag(msg, "upgrade", &upgrade) < 0)
                return -EBADMSG;
        if (oneway && (more || upgrade))  /* contradictory: no reply vs. several */
                return -EBADMSG;
        /* Unknown top-level keys are ignored: the spec reserves vendor extensions there. */

        call = calloc(1, sizeof(*call));
        if (!call)
                return -ENOMEM;
        call->n_ref = 1;
        call->conn = conn_ref(c);
        call->flags = (more ? VARLINK_CALL_MORE : 0) | (oneway ? VARLINK_CALL_ONEWAY : 0);
        call->method = strdup(json_object_get_string(m));
        if (!call->method)
                return -ENOMEM;
        if (json_object_object_get_ex(msg, "parameters", &p) && p)
                call->parameters = json_object_get(p);
        else
                call->parameters = json_object_new_object();
        if (!call->parameters)
                return -ENOMEM;
        if (!oneway)
                c->current = varlink_call_ref(call);
        name = call->method;

        if (!json_object_is_type(call->parameters, json_type_object)) {
                (void) varlink_call_error_invalid_parameter(call, "parameters");
                return 0;
        }
        dot = strrchr(name, '.');
        if (!varlink_qualified_name_is_valid(name)) {
                /* Not "iface.Method": name the interface part if there is a valid one. */
                if (dot && server_find(s, name, (size_t) (dot - name)))
                        (void) call_error_string(call, VARLINK_ERROR_METHOD_NOT_FOUND, "method", name);
                else
                        (void) call_error_string(call, VARLINK_ERROR_INTERFACE_NOT_FOUND,
                                                 "interface", name);
                return 0;
        }
        e = server_find(s, name, (size_t) (dot - name));
        if (!e) {
                char iface[256];
                snprintf(iface, sizeof(iface), "%.*s", (int) (dot - name), name);
                (void) call_error_string(call, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", iface);
                return 0;
        }
        for (const struct varlink_method *i = e->iface->methods; i && i->name; i++)
                if (strcmp(i->name, dot + 1) == 0) {
                        method = i;
                        break;
                }
        if (!method) {
                (void) call_error_string(call, VARLINK_ERROR_METHOD_NOT_FOUND, "method", name);
                return 0;
        }
        if (!method->func) {
                (void) call_error_string(call, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, "method", name);
                return 0;
        }
        if (upgrade) {
                /* None of our methods switches protocols; refusing keeps the connection in
                 * varlink, which the spec allows since only a confirming reply upgrades. */
                (void) varlink_call_error_invalid_parameter(call, "upgrade");
                return 0;
        }
        if ((method->flags & VARLINK_METHOD_REQUIRES_MORE) && !more) {
                (void) varlink_call_error(call, VARLINK_ERROR_EXPECTED_MORE, NULL);
                return 0;
        }

        r = method->func(call, call->parameters, e->userdata);
        if (!call->answered && !oneway && !c->dead) {
                if (r < 0) {
                        vl_log(s, LOG_DEBUG, "varlink: %s failed: %s", name, strerror(-r));
                        (void) varlink_call_error_errno(call, r);
                } else if (call->n_ref == 2) {
                        /* Nobody kept the call to answer it later: never leave a caller
                         * waiting forever. */
                        vl_log(s, LOG_WARNING, "varlink: %s returned without replying", name);
                        (void) varlink_call_error_errno(call, ENODATA);
                }
        }
        return 0;
}

static void conn_process(struct vl_connection *c) {
        _cleanup_(conn_unrefp) _unused_ struct vl_connection *ref = conn_ref(c);

        c->dispatching = true;
        while (!c->dead && !c->current) {
                _cleanup_json_ struct json_object *msg = NULL;
                const char *frame;
                size_t len;
                int r;

                r = vl_buffer_next_frame(&c->in, &c->scan, &frame, &len);
                if (r == -E2BIG) {
                        conn_close(c, "message exceeds 16 MiB");
                        break;
                }
                if (r == 0)
                        break;
                r = vl_parse_object(frame, len, &msg);
                if (r < 0) {
                        conn_close(c, "message is not a JSON object");
                        break;
                }
                r = conn_dispatch(c, msg);
                if (r < 0) {
                        conn_close(c, r == -ENOMEM ? "out of memory" : "message is not a varlink call");
                        break;
                }
        }
        c->dispatching = false;
        if (!c->dead) {
                if (conn_finished(c))
                        conn_close(c, "peer closed its side");
                else
                        (void) conn_update_events(c);
        }
}

/* Reads what the socket has. Returns 1 on EOF, 0 otherwise, negative errno on error. */
static int conn_read(struct vl_connection *c) {
        /* Bounded so one busy peer cannot starve the others on the loop. */
        for (unsigned i = 0; i < 16; i++) {
                ssize_t n;
                int r;

                if (c->current && vl_buffer_len(&c->in) > VARLINK_MESSAGE_MAX)
                        return 0;
                r = vl_buffer_reserve(&c->in, 64 * 1024);
                if (r < 0)
                        return r;
                size_t avail = c->in.alloc - c->in.end;
                n = recv(c->fd, c->in.data + c->in.end, avail, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                if (n == 0)
                        return 1;
                c->in.end += (size_t) n;
                if ((size_t) n < avail)
                        return 0;    /* short read: drained for now */
        }
        return 0;
}

static int conn_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        _cleanup_(conn_unrefp) struct vl_connection *c = conn_ref(userdata);
        int r;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                r = conn_read(c);
                if (r < 0) {
                        conn_close(c, "read failed");
                        return 0;
                }
                if (r > 0)
                        c->read_eof = true;
        }
        if (revents & EPOLLOUT) {
                r = conn_flush(c);
                if (r < 0) {
                        conn_close(c, "write failed");
                        return 0;
                }
        }
        conn_process(c);
        /* EPOLLHUP: both directions are closed, so no reply can reach the peer any more;
         * whatever it sent was dispatched above (oneway calls still run). */
        if (!c->dead && (revents & (EPOLLHUP | EPOLLERR)))
                conn_close(c, "peer hung up");
        return 0;
}

static int conn_defer(sd_event_source *source, void *userdata) {
        conn_process(userdata);
        return 0;
}

static void conn_close(struct vl_connection *c, const char *why) {
        _cleanup_(conn_unrefp) _unused_ struct vl_connection *ref = conn_ref(c);
        struct varlink_server *s = c->server;
        struct varlink_call *call;

        if (c->dead)
                return;
        c->dead = true;
        vl_log(s, LOG_DEBUG, "varlink: closing connection %" PRIu64 " (pid %d uid %u): %s",
               c->id, (int) c->peer.pid, (unsigned) c->peer.uid, why);
        /* Unreffing a source inside its own callback is allowed by sd-event. */
        c->io = sd_event_source_disable_unref(c->io);
        c->defer = sd_event_source_disable_unref(c->defer);
        c->fd = safe_close(c->fd);
        vl_buffer_free(&c->in);
        vl_buffer_free(&c->out);

        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
        s->n_connections--;
        c->server = NULL;

        call = TAKE_PTR(c->current);
        if (call) {
                if (!call->answered && call->disconnect_fn && call->n_ref > 1)
                        call->disconnect_fn(call, call->disconnect_userdata);
                varlink_call_unref(call);
        }
        if (s->disconnect_fn)
                s->disconnect_fn(s, c->id, &c->peer, s->disconnect_userdata);
        conn_unref(c);   /* the server's reference */
}

static unsigned server_count_uid(const struct varlink_server *s, uid_t uid) {
        unsigned n = 0;
        for (const struct vl_connection *c = s->connections; c; c = c->next)
                if (c->peer.uid == uid)
                        n++;
        return n;
}

int64_t varlink_server_add_connection(struct varlink_server *s, int fd) {
        _cleanup_close_ int owned = fd;
        struct vl_connection *c;
        struct ucred peer = { .pid = 0, .uid = (uid_t) -1, .gid = (gid_t) -1 };
        socklen_t sl = sizeof(peer);
        int r;

        if (fd < 0)
                return -EBADF;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &sl) < 0)
                return -errno;
        if (s->n_connections >= s->max_connections) {
                vl_log(s, LOG_WARNING, "varlink: refusing connection from pid %d: %u connections",
                       (int) peer.pid, s->n_connections);
                return -EUSERS;
        }
        if (server_count_uid(s, peer.uid) >= s->max_per_uid) {
                vl_log(s, LOG_WARNING, "varlink: refusing connection from pid %d: uid %u has %u",
                       (int) peer.pid, (unsigned) peer.uid, s->max_per_uid);
                return -EUSERS;
        }
        r = fcntl(fd, F_GETFL);
        if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
                return -errno;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->fd = TAKE_FD(owned);
        c->peer = peer;
        c->id = ++s->next_id;
        c->events = EPOLLIN;
        r = sd_event_add_io(s->event, &c->io, c->fd, EPOLLIN, conn_io, c);
        if (r >= 0)
                r = sd_event_add_defer(s->event, &c->defer, conn_defer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        if (r < 0) {
                conn_unref(c);
                return r;
        }
        (void) sd_event_source_set_description(c->io, "varlink-connection");
        c->server = s;
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        return (int64_t) c->id;
}

/* ---- listeners -------------------------------------------------------------------------- */

static int listener_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        struct varlink_server *s = userdata;

        /* Bounded, so a connect storm does not starve the connections we already serve. */
        for (unsigned i = 0; i < 64; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        /* EMFILE and friends: say so and keep serving. */
                        vl_log(s, LOG_ERR, "varlink: accept failed: %s", strerror(errno));
                        return 0;
                }
                (void) varlink_server_add_connection(s, cfd);
        }
        return 0;
}

int varlink_server_listen_fd(struct varlink_server *s, int fd) {
        _cleanup_close_ int owned = fd;
        struct vl_listener *l;
        int r;

        if (fd < 0)
                return -EBADF;
        r = fcntl(fd, F_GETFL);
        if (r < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0)
                return -errno;
        l = realloc(s->listeners, (s->n_listeners + 1) * sizeof(*l));
        if (!l)
                return -ENOMEM;
        s->listeners = l;
        l = &s->listeners[s->n_listeners];
        *l = (struct vl_listener) { .fd = fd };
        r = sd_event_add_io(s->event, &l->source, fd, EPOLLIN, listener_io, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->source, "varlink-listener");
        TAKE_FD(owned);
        s->n_listeners++;
        return 0;
}

int varlink_server_listen_path(struct varlink_server *s, const char *path, mode_t mode) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t sl;
        int r;

        r = vl_address_to_sockaddr(path, &sa, &sl);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (sa.sun_path[0]) {
                (void) unlink(sa.sun_path);   /* a socket left by an earlier instance */
                /* The umask must not decide who may connect: set exactly `mode`. */
                if (bind(fd, (struct sockaddr *) &sa, sl) < 0)
                        return -errno;
                if (chmod(sa.sun_path, mode) < 0)
                        return -errno;
        } else if (bind(fd, (struct sockaddr *) &sa, sl) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return varlink_server_listen_fd(s, TAKE_FD(fd));
}

int varlink_server_listen_activation(struct varlink_server *s) {
        char **names = NULL;
        int n, fd = -EBADF, r;

        n = sd_listen_fds_with_names(/* unset_environment= */ false, &names);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                if (names && names[i] && strcmp(names[i], "varlink") == 0)
                        fd = SD_LISTEN_FDS_START + i;
        if (fd < 0 && n == 1)   /* a single socket is ours whatever it is called */
                fd = SD_LISTEN_FDS_START;
        for (char **p = names; p && *p; p++)
                free(*p);
        free(names);
        if (fd < 0)
                return 0;
        r = varlink_server_listen_fd(s, fd);
        return r < 0 ? r : 1;
}

/* ---- server ----------------------------------------------------------------------------- */

static int description_declares(const char *text, const char *keyword, const char *name) {
        size_t kl = strlen(keyword), nl = strlen(name);

        for (const char *line = text; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                const char *p = line;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (strncmp(p, keyword, kl) != 0 || (p[kl] != ' ' && p[kl] != '\t'))
                        continue;
                p += kl;
                while (*p == ' ' || *p == '\t')
                        p++;
                if (strncmp(p, name, nl) != 0)
                        continue;
                p += nl;
                /* The name must end here: "Get" must not match "GetStatus". */
                if (*p == '\0' || *p == '\n' || *p == ' ' || *p == '\t' || *p == '(' || *p == '\r')
                        return 1;
        }
        return 0;
}

int varlink_server_add_interface(struct varlink_server *s, const struct varlink_interface *iface,
                                 void *userdata) {
        struct vl_entry *e;

        if (!iface || !varlink_interface_name_is_valid(iface->name) || !iface->description)
                return -EINVAL;
        if (!description_declares(iface->description, "interface", iface->name))
                return -EINVAL;
        for (const struct varlink_method *m = iface->methods; m && m->name; m++) {
                char full[512];
                snprintf(full, sizeof(full), "%s.%s", iface->name, m->name);
                if (!varlink_qualified_name_is_valid(full) ||
                    !description_declares(iface->description, "method", m->name))
                        return -EINVAL;
        }
        if (server_find(s, iface->name, strlen(iface->name)))
                return -EEXIST;
        e = realloc(s->entries, (s->n_entries + 1) * sizeof(*e));
        if (!e)
                return -ENOMEM;
        s->entries = e;
        s->entries[s->n_entries++] = (struct vl_entry) { .iface = iface, .userdata = userdata };
        return 0;
}

int varlink_server_new(sd_event *event, const struct varlink_server_info *info,
                       struct varlink_server **ret) {
        _cleanup_(varlink_server_freep) struct varlink_server *s = NULL;
        int r;

        if (!event)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->max_connections = VARLINK_CONNECTIONS_MAX;
        s->max_per_uid = VARLINK_CONNECTIONS_PER_UID_MAX;
        s->vendor = strdup(info && info->vendor ? info->vendor : "");
        s->product = strdup(info && info->product ? info->product : "");
        s->version = strdup(info && info->version ? info->version : "");
        s->url = strdup(info && info->url ? info->url : "");
        if (!s->vendor || !s->product || !s->version || !s->url)
                return -ENOMEM;
        r = varlink_server_add_interface(s, &service_interface, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

struct varlink_server *varlink_server_free(struct varlink_server *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_listeners; i++) {
                sd_event_source_disable_unref(s->listeners[i].source);
                safe_close(s->listeners[i].fd);
        }
        free(s->listeners);
        while (s->connections)
                conn_close(s->connections, "server shutting down");
        free(s->entries);
        free(s->vendor);
        free(s->product);
        free(s->version);
        free(s->url);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void varlink_server_set_connections_max(struct varlink_server *s, unsigned total,
                                        unsigned per_uid) {
        if (total > 0)
                s->max_connections = total;
        if (per_uid > 0)
                s->max_per_uid = per_uid;
}

void varlink_server_set_log(struct varlink_server *s, varlink_log_fn fn, void *userdata) {
        s->log_fn = fn;
        s->log_userdata = userdata;
}

void varlink_server_set_disconnect_handler(struct varlink_server *s, varlink_disconnect_fn fn,
                                           void *userdata) {
        s->disconnect_fn = fn;
        s->disconnect_userdata = userdata;
}

unsigned varlink_server_n_connections(const struct varlink_server *s) {
        return s->n_connections;
}
