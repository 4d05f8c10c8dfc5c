/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * A small test harness: TEST(name) self-registers, ASSERT_*() report file:line and the values
 * they compared, and a failed assertion fails the whole binary. A test binary that cannot run
 * here calls test_skip("why"), which exits 77 (meson counts it as skipped; make check fails
 * when a required suite skips).
 *
 *     #include "test.h"
 *     TEST(adds) { ASSERT_EQ(1 + 1, 2); }
 *     TEST_MAIN()
 *
 * Run one test: ./test-foo NAME; list them: ./test-foo --list.
 */

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_TEST_SKIP 77

struct test_case {
        const char *name;
        void (*func)(void);
        struct test_case *next;
};

extern struct test_case *test_cases_head;
extern const char *test_current_name;
extern unsigned test_assertions;

#define TEST(n)                                                                         \
        static void test_##n(void);                                                     \
        static struct test_case test_case_##n = { .name = #n, .func = test_##n };       \
        __attribute__((constructor)) static void test_register_##n(void) {              \
                struct test_case **p = &test_cases_head;                                \
                while (*p)                                                              \
                        p = &(*p)->next;                                                \
                *p = &test_case_##n;                                                    \
        }                                                                               \
        static void test_##n(void)

#define test_fail(file, line, ...)                                                      \
        do {                                                                            \
                fprintf(stderr, "%s:%d: %s: assertion failed: ", file, line,            \
                        test_current_name ? test_current_name : "?");                   \
                fprintf(stderr, __VA_ARGS__);                                           \
                fputc('\n', stderr);                                                    \
                abort();                                                                \
        } while (0)

#define ASSERT_TRUE(expr)                                                               \
        do {                                                                            \
                test_assertions++;                                                      \
                if (!(expr))                                                            \
                        test_fail(__FILE__, __LINE__, "%s", #expr);                     \
        } while (0)
#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_CMP_INT(a, op, b)                                                        \
        do {                                                                            \
                intmax_t _a_ = (intmax_t) (a), _b_ = (intmax_t) (b);                    \
                test_assertions++;                                                      \
                if (!(_a_ op _b_))                                                      \
                        test_fail(__FILE__, __LINE__, "%s %s %s (%jd vs %jd)", #a, #op, \
                                  #b, _a_, _b_);                                        \
        } while (0)
#define ASSERT_CMP_UINT(a, op, b)                                                       \
        do {                                                                            \
                uintmax_t _a_ = (uintmax_t) (a), _b_ = (uintmax_t) (b);                 \
                test_assertions++;                                                      \
                if (!(_a_ op _b_))                                                      \
                        test_fail(__FILE__, __LINE__, "%s %s %s (%ju vs %ju)", #a, #op, \
                                  #b, _a_, _b_);                                        \
        } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_INT(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_INT(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_INT(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_INT(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_INT(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP_INT(a, >=, b)
#define ASSERT_EQ_U(a, b) ASSERT_CMP_UINT(a, ==, b)
#define ASSERT_LE_U(a, b) ASSERT_CMP_UINT(a, <=, b)

/* r >= 0 (negative-errno convention); prints the errno name on failure. */
#define ASSERT_OK(expr)                                                                 \
        do {                                                                            \
                intmax_t _r_ = (intmax_t) (expr);                                       \
                test_assertions++;                                                      \
                if (_r_ < 0)                                                            \
                        test_fail(__FILE__, __LINE__, "%s = %jd (%s)", #expr, _r_,      \
                                  strerror((int) -_r_));                                \
        } while (0)
#define ASSERT_ERROR(expr, err)                                                         \
        do {                                                                            \
                intmax_t _r_ = (intmax_t) (expr);                                       \
                test_assertions++;                                                      \
                if (_r_ != -(intmax_t) (err))                                           \
                        test_fail(__FILE__, __LINE__, "%s = %jd, expected -%s (%d)",    \
                                  #expr, _r_, #err, -(int) (err));                      \
        } while (0)

#define ASSERT_STREQ(a, b)                                                              \
        do {                                                                            \
                const char *_a_ = (a), *_b_ = (b);                                      \
                test_assertions++;                                                      \
                if (!_a_ || !_b_ || strcmp(_a_, _b_) != 0)                              \
                        test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")",    \
                                  #a, #b, _a_ ? _a_ : "(null)", _b_ ? _b_ : "(null)");  \
        } while (0)

#define ASSERT_NEAR(a, b, eps)                                                          \
        do {                                                                            \
                double _a_ = (double) (a), _b_ = (double) (b), _e_ = (double) (eps);    \
                test_assertions++;                                                      \
                if (!(fabs(_a_ - _b_) <= _e_))                                          \
                        test_fail(__FILE__, __LINE__, "%s ~= %s (%.9g vs %.9g, eps %g)",\
                                  #a, #b, _a_, _b_, _e_);                               \
        } while (0)

#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)
#define ASSERT_NULL(p) ASSERT_TRUE((p) == NULL)

/* Exits 77 with the reason: the binary could not run here. Never call it to hide a failure. */
#define test_skip(...)                                                                  \
        do {                                                                            \
                printf("SKIP: ");                                                       \
                printf(__VA_ARGS__);                                                    \
                putchar('\n');                                                          \
                exit(EXIT_TEST_SKIP);                                                   \
        } while (0)

#define TEST_MAIN()                                                                     \
        struct test_case *test_cases_head;                                              \
        const char *test_current_name;                                                  \
        unsigned test_assertions;                                                       \
        int main(int argc, char **argv) {                                               \
                unsigned n = 0;                                                         \
                if (argc > 1 && strcmp(argv[1], "--list") == 0) {                       \
                        for (struct test_case *t = test_cases_head; t; t = t->next)     \
                                puts(t->name);                                          \
                        return 0;                                                       \
                }                                                                       \
                for (struct test_case *t = test_cases_head; t; t = t->next) {           \
                        if (argc > 1 && strcmp(argv[1], t->name) != 0)                  \
                                continue;                                               \
                        test_current_name = t->name;                                    \
                        printf("/* %s */\n", t->name);                                  \
                        fflush(stdout);                                                 \
                        t->func();                                                      \
                        n++;                                                            \
                }                                                                       \
                if (n == 0) {                                                           \
                        fprintf(stderr, "no test ran\n");                               \
                        return 1;                                                       \
                }                                                                       \
                printf("%u tests, %u assertions passed\n", n, test_assertions);         \
                return 0;                                                               \
        }
