#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Slurm integration (config/slurm, docs/slurm.md) on a real single-node Slurm: munged,
# slurmctld and slurmd started here in the foreground (stopped by pid), on free ports, with
# two fake GPUs (mknod) backed by the fake KFD, and the real spmtierd on a private socket.
# Jobs run spm-workload under libspmtier-agent.so, injected by the task prolog.
#
# Usage (meson passes these): test-slurm.sh SCRIPT_DIR SPANK_PLUGIN AGENT FAKEKFD_DIR WORKLOAD
. "$SPMTIER_SOURCE_ROOT/tests/integration/lib.sh"

SCRIPTS=$1 SPANK=$2 AGENT=$3 FAKEKFD_DIR=$4 WORKLOAD=$5

[[ $(id -u) == 0 ]] || spm_skip "needs root (slurmd, munged, mknod, jobs as nobody)"
spm_require munged slurmctld slurmd srun sbatch squeue sinfo scontrol runuser
spm_setup
spm_require "$AGENT" "$WORKLOAD" "$SPANK"
id nobody >/dev/null 2>&1 || spm_skip "no user nobody"

R=$SPM_TMP/slurm
HOST=$(hostname -s)
export SLURM_CONF=$R/slurm.conf
FAKE=$SPM_TMP/fakekfd
SCONF=$R/spmtier-slurm.conf
SLOG=$R/spmtier-slurm.log
mkdir -p "$R"/{munge,state,spool,log,out,dev} "$FAKE/etc"
chmod 0755 "$R" "$R/munge"
chmod 1777 "$R/out"

