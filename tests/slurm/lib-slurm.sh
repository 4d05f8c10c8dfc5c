# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# What the slurm suite's tests share, on top of tests/integration/lib.sh (source that first).

# spm_slurm_node FAKE_ROOT FAKEKFD_DIR: a fake KFD node with two GPUs of 64 MiB (gpu_ids
# 0x1111, 0x1222; small, so a job's hot set is worth placing and a quota binds) published under
# FAKE_ROOT, and spmtierd on it as on a real KFD node (docs/agent.md): topology from its sysfs,
# GPU faults from the kfd-smi collector, moves carried out by the jobs' agents (kfd-svm).
spm_slurm_node() {
        mkdir -p "$1/etc"
        printf 'gpus=2\nvram=64M\nxnack=1\n' >"$1/etc/fakekfd.conf"
        FAKEKFD_ROOT=$1 "$2/fakekfd-setup" || { spm_fail "fakekfd-setup"; exit 1; }
        cat >"$SPM_CONF" <<CONF
[Daemon]
SysRoot=$1/sys
KfdDevice=$1/dev/kfd
FakeKfdRoot=$1
[Machine]
Profile=auto
[Policy]
EpochSec=100ms
[Collect]
Collectors=kfd-smi
[Move]
Mover=kfd-svm
CONF
        spm_start_daemon
}

# spm_slurm_jobs [FILE]: "spmctl --json jobs" (or FILE, its output) with only the Slurm jobs'
# leases: spmtierd also lists jobs of its own, with ids from 2^32 up (a process's implicit job,
# the one its collectors' processes belong to).
spm_slurm_jobs() {
        if (($#)); then cat "$1"; else spm_ctl --json jobs; fi |
                spm_json '{**j, "jobs": [x for x in j["jobs"] if x["id"] < 2**32]}'
}

# spm_slurm_settings FILE TIMEOUT RUN_DIR LOG_FILE AGENT FAKE_ROOT: the scripts' settings
# file (config/slurm/slurm.conf.in) for this test's daemon and fake node.
spm_slurm_settings() {
        cat >"$1" <<CONF
SPMCTL=$SPMCTL
SOCKET=$SPM_SOCK
TIMEOUT=$2
AGENT=$5
SYSFS_ROOT=$6
RUN_DIR=$3
LOG_FILE=$4
CONF
        chmod 0644 "$1"
}
