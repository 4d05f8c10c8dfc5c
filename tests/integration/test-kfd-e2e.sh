#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The KFD path end to end: spmtierd with the kfd-smi collector and the kfd-svm mover on a fake
# KFD node (docs/fakekfd.md), GPU processes (kfd-actor) with libspmtier-agent.so preloaded.
# The truth behind every check is the fake's residency of the process's pages, not what the
# daemon believes.
#
#   test-kfd-e2e.sh <kfd-actor>
. "$(dirname "$0")/lib.sh"

ACTOR=${1:?usage: test-kfd-e2e.sh <kfd-actor>}
spm_setup
trap '' PIPE # an actor that died makes its FIFO fail (EPIPE), not the test
AGENT=$SPM_BUILD/agent/libspmtier-agent.so
FAKELIB=$SPM_BUILD/fakekfd
spm_require "$ACTOR" "$SPM_BUILD/fakekfd/fakekfd-setup"
[[ -f $AGENT ]] || { spm_log "FAIL: $AGENT is not built"; exit 1; }

ROOT=$SPM_TMP/node
spm_kfd_node "$ROOT" kfd-smi CommandTimeoutSec=2s || exit 1
spm_start_daemon
MiB=1048576

# ---- actors: one process each, commands on a FIFO, one answer line each ----
declare -A A_PID A_FD A_OUT A_BASE
actor_start() { # NAME SIZE_MIB [ENV=VALUE...] -- [ACTOR ARGS...]
        local name=$1 size=$2 fd
        shift 2
        local envs=() args=()
        while (($#)) && [[ $1 != -- ]]; do envs+=("$1"); shift; done
        (($#)) && shift
        args=("$@")
        mkfifo "$SPM_TMP/$name.in"
        : >"$SPM_TMP/$name.out"
        env FAKEKFD_ROOT="$ROOT" LD_LIBRARY_PATH="$FAKELIB" LD_PRELOAD="$AGENT" \
                SPMTIER_SOCKET="$SPM_SOCK" SPMTIER_AGENT_RESCAN_MS=100 "${envs[@]}" \
                "$ACTOR" "$size" "${args[@]}" <"$SPM_TMP/$name.in" >"$SPM_TMP/$name.out" &
        A_PID[$name]=$!
        SPM_PIDS+=($!)
        exec {fd}>"$SPM_TMP/$name.in"
        A_FD[$name]=$fd
        A_BASE[$name]=$(actor "$name" base | cut -d' ' -f2)
}
actor() { # NAME COMMAND... -> prints the answer
        local name=$1 n i
        shift
        n=$(wc -l <"$SPM_TMP/$name.out")
        echo "$*" >&"${A_FD[$name]}"
        for ((i = 0; i < 200; i++)); do
                (($(wc -l <"$SPM_TMP/$name.out") > n)) && break
                kill -0 "${A_PID[$name]}" 2>/dev/null || { echo "dead"; return 1; }
                sleep 0.02
        done
        tail -n 1 "$SPM_TMP/$name.out"
}
# Ends actor NAME with SIGTERM and waits until it has exited: "its exit frees its ranges" counts
# from the exit (an ASan build's leak check at exit can take seconds on a loaded machine).
actor_stop() {
        kill -TERM "${A_PID[$1]}"
        spm_wait_exit "${A_PID[$1]}" $((15 * ${SPM_WAIT_SCALE:-4})) >/dev/null
}
vram_pages() {
        local v
        v=$(actor "$1" resident "$2" "$3" | cut -d' ' -f2)
        [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo -1
}
wait_until() { spm_wait_until "$@"; } # lib.sh: SECONDS x SPM_WAIT_SCALE
ranges_json() { spm_ctl ranges --json; }
# Bytes the daemon tracks for pid (any location) / at a location.
tracked() { ranges_json | spm_json "sum(r['length'] for r in j['ranges'] if r['pid'] == $1)"; }
tracked_at() { ranges_json | spm_json "sum(r['length'] for r in j['ranges'] if r['pid'] == $1 and r['location'] == '$2')"; }
has_ranges() { (($(tracked "$1") > 0)); }
resident_is() { (($(vram_pages "$1" "$2" "$3") == $4)); }
resident_at_most() { (($(vram_pages "$1" "$2" "$3") <= $4)); }
epoch() { spm_raw call io.spmtier.daemon.GetStatus | grep -o '"epoch": *[0-9]*' | grep -o '[0-9]*$'; }
hex() { printf '0x%x' $(($1)); }

# ---- 1. an agent attaches (implicit job) and its ranges reach the engine ----
actor_start a 8 -- --xnack 0
spm_check "the agent's ranges are tracked" wait_until 5 has_ranges "${A_PID[a]}"
spm_check_match "an implicit job for the process" "\"id\": *$((1099511627776 + A_PID[a]))" \
        "$(spm_ctl jobs --json)"

# ---- 2. hints move ranges (through the agent, verified in the fake) ----
spm_check_rc "hint pin-gpu" 0 spm_ctl hint "${A_PID[a]}" "${A_BASE[a]}" $((4 * MiB)) pin-gpu --gpu 0
spm_check "the hinted 4 MiB reach VRAM" wait_until 5 resident_is a 0 4 1024
spm_check "the daemon sees them in gpu0" wait_until 2 \
        test "$(tracked_at "${A_PID[a]}" gpu0)" -ge $((4 * MiB))
spm_check_rc "hint pin-ram" 0 spm_ctl hint "${A_PID[a]}" "${A_BASE[a]}" $((4 * MiB)) pin-ram
spm_check "pin-ram brings them home" wait_until 10 resident_is a 0 4 0
spm_check_rc "hint none" 0 spm_ctl hint "${A_PID[a]}" "${A_BASE[a]}" $((4 * MiB)) none

# ---- 3. hot ranges reach VRAM within a bounded number of epochs (GPU faults only) ----
# PREFERRED_LOC=RAM: the driver only maps on a fault, so only spmtier moves the data.
actor_start b 24 -- --xnack 1 --prefer-ram
spm_check "b's ranges are tracked" wait_until 5 has_ranges "${A_PID[b]}"
e0=$(epoch)
spm_check_match "b's GPU touch" "^ok" "$(actor b gpu 0 12)"
spm_check "the hot 12 MiB reach VRAM" wait_until 5 resident_is b 0 12 3072
e1=$(epoch)
spm_log "hot range reached VRAM after $((e1 - e0)) epochs"
spm_check "within 40 epochs" test $((e1 - e0)) -le 40

# ---- 4. cold ones leave: b's set has gone cold; c pins 58 MiB, which needs b's room ----
# 64 MiB of VRAM (the engine keeps 1/16 of it free): 58 + 12 do not fit, so b's cold set goes.
sleep 1
actor_start c 60 -- --xnack 0
spm_check "c's ranges are tracked" wait_until 5 has_ranges "${A_PID[c]}"
spm_check_rc "c pins 58 MiB" 0 spm_ctl hint "${A_PID[c]}" "${A_BASE[c]}" $((58 * MiB)) pin-gpu --gpu 0
spm_check "c's 58 MiB reach VRAM" wait_until 15 resident_is c 0 58 14848
spm_check "b's cold set left VRAM (at most 2 MiB stay)" wait_until 5 resident_at_most b 0 12 512
spm_check "the daemon agrees: b's cold set is in RAM" wait_until 2 \
        test "$(tracked_at "${A_PID[b]}" gpu0)" -le $((2 * MiB))
actor_stop c
spm_check "c's exit frees its ranges" wait_until 5 test "$(tracked "${A_PID[c]}")" -eq 0
actor_stop b
spm_check "b's exit frees its ranges" wait_until 5 test "$(tracked "${A_PID[b]}")" -eq 0

# ---- 5. a VRAM-full prefetch is detected as not resident ----
spm_ctl monitor --json >"$SPM_TMP/monitor.json" 2>&1 &
SPM_PIDS+=($!)
sleep 0.3
bo=$(actor a vram 64 | cut -d' ' -f2)
spm_check "a VRAM BO fills the GPU" test "$bo" -gt 0
spm_check_rc "hint pin-gpu into a full GPU" 0 \
        spm_ctl hint "${A_PID[a]}" "$(hex "${A_BASE[a]} + 4 * MiB")" $((4 * MiB)) pin-gpu --gpu 0
spm_check "the daemon reports the move not resident (EAGAIN)" \
        spm_wait_line "$SPM_TMP/monitor.json" '"status": ?-11' 5
spm_check "nothing of it is in VRAM" resident_is a 4 4 0
spm_check_match "the mover counts it not resident" "[1-9][0-9]* not resident" "$(spm_ctl status)"
spm_check_match "free the BO" "^ok" "$(actor a free "$bo")"
spm_check_rc "clear the hint" 0 \
        spm_ctl hint "${A_PID[a]}" "$(hex "${A_BASE[a]} + 4 * MiB")" $((4 * MiB)) none

# ---- 6. budgets and quotas across two jobs sharing the GPU ----
spm_check_rc "job 101" 0 spm_ctl job-start 101 --gpus 0 --vram-quota 4M
spm_check_rc "job 102" 0 spm_ctl job-start 102 --gpus 0 --vram-quota 4M
actor_start d 8 SLURM_JOB_ID=101 -- --xnack 0
actor_start e 8 SLURM_JOB_ID=102 -- --xnack 0
spm_check "d attached to job 101" wait_until 5 has_ranges "${A_PID[d]}"
spm_check "e attached to job 102" wait_until 5 has_ranges "${A_PID[e]}"
spm_check_match "job 101 lists d" "${A_PID[d]}" "$(spm_ctl jobs --json | spm_json "[x['pids'] for x in j['jobs'] if x['id'] == 101]")"
# Each pins 4 MiB (its quota) and says the other 4 MiB are hot too.
for x in d e; do
        spm_check_rc "$x pins 4 MiB" 0 spm_ctl hint "${A_PID[$x]}" "${A_BASE[$x]}" $((4 * MiB)) pin-gpu --gpu 0
        spm_check_rc "$x hints 4 MiB more hot" 0 \
                spm_ctl hint "${A_PID[$x]}" "$(hex "${A_BASE[$x]} + 4 * MiB")" $((4 * MiB)) hot --gpu 0
done
spm_check "d gets its quota" wait_until 5 resident_is d 0 8 1024
spm_check "e gets its quota" wait_until 5 resident_is e 0 8 1024
# spmctl ranges --json: each range says whose it is, where it is and what the agent set, its
# heat per accessor, its last move and its quarantine.
spm_check_match "d's pinned range in ranges --json" "^ok" "$(ranges_json | spm_json "'ok' if any(
        r['pid'] == ${A_PID[d]} and r['location'] == 'gpu0' and r['preferred'] == 'gpu0' and
        r['moves'] >= 1 and r['last_move_usec'] > 0 and r['quarantined'] is False and
        set(r['heat']) == {'cpu', 'gpu0'} and r['length'] > 0 and r['start'] > 0
        for r in j['ranges']) else 'missing'")"
sleep 1
spm_check "d stays within 4 MiB" resident_at_most d 0 8 1024
spm_check "e stays within 4 MiB" resident_at_most e 0 8 1024

# ---- 7. no ping-pong on an alternating pattern ----
# f's range is hot on the GPU; a VRAM BO evicts it (TTM), it comes back, is evicted again...
# d's and e's pins are frozen meanwhile: f's BO evicts them too, and their retries would take
# the epochs' migration budget that f's single fault per round has to win.
spm_check_rc "freeze job 101" 0 spm_ctl freeze --job 101
spm_check_rc "freeze job 102" 0 spm_ctl freeze --job 102
actor_start f 4 -- --xnack 1 --prefer-ram
spm_check "f's ranges are tracked" wait_until 5 has_ranges "${A_PID[f]}"
for i in 1 2 3 4 5 6; do
        actor f gpu 0 4 >/dev/null
        sleep 0.4
        bo=$(actor f vram 62 | cut -d' ' -f2)
        sleep 0.4
        actor f free "$bo" >/dev/null
done
fjob=$((1099511627776 + A_PID[f]))
migr=$(spm_ctl jobs --json | spm_json "[x['counters']['migrations'] for x in j['jobs'] if x['id'] == $fjob][0]")
quar=$(ranges_json | spm_json "any(r['quarantined'] for r in j['ranges'] if r['pid'] == ${A_PID[f]})")
spm_log "alternating pattern: the daemon moved f's range $migr times in 6 rounds, quarantined: $quar"
spm_check "the ping-pong is detected (quarantine)" test "$quar" = true
# Unchecked, the daemon would bring the range back after every eviction: 6 promotions and
# more. Quarantine must stop it within a couple of round trips.
spm_check "the daemon's moves of f's range are bounded (<= 4 in 6 rounds)" test "$migr" -le 4
spm_check_match "the held range is pinned where it is (PREFERRED_LOC)" \
        "[1-9][0-9]* quarantined ranges pinned" "$(spm_ctl status)"
kill -TERM "${A_PID[f]}"

# ---- 8. agent death leaves no stuck state ----
kill -KILL "${A_PID[a]}"
wait "${A_PID[a]}" 2>/dev/null
spm_check "the dead process's ranges are gone" wait_until 5 \
        test "$(tracked "${A_PID[a]}")" -eq 0
spm_check "its implicit job ended" wait_until 2 \
        test "$(spm_ctl jobs --json | spm_json "len([x for x in j['jobs'] if x['id'] == $((1099511627776 + A_PID[a]))])")" -eq 0
spm_check_match "no command waits for it" "kfd-svm: 1 GPUs, 0 waiting" "$(spm_ctl status)"

# ---- 9. daemon restart leaves no stuck state ----
# (d's and e's jobs, frozen since section 7, move again)
spm_check_rc "thaw job 101" 0 spm_ctl thaw --job 101
spm_check_rc "thaw job 102" 0 spm_ctl thaw --job 102
# Bytes of [start, start + len) of pid's ranges that the daemon places at loc.
tracked_span_at() {
        ranges_json | spm_json "sum(max(0, min(r['start'] + r['length'], $2 + $3) - max(r['start'], $2))
                for r in j['ranges'] if r['pid'] == $1 and r['location'] == '$4')"
}
# d's pinned first 4 MiB: in VRAM, and the daemon says so.
d_known_in_gpu0() {
        resident_is d 0 4 1024 &&
                test "$(tracked_span_at "${A_PID[d]}" "${A_BASE[d]}" $((4 * MiB)) gpu0)" -eq $((4 * MiB))
}
spm_check "d's pinned 4 MiB are back in VRAM, and the daemon knows" wait_until 10 d_known_in_gpu0
# A restart while d's job is frozen: the new daemon may not bring d's ranges home (frozen:
# nothing moves), so it takes them for RAM while 4 MiB are in VRAM. Once thawed, its pin
# moves nothing (they are there); the mover then brings them home, and the next promotion,
# after the cool-down, is counted: the daemon knows where they are again.
spm_check_rc "freeze job 101 across the restart" 0 spm_ctl freeze --job 101
spm_stop_daemon
spm_start_daemon
spm_check "d's agent reconnects" wait_until 10 has_ranges "${A_PID[d]}"
spm_check "e's agent reconnects" wait_until 10 has_ranges "${A_PID[e]}"
spm_check "the new daemon takes d's pinned pages for RAM" \
        test "$(tracked_span_at "${A_PID[d]}" "${A_BASE[d]}" $((4 * MiB)) gpu0)" -eq 0
spm_check "while they are in VRAM" resident_is d 0 4 1024
spm_check_rc "thaw job 101" 0 spm_ctl thaw --job 101
spm_check "the daemon learns they are in gpu0" wait_until 10 d_known_in_gpu0
spm_check_match "the mover brought the not-resident range home" \
        "[1-9][0-9]* not-resident ranges brought home" "$(spm_ctl status)"
spm_check_rc "hint after restart" 0 spm_ctl hint "${A_PID[d]}" "${A_BASE[d]}" $((8 * MiB)) pin-ram
spm_check "moves work after the restart" wait_until 5 resident_is d 0 8 0
spm_check "no job of a dead process was restored" \
        test "$(spm_ctl jobs --json | spm_json "len([x for x in j['jobs'] if x['id'] > 1099511627776 and x['id'] < 2**62 and $((A_PID[a])) in x.get('pids', [])])")" -eq 0
spm_check_alive "the KFD path"

for n in "${!A_FD[@]}"; do
        echo quit >&"${A_FD[$n]}" 2>/dev/null
done
spm_done
