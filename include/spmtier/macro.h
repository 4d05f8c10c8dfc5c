/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Ownership and cleanup helpers, used everywhere in spmtier (STYLE.md R5).
 *
 * Conventions:
 *   - int xyz_new(..., Xyz **ret) builds into a _cleanup_(xyz_freep) local and sets
 *     *ret = TAKE_PTR(x) only on success; ret_ out-parameters are never clobbered on failure.
 *   - xyz_free() accepts NULL, tolerates half-built objects and returns NULL.
 *   - Functions that can fail return a negative errno; 0 and >0 carry documented meanings.
 *   - goto is for forward cleanup only.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _const_ __attribute__((const))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
#define DIV_ROUND_UP(x, y) (((x) + (y) - 1) / (y))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define ALIGN_UP(x, a) ALIGN_DOWN((x) + (a) - 1, (a))
#define IS_POWER_OF_2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)

/* Takes ownership of a pointer: returns it and leaves NULL behind. */
#define TAKE_PTR(p)                              \
        ({                                       \
                __typeof__(p) _tp_ = (p);        \
                (p) = NULL;                      \
                _tp_;                            \
        })

/* Takes ownership of a file descriptor: returns it and leaves -EBADF behind. */
#define TAKE_FD(fd)                              \
        ({                                       \
                int _tf_ = (fd);                 \
                (fd) = -EBADF;                   \
                _tf_;                            \
        })

/* Defines void funcp(type *p) that calls func(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)          \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        *p = func(*p);                   \
        }

/* Returns -errno for a libc call that returned < 0 and set errno, else the value. */
#define RET_NERRNO(expr)                                 \
        ({                                               \
                __typeof__(expr) _r_ = (expr);           \
                _r_ < 0 ? -errno : _r_;                  \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline FILE *safe_fclose(FILE *f) {
        if (f)
                (void) fclose(f);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, safe_fclose);
#define _cleanup_fclose_ _cleanup_(safe_fclosep)

/* Overflow-checked arithmetic: return false on overflow. */
#define ADD_SAFE(ret, a, b) (!__builtin_add_overflow((a), (b), (ret)))
#define MUL_SAFE(ret, a, b) (!__builtin_mul_overflow((a), (b), (ret)))
