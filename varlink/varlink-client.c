/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The blocking varlink client used by spmctl, the agent and the tests. One thread per
 * client; every wait is bounded by the client's timeout. */

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "varlink-internal.h"

struct varlink_client {
        int fd;
        uint64_t timeout_usec;
        struct vl_buffer in, out;
        size_t scan;
        char *error;     /* the last reply's error name */
        bool broken;     /* a protocol or transport error happened: refuse further use */
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* poll() timeout in ms for the time left until `deadline` (rounded up: never spin). */
static int poll_timeout(uint64_t deadline) {
        uint64_t now;

        if (deadline == VARLINK_TIMEOUT_INFINITY)
                return -1;
        now = now_usec();
        if (now >= deadline)
                return 0;
        return (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX);
}

static uint64_t deadline_after(uint64_t timeout_usec) {
        uint64_t d;
        if (timeout_usec == VARLINK_TIMEOUT_INFINITY || !ADD_SAFE(&d, now_usec(), timeout_usec))
                return VARLINK_TIMEOUT_INFINITY;
        return d;
}

int varlink_client_new_fd(int fd, struct varlink_client **ret) {
        _cleanup_close_ int owned = fd;
        struct varlink_client *c;
        int fl;

        if (fd < 0)
                return -EBADF;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = TAKE_FD(owned);
        c->timeout_usec = VARLINK_DEFAULT_TIMEOUT_USEC;
        *ret = c;
        return 0;
}

int varlink_client_connect(const char *address, uint64_t timeout_usec,
                           struct varlink_client **ret) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        struct varlink_client *c;
        socklen_t sl;
        int r;

        if (!address)
                return -EINVAL;
        r = vl_address_to_sockaddr(address, &sa, &sl);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A unix connect() only blocks when the listener's backlog is full; SO_SNDTIMEO
         * bounds that wait (the kernel uses it as the connect timeout for AF_UNIX). */
        if (timeout_usec != VARLINK_TIMEOUT_INFINITY) {
                struct timeval tv = {
                        .tv_sec = (time_t) (timeout_usec / 1000000ULL),
                        .tv_usec = (suseconds_t) (timeout_usec % 1000000ULL),
                };
                if (tv.tv_sec == 0 && tv.tv_usec == 0)
                        tv.tv_usec = 1;
                if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return -errno;
        }
        if (connect(fd, (struct sockaddr *) &sa, sl) < 0)
                return errno == EAGAIN || errno == EINPROGRESS ? -ETIMEDOUT : -errno;

        r = varlink_client_new_fd(TAKE_FD(fd), &c);
        if (r < 0)
                return r;
        c->timeout_usec = timeout_usec;
        *ret = c;
        return 0;
}

struct varlink_client *varlink_client_free(struct varlink_client *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        vl_buffer_free(&c->in);
        vl_buffer_free(&c->out);
        free(c->error);
        free(c);
        return NULL;
}

void varlink_client_set_timeout(struct varlink_client *c, uint64_t timeout_usec) {
        c->timeout_usec = timeout_usec;
}

int varlink_client_get_fd(const struct varlink_client *c) {
        return c->fd;
}

static int client_fail(struct varlink_client *c, int r) {
        c->broken = true;
        return r;
}

