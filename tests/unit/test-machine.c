/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "spmtier/machine.h"
#include "test.h"

TEST(profiles_validate) {
        for (const char *const *n = spm_machine_profile_names; *n; n++) {
                struct spm_machine m;

                ASSERT_OK(spm_machine_profile(*n, &m));
                ASSERT_STREQ(m.name, *n);
                ASSERT_OK(spm_machine_validate(&m));
        }
        struct spm_machine m;
        ASSERT_ERROR(spm_machine_profile("mi999", &m), ENOENT);
}

TEST(mi250x_costs_direction) {
        struct spm_machine m;

        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        /* A GPU reads its own VRAM faster than RAM over the link, ~36x by bandwidth. */
        double gv = spm_machine_access_ns(&m, SPM_ACC_GPU(0), SPM_LOC_GPU(0));
        double gr = spm_machine_access_ns(&m, SPM_ACC_GPU(0), SPM_LOC_SYSMEM);
        ASSERT_TRUE(gr > 30 * gv);
        /* The CPU reads VRAM in place, but it costs CPU time: RAM is cheaper for the CPU. */
        double cr = spm_machine_access_ns(&m, SPM_ACC_CPU, SPM_LOC_SYSMEM);
        double cv = spm_machine_access_ns(&m, SPM_ACC_CPU, SPM_LOC_GPU(0));
        ASSERT_TRUE(cv > cr);
        ASSERT_NEAR(cr, 64.0 / 41.0 + 0.01 * 100.0, 1e-9);
        /* 2 MiB at 25 GB/s = 83.9 us, plus the 10 us call. */
        ASSERT_NEAR(spm_machine_migrate_usec(&m, 2 << 20), 10.0 + 2097152.0 / 25000.0, 1e-9);
        ASSERT_NEAR(spm_machine_fault_usec(&m, 0), 30.0, 1e-9);
        ASSERT_EQ(m.home[SPM_ACC_GPU(3)], SPM_LOC_GPU(3));
        ASSERT_EQ(spm_machine_loc_from_name(&m, "gpu7"), 8);
        ASSERT_ERROR(spm_machine_loc_from_name(&m, "gpu8"), ENOENT);
}

TEST(accessor_names) {
        ASSERT_EQ(spm_accessor_from_name("cpu", 8), SPM_ACC_CPU);
        ASSERT_EQ(spm_accessor_from_name("gpu0", 8), SPM_ACC_GPU(0));
        ASSERT_EQ(spm_accessor_from_name("gpu7", 8), SPM_ACC_GPU(7));
        ASSERT_ERROR(spm_accessor_from_name("gpu8", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("gpu01", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("gpu", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("gpu1x", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("CPU", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("gpu+1", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("gpu 1", 8), EINVAL);
        ASSERT_ERROR(spm_accessor_from_name("gpu-1", 8), EINVAL);
}

TEST(validate_rejects) {
        struct spm_machine m;

        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        m.granule = 3 << 20;
        ASSERT_ERROR(spm_machine_validate(&m), EINVAL);
        ASSERT_OK(spm_machine_profile("mi250x-gcd", &m));
        m.bw_gbps[1][0] = 0;
        ASSERT_ERROR(spm_machine_validate(&m), EINVAL);
        ASSERT_OK(spm_machine_profile("mi300a-node", &m));
        m.home[2] = 7;
        ASSERT_ERROR(spm_machine_validate(&m), EINVAL);
}

TEST_MAIN()
