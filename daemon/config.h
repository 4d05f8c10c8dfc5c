/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * A small systemd-syntax config parser (systemd.syntax(7), reference/ipc-systemd-slurm.md §5):
 * "[Section]" headers, "Key=Value" assignments, whole-line "#" and ";" comments, a trailing
 * "\" joins the next line (with one space), whitespace around keys and values is dropped.
 * Files: the main file first, then "*.conf" drop-ins from a list of directories, deduplicated
 * by file name (the first directory in the list wins; a drop-in that is a symlink to
 * /dev/null or empty masks lower ones) and read in lexical order of their file names.
 * Single-valued keys: the last assignment wins; list keys accumulate; an empty assignment
 * resets either to its default (scalars) or to empty (lists).
 *
 * Every key is one row of a declarative table: {section, key, type, offset, unit, default,
 * range}. Unknown sections and keys and bad values are errors naming file:line.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config_error {
        char file[256];
        unsigned line; /* 0 = not about a line */
        char message[256];
};

struct config_item;

struct config_type {
        const char *name;
        /* Parses value (never empty) into data. Returns 0, or -EINVAL with msg set. */
        int (*parse)(const struct config_item *it, const char *value, void *data, char *msg,
                     size_t msg_size);
        /* Prints the value in a form parse() accepts back. */
        void (*format)(const struct config_item *it, const void *data, FILE *f);
        /* Frees what parse() allocated and resets data (NULL for plain values). */
        void (*clear)(void *data);
        bool is_list;
};

extern const struct config_type config_type_string;   /* char *, any text */
extern const struct config_type config_type_path;     /* char *, absolute path or empty */
extern const struct config_type config_type_bool;     /* bool: yes/no, true/false, on/off, 1/0 */
extern const struct config_type config_type_unsigned; /* unsigned, decimal */
extern const struct config_type config_type_uint64;   /* uint64_t, decimal */
extern const struct config_type config_type_size;     /* uint64_t bytes: 4096, 2M, 1.5G (1024-based) */
extern const struct config_type config_type_usec;     /* uint64_t usec: "10ms", "1min 30s", "infinity" */
extern const struct config_type config_type_double;   /* double */
extern const struct config_type config_type_loglevel; /* int: emerg..debug */
extern const struct config_type config_type_strv;     /* char **, whitespace-separated words */

struct config_item {
        const char *section;
        const char *key;
        const struct config_type *type;
        size_t offset;       /* into the settings struct */
        const char *unit;    /* documentation: "usec", "bytes", ... */
        const char *def;     /* the default, as it would be written in the file ("" = empty) */
        double min, max;     /* numeric range, inclusive; ignored when min == max == 0 */
        const char *help;    /* one line */
};

/* Resets every item of table in base to its default. Returns 0, or -EINVAL with *err set
 * when a default does not parse (a bug in the table). */
int config_defaults(const struct config_item *table, void *base, struct config_error *err);

/* Frees every allocated value in base. */
void config_free(const struct config_item *table, void *base);

/* Parses one buffer (the contents of `filename`) into base, on top of what is there. Returns
 * 0, or -EINVAL with *err naming filename:line and the problem. */
int config_parse_buffer(const struct config_item *table, void *base, const char *filename,
                        const char *data, size_t size, struct config_error *err);

/* Parses a file. Returns 0, -ENOENT when it does not exist, -EINVAL with *err, or another
 * negative errno with *err naming the file. */
int config_parse_file(const struct config_item *table, void *base, const char *path,
                      struct config_error *err);

/* Lists the drop-ins "*.conf" of dirs (highest priority first) with systemd's semantics.
 * Returns the number of files in *ret (a NULL-terminated, malloc'd list of malloc'd paths,
 * masked ones left out), or -ENOMEM. Missing directories are fine. */
int config_list_dropins(const char *const *dirs, char ***ret);

/* Defaults, then main (must exist when main_required), then its drop-ins. On success fills
 * *ret_files (may be NULL) with the files read, in order. On failure base holds partial
 * results (load into a scratch struct and swap on success). */
int config_load(const struct config_item *table, void *base, const char *main,
                bool main_required, const char *const *dropin_dirs, char ***ret_files,
                struct config_error *err);

/* Prints the normalised config: every section and key of the table in table order. */
void config_print(const struct config_item *table, const void *base, FILE *f);

/* Finds the item for section/key, or NULL. */
const struct config_item *config_find(const struct config_item *table, const char *section,
                                      const char *key);

void strv_free(char **l);

/* Building blocks for custom types that refine the ones above. */
void config_format_string(const struct config_item *it, const void *data, FILE *f);
void config_clear_string(void *data);
void config_format_strv(const struct config_item *it, const void *data, FILE *f);
void config_clear_strv(void *data);
void config_format_size(const struct config_item *it, const void *data, FILE *f);