# Two ports nobody listens on (the kernel picks them; Slurm binds them right after).
read -r CTLD_PORT SLURMD_PORT < <("$SPM_PYTHON" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# ---- the fake node: 2 GPUs of 1 GiB VRAM in the fake KFD, 2 gres devices for Slurm ----
printf 'gpus=2\nvram=1G\nxnack=1\n' >"$FAKE/etc/fakekfd.conf"
FAKEKFD_ROOT=$FAKE "$FAKEKFD_DIR/fakekfd-setup" || { spm_fail "fakekfd-setup"; exit 1; }
# Jobs of root and nobody share the fake node, as processes share a real one.
chmod -R a+rwX "$FAKE"
for i in 0 1; do mknod "$R/dev/renderD$((128 + i))" c 1 3; done

# ---- spmtierd ----
spm_gpu_config 2
spm_start_daemon

# ---- spmtier's Slurm scripts, as installed: wrappers only point them at this test's config
cat >"$SCONF" <<CONF
SPMCTL=$SPMCTL
SOCKET=$SPM_SOCK
TIMEOUT=3s
AGENT=$AGENT
SYSFS_ROOT=$FAKE
RUN_DIR=$R/run
LOG_FILE=$SLOG
CONF
chmod 0644 "$SCONF"
: >"$SLOG"
chmod 0666 "$SLOG"
for s in prolog epilog task-prolog; do
        printf '#!/bin/sh\nSPMTIER_SLURM_CONF=%s exec /bin/sh %s "$@"\n' "$SCONF" \
                "$SCRIPTS/spmtier-$s" >"$R/$s"
        chmod 0755 "$R/$s"
done
echo "required $SPANK policies=spmtier,none" >"$R/plugstack.conf"

mungekey --create --keyfile="$R/munge/munge.key" 2>/dev/null ||
        dd if=/dev/urandom of="$R/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$R/munge/munge.key"

cat >"$SLURM_CONF" <<CONF
ClusterName=spmtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$R/munge/munge.socket
StateSaveLocation=$R/state
SlurmdSpoolDir=$R/spool
SlurmctldPidFile=$R/slurmctld.pid
SlurmdPidFile=$R/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
Prolog=$R/prolog
Epilog=$R/epilog
TaskProlog=$R/task-prolog
PrologFlags=Alloc
PrologEpilogTimeout=30
PlugStackConfig=$R/plugstack.conf
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat >"$R/gres.conf" <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=$R/dev/renderD[128-129]
CONF

slurm_dump() {
        local f
        for f in "$R"/log/slurmctld.log "$R"/log/slurmd.log "$SLOG"; do
                [[ -s $f ]] || continue
                echo "----- $f -----" >&2
                tail -n 60 "$f" >&2
        done
}

# Runs before lib.sh's cleanup: no job may outlive the test (slurmstepd is not slurmd's
# child in the process sense we can wait for), then the daemons go by pid with SPM_PIDS.
slurm_exit() {
        local rc=$? i
        if [[ -n ${SLURM_UP:-} ]]; then
                scancel --quiet --full "--user=root" 2>/dev/null
                scancel --quiet --full "--user=nobody" 2>/dev/null
                for ((i = 0; i < 50; i++)); do
                        [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
                        sleep 0.1
                done
        fi
        ((rc != 0 && rc != 77)) || ((SPM_FAILED)) && slurm_dump
        (exit "$rc")
        spm_cleanup
}
trap slurm_exit EXIT

munged -F --socket="$R/munge/munge.socket" --key-file="$R/munge/munge.key" \
        --pid-file="$R/munge/munged.pid" --log-file="$R/log/munged.log" \
        --seed-file="$R/munge/munged.seed" 2>>"$R/log/munged.log" &
SPM_PIDS+=($!)
spm_wait_socket "$R/munge/munge.socket" || { spm_fail "munged did not start"; exit 1; }
slurmctld -D -c -f "$SLURM_CONF" 2>>"$R/log/slurmctld.stderr" &
SPM_PIDS+=($!)
slurmd -D -f "$SLURM_CONF" 2>>"$R/log/slurmd.stderr" &
SPM_PIDS+=($!)
SLURM_UP=1

node_state() {
        sinfo -h -n "$HOST" -o %T 2>/dev/null
}
# Waits up to $2 s (default 30) for the node to be in state $1.
wait_node() {
        local i
        for ((i = 0; i < ${2:-30} * 10; i++)); do
                [[ $(node_state) == "$1" ]] && return 0
                sleep 0.1
        done
        spm_log "node is '$(node_state)', not '$1'"
        return 1
}
spm_check "the node comes up idle" wait_node idle || exit 1

# The job's environment: the fake KFD for the workload (and the agent, which reads
# SPMTIER_SYSFS_ROOT from the task prolog), output paths.
export FAKEKFD_ROOT=$FAKE LD_LIBRARY_PATH=$FAKEKFD_DIR OUT=$R/out SPMCTL
WL="$WORKLOAD --size 16 --hot 4 --phases 2 --iters 2"
# What each task records: the agent mapped into a process of the task, its environment,
# the daemon's view of its lease, then the workload's result.
JOB='
set -e
grep -c libspmtier-agent /proc/self/maps >"$OUT/$SLURM_JOB_ID.agent" || true
env | grep -E "^(LD_PRELOAD|SPMTIER_)" | sort >"$OUT/$SLURM_JOB_ID.env" || true
"$SPMCTL" --socket "${SPMTIER_SOCKET:-/nonexistent}" --json jobs >"$OUT/$SLURM_JOB_ID.jobs" 2>&1 || true
'

# Prints the job id of the latest job of user $1 (default root).
last_job() {
        squeue -h --states=all -u "${1:-root}" -o %i 2>/dev/null | sort -n | tail -n 1
}
# Job $1's lease as its task saw it: a Python expression over its "jobs --json".
lease() {
        spm_json "$2" <"$R/out/$1.jobs"
}
# The summary the epilog left in the daemon's state directory.
summary() {
        spm_json "$2" <"$SPM_STATE/jobs/$1.json"
}

# ---- 1. srun with --spm-policy, one GPU ----------------------------------------------------
spm_check_rc "srun --spm-policy=spmtier" 0 srun --gres=gpu:1 --spm-policy=spmtier \
        bash -c "$JOB $WL --json"
j=$(last_job)
spm_check_match "the workload ran" '"total_usec"' "$SPM_OUT"
spm_check "the agent was in the task" test "$(cat "$R/out/$j.agent")" -ge 1
spm_check_match "LD_PRELOAD is the agent" "^LD_PRELOAD=$AGENT\$" "$(cat "$R/out/$j.env")"
spm_check_match "the agent gets the socket" "^SPMTIER_SOCKET=$SPM_SOCK\$" "$(cat "$R/out/$j.env")"
spm_check_match "the agent gets the sysfs root" "^SPMTIER_SYSFS_ROOT=$FAKE\$" "$(cat "$R/out/$j.env")"
spm_check "lease: job, uid 0, GPU 0, policy spmtier" test \
        "$(lease "$j" '[[x["id"], x["uid"], x["gpus"], x["policy"]] for x in j["jobs"]]')" = \
        "[[$j, 0, [0], \"spmtier\"]]"
spm_check "lease gone after the job" test "$(spm_ctl --json jobs | spm_json '[x["id"] for x in j["jobs"]]')" = '[]'
spm_check "summary written" test -s "$SPM_STATE/jobs/$j.json"
spm_check_match "prolog logged the KFD gpu_ids" "Job $j registered: uid 0, GPUs 0, .*; KFD gpu_ids 4369\$" "$(cat "$SLOG")"
spm_check_match "epilog logged the summary" "Job $j \(uid 0\) unregistered after" "$(cat "$SLOG")"

spm_done
