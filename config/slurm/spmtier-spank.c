/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * spmtier.so, the SPANK plugin: per-job spmtier options for srun, sbatch and salloc.
 *
 *   --spm-policy=NAME       placement policy for the job (spmtierd: "spmtier", "none")
 *   --spm-vram-quota=SIZE   VRAM the job may fill per GPU ("16G", "512MiB", bytes)
 *   --spm-off               no lease, no agent: the job runs untiered
 *
 * Options are checked where the user submits (srun, sbatch, salloc), so a mistake is an
 * error at submit time, not a drained node. They reach the Prolog and Epilog through the
 * job-control environment as SPANK_SPM_POLICY, SPANK_SPM_VRAM_QUOTA (bytes) and SPANK_SPM_OFF.
 *
 * plugstack.conf arguments:
 *   policies=A,B,...        the names --spm-policy accepts (default: spmtier,none)
 *
 * Callbacks run inside srun, sbatch, slurmd and slurmstepd, so this file keeps no state
 * beyond the parsed options and never exits.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <slurm/spank.h>

#include "spmctl-util.h"

SPANK_PLUGIN(spmtier, 1);

#define POLICY_MAX 32  /* spmtierd's limit (JOB_POLICY_MAX), NUL included */
#define POLICIES_MAX 256

static char opt_policy[POLICY_MAX];
static uint64_t opt_quota;
static bool opt_quota_set, opt_off;
static char allowed_policies[POLICIES_MAX] = "spmtier,none";

/* True when `name` is one of the comma-separated names in `list`. */
static bool in_list(const char *list, const char *name) {
        size_t n = strlen(name);

        for (const char *p = list; *p; ) {
                const char *end = strchrnul(p, ',');
                if ((size_t) (end - p) == n && strncmp(p, name, n) == 0)
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}

static int policy_cb(int val, const char *arg, int remote) {
        size_t n = arg ? strlen(arg) : 0;

        if (n == 0 || n >= sizeof(opt_policy) || strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "abcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
                slurm_error("spmtier: --spm-policy=%s: a policy name is 1 to %zu letters, "
                            "digits, '_' or '-'", arg ? arg : "", sizeof(opt_policy) - 1);
                return -1;
        }
        /* slurmstepd gets options that the submitting side already checked against its own
         * plugstack.conf; a node with a different list must not fail the running job. */
        if (!remote && !in_list(allowed_policies, arg)) {
                slurm_error("spmtier: --spm-policy=%s: unknown policy (available: %s)", arg,
                            allowed_policies);
                return -1;
        }
        memcpy(opt_policy, arg, n + 1);
        return 0;
}

static int quota_cb(int val, const char *arg, int remote) {
        uint64_t v;
        int r = parse_size(arg ? arg : "", &v);

        if (r == -ERANGE || (r == 0 && v > INT64_MAX)) {
                slurm_error("spmtier: --spm-vram-quota=%s: too large", arg);
                return -1;
        }
        if (r < 0 || v == 0) {
                slurm_error("spmtier: --spm-vram-quota=%s: not a size above 0 (bytes, or a "
                            "number with K, M, G, T or P, e.g. 16G or 512MiB)", arg ? arg : "");
                return -1;
        }
        opt_quota = v;
        opt_quota_set = true;
        return 0;
}

static int off_cb(int val, const char *arg, int remote) {
        opt_off = true;
        return 0;
}

static struct spank_option options[] = {
        { "spm-policy", "NAME", "Memory tiering policy for the job (spmtier)", 1, 0, policy_cb },
        { "spm-vram-quota", "SIZE", "VRAM per GPU the job's data may fill (spmtier), e.g. 16G",
          1, 0, quota_cb },
        { "spm-off", NULL, "Run the job without memory tiering (spmtier)", 0, 0, off_cb },
};

static int parse_args(int ac, char **av) {
        for (int i = 0; i < ac; i++) {
                if (strncmp(av[i], "policies=", 9) == 0 && av[i][9] &&
                    strlen(av[i] + 9) < sizeof(allowed_policies)) {
                        memcpy(allowed_policies, av[i] + 9, strlen(av[i] + 9) + 1);
                        continue;
                }
                slurm_error("spmtier: plugstack.conf: unknown or bad argument \"%s\" "
                            "(known: policies=NAME,...)", av[i]);
                return -1;
        }
        return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av) {
        if (parse_args(ac, av) < 0)
                return -1;
        for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
                spank_err_t e = spank_option_register(sp, &options[i]);
                if (e != ESPANK_SUCCESS) {
                        slurm_error("spmtier: cannot register --%s: %s", options[i].name,
                                    spank_strerror(e));
                        return -1;
                }
        }
        return 0;
}

static int control_setenv(spank_t sp, const char *name, const char *value) {
        spank_err_t e = spank_job_control_setenv(sp, name, value, 1);

        if (e != ESPANK_SUCCESS) {
                slurm_error("spmtier: cannot pass %s to the prolog: %s", name, spank_strerror(e));
                return -1;
        }
        return 0;
}

/* After all options are parsed, on the submitting side: reject contradictions and hand the
 * options to the Prolog. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av) {
        spank_context_t ctx = spank_context();
        char quota[24];

        if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR)
                return 0;
        if (opt_off && (opt_policy[0] || opt_quota_set)) {
                slurm_error("spmtier: --spm-off cannot be combined with --spm-policy or "
                            "--spm-vram-quota");
                return -1;
        }
        if (opt_off)
                return control_setenv(sp, "SPM_OFF", "1");
        if (opt_policy[0] && control_setenv(sp, "SPM_POLICY", opt_policy) < 0)
                return -1;
        if (opt_quota_set) {
                snprintf(quota, sizeof(quota), "%" PRIu64, opt_quota);
                if (control_setenv(sp, "SPM_VRAM_QUOTA", quota) < 0)
                        return -1;
        }
        return 0;
}