int varlink_client_send(struct varlink_client *c, const char *method,
                        struct json_object *parameters, unsigned flags) {
        _cleanup_json_ struct json_object *msg = NULL;
        uint64_t deadline;
        int r;

        if (c->broken)
                return -ENOTCONN;
        if (!method || ((flags & VARLINK_CALL_ONEWAY) && (flags & VARLINK_CALL_MORE)))
                return -EINVAL;
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;
        msg = json_object_new_object();
        if (!msg || json_object_object_add(msg, "method", json_object_new_string(method)) < 0)
                return -ENOMEM;
        if (parameters && json_object_object_add(msg, "parameters", json_object_get(parameters)) < 0)
                return -ENOMEM;
        if ((flags & VARLINK_CALL_MORE) &&
            json_object_object_add(msg, "more", json_object_new_boolean(1)) < 0)
                return -ENOMEM;
        if ((flags & VARLINK_CALL_ONEWAY) &&
            json_object_object_add(msg, "oneway", json_object_new_boolean(1)) < 0)
                return -ENOMEM;
        r = vl_append_json(&c->out, msg);
        if (r < 0)
                return r;

        deadline = deadline_after(c->timeout_usec);
        while (vl_buffer_len(&c->out) > 0) {
                ssize_t n = send(c->fd, c->out.data + c->out.start, vl_buffer_len(&c->out),
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n >= 0) {
                        c->out.start += (size_t) n;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return client_fail(c, -errno);
                /* The server may be blocked writing replies to us while we block writing
                 * calls to it; it reads while it has an open call only up to one message,
                 * so a pipelining client must read too. We keep it simple: wait. */
                struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
                int t = poll_timeout(deadline);
                if (t == 0)
                        return client_fail(c, -ETIMEDOUT);
                if (poll(&pfd, 1, t) < 0 && errno != EINTR)
                        return client_fail(c, -errno);
        }
        c->out.start = c->out.end = 0;
        return 0;
}

/* Parses one reply frame. Returns 1 (continues), 0 (last), -EBADMSG. */
static int client_parse_reply(struct varlink_client *c, const char *frame, size_t len,
                              struct json_object **ret_parameters, const char **ret_error) {
        _cleanup_json_ struct json_object *msg = NULL;
        struct json_object *p = NULL, *e = NULL, *k = NULL;
        bool continues = false;
        int r;

        r = vl_parse_object(frame, len, &msg);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(msg, "error", &e) && e) {
                if (!json_object_is_type(e, json_type_string) ||
                    !varlink_qualified_name_is_valid(json_object_get_string(e)))
                        return -EBADMSG;
        }
        if (json_object_object_get_ex(msg, "parameters", &p) && p &&
            !json_object_is_type(p, json_type_object))
                return -EBADMSG;
        if (json_object_object_get_ex(msg, "continues", &k) && k) {
                if (!json_object_is_type(k, json_type_boolean))
                        return -EBADMSG;
                continues = json_object_get_boolean(k);
        }

        free(c->error);
        c->error = NULL;
        if (e) {
                c->error = strdup(json_object_get_string(e));
                if (!c->error)
                        return -ENOMEM;
        }
        if (ret_parameters)
                *ret_parameters = p ? json_object_get(p) : json_object_new_object();
        if (ret_error)
                *ret_error = c->error;
        return continues ? 1 : 0;
}

int varlink_client_read(struct varlink_client *c, struct json_object **ret_parameters,
                        const char **ret_error) {
        uint64_t deadline;

        if (c->broken)
                return -ENOTCONN;
        deadline = c->timeout_usec == 0 ? 0 : deadline_after(c->timeout_usec);
        for (;;) {
                const char *frame;
                size_t len;
                ssize_t n;
                int r;

                r = vl_buffer_next_frame(&c->in, &c->scan, &frame, &len);
                if (r < 0)
                        return client_fail(c, r);
                if (r > 0) {
                        r = client_parse_reply(c, frame, len, ret_parameters, ret_error);
                        return r < 0 ? client_fail(c, r) : r;
                }

                r = vl_buffer_reserve(&c->in, 64 * 1024);
                if (r < 0)
                        return client_fail(c, r);
                n = recv(c->fd, c->in.data + c->in.end, c->in.alloc - c->in.end, MSG_DONTWAIT);
                if (n > 0) {
                        c->in.end += (size_t) n;
                        continue;
                }
                if (n == 0)
                        return client_fail(c, -ECONNRESET);
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return client_fail(c, -errno);
                if (c->timeout_usec == 0)
                        return -EAGAIN;

                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                int t = poll_timeout(deadline);
                if (t == 0)
                        return -ETIMEDOUT;
                if (poll(&pfd, 1, t) < 0 && errno != EINTR)
                        return client_fail(c, -errno);
        }
}

int varlink_client_call(struct varlink_client *c, const char *method,
                        struct json_object *parameters, struct json_object **ret_parameters,
                        const char **ret_error) {
        _cleanup_json_ struct json_object *p = NULL;
        const char *error = NULL;
        int r;

        r = varlink_client_send(c, method, parameters, 0);
        if (r < 0)
                return r;
        r = varlink_client_read(c, &p, &error);
        if (r < 0)
                return r;
        if (r > 0)   /* "continues" to a call that did not ask for more */
                return client_fail(c, -EBADMSG);
        if (ret_parameters)
                *ret_parameters = TAKE_PTR(p);
        if (ret_error)
                *ret_error = error;
        return 0;
}
