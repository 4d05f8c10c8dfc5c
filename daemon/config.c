/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "spmtier/macro.h"

#define FIELD(base, it) ((void *) ((char *) (base) + (it)->offset))
#define CFIELD(base, it) ((const void *) ((const char *) (base) + (it)->offset))

void strv_free(char **l) {
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

static size_t strv_length(char **l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

static _printf_(3, 4) int set_msg(char *msg, size_t size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(msg, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int check_range(const struct config_item *it, double v, const char *text, char *msg,
                       size_t size) {
        if (it->min == 0 && it->max == 0)
                return 0;
        if (v < it->min || v > it->max)
                return set_msg(msg, size, "%s=%s is out of range (%g..%g %s)", it->key, text,
                               it->min, it->max, it->unit ? it->unit : "");
        return 0;
}

/* ---- strings ---- */

static int parse_string(const struct config_item *it, const char *v, void *data, char *msg,
                        size_t size) {
        char **s = data;
        char *c = strdup(v);

        if (!c)
                return -ENOMEM;
        free(*s);
        *s = c;
        return 0;
}

void config_format_string(const struct config_item *it, const void *data, FILE *f) {
        const char *const *s = data;
        fputs(*s ? *s : "", f);
}

void config_clear_string(void *data) {
        char **s = data;
        free(*s);
        *s = NULL;
}

const struct config_type config_type_string = {
        "string", parse_string, config_format_string, config_clear_string, false,
};

static int parse_path(const struct config_item *it, const char *v, void *data, char *msg,
                      size_t size) {
        if (v[0] != '/')
                return set_msg(msg, size, "%s= wants an absolute path, got \"%s\"", it->key, v);
        if (strlen(v) >= PATH_MAX)
                return set_msg(msg, size, "%s= path is too long", it->key);
        return parse_string(it, v, data, msg, size);
}

const struct config_type config_type_path = {
        "path", parse_path, config_format_string, config_clear_string, false,
};

/* ---- booleans and numbers ---- */

static int parse_bool(const struct config_item *it, const char *v, void *data, char *msg,
                      size_t size) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };
        bool *b = data;

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(v, yes[i]) == 0) {
                        *b = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(v, no[i]) == 0) {
                        *b = false;
                        return 0;
                }
        return set_msg(msg, size, "%s= wants a boolean (yes/no), got \"%s\"", it->key, v);
}

static void format_bool(const struct config_item *it, const void *data, FILE *f) {
        fputs(*(const bool *) data ? "yes" : "no", f);
}

const struct config_type config_type_bool = {
        "bool", parse_bool, format_bool, NULL, false,
};

/* Decimal digits only: strtoull() would accept "-1", " 1" and "0x10". */
static int parse_u64(const char *v, uint64_t *ret) {
        uint64_t x = 0;

        if (!isdigit((unsigned char) v[0]))
                return -EINVAL;
        for (const char *p = v; *p; p++) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                if (!MUL_SAFE(&x, x, 10) || !ADD_SAFE(&x, x, (uint64_t) (*p - '0')))
                        return -ERANGE;
        }
        *ret = x;
        return 0;
}

static int parse_uint64(const struct config_item *it, const char *v, void *data, char *msg,
                        size_t size) {
        uint64_t x;

        if (parse_u64(v, &x) < 0)
                return set_msg(msg, size, "%s= wants a non-negative integer, got \"%s\"",
                               it->key, v);
        if (check_range(it, (double) x, v, msg, size) < 0)
                return -EINVAL;
        *(uint64_t *) data = x;
        return 0;
}

static void format_uint64(const struct config_item *it, const void *data, FILE *f) {
        fprintf(f, "%" PRIu64, *(const uint64_t *) data);
}

const struct config_type config_type_uint64 = {
        "uint64", parse_uint64, format_uint64, NULL, false,
};

