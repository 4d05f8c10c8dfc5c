/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Small-file I/O for sysfs-style trees (one value per file), shared by the topology reader and
 * the DAMON collector. Paths are built from a root and a printf-style relative path, so every
 * caller can be pointed at a fake tree.
 */

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>

#include "spmtier/macro.h"

static inline DIR *safe_closedir(DIR *d) {
        if (d)
                (void) closedir(d);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, safe_closedir);
#define _cleanup_closedir_ _cleanup_(safe_closedirp)

/* Reads the whole file root/fmt... (at most size-1 bytes) into buf, NUL-terminated, trailing
 * newlines stripped. Returns the length, or -errno (-ENAMETOOLONG for a path too long,
 * -EFBIG when the file does not fit). */
int sysfs_read(char *buf, size_t size, const char *root, const char *fmt, ...) _printf_(4, 5);

/* Reads an unsigned decimal (or 0x hex) number. Returns 0, -errno, or -EBADMSG when the file
 * holds something else. */
int sysfs_read_u64(uint64_t *ret, const char *root, const char *fmt, ...) _printf_(3, 4);

/* Writes value (plus a newline, as `echo` does) to root/fmt... with one write(2), so sysfs sees
 * one store. Returns 0 or -errno (the kernel's error for a rejected value). */
int sysfs_write(const char *value, const char *root, const char *fmt, ...) _printf_(3, 4);

/* sysfs_write() of a number. */
int sysfs_write_u64(uint64_t value, const char *root, const char *fmt, ...) _printf_(3, 4);
