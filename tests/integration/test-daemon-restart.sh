#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kill -9 and restart loses nothing: every job (with its lease times, quota,
# policy, freeze state and pids) and every hint comes back exactly; a clean
# SIGTERM restart too. A corrupt state file is refused loudly, not half-loaded.

. "$(dirname "$0")/lib.sh"
spm_setup
spm_gpu_config 2
spm_start_daemon

spm_spawn
P1=$SPM_SPAWNED
spm_spawn
P2=$SPM_SPAWNED

spm_check_rc "job 1" 0 spm_ctl job-start 1 --uid 0 --gpus 0,1 --vram-quota 8G --ttl 2h
spm_check_rc "job 2" 0 spm_ctl job-start 2 --uid 1000 --gpus 1 --policy none
spm_check_rc "job 3" 0 spm_ctl job-start 3 --uid 0 --gpus 0 --ttl 10min
spm_check_rc "attach 1" 0 spm_ctl attach 1 "$P1"
spm_check_rc "attach 3" 0 spm_ctl attach 3 "$P2"
spm_check_rc "range" 0 spm_raw call io.spmtier.daemon.AddRange "{\"pid\":$P1,\"start\":1073741824,\"length\":16777216}"
spm_check_rc "hint forever" 0 spm_ctl hint "$P1" 0x40000000 2M pin-gpu --gpu 1
spm_check_rc "hint with ttl" 0 spm_ctl hint "$P1" 0x40400000 4M cold --ttl 1h
spm_check_rc "hint on job 3" 0 spm_ctl hint "$P2" 0x10000000 2M streaming
spm_check_rc "freeze job 3" 0 spm_ctl freeze --job 3
spm_check_rc "policy setting" 0 spm_ctl policy hysteresis=1.5

# Everything a restart must keep; counters and uptime may differ.
snapshot() {
        spm_raw state
        spm_raw call io.spmtier.daemon.GetPolicy '{"job":2}'
}
before=$(snapshot)
spm_check_match "snapshot has 3 jobs" '"id": 3' "$before"
spm_check_match "snapshot has the streaming hint" '"streaming"' "$before"

compare() {
        local now
        now=$(snapshot)
        SPM_TESTS=$((SPM_TESTS + 1))
        [[ $now == "$before" ]] || spm_fail "$1 changed jobs or hints: $(diff <(echo "$before") <(echo "$now"))"
}

spm_kill9_daemon
spm_check "the socket file stays behind after kill -9" test -S "$SPM_SOCK"
spm_start_daemon
compare "kill -9 and restart"
spm_check_rc "status after restart" 0 spm_ctl status --json
spm_check_match "3 jobs, 3 hints" '^\[3, 3\]$' "$(spm_json '[j["status"]["jobs"], j["status"]["hints"]]' <<<"$SPM_OUT")"

# A change made right before a crash is on disk too (saved when acknowledged).
spm_check_rc "job 4 then crash" 0 spm_ctl job-start 4 --uid 0 --gpus 0
spm_kill9_daemon
spm_start_daemon
spm_check_rc "job 4 survived" 0 spm_ctl jobs --json
spm_check_match "job 4 is back" '4' "$(spm_json '[x["id"] for x in j["jobs"] if x["id"] == 4]' <<<"$SPM_OUT")"
spm_check_rc "end job 4" 0 spm_ctl job-end 4
compare "crash after a change"

spm_check "SIGTERM exits 0" spm_stop_daemon
spm_start_daemon
compare "SIGTERM and restart"

# No temp files left behind by the atomic writes.
spm_check "no temporary files in the state dir" \
        bash -c "! ls -A '$SPM_STATE' | grep -E '\\.tmp|~$|^\\.#'"
spm_check_rc "ending a restored job works" 0 spm_ctl job-end 1
spm_check_match "its summary" "^Job 1 \(uid 0\) unregistered" "$SPM_OUT"
spm_stop_daemon

# A corrupt state file: the daemon refuses to start (or starts empty) but never
# crashes on it, and says so in the log.
for f in "$SPM_STATE"/*; do
        [[ -f $f ]] && printf '{"jobs": [ {"id": ' >"$f"
done
echo "----- corrupt state -----" >>"$SPM_LOG"
"$SPMTIERD" --socket "$SPM_SOCK" --state-dir "$SPM_STATE" --config "$SPM_CONF" >>"$SPM_LOG" 2>&1 &
SPM_DAEMON_PID=$!
SPM_PIDS+=("$SPM_DAEMON_PID")
sleep 1
if spm_daemon_alive; then
        spm_check_rc "daemon with corrupt state still answers" 0 spm_ctl jobs
        spm_check_match "it started fresh" "^No jobs\.$" "$SPM_OUT"
        spm_check "the corrupt state was kept aside as evidence" test -s "$SPM_STATE/state.json.corrupt"
else
        wait "$SPM_DAEMON_PID"
        rc=$?
        SPM_DAEMON_PID=
        spm_check "refused corrupt state with exit 1, not a crash (rc=$rc)" test "$rc" = 1
fi
spm_check_match "the log names the state problem" "state|State" "$(tail -n 5 "$SPM_LOG")"
spm_done
