#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sd_notify as systemd would see it, on a test NOTIFY_SOCKET: READY=1 with a
# STATUS= line once the socket serves, WATCHDOG=1 pings when WATCHDOG_USEC is
# set, RELOADING=1 ... READY=1 around a reload (spmctl reload and SIGHUP), and
# STOPPING=1 on SIGTERM.

. "$(dirname "$0")/lib.sh"
spm_setup
N=$SPM_TMP/notify
spm_notify_listen "$SPM_TMP/notify.sock" "$N"

export NOTIFY_SOCKET=$SPM_TMP/notify.sock WATCHDOG_USEC=200000
spm_start_daemon
unset NOTIFY_SOCKET WATCHDOG_USEC

spm_check "READY=1 sent" spm_wait_line "$N" '(^|\| )READY=1'
spm_check "STATUS= sent" spm_wait_line "$N" '(^|\| )STATUS=.+'
status=$(grep -oE 'STATUS=[^|]+' "$N" | tail -n1)
spm_check_match "STATUS says there is no GPU (no config, no KFD)" "STATUS=.*([Nn]o GPU|no gpu|none)" "$status"
spm_check_rc "GetStatus" 0 spm_ctl status --json
spm_check_match "GetStatus has the one-line status" '.' "$(spm_json 'j["status"]["status"]' <<<"$SPM_OUT")"
spm_check_rc "spmctl status without a GPU" 0 spm_ctl status
spm_check_match "status says nothing moves without a GPU" "\(no GPU: jobs and hints are kept, nothing moves\)" "$SPM_OUT"
spm_check "WATCHDOG=1 pings (WatchdogSec=0.2s)" spm_wait_line "$N" '(^|\| )WATCHDOG=1' 2
pings=$(grep -c 'WATCHDOG=1' "$N")
sleep 1
spm_check "keeps pinging" test "$(grep -c 'WATCHDOG=1' "$N")" -gt "$pings"

# The listener writes asynchronously: wait for the lines rather than race it.
since_mark() {
        local i
        for ((i = 0; i < 100; i++)); do
                tail -n +"$((mark + 1))" "$N" | grep -v '^WATCHDOG=1$' | tr '\n' ' ' | grep -Eq "$1" && return 0
                sleep 0.05
        done
        return 1
}
mark=$(wc -l <"$N")
spm_check_rc "spmctl reload" 0 spm_ctl reload
spm_check "reload sent RELOADING=1" since_mark 'RELOADING=1'
spm_check "then READY=1 again" since_mark 'RELOADING=1.*READY=1'

mark=$(wc -l <"$N")
kill -HUP "$SPM_DAEMON_PID"
spm_check "SIGHUP reload sent READY=1 after RELOADING=1" since_mark 'RELOADING=1.*READY=1'

mark=$(wc -l <"$N")
spm_check "SIGTERM exits 0" spm_stop_daemon
spm_check "STOPPING=1 on SIGTERM" since_mark 'STOPPING=1'
spm_done
