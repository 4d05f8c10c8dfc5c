/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int log_max_level = LOG_INFO;

static const char *const log_level_names[] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

void log_set_max_level(int level) {
        log_max_level = CLAMP(level, LOG_EMERG, LOG_DEBUG);
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < (int) ELEMENTSOF(log_level_names); i++)
                if (strcmp(s, log_level_names[i]) == 0)
                        return i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || level >= (int) ELEMENTSOF(log_level_names))
                return NULL;
        return log_level_names[level];
}

int log_internal(int level, int error, const char *fmt, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        /* %m prints the error we were given, not whatever errno happens to hold. */
        errno = error;
        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        /* One write per line keeps concurrent writers from interleaving within a line. */
        fprintf(stderr, "<%d>%s\n", level, buf);
        errno = saved;
        return -error;
}
