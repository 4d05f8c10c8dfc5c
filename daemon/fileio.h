/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Replaces `path` atomically with data: writes a temporary file in the same directory,
 * fsyncs it, renames it over path and fsyncs the directory, so a crash at any point leaves
 * either the old or the new contents. Returns 0 or a negative errno (the temporary file is
 * removed on failure). */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Reads a whole file (at most max bytes, else -EFBIG) into a NUL-terminated buffer. Returns
 * 0 or a negative errno. */
int read_file_full(const char *path, size_t max, char **ret, size_t *ret_size);
