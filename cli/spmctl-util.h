/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Parsers for spmctl's arguments and formatters for its tables. Pure: no I/O, no globals. */

#include <stdint.h>

/* Parses a size: "4096", "512M", "64G", "1.5GiB", "2T": 1024-based K M G T P, each optionally
 * followed by "i" and/or "B" (lowercase k m g t p too). Returns 0 and sets *ret, -EINVAL for
 * anything else (signs, fractions of a byte, trailing text), -ERANGE above UINT64_MAX. */
int parse_size(const char *s, uint64_t *ret);

/* Parses a duration into usec: a number with us/usec, ms/msec, s/sec, m/min, h or d; a bare
 * number is seconds ("30s", "100ms", "1.5h", "2"). Returns 0, -EINVAL or -ERANGE (beyond
 * INT64_MAX usec). */
int parse_duration(const char *s, uint64_t *ret_usec);

/* Parses a non-negative decimal or 0x-hex integer no larger than max. Returns 0, -EINVAL
 * (empty, sign, trailing text) or -ERANGE. */
int parse_uint(const char *s, uint64_t max, uint64_t *ret);

/* "512B", "1.5K", "64G": one decimal below 10, none above; returns buf. */
const char *format_bytes(char buf[static 32], int64_t bytes);

/* "250us", "1.5ms", "30s", "5min 3s", "2h 10min", "3d 4h"; "-" for negative; returns buf. */
const char *format_duration(char buf[static 32], int64_t usec);