static int parse_unsigned(const struct config_item *it, const char *v, void *data, char *msg,
                          size_t size) {
        uint64_t x;

        if (parse_u64(v, &x) < 0 || x > UINT_MAX)
                return set_msg(msg, size, "%s= wants a non-negative integer, got \"%s\"",
                               it->key, v);
        if (check_range(it, (double) x, v, msg, size) < 0)
                return -EINVAL;
        *(unsigned *) data = (unsigned) x;
        return 0;
}

static void format_unsigned(const struct config_item *it, const void *data, FILE *f) {
        fprintf(f, "%u", *(const unsigned *) data);
}

const struct config_type config_type_unsigned = {
        "unsigned", parse_unsigned, format_unsigned, NULL, false,
};

static int parse_double(const struct config_item *it, const char *v, void *data, char *msg,
                        size_t size) {
        char *end;
        double d;

        errno = 0;
        d = strtod(v, &end);
        if (errno != 0 || end == v || *end != '\0' || !isfinite(d))
                return set_msg(msg, size, "%s= wants a number, got \"%s\"", it->key, v);
        if (check_range(it, d, v, msg, size) < 0)
                return -EINVAL;
        *(double *) data = d;
        return 0;
}

static void format_double(const struct config_item *it, const void *data, FILE *f) {
        fprintf(f, "%.17g", *(const double *) data);
}

const struct config_type config_type_double = {
        "double", parse_double, format_double, NULL, false,
};

/* ---- units: sizes and time spans ---- */

struct unit {
        const char *suffix;
        uint64_t factor;
};

