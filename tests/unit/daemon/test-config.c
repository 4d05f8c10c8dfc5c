/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "settings.h"
#include "spmtier/macro.h"
#include "test.h"

static const char *source_root(void) {
        const char *s = getenv("SPMTIER_SOURCE_ROOT");
        if (!s)
                test_skip("SPMTIER_SOURCE_ROOT is not set (run through meson test)");
        return s;
}

static char *print_settings(const struct spmtierd_settings *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ASSERT_NOT_NULL(f);
        spmtierd_settings_print(s, f);
        ASSERT_EQ(fclose(f), 0);
        return buf;
}

static int parse_text(const char *text, struct spmtierd_settings *s, struct config_error *err) {
        int r;

        memset(s, 0, sizeof(*s));
        r = config_defaults(spmtierd_config_table, s, err);
        if (r < 0)
                return r;
        return config_parse_buffer(spmtierd_config_table, s, "test.conf", text, strlen(text),
                                   err);
}

static char tmpdir[] = "/tmp/test-config-XXXXXX";

static void write_file(const char *rel, const char *text) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

TEST(defaults_parse_and_match_the_struct) {
        struct spmtierd_settings s = {};
        struct config_error err = {};

        ASSERT_OK(config_defaults(spmtierd_config_table, &s, &err));
        ASSERT_EQ(s.log_level, 6);
        ASSERT_STREQ(s.profile, "auto");
        ASSERT_EQ_U(s.epoch_usec, 10000);
        ASSERT_EQ_U(s.lease_usec, 86400ULL * 1000000ULL);
        ASSERT_NEAR(s.hysteresis, 1.25, 1e-12);
        ASSERT_NULL(s.admin_group);
        ASSERT_NULL(s.metrics_path);
        ASSERT_NULL(s.collectors);
        ASSERT_STREQ(s.mover, "sim");
        ASSERT_EQ(s.max_jobs, 4096);
        spmtierd_settings_done(&s);
}

/* Every key documented in the shipped file, commented out, with the compiled default; and the
 * file parses (its defaults all commented out, so it yields exactly the defaults). */
TEST(shipped_example_documents_every_key) {
        char path[512], *text = NULL;
        struct spmtierd_settings s = {}, d = {};
        struct config_error err = {};
        size_t size = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/config/spmtierd.conf", source_root());
        ASSERT_OK(config_defaults(spmtierd_config_table, &s, &err));
        ASSERT_OK(config_parse_file(spmtierd_config_table, &s, path, &err));
        ASSERT_OK(config_defaults(spmtierd_config_table, &d, &err));
        char *a = print_settings(&s), *b = print_settings(&d);
        ASSERT_STREQ(a, b);
        free(a);
        free(b);

        f = fopen(path, "re");
        ASSERT_NOT_NULL(f);
        ASSERT_TRUE(getdelim(&text, &size, '\0', f) > 0);
        fclose(f);
        for (const struct config_item *it = spmtierd_config_table; it->key; it++) {
                char want[256], section[64];
                snprintf(want, sizeof(want), "\n#%s=%s\n", it->key, it->def);
                snprintf(section, sizeof(section), "\n[%s]\n", it->section);
                if (!strstr(text, want))
                        fprintf(stderr, "missing: %s", want + 1);
                ASSERT_NOT_NULL(strstr(text, want));
                /* ... and documented under its own section. */
                ASSERT_TRUE(strstr(text, section) && strstr(text, section) < strstr(text, want));
                /* Its unit is named in the comment above it. */
                ASSERT_NOT_NULL(it->unit);
        }
        free(text);
        spmtierd_settings_done(&s);
        spmtierd_settings_done(&d);
}

/* tests/unit/daemon/config/NAME.conf prints as NAME.ok; the printed config parses back to
 * itself. SPMTIER_UPDATE_GOLDEN=1 rewrites the .ok files. */
