#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Slurm integration (config/slurm, docs/slurm.md) on a real single-node Slurm: munged,
# slurmctld and slurmd started here in the foreground (stopped by pid), on free ports, with
# two fake GPUs (mknod) backed by the fake KFD, and the real spmtierd on a private socket, set
# up as on a KFD node (kfd-smi collector, kfd-svm mover). Jobs run spm-workload under
# libspmtier-agent.so, injected by the task prolog; the agent connects to spmtierd with the
# job's SLURM_JOB_ID and carries out the moves spmtierd decides inside the job's process.
#
# Usage (meson passes these): test-slurm.sh SCRIPT_DIR SPANK_PLUGIN AGENT FAKEKFD_DIR WORKLOAD
. "$SPMTIER_SOURCE_ROOT/tests/integration/lib.sh"
. "$SPMTIER_SOURCE_ROOT/tests/slurm/lib-slurm.sh"

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
mkdir -p "$R"/{munge,state,spool,log,out,dev}
chmod 0755 "$R" "$R/munge"
chmod 1777 "$R/out"

# Two ports nobody listens on (the kernel picks them; Slurm binds them right after).
read -r CTLD_PORT SLURMD_PORT < <("$SPM_PYTHON" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# ---- the fake node (2 GPUs in the fake KFD, 2 gres devices for Slurm) and spmtierd ----
spm_slurm_node "$FAKE" "$FAKEKFD_DIR"
# Jobs of root and nobody share the fake node, as processes share a real one.
chmod -R a+rwX "$FAKE"
for i in 0 1; do mknod "$R/dev/renderD$((128 + i))" c 1 3; done

# ---- spmtier's Slurm scripts, as installed: wrappers only point them at this test's config
spm_slurm_settings "$SCONF" 3s "$R/run" "$SLOG" "$AGENT" "$FAKE"
: >"$SLOG"
chmod 0666 "$SLOG"
# The prolog's wrapper also keeps the environment Slurm gave it, for the checks below.
for s in prolog epilog task-prolog; do
        {
                echo '#!/bin/sh'
                [[ $s == prolog ]] && echo "/usr/bin/env >$R/out/prolog.\$SLURM_JOB_ID.env"
                echo "SPMTIER_SLURM_CONF=$SCONF exec /bin/sh $SCRIPTS/spmtier-$s \"\$@\""
        } >"$R/$s"
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
GresTypes=gpu,shard
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) Gres=gpu:2,shard:4 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat >"$R/gres.conf" <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=$R/dev/renderD[128-129]
# Two shards per GPU: two jobs can share one (Slurm fills GPU 0 first).
NodeName=$HOST Name=shard Count=4 File=$R/dev/renderD[128-129]
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
# SPMTIER_SYSFS_ROOT from the task prolog), output paths, and an agent that looks for KFD and
# new mappings every 200 ms rather than every 5 s (a run of the workload lasts about 1 s).
export FAKEKFD_ROOT=$FAKE LD_LIBRARY_PATH=$FAKEKFD_DIR OUT=$R/out SPMCTL SPMTIER_AGENT_RESCAN_MS=200
WL="$WORKLOAD --size 16 --hot 4 --phases 2 --iters 2"
# A workload worth tiering: a 16 MiB hot set in 32 MiB, XNACK on with PREFERRED_LOC in system
# memory, so a GPU fault only maps a page and only spmtierd's moves (the agent's prefetches)
# fill VRAM. A task runs it again and again (100 times at most) until the test, having seen
# what it waits for, creates $OUT/<job>.go; each run's pid goes to $OUT/<job>.pids.
TWL="$WORKLOAD --size 32 --hot 16 --phases 2 --iters 10 --sleep-ms 50 --xnack 1 --prefer-ram --json"
LOOP='n=0; until [ -e "$OUT/$SLURM_JOB_ID.go" ] || [ $n -ge 100 ]; do
'"$TWL"' & echo $! >>"$OUT/$SLURM_JOB_ID.pids"; wait $! || exit 1; n=$((n + 1))
done'
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
# Waits up to $2 s (default 30) until job $1 has left the queue (the epilog has run).
wait_job_gone() {
        local i
        for ((i = 0; i < ${2:-30} * 10; i++)); do
                [[ -z $(squeue -h -j "$1" -o %i 2>/dev/null) ]] && return 0
                sleep 0.1
        done
        spm_log "job $1 still queued: $(squeue -h -j "$1" -o '%i %T %R' 2>&1)"
        return 1
}
# Job $1's lease as its task saw it: a Python expression over its "jobs --json".
lease() {
        spm_slurm_jobs "$R/out/$1.jobs" | spm_json "$2"
}
# The summary the epilog left in the daemon's state directory.
summary() {
        spm_json "$2" <"$SPM_STATE/jobs/$1.json"
}

