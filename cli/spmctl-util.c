/* SPDX-License-Identifier: GPL-2.0-or-later */

/* spmctl's argument parsers and human formatting (contracts in spmctl-util.h). */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spmctl-util.h"
#include "spmtier/macro.h"

#define USEC_PER_SEC INT64_C(1000000)

/* Reads a plain decimal number ("12", "1.5", ".5") at the start of s: strtod() alone would
 * also take leading blanks, signs, hex floats, "inf" and "nan", none of which is a size or a
 * duration. Returns 0 and sets *ret and *ret_end, or -EINVAL. */
static int parse_decimal(const char *s, double *ret, char **ret_end) {
        size_t n = s ? strspn(s, "0123456789.") : 0;
        char *end;
        double v;

        if (n == 0 || strspn(s, ".") == n)
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end != s + n || !isfinite(v))
                return -EINVAL;
        *ret = v;
        *ret_end = end;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct { char c; unsigned shift; } units[] = {
                { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 }, { 'P', 50 },
        };
        char *end;
        double v;
        unsigned shift = 0;

        if (parse_decimal(s, &v, &end) < 0)
                return -EINVAL;
        if (*end) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (*end == units[i].c || *end == units[i].c + ('a' - 'A')) {
                                shift = units[i].shift;
                                found = true;
                        }
                if (found) {
                        end++;
                        if (*end == 'i')
                                end++;
                }
                if (*end == 'B')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        v = ldexp(v, (int) shift);
        if (v >= 18446744073709551616.0)
                return -ERANGE;
        if (v != floor(v))
                return -EINVAL; /* a fraction of a byte */
        *ret = (uint64_t) v;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct { const char *suffix; double usec; } units[] = {
                { "us", 1 }, { "usec", 1 }, { "ms", 1e3 }, { "msec", 1e3 },
                { "s", 1e6 }, { "sec", 1e6 }, { "m", 60e6 }, { "min", 60e6 },
                { "h", 3600e6 }, { "d", 86400e6 }, { "", 1e6 },
        };
        char *end;
        double v;

        if (parse_decimal(s, &v, &end) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(end, units[i].suffix) == 0) {
                        v *= units[i].usec;
                        if (v >= 9223372036854775808.0)
                                return -ERANGE;
                        *ret_usec = (uint64_t) llround(v);
                        return 0;
                }
        return -EINVAL;
}

int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno != 0 || *end)
                return errno == ERANGE ? -ERANGE : -EINVAL;
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

const char *format_bytes(char buf[static 32], int64_t bytes) {
        static const char suffix[] = "KMGTP";
        double v = (double) bytes;
        int i = -1;

        if (bytes < 1024 && bytes > -1024) {
                snprintf(buf, 32, "%" PRIi64 "B", bytes);
                return buf;
        }
        while (fabs(v) >= 1024 && i < (int) sizeof(suffix) - 2) {
                v /= 1024;
                i++;
        }
        snprintf(buf, 32, "%.*f%c", fabs(v) < 10 ? 1 : 0, v, suffix[i]);
        return buf;
}

const char *format_duration(char buf[static 32], int64_t usec) {
        if (usec < 0)
                snprintf(buf, 32, "-");
        else if (usec < 1000)
                snprintf(buf, 32, "%" PRIi64 "us", usec);
        else if (usec < 1000000)
                snprintf(buf, 32, "%.*fms", usec < 10000 ? 1 : 0, usec / 1e3);
        else if (usec < 60 * USEC_PER_SEC)
                snprintf(buf, 32, "%.*fs", usec < 10 * 1000000 ? 1 : 0, usec / 1e6);
        else if (usec < 3600 * USEC_PER_SEC)
                snprintf(buf, 32, "%" PRIi64 "min %" PRIi64 "s", usec / (60 * 1000000),
                         usec / 1000000 % 60);
        else if (usec < 86400 * USEC_PER_SEC)
                snprintf(buf, 32, "%" PRIi64 "h %" PRIi64 "min", usec / 3600000000,
                         usec / 60000000 % 60);
        else
                snprintf(buf, 32, "%" PRIi64 "d %" PRIi64 "h", usec / 86400000000,
                         usec / 3600000000 % 24);
        return buf;
}
