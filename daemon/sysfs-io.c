/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs-io.h"

static _printf_(4, 0) int build_path(char *path, size_t size, const char *root, const char *fmt,
                                     va_list ap) {
        int n = snprintf(path, size, "%s/", root ? root : "");
        int m;

        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        m = vsnprintf(path + n, size - n, fmt, ap);
        if (m < 0 || (size_t) m >= size - n)
                return -ENAMETOOLONG;
        return 0;
}

/* build_path() from the calling function's own variadic arguments. */
#define PATH_FROM_ARGS(path, root, fmt)                                         \
        ({                                                                      \
                va_list _ap_;                                                   \
                int _r_;                                                        \
                va_start(_ap_, fmt);                                            \
                _r_ = build_path(path, sizeof(path), root, fmt, _ap_);          \
                va_end(_ap_);                                                   \
                _r_;                                                            \
        })

static int read_path(char *buf, size_t size, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        size_t len = 0;

        if (size == 0)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t r;

                if (len == size - 1) {
                        char c;

                        /* Full buffer: the file must end here, or it does not fit. */
                        r = read(fd, &c, 1);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r < 0)
                                return -errno;
                        if (r > 0)
                                return -EFBIG;
                        break;
                }
                r = read(fd, buf + len, size - 1 - len);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        break;
                len += (size_t) r;
        }
        while (len > 0 && buf[len - 1] == '\n')
                len--;
        buf[len] = '\0';
        return (int) len;
}

int sysfs_read(char *buf, size_t size, const char *root, const char *fmt, ...) {
        char path[PATH_MAX];
        int r = PATH_FROM_ARGS(path, root, fmt);

        return r < 0 ? r : read_path(buf, size, path);
}

static int parse_u64(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno != 0 || *end != '\0')
                return -EBADMSG;
        *ret = v;
        return 0;
}

int sysfs_read_u64(uint64_t *ret, const char *root, const char *fmt, ...) {
        char path[PATH_MAX], buf[64];
        int r = PATH_FROM_ARGS(path, root, fmt);

        if (r < 0)
                return r;
        r = read_path(buf, sizeof(buf), path);
        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        return parse_u64(buf, ret);
}

static int write_path(const char *path, const char *value) {
        _cleanup_close_ int fd = -EBADF;
        size_t n = strlen(value);
        _cleanup_free_ char *line = malloc(n + 2);
        ssize_t w;

        if (!line)
                return -ENOMEM;
        memcpy(line, value, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        do
                w = write(fd, line, n + 1);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                return -errno;
        if ((size_t) w != n + 1)
                return -EIO;
        return 0;
}

int sysfs_write(const char *value, const char *root, const char *fmt, ...) {
        char path[PATH_MAX];
        int r = PATH_FROM_ARGS(path, root, fmt);

        return r < 0 ? r : write_path(path, value);
}

int sysfs_write_u64(uint64_t value, const char *root, const char *fmt, ...) {
        char path[PATH_MAX], buf[32];
        int r = PATH_FROM_ARGS(path, root, fmt);

        if (r < 0)
                return r;
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) value);
        return write_path(path, buf);
}
