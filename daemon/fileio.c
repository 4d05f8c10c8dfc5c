/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "spmtier/macro.h"

static int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
                      bool durable) {
        _cleanup_free_ char *tmp = NULL, *dir = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = RET_NERRNO(fchmod(fd, mode));
        if (r >= 0)
                r = write_all(fd, data, size);
        if (r >= 0 && durable)
                r = RET_NERRNO(fsync(fd));
        if (r >= 0)
                r = RET_NERRNO(rename(tmp, path));
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        if (!durable)
                return 0;
        /* The rename is durable only once the directory entry is. */
        dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        return RET_NERRNO(fsync(dfd));
}

int read_file_full(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (alloc - size < 4096) {
                        if (alloc > max)
                                return -EFBIG;
                        char *n = realloc(buf, alloc + 65536 + 1);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc += 65536;
                }
                ssize_t k = read(fd, buf + size, alloc - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        if (size > max)
                return -EFBIG;
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}