# Whether a run of job $1's workload (a pid in $OUT/$1.pids) is attached to the job's lease:
# the agent's Connect named the job (SLURM_JOB_ID), or the pid would have a job of its own.
workload_attached() {
        local p
        for p in $(spm_ctl --json jobs | spm_json \
                "' '.join(str(p) for x in j['jobs'] if x['id'] == $1 for p in x.get('pids', []))"); do
                grep -qx "$p" "$R/out/$1.pids" 2>/dev/null && return 0
        done
        return 1
}
# Prints the bytes of job $1's workload runs that spmtierd's ranges place in a GPU's VRAM.
workload_vram() {
        spm_ctl ranges --json | spm_json "sum(r['length'] for r in j['ranges'] if r['job'] == $1
                and r['location'].startswith('gpu')
                and str(r['pid']) in open('$R/out/$1.pids').read().split())" 2>/dev/null || echo 0
}
workload_in_vram() { (($(workload_vram "$1") > 0)); }
# Whether job $1's task has started (it wrote what it saw of its lease).
job_started() { [[ -s $R/out/$1.jobs ]]; }

# ---- 1. srun with --spm-policy, one GPU: spmtierd tiers the job through its agent ----------
srun --gres=gpu:1 --spm-policy=spmtier bash -c "$JOB $LOOP" >"$R/out/srun1.out" 2>&1 &
srun1=$!
spm_check "the srun job starts" spm_wait_until 10 eval 'j=$(last_job); [[ -n $j ]] && job_started "$j"' ||
        exit 1
spm_check "a workload run joined the job's lease (agent Connect with SLURM_JOB_ID)" \
        spm_wait_until 10 workload_attached "$j"
spm_check "spmtierd placed the workload's hot ranges in VRAM" spm_wait_until 10 workload_in_vram "$j"
# Section 4 runs the same workload under an 8M quota: without one, it gets more.
workload_above_8m() { (($(workload_vram "$1") > 8388608)); }
spm_check "without a quota, more than 8M of it in VRAM" spm_wait_until 10 workload_above_8m "$j"
touch "$R/out/$j.go"
wait "$srun1"
spm_check "srun --spm-policy=spmtier exits 0" test $? = 0
# srun returns when the job's step ends; the epilog may still be running.
spm_check "the job ends" wait_job_gone "$j"
spm_check_match "the workload ran" '"total_usec"' "$(cat "$R/out/srun1.out")"
spm_check "the agent was in the task" test "$(cat "$R/out/$j.agent")" -ge 1
spm_check_match "LD_PRELOAD is the agent" "^LD_PRELOAD=$AGENT\$" "$(cat "$R/out/$j.env")"
spm_check_match "the agent gets the socket" "^SPMTIER_SOCKET=$SPM_SOCK\$" "$(cat "$R/out/$j.env")"
spm_check_match "the agent gets the sysfs root" "^SPMTIER_SYSFS_ROOT=$FAKE\$" "$(cat "$R/out/$j.env")"
spm_check "lease: job, uid 0, GPU 0, policy spmtier" test \
        "$(lease "$j" '[[x["id"], x["uid"], x["gpus"], x["policy"]] for x in j["jobs"]]')" = \
        "[[$j, 0, [0], \"spmtier\"]]"
spm_check "lease gone after the job" test "$(spm_slurm_jobs | spm_json '[x["id"] for x in j["jobs"]]')" = '[]'
spm_check "summary written" test -s "$SPM_STATE/jobs/$j.json"
spm_check_match "prolog logged the KFD gpu_ids" "Job $j registered: uid 0, GPUs 0, .*; KFD gpu_ids 4369\$" "$(cat "$SLOG")"
spm_check "summary: spmtierd's own moves to the GPU (no hints)" test \
        "$(summary "$j" '[j["counters"]["migrations"] > 0, j["counters"]["bytes_to_gpu"] > 0, j["counters"]["hints"]]')" = \
        '[true, true, 0]'
