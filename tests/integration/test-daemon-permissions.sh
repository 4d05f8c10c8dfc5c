#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Authorisation by SO_PEERCRED: an unprivileged user (nobody) is denied every
# admin method and every object of another user (exit 4, PermissionDenied),
# may read only its own jobs, and may attach and hint its own processes of its
# own jobs. Denied calls change nothing.

. "$(dirname "$0")/lib.sh"
[[ $(id -u) == 0 ]] || spm_skip "needs root to run spmctl as another user"
spm_require setpriv
spm_setup
spm_gpu_config 2
spm_start_daemon

NOBODY=$(id -u nobody)
as_nobody() {
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
}
spm_spawn setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 600
PN=$SPM_SPAWNED
spm_spawn
PR=$SPM_SPAWNED
# setpriv execs sleep: $PN is nobody's sleep once the exec happened.
for ((i = 0; i < 100; i++)); do
        [[ $(stat -c %u "/proc/$PN" 2>/dev/null) == "$NOBODY" ]] && break
        sleep 0.02
done

spm_check_rc "root registers nobody's job" 0 spm_ctl job-start 200 --uid "$NOBODY" --gpus 0
spm_check_rc "root registers its own job" 0 spm_ctl job-start 300 --uid 0 --gpus 1
spm_check_rc "root attaches its pid" 0 spm_ctl attach 300 "$PR"
spm_check_rc "root adds a range" 0 spm_raw call io.spmtier.daemon.AddRange "{\"pid\":$PR,\"start\":4194304,\"length\":4194304}"
spm_check_rc "root hints its range" 0 spm_ctl hint "$PR" 0x400000 2M pin-ram

snapshot() {
        spm_raw state
        spm_raw call io.spmtier.daemon.GetPolicy '{}'
}
before=$(snapshot)

denied() {
        local what=$1
        shift
        spm_check_rc "nobody: $what is denied" 4 as_nobody "$SPMCTL" --socket "$SPM_SOCK" "$@"
        spm_check_match "nobody: $what says why" "^Permission denied" "$SPM_ERR"
}
# Admin methods.
denied "job-start" job-start 201 --uid "$NOBODY" --gpus 0
denied "job-end of another user's job" job-end 300
denied "drain" drain 0
denied "freeze" freeze
denied "thaw" thaw
denied "freeze of another user's job" freeze --job 300
denied "reload" reload
denied "node-wide policy settings" policy hysteresis=3
denied "another user's job policy" policy --job 300 none
# Other users' jobs and processes.
denied "attach root's pid to own job" attach 200 "$PR"
denied "attach own pid to root's job" attach 300 "$PN"
denied "hint root's pid" hint "$PR" 0x400000 2M cold
denied "detach root's pid" detach "$PR"
spm_check_rc "nobody: raw RegisterJob" 1 as_nobody "$SPM_PYTHON" "$VARLINK_RAW" "$SPM_SOCK" call \
        io.spmtier.daemon.RegisterJob "{\"id\":202,\"uid\":$NOBODY,\"gpus\":[0]}"
spm_check_match "raw: PermissionDenied names the method" \
        '"error": "io.spmtier.daemon.PermissionDenied".*"method": "io.spmtier.daemon.RegisterJob|RegisterJob' "$SPM_OUT"
spm_check_rc "nobody: raw AddRange on root's pid" 1 as_nobody "$SPM_PYTHON" "$VARLINK_RAW" "$SPM_SOCK" call \
        io.spmtier.daemon.AddRange "{\"pid\":$PR,\"start\":8388608,\"length\":4096}"
spm_check_match "raw AddRange denied" "PermissionDenied" "$SPM_OUT"
spm_check_rc "nobody: raw UnregisterJob of root's job" 1 as_nobody "$SPM_PYTHON" "$VARLINK_RAW" "$SPM_SOCK" call \
        io.spmtier.daemon.UnregisterJob '{"id":300}'
spm_check_match "raw UnregisterJob denied" "PermissionDenied" "$SPM_OUT"

after=$(snapshot)
SPM_TESTS=$((SPM_TESTS + 1))
[[ $before == "$after" ]] || spm_fail "denied calls changed state: $(diff <(echo "$before") <(echo "$after"))"

# What nobody may do.
spm_check_rc "nobody: status" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" status
spm_check_rc "nobody: jobs shows only its own" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" jobs --json
spm_check_match "nobody sees job 200 only" '^\[200\]$' "$(spm_json '[x["id"] for x in j["jobs"]]' <<<"$SPM_OUT")"
spm_check_rc "nobody: hints of others are hidden" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" hints --json
spm_check_match "nobody sees no hints" '^0$' "$(spm_json 'len(j["hints"])' <<<"$SPM_OUT")"
spm_check_rc "nobody: attach own pid to own job" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" attach 200 "$PN"
spm_check_rc "nobody: add a range to own pid" 0 as_nobody "$SPM_PYTHON" "$VARLINK_RAW" "$SPM_SOCK" call \
        io.spmtier.daemon.AddRange "{\"pid\":$PN,\"start\":4194304,\"length\":4194304}"
spm_check_rc "nobody: hint own pid" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" hint "$PN" 0x400000 2M cold
spm_check_rc "nobody: own job's policy" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" policy --job 200 none
spm_check_rc "nobody: ranges shows only its own" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" ranges --json
spm_check_match "nobody sees only its pid's ranges" "^\[$PN\]$" \
        "$(spm_json 'sorted(set(r["pid"] for r in j["ranges"]))' <<<"$SPM_OUT")"
spm_check_rc "root sees nobody's hint" 0 spm_ctl hints --pid "$PN" --json
spm_check_match "nobody's hint is stored" '"kind": "cold"' "$SPM_OUT"
spm_check_rc "nobody: monitor works" 0 as_nobody "$SPMCTL" --socket "$SPM_SOCK" monitor --count 0 --timeout 5s
spm_check_alive "permission checks"
spm_done
