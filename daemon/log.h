/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Daemon logging: one line per message on stderr with the sd-daemon "<N>" priority prefix,
 * which journald (and systemd's stderr capture) turns into the message priority. The daemon
 * logs at its boundaries (STYLE R10); the modules under test (config, jobs, state, auth) do
 * not log, they return errors with messages.
 */

#include <syslog.h>

#include "spmtier/macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);

/* Parses "emerg".."debug" or "0".."7". Returns the level or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Writes one message. error is an errno (either sign) used for %m; returns -|error|. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...)                                        \
        ({                                                                       \
                int _level_ = (level), _e_ = (error);                            \
                _e_ = _e_ < 0 ? -_e_ : _e_;                                      \
                _level_ <= log_get_max_level() ? log_internal(_level_, _e_, __VA_ARGS__) \
                                               : -_e_;                           \
        })

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