# What a non-empty move count looks like in the epilog's line (human sizes: 16M, 8.0M; none: 0B).
MOVED='[1-9][0-9]* migrations \([0-9]+ failed\), [1-9][0-9.]*[KMGT] to GPU'
spm_check_match "epilog logged the summary with the moves" \
        "Job $j \(uid 0\) unregistered after .*: $MOVED" "$(cat "$SLOG")"

# ---- 2. srun without spmtier options, both GPUs: the daemon's default policy ----------------
spm_check_rc "srun --gres=gpu:2" 0 srun --gres=gpu:2 bash -c "$JOB $WL"
j=$(last_job)
spm_check "lease: GPUs 0,1, default policy, no quota" test \
        "$(lease "$j" '[[x["gpus"], x["policy"], x.get("vram_quota")] for x in j["jobs"]]')" = \
        '[[[0, 1], "spmtier", null]]'
spm_check_match "both KFD gpu_ids" "Job $j registered: .*; KFD gpu_ids 4369,4642\$" "$(cat "$SLOG")"
spm_check "the agent was in the task" test "$(cat "$R/out/$j.agent")" -ge 1

# ---- 3. sbatch with a policy and a quota ---------------------------------------------------
spm_check_rc "sbatch --spm-policy=none --spm-vram-quota=512M" 0 sbatch --parsable \
        --gres=gpu:1 --spm-policy=none --spm-vram-quota=512M -o "$R/out/%j.out" \
        --wrap "$JOB $WL --json"
j=$SPM_OUT
spm_check "sbatch job $j ends" wait_job_gone "$j"
spm_check_match "the batch workload ran" '"total_usec"' "$(cat "$R/out/$j.out")"
spm_check "prolog got the options" test "$(grep ^SPANK_SPM "$R/out/prolog.$j.env" | sort | tr '\n' ' ')" = \
        "SPANK_SPM_POLICY=none SPANK_SPM_VRAM_QUOTA=536870912 "
spm_check "lease: policy none, quota 512M" test \
        "$(lease "$j" '[[x["policy"], x["vram_quota"]] for x in j["jobs"]]')" = '[["none", 536870912]]'
spm_check "summary keeps policy and quota" test \
        "$(summary "$j" '[j["id"], j["policy"], j["vram_quota"], j["ended"]]')" = "[$j, \"none\", 536870912, \"unregistered\"]"

# ---- 4. two jobs share GPU 0 (shards), each with a quota below its hot set ----------------
# Each job runs the 16 MiB hot set against an 8 MiB quota: spmtierd moves each job's ranges
# through its agent, and no poll may find more than 8 MiB of a job in VRAM, neither in
# spmtierd's ranges nor in the fake KFD's per-process VRAM (sysfs proc/<pid>/vram_<gpu_id>).
spm_check_rc "sbatch shard A" 0 sbatch --parsable --gres=shard:1 --spm-vram-quota=8M \
        -o "$R/out/%j.out" --wrap "$JOB $LOOP"
ja=$SPM_OUT
spm_check_rc "sbatch shard B" 0 sbatch --parsable --gres=shard:1 --spm-vram-quota=8M \
        -o "$R/out/%j.out" --wrap "$JOB $LOOP"
jb=$SPM_OUT
spm_check "job A started" spm_wait_until 10 job_started "$ja"
spm_check "job B started" spm_wait_until 10 job_started "$jb"
spm_check "both leases on GPU 0 at once" test "$(spm_slurm_jobs | spm_json \
        'sorted([x["id"], x["gpus"], x["vram_quota"]] for x in j["jobs"])')" = \
        "[[$ja, [0], 8388608], [$jb, [0], 8388608]]"
