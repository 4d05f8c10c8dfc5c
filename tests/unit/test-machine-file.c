/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Machine profiles as text: the bundled profile files, --set overrides, errors. */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "spmtier/machine.h"
#include "spmtier/macro.h"
#include "test.h"

static char *dump(const struct spm_machine *m) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ASSERT_NOT_NULL(f);
        spm_machine_dump(f, m);
        fclose(f);
        return buf;
}

TEST(profile_files_match_builtins) {
        const char *root = getenv("SPMTIER_SOURCE_ROOT");
        if (!root)
                test_skip("SPMTIER_SOURCE_ROOT not set (run under meson test)");
        for (const char *const *n = spm_machine_profile_names; *n; n++) {
                struct spm_machine builtin, loaded;
                char path[4096], err[512];

                ASSERT_OK(spm_machine_profile(*n, &builtin));
                /* Start from the other profile: the file must set everything itself. */
                ASSERT_OK(spm_machine_profile(strcmp(*n, "mi250x-gcd") ? "mi250x-gcd" : "mi300a-node",
                                              &loaded));
                snprintf(path, sizeof(path), "%s/config/profiles/%s.profile", root, *n);
                ASSERT_OK(spm_machine_load(path, &loaded, err, sizeof(err)));
                _cleanup_free_ char *a = dump(&builtin), *b = dump(&loaded);
                ASSERT_STREQ(a, b);
        }
}

TEST(dump_round_trips) {
        struct spm_machine m, n;
        char path[] = "/tmp/test-machine-file-XXXXXX", err[512];
        int fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        FILE *f = fdopen(fd, "w");
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        m.fault_usec = 12.5;
        m.bw_gbps[SPM_ACC_GPU(3)][SPM_LOC_SYSMEM] = 25;
        fprintf(f, "base = mi300a-node\n");
        spm_machine_dump(f, &m);
        fclose(f);
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &n));
        ASSERT_OK(spm_machine_load(path, &n, err, sizeof(err)));
        _cleanup_free_ char *a = dump(&m), *b = dump(&n);
        ASSERT_STREQ(a, b);
        unlink(path);
}

TEST(set_overrides) {
        struct spm_machine m;
        const char *why;

        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        ASSERT_OK(spm_machine_set_assignment(&m, "fault_usec = 45", &why));
        ASSERT_NEAR(m.fault_usec, 45, 0);
        ASSERT_OK(spm_machine_set_assignment(&m, "capacity.gpu2=16G", &why));
        ASSERT_EQ_U(m.capacity[SPM_LOC_GPU(2)], 16ULL << 30);
        ASSERT_OK(spm_machine_set_assignment(&m, "capacity.ram=1.5TB", &why));
        ASSERT_EQ_U(m.capacity[SPM_LOC_SYSMEM], 1500000000000ULL);
        ASSERT_OK(spm_machine_set_assignment(&m, "bw.gpu*.home=1600", &why));
        for (unsigned g = 0; g < m.n_gpus; g++)
                ASSERT_NEAR(m.bw_gbps[SPM_ACC_GPU(g)][SPM_LOC_GPU(g)], 1600, 0);
        ASSERT_NEAR(m.bw_gbps[SPM_ACC_GPU(0)][SPM_LOC_GPU(1)], 200, 0);
        ASSERT_OK(spm_machine_set_assignment(&m, "kind=device-private", &why));
        ASSERT_EQ(m.kind, SPM_MEM_DEVICE_PRIVATE);
        ASSERT_OK(spm_machine_set_assignment(&m, "n_gpus=2", &why));
        ASSERT_EQ(m.n_locs, 3);
        ASSERT_OK(spm_machine_validate(&m));
        ASSERT_OK(spm_machine_set_assignment(&m, "xnack=false", &why));
        ASSERT_FALSE(m.xnack);

        ASSERT_ERROR(spm_machine_set_assignment(&m, "fault_usec", &why), EINVAL);
        ASSERT_STREQ(why, "expected KEY=VALUE");
        ASSERT_ERROR(spm_machine_set_assignment(&m, "fault_usec=-1", &why), EINVAL);
        ASSERT_ERROR(spm_machine_set_assignment(&m, "fault_usec=fast", &why), EINVAL);
        ASSERT_ERROR(spm_machine_set_assignment(&m, "bogus=1", &why), EINVAL);
        ASSERT_STREQ(why, "unknown key");
        ASSERT_ERROR(spm_machine_set_assignment(&m, "bw.tpu0.ram=1", &why), EINVAL);
        ASSERT_ERROR(spm_machine_set_assignment(&m, "bw.gpu7.ram=1", &why), EINVAL); /* 2 GPUs */
        ASSERT_ERROR(spm_machine_set_assignment(&m, "bw.cpu=1", &why), EINVAL);
        ASSERT_ERROR(spm_machine_set_assignment(&m, "granule=3M", &why), EINVAL);
        ASSERT_ERROR(spm_machine_set_assignment(&m, "capacity.gpu0=12Q", &why), EINVAL);
        ASSERT_ERROR(spm_machine_set_assignment(&m, "base=mi999", &why), EINVAL);
}

TEST(load_errors_name_file_and_line) {
        char path[] = "/tmp/test-machine-file-XXXXXX", err[512];
        struct spm_machine m, before;
        int fd = mkstemp(path);
        ASSERT_TRUE(fd >= 0);
        const char text[] = "base = mi250x-gcd\n# a comment\n\nfault_usec = 20  # [A]\nbw.gpu0.mars = 3\n";
        ASSERT_TRUE(write(fd, text, sizeof(text) - 1) == (ssize_t) sizeof(text) - 1);
        close(fd);
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        before = m;
        ASSERT_ERROR(spm_machine_load(path, &m, err, sizeof(err)), EINVAL);
        char want[128];
        snprintf(want, sizeof(want), "%s:5: bw.gpu0.mars = 3: unknown location", path);
        ASSERT_STREQ(err, want);
        ASSERT_STREQ(m.name, before.name);   /* untouched */
        unlink(path);

        ASSERT_ERROR(spm_machine_load("/nonexistent.profile", &m, err, sizeof(err)), ENOENT);
}

TEST_MAIN()