/* Sizes are 1024-based, as in systemd's parse_size(). */
static const struct unit size_units[] = {
        { "E", 1ULL << 60 }, { "P", 1ULL << 50 }, { "T", 1ULL << 40 },
        { "G", 1ULL << 30 }, { "M", 1ULL << 20 }, { "K", 1ULL << 10 },
        { "B", 1 }, { "", 1 },
};

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
static const struct unit time_units[] = {
        { "w", 7 * 24 * 3600 * USEC_PER_SEC }, { "d", 24 * 3600 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC }, { "min", 60 * USEC_PER_SEC },
        { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC }, { "us", 1 },
};
/* Accepted spellings beyond the canonical ones printed. */
static const struct unit time_aliases[] = {
        { "weeks", 7 * 24 * 3600 * USEC_PER_SEC }, { "week", 7 * 24 * 3600 * USEC_PER_SEC },
        { "days", 24 * 3600 * USEC_PER_SEC }, { "day", 24 * 3600 * USEC_PER_SEC },
        { "hours", 3600 * USEC_PER_SEC }, { "hour", 3600 * USEC_PER_SEC },
        { "hr", 3600 * USEC_PER_SEC }, { "minutes", 60 * USEC_PER_SEC },
        { "minute", 60 * USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
        { "seconds", USEC_PER_SEC }, { "second", USEC_PER_SEC }, { "sec", USEC_PER_SEC },
        { "msec", USEC_PER_MSEC }, { "usec", 1 }, { "μs", 1 },
};

static const struct unit *find_unit(const struct unit *u, size_t n, const char *s, size_t len) {
        for (size_t i = 0; i < n; i++)
                if (strlen(u[i].suffix) == len && strncmp(u[i].suffix, s, len) == 0)
                        return &u[i];
        return NULL;
}

static int parse_size_value(const char *v, uint64_t *ret) {
        char *end;
        double d;

        if (!isdigit((unsigned char) v[0]))
                return -EINVAL;
        errno = 0;
        d = strtod(v, &end);
        if (errno != 0 || end == v)
                return -EINVAL;
        const struct unit *u = find_unit(size_units, ELEMENTSOF(size_units), end, strlen(end));
        if (!u)
                return -EINVAL;
        d *= (double) u->factor;
        if (d >= 18446744073709551616.0 || d != floor(d))
                return -ERANGE;
        *ret = (uint64_t) d;
        return 0;
}

static int parse_size(const struct config_item *it, const char *v, void *data, char *msg,
                      size_t size) {
        uint64_t x;

        if (parse_size_value(v, &x) < 0)
                return set_msg(msg, size,
                               "%s= wants a size in bytes (suffixes K, M, G, T: 1024-based), "
                               "got \"%s\"", it->key, v);
        if (check_range(it, (double) x, v, msg, size) < 0)
                return -EINVAL;
        *(uint64_t *) data = x;
        return 0;
}

void config_format_size(const struct config_item *it, const void *data, FILE *f) {
        uint64_t x = *(const uint64_t *) data;

        for (size_t i = 0; i < ELEMENTSOF(size_units) - 2; i++)
                if (x != 0 && x % size_units[i].factor == 0) {
                        fprintf(f, "%" PRIu64 "%s", x / size_units[i].factor,
                                size_units[i].suffix);
                        return;
                }
        fprintf(f, "%" PRIu64, x);
}

const struct config_type config_type_size = {
        "size", parse_size, config_format_size, NULL, false,
};

/* "1min 30s", "10ms", "2.5s", a bare number is seconds (systemd's rule), "infinity". */
static int parse_timespan(const char *v, uint64_t *ret) {
        uint64_t total = 0;
        const char *p = v;
        bool any = false;

        if (strcmp(v, "infinity") == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        for (;;) {
                char *end;
                double d;

                while (isspace((unsigned char) *p))
                        p++;
                if (*p == '\0')
                        break;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                d = strtod(p, &end);
                if (errno != 0 || end == p)
                        return -EINVAL;
                p = end;
                while (isspace((unsigned char) *p))
                        p++;
                size_t len = 0;
                while (p[len] && !isspace((unsigned char) p[len]) &&
                       !isdigit((unsigned char) p[len]))
                        len++;
                uint64_t factor = USEC_PER_SEC;
                if (len > 0) {
                        const struct unit *u = find_unit(time_units, ELEMENTSOF(time_units), p, len);
                        if (!u)
                                u = find_unit(time_aliases, ELEMENTSOF(time_aliases), p, len);
                        if (!u)
                                return -EINVAL;
                        factor = u->factor;
                } else if (any)
                        return -EINVAL; /* "1min 30": a bare number only stands alone */
                p += len;
                d *= (double) factor;
                if (d >= 18446744073709551615.0 || d != floor(d))
                        return -ERANGE;
                if (!ADD_SAFE(&total, total, (uint64_t) d) || total == UINT64_MAX)
                        return -ERANGE;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

static int parse_usec(const struct config_item *it, const char *v, void *data, char *msg,
                      size_t size) {
        uint64_t x;

        if (parse_timespan(v, &x) < 0)
                return set_msg(msg, size,
                               "%s= wants a time span (\"10ms\", \"1min 30s\", \"infinity\"), "
                               "got \"%s\"", it->key, v);
        if (x != UINT64_MAX && check_range(it, (double) x, v, msg, size) < 0)
                return -EINVAL;
        *(uint64_t *) data = x;
        return 0;
}

static void format_usec(const struct config_item *it, const void *data, FILE *f) {
        uint64_t x = *(const uint64_t *) data;
        bool first = true;

        if (x == UINT64_MAX) {
                fputs("infinity", f);
                return;
        }
        if (x == 0) {
                fputs("0", f);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(time_units); i++) {
                uint64_t n = x / time_units[i].factor;
                if (n == 0)
                        continue;
                fprintf(f, "%s%" PRIu64 "%s", first ? "" : " ", n, time_units[i].suffix);
                x -= n * time_units[i].factor;
                first = false;
        }
}

const struct config_type config_type_usec = {
        "usec", parse_usec, format_usec, NULL, false,
};

static int parse_loglevel(const struct config_item *it, const char *v, void *data, char *msg,
                          size_t size) {
        int l = log_level_from_string(v);

        if (l < 0)
                return set_msg(msg, size,
                               "%s= wants emerg, alert, crit, err, warning, notice, info or "
                               "debug, got \"%s\"", it->key, v);
        *(int *) data = l;
        return 0;
}

static void format_loglevel(const struct config_item *it, const void *data, FILE *f) {
        fputs(log_level_to_string(*(const int *) data), f);
}

const struct config_type config_type_loglevel = {
        "loglevel", parse_loglevel, format_loglevel, NULL, false,
};

/* ---- lists ---- */

static int parse_strv(const struct config_item *it, const char *v, void *data, char *msg,
                      size_t size) {
        char ***l = data;
        size_t n = strv_length(*l);
        const char *p = v;

        for (;;) {
                while (isspace((unsigned char) *p))
                        p++;
                if (*p == '\0')
                        return 0;
                size_t len = 0;
                while (p[len] && !isspace((unsigned char) p[len]))
                        len++;
                char **nl = realloc(*l, (n + 2) * sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                *l = nl;
                nl[n] = strndup(p, len);
                if (!nl[n])
                        return -ENOMEM;
                nl[++n] = NULL;
                p += len;
        }
}

void config_format_strv(const struct config_item *it, const void *data, FILE *f) {
        char *const *l = *(char *const *const *) data;

        for (size_t i = 0; l && l[i]; i++)
                fprintf(f, "%s%s", i ? " " : "", l[i]);
}

void config_clear_strv(void *data) {
        char ***l = data;
        strv_free(*l);
        *l = NULL;
}

const struct config_type config_type_strv = {
        "strv", parse_strv, config_format_strv, config_clear_strv, true,
};

/* ---- the table ---- */

const struct config_item *config_find(const struct config_item *table, const char *section,
                                      const char *key) {
        for (const struct config_item *it = table; it->key; it++)
                if (strcmp(it->section, section) == 0 && strcmp(it->key, key) == 0)
                        return it;
        return NULL;
}

static bool config_has_section(const struct config_item *table, const char *section) {
        for (const struct config_item *it = table; it->key; it++)
                if (strcmp(it->section, section) == 0)
                        return true;
        return false;
}

static int item_reset(const struct config_item *it, void *base, char *msg, size_t size) {
        void *data = FIELD(base, it);

        if (it->type->clear)
                it->type->clear(data);
        if (it->def[0] == '\0')
                return 0;
        return it->type->parse(it, it->def, data, msg, size);
}

static _printf_(4, 5) int config_fail(struct config_error *err, const char *file, unsigned line,
                                      const char *fmt, ...) {
        va_list ap;

        if (!err)
                return -EINVAL;
        snprintf(err->file, sizeof(err->file), "%s", file);
        err->line = line;
        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int config_defaults(const struct config_item *table, void *base, struct config_error *err) {
        for (const struct config_item *it = table; it->key; it++) {
                char msg[256];
                int r = item_reset(it, base, msg, sizeof(msg));
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return config_fail(err, "(defaults)", 0, "[%s] %s", it->section, msg);
        }
        return 0;
}

void config_free(const struct config_item *table, void *base) {
        for (const struct config_item *it = table; it->key; it++)
                if (it->type->clear)
                        it->type->clear(FIELD(base, it));
}

static char *strip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = '\0';
        return s;
}

/* Handles one logical line (continuations already joined). */
static int config_line(const struct config_item *table, void *base, const char *filename,
                       unsigned line, char *l, char *section, size_t section_size,
                       struct config_error *err) {
        char msg[256];
        char *p = strip(l);

        if (*p == '\0' || *p == '#' || *p == ';')
                return 0;
        if (*p == '[') {
                size_t n = strlen(p);
                if (p[n - 1] != ']')
                        return config_fail(err, filename, line, "invalid section header \"%s\"", p);
                p[n - 1] = '\0';
                p++;
                if (!config_has_section(table, p))
                        return config_fail(err, filename, line, "unknown section [%s]", p);
                snprintf(section, section_size, "%s", p);
                return 0;
        }
        char *eq = strchr(p, '=');
        if (!eq)
                return config_fail(err, filename, line, "expected Key=Value, got \"%s\"", p);
        *eq = '\0';
        char *key = strip(p), *value = strip(eq + 1);
        if (section[0] == '\0')
                return config_fail(err, filename, line, "%s= outside of any [Section]", key);
        const struct config_item *it = config_find(table, section, key);
        if (!it)
                return config_fail(err, filename, line, "unknown key %s= in [%s]", key, section);
        if (*value == '\0') {
                /* An empty assignment resets: lists to empty, scalars to their default. */
                if (it->type->is_list) {
                        it->type->clear(FIELD(base, it));
                        return 0;
                }
                int r = item_reset(it, base, msg, sizeof(msg));
                if (r < 0)
                        return r == -ENOMEM ? r : config_fail(err, filename, line, "%s", msg);
                return 0;
        }
        int r = it->type->parse(it, value, FIELD(base, it), msg, sizeof(msg));
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return config_fail(err, filename, line, "%s", msg);
        return 0;
}

int config_parse_buffer(const struct config_item *table, void *base, const char *filename,
                        const char *data, size_t size, struct config_error *err) {
        _cleanup_free_ char *logical = NULL;
        size_t logical_len = 0;
        char section[64] = "";
        unsigned line = 0, first_line = 0;
        size_t pos = 0;

        while (pos < size) {
                size_t end = pos;
                while (end < size && data[end] != '\n')
                        end++;
                size_t len = end - pos;
                line++;
                if (memchr(data + pos, '\0', len))
                        return config_fail(err, filename, line, "NUL byte in line");
                if (len > 0 && data[pos + len - 1] == '\r')
                        len--;

                size_t i = 0;
                while (i < len && isspace((unsigned char) data[pos + i]))
                        i++;
                /* Comment lines never continue, and inside a continuation they are skipped
                 * (systemd's rule), so a commented-out multi-line value stays commented. */
                bool comment = i < len && (data[pos + i] == '#' || data[pos + i] == ';');
                bool cont = !comment && len > 0 && data[pos + len - 1] == '\\';
                if (cont)
                        len--;
                if (!logical)
                        first_line = line;
                if (!comment) {
                        char *n = realloc(logical, logical_len + len + 2);
                        if (!n)
                                return -ENOMEM;
                        logical = n;
                        if (logical_len > 0)
                                logical[logical_len++] = ' ';
                        memcpy(logical + logical_len, data + pos, len);
                        logical_len += len;
                        logical[logical_len] = '\0';
                }
                pos = end < size ? end + 1 : end;
                if ((cont || (comment && logical)) && pos < size)
                        continue;
                if (logical) {
                        int r = config_line(table, base, filename, first_line, logical, section,
                                            sizeof(section), err);
                        if (r < 0)
                                return r;
                        free(logical);
                        logical = NULL;
                        logical_len = 0;
                }
        }
        return 0;
}

int config_parse_file(const struct config_item *table, void *base, const char *path,
                      struct config_error *err) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                if (r != -ENOENT && err) {
                        snprintf(err->file, sizeof(err->file), "%s", path);
                        err->line = 0;
                        snprintf(err->message, sizeof(err->message), "cannot open: %s",
                                 strerror(-r));
                }
                return r;
        }
        for (;;) {
                if (alloc - size < 4096) {
                        /* A config file of 16 MiB is a mistake, not a config. */
                        if (alloc >= 16U << 20)
                                return config_fail(err, path, 0, "file is too large");
                        char *n = realloc(buf, alloc + 65536);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        alloc += 65536;
                }
                size_t k = fread(buf + size, 1, alloc - size, f);
                size += k;
                if (k == 0) {
                        if (ferror(f))
                                return config_fail(err, path, 0, "read error");
                        break;
                }
        }
        return config_parse_buffer(table, base, path, buf ? buf : "", size, err);
}

static int cmp_basename(const void *a, const void *b) {
        const char *x = *(const char *const *) a, *y = *(const char *const *) b;
        return strcmp(strrchr(x, '/') + 1, strrchr(y, '/') + 1);
}

/* A drop-in masks lower-priority ones of the same name when it is a symlink to /dev/null or
 * an empty file (systemd's rule). */
static bool dropin_is_mask(const char *path) {
        char target[32];
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        struct stat st;

        if (n > 0) {
                target[n] = '\0';
                if (strcmp(target, "/dev/null") == 0)
                        return true;
        }
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

int config_list_dropins(const char *const *dirs, char ***ret) {
        char **l = NULL;
        bool *masked = NULL;
        size_t n = 0;
        int r = 0;

        for (const char *const *d = dirs; d && *d; d++) {
                DIR *dir = opendir(*d);
                struct dirent *de;

                if (!dir)
                        continue;
                while ((de = readdir(dir))) {
                        size_t len = strlen(de->d_name);
                        bool dup = false;

                        if (de->d_name[0] == '.' || len < 6 ||
                            strcmp(de->d_name + len - 5, ".conf") != 0)
                                continue;
                        for (size_t i = 0; i < n; i++)
                                if (strcmp(strrchr(l[i], '/') + 1, de->d_name) == 0)
                                        dup = true;
                        if (dup)
                                continue; /* a higher-priority directory has it */
                        char **nl = realloc(l, (n + 2) * sizeof(char *));
                        bool *nm = nl ? realloc(masked, (n + 1) * sizeof(bool)) : NULL;
                        if (nl)
                                l = nl;
                        if (nm)
                                masked = nm;
                        if (!nl || !nm || asprintf(&l[n], "%s/%s", *d, de->d_name) < 0) {
                                r = -ENOMEM;
                                closedir(dir);
                                goto fail;
                        }
                        masked[n] = dropin_is_mask(l[n]);
                        l[++n] = NULL;
                }
                closedir(dir);
        }
        /* Drop the masks, then order by file name across directories. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (masked[i])
                        free(l[i]);
                else
                        l[k++] = l[i];
        }
        free(masked);
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        l[k] = NULL;
        qsort(l, k, sizeof(char *), cmp_basename);
        *ret = l;
        return (int) k;
fail:
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
        free(masked);
        return r;
}

static int strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **nl = realloc(*l, (n + 2) * sizeof(char *));

        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[n] = strdup(s);
        nl[n + 1] = NULL;
        return nl[n] ? 0 : -ENOMEM;
}

int config_load(const struct config_item *table, void *base, const char *main,
                bool main_required, const char *const *dropin_dirs, char ***ret_files,
                struct config_error *err) {
        char **files = NULL, **dropins = NULL;
        int r;

        r = config_defaults(table, base, err);
        if (r < 0)
                return r;
        if (main) {
                r = config_parse_file(table, base, main, err);
                if (r == -ENOENT && main_required)
                        r = config_fail(err, main, 0, "config file does not exist");
                if (r == -ENOENT)
                        r = 0;
                else if (r >= 0)
                        r = strv_push(&files, main);
                if (r < 0)
                        goto finish;
        }
        r = config_list_dropins(dropin_dirs, &dropins);
        if (r < 0)
                goto finish;
        for (char **d = dropins; *d; d++) {
                r = config_parse_file(table, base, *d, err);
                if (r == -ENOENT) /* raced with removal */
                        continue;
                if (r < 0)
                        goto finish;
                r = strv_push(&files, *d);
                if (r < 0)
                        goto finish;
        }
        if (!files && !(files = calloc(1, sizeof(char *)))) {
                r = -ENOMEM;
                goto finish;
        }
        r = 0;
        if (ret_files)
                *ret_files = TAKE_PTR(files);
finish:
        strv_free(files);
        strv_free(dropins);
        return r;
}

void config_print(const struct config_item *table, const void *base, FILE *f) {
        const char *section = NULL;

        for (const struct config_item *it = table; it->key; it++) {
                if (!section || strcmp(section, it->section) != 0) {
                        fprintf(f, "%s[%s]\n", section ? "\n" : "", it->section);
                        section = it->section;
                }
                fprintf(f, "%s=", it->key);
                it->type->format(it, CFIELD(base, it), f);
                fputc('\n', f);
        }
}