TEST(golden_check_config_output) {
        char dir[512];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/tests/unit/daemon/config", source_root());
        d = opendir(dir);
        ASSERT_NOT_NULL(d);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                char conf[1024], ok[1024];
                struct spmtierd_settings s = {}, again = {};
                struct config_error err = {};

                if (len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0)
                        continue;
                snprintf(conf, sizeof(conf), "%s/%s", dir, de->d_name);
                snprintf(ok, sizeof(ok), "%s/%.*s.ok", dir, (int) (len - 5), de->d_name);
                ASSERT_OK(config_defaults(spmtierd_config_table, &s, &err));
                int r = config_parse_file(spmtierd_config_table, &s, conf, &err);
                if (r < 0)
                        fprintf(stderr, "%s:%u: %s\n", err.file, err.line, err.message);
                ASSERT_OK(r);
                char *printed = print_settings(&s);

                if (getenv("SPMTIER_UPDATE_GOLDEN")) {
                        FILE *f = fopen(ok, "we");
                        ASSERT_NOT_NULL(f);
                        fputs(printed, f);
                        fclose(f);
                }
                FILE *f = fopen(ok, "re");
                char *want = NULL;
                size_t size = 0;
                ASSERT_NOT_NULL(f);
                ASSERT_TRUE(getdelim(&want, &size, '\0', f) > 0);
                fclose(f);
                if (strcmp(want, printed) != 0)
                        fprintf(stderr, "%s differs from the output:\n%s", ok, printed);
                ASSERT_STREQ(want, printed);

                ASSERT_OK(parse_text(printed, &again, &err));
                char *reprinted = print_settings(&again);
                ASSERT_STREQ(printed, reprinted);
                free(reprinted);
                free(printed);
                free(want);
                spmtierd_settings_done(&s);
                spmtierd_settings_done(&again);
                n++;
        }
        closedir(d);
        ASSERT_GE(n, 2);
}

