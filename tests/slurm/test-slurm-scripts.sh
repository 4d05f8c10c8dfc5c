#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Slurm scripts on their own, run the way slurmd runs them (env -i: no PATH, only Slurm's
# variables), against the real spmtierd: the paths test-slurm.sh cannot reach cheaply through
# a cluster — bad input from the job-control environment, GPU indices the KFD topology lacks,
# a settings file others can write, spmtierd refusing or not answering, a lease that already
# ended, LD_PRELOAD kept.
#
# Usage (meson passes these): test-slurm-scripts.sh SCRIPT_DIR AGENT FAKEKFD_DIR
. "$SPMTIER_SOURCE_ROOT/tests/integration/lib.sh"
. "$SPMTIER_SOURCE_ROOT/tests/slurm/lib-slurm.sh"

SCRIPTS=$1 AGENT=$2 FAKEKFD_DIR=$3
spm_setup
spm_require "$AGENT"

FAKE=$SPM_TMP/fakekfd
spm_slurm_node "$FAKE" "$FAKEKFD_DIR"
CONF=$SPM_TMP/spmtier-slurm.conf
LOG=$SPM_TMP/spmtier-slurm.log
spm_slurm_settings "$CONF" 1s "$SPM_TMP/run/slurm" "$LOG" "$AGENT" "$FAKE"

# run SCRIPT VAR=VALUE...: a script as slurmd runs it; output in $SPM_OUT/$SPM_ERR.
run() {
        local s=$1
        shift
        env -i SPMTIER_SLURM_CONF="$CONF" "$@" /bin/sh "$SCRIPTS/spmtier-$s"
}
prolog() { run prolog SLURM_JOB_UID=1000 "$@"; }
marker() { echo "$SPM_TMP/run/slurm/job-$1"; }
lease_ids() { spm_slurm_jobs | spm_json '[x["id"] for x in j["jobs"]]'; }

# A good prolog: lease, marker with both gpu_ids (0x1111, 0x1222 on the fake).
spm_check_rc "prolog" 0 prolog SLURM_JOB_ID=10 SLURM_JOB_GPUS=1,0 SPANK_SPM_VRAM_QUOTA=1048576
spm_check "marker" test "$(cat "$(marker 10)")" = "$(printf 'gpus=1,0\ngpu_ids=4642,4369\npolicy=default\nvram_quota=1048576')"
spm_check "lease" test "$(lease_ids)" = '[10]'
spm_check_rc "prolog again (a retry renews)" 0 prolog SLURM_JOB_ID=10 SLURM_JOB_GPUS=1,0

# The task prolog keeps the task's LD_PRELOAD and adds the agent once.
spm_check_rc "task prolog" 0 run task-prolog SLURM_JOB_ID=10 LD_PRELOAD=/lib/other.so
spm_check_match "agent first, the task's preload kept" "^export LD_PRELOAD=$AGENT:/lib/other.so\$" "$SPM_OUT"
spm_check_rc "task prolog, agent preloaded already" 0 run task-prolog SLURM_JOB_ID=10 LD_PRELOAD="$AGENT"
spm_check "no second agent" test -z "$(grep LD_PRELOAD <<<"$SPM_OUT")"
spm_check_rc "task prolog of an untiered job" 0 run task-prolog SLURM_JOB_ID=11
spm_check "prints nothing" test -z "$SPM_OUT"

# Epilog: ends the lease; a lease already gone is fine; no marker, nothing to do.
spm_check_rc "epilog" 0 run epilog SLURM_JOB_ID=10
spm_check "lease ended" test "$(lease_ids)" = '[]'
spm_check "marker removed" test ! -e "$(marker 10)"
spm_check_rc "prolog 12" 0 prolog SLURM_JOB_ID=12 SLURM_JOB_GPUS=0
spm_check_rc "admin ends 12" 0 spm_ctl job-end 12
spm_check_rc "epilog after the lease ended" 0 run epilog SLURM_JOB_ID=12 STRICT=yes
spm_check_match "logged as already ended" "job 12: the lease had already ended" "$(cat "$LOG")"

# Input the prolog must not trust, and GPUs the node lacks: untiered by default.
for bad in "SLURM_JOB_GPUS=2 =not in the KFD topology at .* \(2 GPUs\)" \
           "SLURM_JOB_GPUS=0,x =is not a list of GPU indices" \
           "SPANK_SPM_POLICY=a;reboot =policy name 'a;reboot' has characters" \
           "SPANK_SPM_VRAM_QUOTA=\$(id) =VRAM quota '.*' is not a size" \
           "SPANK_SPM_POLICY=fastest =spmtierd refused: Unknown policy \"fastest\""; do
        var=${bad%% =*} want=${bad#* =}
        spm_check_rc "prolog with $var" 0 prolog SLURM_JOB_ID=20 SLURM_JOB_GPUS=0 "$var"
        spm_check_match "logged: $want" "job 20: .*$want.*runs untiered" "$(tail -n 1 "$LOG")"
        spm_check "no lease for $var" test "$(lease_ids)" = '[]'
        spm_check "no marker for $var" test ! -e "$(marker 20)"
done
spm_check_rc "prolog without a job id" 0 prolog SLURM_JOB_GPUS=0
spm_check_rc "prolog with no GPUs" 0 prolog SLURM_JOB_ID=21
spm_check_match "no GPUs logged" "job 21 has no GPUs on this node" "$(cat "$LOG")"

# A settings file someone else may write is not sourced as root.
if [[ $(id -u) == 0 ]]; then
        chmod 0666 "$CONF"
        spm_check_rc "prolog with a writable settings file" 0 prolog SLURM_JOB_ID=22 SLURM_JOB_GPUS=0
        spm_check_match "ignored and said so" "ignoring $CONF: it must be owned by root" "$SPM_ERR"
        spm_check "no lease from an ignored file" test "$(lease_ids)" = '[]'
        chmod 0644 "$CONF"
fi

# spmtierd stopped (SIGSTOP: it accepts nothing): the 1 s timeout, then strict.
kill -STOP "$SPM_DAEMON_PID"
spm_check_rc "prolog, daemon not answering" 0 prolog SLURM_JOB_ID=23 SLURM_JOB_GPUS=0
spm_check_match "timeout logged" "job 23: spmtierd did not answer within 1s" "$(cat "$LOG")"
echo STRICT=yes >>"$CONF"
spm_check_rc "strict prolog, daemon not answering" 1 prolog SLURM_JOB_ID=24 SLURM_JOB_GPUS=0
kill -CONT "$SPM_DAEMON_PID"
spm_check_rc "strict prolog with a bad policy" 1 prolog SLURM_JOB_ID=25 SLURM_JOB_GPUS=0 SPANK_SPM_POLICY=fastest
spm_check_rc "strict prolog" 0 prolog SLURM_JOB_ID=26 SLURM_JOB_GPUS=0
spm_stop_daemon
spm_check_rc "strict epilog, daemon down" 1 run epilog SLURM_JOB_ID=26
spm_check_match "epilog logged why" "job 26: cannot end the lease: spmtierd is not running.*STRICT=yes: failing" "$(cat "$LOG")"
spm_done
