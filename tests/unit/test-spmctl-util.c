/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>

#include "spmctl-util.h"
#include "test.h"

TEST(sizes) {
        static const struct { const char *in; uint64_t want; } ok[] = {
                { "0", 0 }, { "4096", 4096 }, { "512M", 512ULL << 20 }, { "64G", 64ULL << 30 },
                { "64g", 64ULL << 30 }, { "1.5GiB", 3ULL << 29 }, { "2T", 2ULL << 40 },
                { "1K", 1024 }, { "1KB", 1024 }, { "1KiB", 1024 }, { "7B", 7 }, { ".5K", 512 },
                { "1P", 1ULL << 50 }, { "15P", 15ULL << 50 },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                uint64_t v = 1;
                ASSERT_OK(parse_size(ok[i].in, &v));
                ASSERT_EQ_U(v, ok[i].want);
        }
}

TEST(bad_sizes_leave_the_output_alone) {
        static const char *const bad[] = {
                "", "-1G", "+1G", " 1G", "1G ", "1Q", "G", "1.5", "0.3K", "1e3", "0x10", "inf",
                "nan", "1GG", "1iB", "1..5G", "1.2.3", ".", "1 G", "12Gb",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint64_t v = 42;
                ASSERT_TRUE(parse_size(bad[i], &v) < 0);
                ASSERT_EQ_U(v, 42);
        }
        uint64_t v = 42;
        ASSERT_ERROR(parse_size("16384P", &v), ERANGE);
        ASSERT_ERROR(parse_size(NULL, &v), EINVAL);
        ASSERT_EQ_U(v, 42);
}

TEST(durations) {
        static const struct { const char *in; uint64_t want; } ok[] = {
                { "30s", 30000000 }, { "100ms", 100000 }, { "250us", 250 }, { "5min", 300000000 },
                { "5m", 300000000 }, { "2h", 7200000000 }, { "1d", 86400000000 }, { "2", 2000000 },
                { "1.5s", 1500000 }, { "0", 0 }, { "3sec", 3000000 }, { "7usec", 7 },
                { "0.5ms", 500 },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                uint64_t v = 1;
                ASSERT_OK(parse_duration(ok[i].in, &v));
                ASSERT_EQ_U(v, ok[i].want);
        }
        static const char *const bad[] = { "", "-1s", "1 s", "1x", "s", "1ss", "inf", "1e3s", "0x5" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint64_t v = 42;
                ASSERT_TRUE(parse_duration(bad[i], &v) < 0);
                ASSERT_EQ_U(v, 42);
        }
        uint64_t v;
        ASSERT_ERROR(parse_duration("9999999999999d", &v), ERANGE);
}

TEST(uints) {
        uint64_t v = 0;
        ASSERT_OK(parse_uint("0x7f0000000000", UINT64_MAX, &v));
        ASSERT_EQ_U(v, 0x7f0000000000ULL);
        ASSERT_OK(parse_uint("4242", 4242, &v));
        ASSERT_EQ_U(v, 4242);
        ASSERT_ERROR(parse_uint("4243", 4242, &v), ERANGE);
        ASSERT_ERROR(parse_uint("99999999999999999999999", UINT64_MAX, &v), ERANGE);
        ASSERT_ERROR(parse_uint("-1", UINT64_MAX, &v), EINVAL);
        ASSERT_ERROR(parse_uint(" 1", UINT64_MAX, &v), EINVAL);
        ASSERT_ERROR(parse_uint("1x", UINT64_MAX, &v), EINVAL);
        ASSERT_ERROR(parse_uint("", UINT64_MAX, &v), EINVAL);
        ASSERT_EQ_U(v, 4242);
}

TEST(format_bytes_round_trips_through_parse_size) {
        char buf[32];
        ASSERT_STREQ(format_bytes(buf, 0), "0B");
        ASSERT_STREQ(format_bytes(buf, 1023), "1023B");
        ASSERT_STREQ(format_bytes(buf, 1024), "1.0K");
        ASSERT_STREQ(format_bytes(buf, 3LL << 29), "1.5G");
        ASSERT_STREQ(format_bytes(buf, 64LL << 30), "64G");
        ASSERT_STREQ(format_bytes(buf, 1LL << 60), "1024P");
        /* What the tables print, spmctl accepts back (exactly, for these). */
        static const int64_t sizes[] = { 1024, 2 << 20, 3LL << 29, 16LL << 30, 512LL << 40 };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                uint64_t v;
                ASSERT_OK(parse_size(format_bytes(buf, sizes[i]), &v));
                ASSERT_EQ_U(v, (uint64_t) sizes[i]);
        }
}

TEST(format_duration) {
        char buf[32];
        ASSERT_STREQ(format_duration(buf, -1), "-");
        ASSERT_STREQ(format_duration(buf, 250), "250us");
        ASSERT_STREQ(format_duration(buf, 1500), "1.5ms");
        ASSERT_STREQ(format_duration(buf, 10000), "10ms");
        ASSERT_STREQ(format_duration(buf, 30000000), "30s");
        ASSERT_STREQ(format_duration(buf, 1500000), "1.5s");
        ASSERT_STREQ(format_duration(buf, 303000000), "5min 3s");
        ASSERT_STREQ(format_duration(buf, 7800000000), "2h 10min");
        ASSERT_STREQ(format_duration(buf, 100800000000), "1d 4h");
}

TEST_MAIN()