TEST(errors_name_file_and_line) {
        static const struct {
                const char *text;
                unsigned line;
                const char *what;
        } cases[] = {
                { "[Daemon]\nLogLevel=loud\n", 2, "LogLevel= wants" },
                { "# c\n\n[Daemon]\nNoSuchKey=1\n", 4, "unknown key NoSuchKey=" },
                { "[Nope]\n", 1, "unknown section [Nope]" },
                { "LogLevel=info\n", 1, "outside of any [Section]" },
                { "[Daemon]\njust words\n", 2, "expected Key=Value" },
                { "[Daemon\n", 1, "invalid section header" },
                { "[Policy]\nEpochSec=10ms\nEpochSec=2min\n", 3, "out of range" },
                { "[Policy]\nHysteresis=0.5\n", 2, "out of range" },
                { "[Policy]\nHysteresis=nan\n", 2, "wants a number" },
                { "[Policy]\nGranule=3M\n", 2, "power of two" },
                { "[Policy]\nMigrateBudget=12Q\n", 2, "wants a size" },
                { "[Policy]\nMinResidencyEpochs=-1\n", 2, "non-negative integer" },
                { "[Policy]\nMinResidencyEpochs=99999999999\n", 2, "non-negative integer" },
                { "[Policy]\nDefault=fastest\n", 2, "not one of: spmtier none" },
                { "[Machine]\nProfile=mi999\n", 2, "not one of" },
                { "[Collect]\nCollectors=replay bogus\n", 2, "bogus is not one of" },
                { "[Collect]\nCollectors=replay\nCollectors=replay\n", 3, "twice" },
                { "[Daemon]\nProcRoot=relative/path\n", 2, "absolute path" },
                { "[Daemon]\nDefaultLeaseSec=1min 30\n", 2, "time span" },
                { "[Replay]\nLoop=maybe\n", 2, "boolean" },
                { "[Machine]\nFastNode=64\n", 2, "neither auto nor a NUMA node id" },
                { "[Machine]\nFastNode=-1\n", 2, "neither auto nor a NUMA node id" },
                { "[Machine]\nFastNode=fast\n", 2, "neither auto nor a NUMA node id" },
                { "[Machine]\nNodeCapacity=0:1G\nNodeCapacity=1:1G 2\n", 3, "NODE:SIZE" },
                { "[Machine]\nNodeCapacity=:1G\n", 2, "NODE:SIZE" },
                { "[Machine]\nNodeCapacity=64:1G\n", 2, "node id 0..63" },
                { "[Machine]\nNodeCapacity=+1:1G\n", 2, "NODE:SIZE" },
                { "[Machine]\nNodeCapacity=1:lots\n", 2, "wants a size" },
                { "[Machine]\nNodeCapacity=1:0\n", 2, "above 0" },
                /* A continued line is reported at its first line. */
                { "[Policy]\n\nHysteresis=\\\n  x\n", 3, "wants a number" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct spmtierd_settings s;
                struct config_error err = {};

                ASSERT_ERROR(parse_text(cases[i].text, &s, &err), EINVAL);
                if (err.line != cases[i].line || !strstr(err.message, cases[i].what))
                        fprintf(stderr, "case %zu: %s:%u: %s\n", i, err.file, err.line,
                                err.message);
                ASSERT_STREQ(err.file, "test.conf");
                ASSERT_EQ(err.line, cases[i].line);
                ASSERT_NOT_NULL(strstr(err.message, cases[i].what));
                spmtierd_settings_done(&s);
        }
}

/* The topology overrides land in the struct as the manager hands them to
 * spm_topology_to_machine(); a bad word leaves the list as it was. */
TEST(topology_overrides) {
        struct spmtierd_settings s;
        struct config_error err = {};

        ASSERT_OK(parse_text("[Machine]\nFastNode=1\nNodeCapacity=0:18M 1:2G\n"
                             "NodeCapacity=0:20M\n", &s, &err));
        ASSERT_EQ(s.fast_node, 1);
        ASSERT_EQ_U(s.node_capacity[0], 20 << 20);
        ASSERT_EQ_U(s.node_capacity[1], UINT64_C(2) << 30);
        for (int id = 2; id < SPM_TOPO_MAX_NODES; id++)
                ASSERT_EQ_U(s.node_capacity[id], 0);
        spmtierd_settings_done(&s);

        ASSERT_OK(parse_text("", &s, &err));
        ASSERT_EQ(s.fast_node, -1);
        ASSERT_EQ_U(s.node_capacity[0], 0);
        spmtierd_settings_done(&s);

        ASSERT_ERROR(parse_text("[Machine]\nNodeCapacity=5:1G\nNodeCapacity=6:2G 7:x\n", &s,
                                &err), EINVAL);
        ASSERT_EQ_U(s.node_capacity[5], UINT64_C(1) << 30);
        ASSERT_EQ_U(s.node_capacity[6], 0);
        spmtierd_settings_done(&s);
}

TEST(syntax_comments_continuation_crlf_reset) {
        struct spmtierd_settings s;
        struct config_error err = {};

        ASSERT_OK(parse_text("; leading comment\r\n"
                             "[Policy]\r\n"
                             "  # indented comment\n"
                             "  HalfLifeSec = 1min \\\n"
                             "# a comment inside a continuation is skipped\n"
                             "   30s\n"
                             "Hysteresis=2\n"
                             "Hysteresis=\n"           /* empty: back to the default */
                             "# comment ending in a backslash does not continue \\\n"
                             "MigrateBudget=1.5G\n"
                             "[Collect]\n"
                             "Collectors=replay\n"
                             "[Daemon]\n"
                             "AdminGroup=hpc admins\n"
                             "LogLevel=7\n",
                             &s, &err));
        ASSERT_EQ_U(s.half_life_usec, 90ULL * 1000000ULL);
        ASSERT_NEAR(s.hysteresis, 1.25, 1e-12);
        ASSERT_EQ_U(s.migrate_budget, 3ULL << 29);
        ASSERT_STREQ(s.collectors[0], "replay");
        ASSERT_NULL(s.collectors[1]);
        ASSERT_STREQ(s.admin_group, "hpc admins");
        ASSERT_EQ(s.log_level, 7);
        spmtierd_settings_done(&s);

        /* Lists: an empty assignment resets, later ones accumulate. */
        ASSERT_OK(parse_text("[Collect]\nCollectors=replay\nCollectors=\n", &s, &err));
        ASSERT_NULL(s.collectors);
        spmtierd_settings_done(&s);

        /* A NUL byte is an error, not a truncation. */
        memset(&s, 0, sizeof(s));
        ASSERT_OK(config_defaults(spmtierd_config_table, &s, &err));
        ASSERT_ERROR(config_parse_buffer(spmtierd_config_table, &s, "nul.conf",
                                         "[Daemon]\nLogLevel=info\0x\n", 25, &err), EINVAL);
        ASSERT_EQ(err.line, 2);
        spmtierd_settings_done(&s);
}

TEST(time_and_size_formats_round_trip) {
        static const struct {
                const char *in, *out;
        } times[] = {
                { "10ms", "10ms" }, { "90s", "1min 30s" }, { "1.5s", "1s 500ms" },
                { "2", "2s" }, { "1h 1us", "1h 1us" }, { "1 d", "1d" }, { "3 weeks", "3w" },
                { "250msec", "250ms" },
        };
        static const struct {
                const char *in, *out;
        } sizes[] = {
                { "4096", "4K" }, { "2M", "2M" }, { "1.5G", "1536M" }, { "1000", "1000" },
                { "0", "0" }, { "1T", "1T" },
        };

        for (size_t i = 0; i < ELEMENTSOF(times); i++) {
                char text[128];
                struct spmtierd_settings s;
                struct config_error err = {};

                snprintf(text, sizeof(text), "[Daemon]\nDefaultLeaseSec=%s\n", times[i].in);
                /* DefaultLeaseSec has a 1s minimum; use HalfLifeSec for short spans. */
                if (strstr(times[i].in, "ms"))
                        snprintf(text, sizeof(text), "[Policy]\nHalfLifeSec=%s\n", times[i].in);
                ASSERT_OK(parse_text(text, &s, &err));
                char *p = print_settings(&s);
                char want[128];
                snprintf(want, sizeof(want), "%s=%s\n",
                         strstr(times[i].in, "ms") ? "HalfLifeSec" : "DefaultLeaseSec",
                         times[i].out);
                if (!strstr(p, want))
                        fprintf(stderr, "want %s in\n%s", want, p);
                ASSERT_NOT_NULL(strstr(p, want));
                free(p);
                spmtierd_settings_done(&s);
        }
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                char text[128], want[128];
                struct spmtierd_settings s;
                struct config_error err = {};

                snprintf(text, sizeof(text), "[Policy]\nMigrateBudget=%s\n", sizes[i].in);
                ASSERT_OK(parse_text(text, &s, &err));
                char *p = print_settings(&s);
                snprintf(want, sizeof(want), "MigrateBudget=%s\n", sizes[i].out);
                ASSERT_NOT_NULL(strstr(p, want));
                free(p);
                spmtierd_settings_done(&s);
        }
}