# Prints the bytes of VRAM the fake KFD's sysfs says job $1's workload runs hold on GPU 0.
kfd_vram() {
        local p sum=0 v
        for p in $(cat "$R/out/$1.pids" 2>/dev/null); do
                v=$(cat "$FAKE/sys/class/kfd/kfd/proc/$p/vram_4369" 2>/dev/null) && sum=$((sum + v))
        done
        echo "$sum"
}
# One poll: each job's bytes in VRAM by spmtierd's ranges, appended to $R/out/quota.polls.
# Done once both jobs were seen in VRAM and 20 polls were made.
quota_poll() {
        local v
        v=$(spm_ctl ranges --json | spm_json "' '.join(str(sum(r['length'] for r in j['ranges']
                if r['job'] == x and r['location'].startswith('gpu'))) for x in ($ja, $jb))") || return 1
        echo "$v $(kfd_vram "$ja") $(kfd_vram "$jb")" >>"$R/out/quota.polls"
        awk '$1 > 0 { a = 1 } $2 > 0 { b = 1 } END { exit !(a && b && NR >= 20) }' "$R/out/quota.polls"
}
spm_check "both jobs' ranges reached VRAM" spm_wait_until 20 quota_poll
spm_log "VRAM bytes of A and B, highest over $(wc -l <"$R/out/quota.polls") polls: spmtierd's ranges" \
        "$(awk '$1 > a { a = $1 } $2 > b { b = $2 } $3 > c { c = $3 } $4 > d { d = $4 }
                END { print a + 0, b + 0 ", the fake KFD", c + 0, d + 0 }' "$R/out/quota.polls")"
spm_check "no poll of spmtierd's ranges found a job above its 8M quota" \
        awk '$1 > 8388608 || $2 > 8388608 { bad = 1 } END { exit bad }' "$R/out/quota.polls"
# The truth behind the ranges: the driver's (the fake KFD's) VRAM of the jobs' processes.
spm_check "nor did the fake KFD's sysfs" \
        awk '$3 > 8388608 || $4 > 8388608 { bad = 1 } END { exit bad }' "$R/out/quota.polls"
spm_check "job A's workload joined its lease" spm_wait_until 10 workload_attached "$ja"
spm_check "job B's workload joined its lease" spm_wait_until 10 workload_attached "$jb"
before=$(spm_ctl --json jobs)
touch "$R/out/$ja.go" "$R/out/$jb.go"
spm_check "job A ends" wait_job_gone "$ja"
spm_check "job B ends" wait_job_gone "$jb"
for x in "$ja" "$jb"; do
        spm_check "job $x's summary: spmtierd's own moves to the GPU, a modelled benefit, no hints" test \
                "$(summary "$x" '[j["counters"]["bytes_to_gpu"] > 0, j["counters"]["benefit_usec"] > 0, j["counters"]["hints"]]')" = \
                '[true, true, 0]'
        spm_check "job $x's summary: at least the moves its lease had counted" test \
                "$(summary "$x" 'j["counters"]["migrations"]')" -ge \
                "$(spm_json "[x['counters']['migrations'] for x in j['jobs'] if x['id'] == $x][0]" <<<"$before")"
        spm_check_match "the epilog logged job $x's moves" \
                "Job $x \(uid 0\) unregistered after .*: $MOVED" "$(cat "$SLOG")"
done
spm_check "jobs --json lists both as finished" test "$(spm_ctl --json jobs | spm_json \
        "sorted(x['id'] for x in j['finished'] if x['id'] in ($ja, $jb))")" = "[$ja, $jb]"

# ---- 5. a job of nobody -------------------------------------------------------------------
spm_check_rc "srun as nobody" 0 runuser -u nobody -- srun --chdir=/ --gres=gpu:1 \
        --spm-policy=spmtier bash -c "$JOB $WL"
j=$(last_job nobody)
spm_check "nobody's job ends" wait_job_gone "$j"
spm_check "nobody's task had the agent" test "$(cat "$R/out/$j.agent")" -ge 1
spm_check "nobody's lease as nobody saw it: uid 65534" test \
        "$(lease "$j" '[[x["id"], x["uid"]] for x in j["jobs"]]')" = "[[$j, 65534]]"
spm_check "nobody's summary" test "$(summary "$j" '[j["uid"], j["ended"]]')" = '[65534, "unregistered"]'

