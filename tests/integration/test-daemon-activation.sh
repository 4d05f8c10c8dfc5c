#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Socket activation as systemd does it, without systemd as PID 1:
# systemd-socket-activate binds the socket, waits for the first connection and
# execs spmtierd with LISTEN_FDS=1 LISTEN_FDNAMES=varlink. The daemon must
# serve that fd (not bind its own), answer the connection that woke it, and
# leave the socket inode alone.

. "$(dirname "$0")/lib.sh"
spm_require systemd-socket-activate
spm_setup
N=$SPM_TMP/notify
spm_notify_listen "$SPM_TMP/notify.sock" "$N"
spm_gpu_config 1

# --socket points elsewhere on purpose: an activated daemon must ignore it.
echo "----- systemd-socket-activate spmtierd -----" >>"$SPM_LOG"
# systemd-socket-activate passes on only LISTEN_* and what -E names.
systemd-socket-activate -l "$SPM_SOCK" --fdname=varlink -E NOTIFY_SOCKET="$SPM_TMP/notify.sock" -- \
        "$SPMTIERD" --socket "$SPM_TMP/not-this.sock" --state-dir "$SPM_STATE" --config "$SPM_CONF" \
        >>"$SPM_LOG" 2>&1 &
SPM_DAEMON_PID=$!
SPM_PIDS+=("$SPM_DAEMON_PID")
for ((i = 0; i < 100; i++)); do
        [[ -S $SPM_SOCK ]] && break
        sleep 0.05
done
spm_check "activator bound the socket" test -S "$SPM_SOCK"
inode=$(stat -c %i "$SPM_SOCK")
spm_check "daemon not started before the first connection" bash -c "! grep -q READY=1 '$N'"

spm_check_rc "first call activates and is answered" 0 spm_ctl --timeout 10s status --json
spm_check_match "status from the activated daemon" '"version"' "$SPM_OUT"
spm_check "activator exec'd spmtierd (same pid)" \
        bash -c "[[ \$(readlink /proc/$SPM_DAEMON_PID/exe) == *spmtierd* ]]"
spm_check "READY=1 from the activated daemon" spm_wait_line "$N" '(^|\| )READY=1'
spm_check "the daemon kept the passed socket (same inode)" test "$(stat -c %i "$SPM_SOCK")" = "$inode"
spm_check "it did not bind --socket" test ! -e "$SPM_TMP/not-this.sock"
spm_check_rc "second call" 0 spm_ctl job-start 9 --uid 0 --gpus 0
spm_check_rc "jobs" 0 spm_ctl jobs --json
spm_check_match "job 9 registered" '^\[9\]$' "$(spm_json '[x["id"] for x in j["jobs"]]' <<<"$SPM_OUT")"
spm_check_rc "GetInfo" 0 spm_raw call org.varlink.service.GetInfo
spm_check "SIGTERM exits 0" spm_stop_daemon
spm_done
