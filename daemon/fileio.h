/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include <stdbool.h>

/* Replaces `path` atomically with data: writes a temporary file in the same directory and
 * renames it over path, so readers and a process killed at any point see either the old or
 * the new contents. With `durable`, the file and the directory are also fsync'd before and
 * after the rename, so the same holds across a power cut. Returns 0 or a negative errno (the
 * temporary file is removed on failure). */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode,
                      bool durable);

/* Reads a whole file (at most max bytes, else -EFBIG) into a NUL-terminated buffer. Returns
 * 0 or a negative errno. */
int read_file_full(const char *path, size_t max, char **ret, size_t *ret_size);