# ---- 6. --spm-off: no lease, no agent -----------------------------------------------------
spm_check_rc "srun --spm-off" 0 srun --gres=gpu:1 --spm-off bash -c "$JOB $WL"
j=$(last_job)
spm_check "no agent with --spm-off" test "$(cat "$R/out/$j.agent")" = 0
spm_check "no LD_PRELOAD with --spm-off" test -z "$(grep ^LD_PRELOAD= "$R/out/$j.env")"
spm_check "no summary with --spm-off" test ! -e "$SPM_STATE/jobs/$j.json"
spm_check_match "prolog logged the opt-out" "job $j opted out \(--spm-off\)" "$(cat "$SLOG")"

# ---- 7. bad options are refused at submit time ------------------------------------------
# spm_check_refused WHAT CMD...: CMD must fail (srun and sbatch exit 255 here, 1 elsewhere).
spm_check_refused() {
        local what=$1
        shift
        SPM_TESTS=$((SPM_TESTS + 1))
        if "$@" >"$SPM_TMP/out" 2>"$SPM_TMP/err"; then
                spm_fail "$what: accepted (cmd: $*)"
        fi
        SPM_ERR=$(cat "$SPM_TMP/err")
}
njobs=$(squeue -h --states=all -o %i | wc -l)
spm_check_refused "srun --spm-policy with a bad name" srun --spm-policy='a b' true
spm_check_match "says what a policy name is" "spm-policy=a b: a policy name is 1 to 31" "$SPM_ERR"
spm_check_refused "srun --spm-policy unknown" srun --spm-policy=fastest true
spm_check_match "lists the policies" "^srun: error: spmtier: --spm-policy=fastest: unknown policy \(available: spmtier,none\)\$" "$SPM_ERR"
spm_check_refused "sbatch --spm-vram-quota=lots" sbatch --spm-vram-quota=lots --wrap true
spm_check_match "says what a size is" "^sbatch: error: spmtier: --spm-vram-quota=lots: not a size above 0" "$SPM_ERR"
spm_check_refused "sbatch --spm-vram-quota=0" sbatch --spm-vram-quota=0 --wrap true
spm_check_refused "srun --spm-off with --spm-policy" srun --spm-off --spm-policy=none true
spm_check_match "says they conflict" "cannot be combined" "$SPM_ERR"
spm_check "no job was submitted" test "$(squeue -h --states=all -o %i | wc -l)" = "$njobs"

# ---- 8. spmtierd down: the job runs untiered; STRICT=yes drains the node --------------------
spm_stop_daemon
spm_check_rc "srun with the daemon down" 0 srun --gres=gpu:1 bash -c "$JOB $WL --json"
j=$(last_job)
spm_check_match "the workload ran untiered" '"total_usec"' "$SPM_OUT"
spm_check "no agent without a lease" test "$(cat "$R/out/$j.agent")" = 0
spm_check_match "prolog logged why" "job $j: spmtierd is not running.*; job $j runs untiered" "$(cat "$SLOG")"
# (Right after srun the node may still be completing the job: it must come back idle, not drain.)
spm_check "the node stays up" wait_node idle 10

echo STRICT=yes >>"$SCONF"
spm_check_rc "srun in strict mode with the daemon down fails" 1 srun --gres=gpu:1 true
spm_check_match "Slurm says the prolog failed" "[Pp]rolog" "$SPM_ERR"
spm_check "strict drains the node" wait_node drained 10
spm_check_match "the drain reason is the prolog" "Prolog" "$(sinfo -h -R -o %E)"
spm_check_match "prolog logged the strict failure" "spmtierd is not running.*STRICT=yes: failing" "$(cat "$SLOG")"

# Back to normal: daemon up, strict still on, node resumed; a job runs tiered again.
spm_start_daemon
scontrol update nodename="$HOST" state=resume
spm_check "the node resumes" wait_node idle
spm_check_rc "srun in strict mode with the daemon up" 0 srun --gres=gpu:1 bash -c "$JOB"
j=$(last_job)
spm_check "tiered again" test "$(cat "$R/out/$j.agent")" -ge 1
spm_check "the job ends" wait_job_gone "$j"
spm_check "summary after the restart" test -s "$SPM_STATE/jobs/$j.json"

spm_done