TEST(dropins_order_override_and_mask) {
        char main_path[512], d1[512], d2[512];
        struct spmtierd_settings s = {};
        struct config_error err = {};
        char **files = NULL;

        ASSERT_NOT_NULL(mkdtemp(tmpdir));
        snprintf(main_path, sizeof(main_path), "%s/spmtierd.conf", tmpdir);
        write_file("spmtierd.conf", "[Policy]\nHysteresis=2\nEpochSec=20ms\n");
        snprintf(d1, sizeof(d1), "%s/spmtierd.conf.d", tmpdir);
        ASSERT_EQ(mkdir(d1, 0755), 0);
        write_file("spmtierd.conf.d/20-b.conf", "[Policy]\nHysteresis=3\n[Collect]\nCollectors=\n");
        write_file("spmtierd.conf.d/10-a.conf", "[Policy]\nHysteresis=9\n[Collect]\nCollectors=replay\n");
        write_file("spmtierd.conf.d/ignored.txt", "garbage\n");

        ASSERT_OK(spmtierd_settings_load(main_path, &s, &files, &err));
        /* Drop-ins after the main file, in lexical order: 20-b wins over 10-a. */
        ASSERT_NEAR(s.hysteresis, 3, 1e-12);
        ASSERT_EQ_U(s.epoch_usec, 20000);
        ASSERT_NULL(s.collectors);
        ASSERT_NOT_NULL(strstr(files[0], "spmtierd.conf"));
        ASSERT_NOT_NULL(strstr(files[1], "10-a.conf"));
        ASSERT_NOT_NULL(strstr(files[2], "20-b.conf"));
        ASSERT_NULL(files[3]);
        strv_free(files);
        spmtierd_settings_done(&s);

        /* Two directories: the first masks same-named files of the second (/dev/null
         * symlink), and files of both are read in one lexical order. */
        snprintf(d2, sizeof(d2), "%s/vendor.d", tmpdir);
        ASSERT_EQ(mkdir(d2, 0755), 0);
        write_file("vendor.d/20-b.conf", "[Policy]\nHysteresis=5\n");
        write_file("vendor.d/15-v.conf", "[Policy]\nHysteresis=7\n");
        char mask[600];
        snprintf(mask, sizeof(mask), "%s/15-v.conf", d1);
        const char *dirs[] = { d1, d2, NULL };
        ASSERT_EQ(config_list_dropins(dirs, &files), 3);
        ASSERT_NOT_NULL(strstr(files[0], "spmtierd.conf.d/10-a.conf"));
        ASSERT_NOT_NULL(strstr(files[1], "vendor.d/15-v.conf"));
        ASSERT_NOT_NULL(strstr(files[2], "spmtierd.conf.d/20-b.conf"));
        strv_free(files);
        ASSERT_EQ(symlink("/dev/null", mask), 0);
        ASSERT_EQ(config_list_dropins(dirs, &files), 2);
        ASSERT_NOT_NULL(strstr(files[0], "10-a.conf"));
        ASSERT_NOT_NULL(strstr(files[1], "spmtierd.conf.d/20-b.conf"));
        strv_free(files);

        /* A bad drop-in names itself; an explicit config file must exist. */
        write_file("spmtierd.conf.d/30-bad.conf", "[Policy]\n\nHysteresis=abc\n");
        ASSERT_ERROR(spmtierd_settings_load(main_path, &s, NULL, &err), EINVAL);
        ASSERT_NOT_NULL(strstr(err.file, "30-bad.conf"));
        ASSERT_EQ(err.line, 3);
        char missing[600];
        snprintf(missing, sizeof(missing), "%s/none.conf", tmpdir);
        ASSERT_ERROR(spmtierd_settings_load(missing, &s, NULL, &err), EINVAL);
        ASSERT_NOT_NULL(strstr(err.message, "does not exist"));

        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        ASSERT_EQ(system(cmd), 0);
}

TEST_MAIN()
