# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# What the slurm suite's tests share, on top of tests/integration/lib.sh (source that first).

# spm_slurm_node FAKE_ROOT FAKEKFD_DIR: a fake KFD node with two 1 GiB GPUs (gpu_ids 0x1111,
# 0x1222) published under FAKE_ROOT, and spmtierd modelling two GPUs, started.
spm_slurm_node() {
        mkdir -p "$1/etc"
        printf 'gpus=2\nvram=1G\nxnack=1\n' >"$1/etc/fakekfd.conf"
        FAKEKFD_ROOT=$1 "$2/fakekfd-setup" || { spm_fail "fakekfd-setup"; exit 1; }
        spm_gpu_config 2
        spm_start_daemon
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
