/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Fake sysfs trees for unit tests: a temp directory with files written by the test, removed
 * again at the end. Test-only; failures abort through the harness.
 */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spmtier/macro.h"
#include "test.h"

/* Creates a fresh temp directory and returns its path (static storage per call site is the
 * caller's: copy it). */
static inline char *fake_tree_new(void) {
        char tmpl[] = "/tmp/spmtier-fake-XXXXXX";
        char *d = mkdtemp(tmpl);

        ASSERT_NOT_NULL(d);
        return strdup(d);
}

static inline void fake_mkdir_p(const char *path) {
        char buf[PATH_MAX];

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        (void) mkdir(buf, 0755);
                        *p = '/';
                }
        ASSERT_TRUE(mkdir(buf, 0755) == 0 || errno == EEXIST);
}

/* path = root/fmt... */
static inline _printf_(3, 0) void fake_path(char path[PATH_MAX], const char *root,
                                             const char *fmt, va_list ap) {
        char rel[PATH_MAX / 2];

        vsnprintf(rel, sizeof(rel), fmt, ap);
        snprintf(path, PATH_MAX, "%s/%s", root, rel);
}

/* Writes content to root/fmt..., creating the parent directories. */
static inline _printf_(3, 4) void fake_file(const char *root, const char *content,
                                             const char *fmt, ...) {
        char path[PATH_MAX];
        va_list ap;
        FILE *f;

        va_start(ap, fmt);
        fake_path(path, root, fmt, ap);
        va_end(ap);
        *strrchr(path, '/') = '\0';
        fake_mkdir_p(path);
        path[strlen(path)] = '/';
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs(content, f);
        ASSERT_EQ(fclose(f), 0);
}

/* Reads root/fmt... into a static buffer (trailing newline kept); "" when absent. */
static inline _printf_(2, 3) const char *fake_read(const char *root, const char *fmt, ...) {
        static char buf[4096];
        char path[PATH_MAX];
        va_list ap;
        size_t n;
        FILE *f;

        va_start(ap, fmt);
        fake_path(path, root, fmt, ap);
        va_end(ap);
        buf[0] = '\0';
        f = fopen(path, "re");
        if (!f)
                return buf;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static inline int fake_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static inline void fake_tree_free(char *root) {
        if (root)
                (void) nftw(root, fake_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(root);
}
