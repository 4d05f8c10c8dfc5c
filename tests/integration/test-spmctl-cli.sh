#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# spmctl on its own: usage errors (exit 2), no daemon (exit 3 and the "not
# running" message), a socket it may not open (exit 4), a daemon that never
# answers (exit 5 after --timeout). No spmtierd is needed here.

. "$(dirname "$0")/lib.sh"
spm_require "$SPMCTL" python3

SPM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-cli.XXXXXX")
chmod 0755 "$SPM_TMP"
SPM_LOG=
trap 'for p in "${SPM_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$SPM_TMP"' EXIT
unset SPMTIER_SOCKET

# --- usage errors: exit 2, never a connection attempt ------------------------
for args in "" "frob" "status extra" "jobs --gpu 1" "job-start" "job-start 5" \
        "job-start x --gpus 0" "job-start 5 --gpus 0,a" "job-start 5 --gpus 0 --vram-quota 12Q" \
        "job-start 5 --gpus 0 --vram-quota -1G" "job-start 5 --gpus 0 --ttl 5parsecs" \
        "hint 1 0x1000 2M warm" "hint 1 0x1000 2.5 hot" "hint -1 0 4K cold" "drain" "drain gpu0" \
        "policy hysteresis=x" "policy epoch_usec=fast" "policy nonsense=1" "policy a b" \
        "monitor --count" "--timeout 0 status" "--bogus status" "reload --job 1"; do
        # shellcheck disable=SC2086
        spm_check_rc "spmctl $args is a usage error" 2 "$SPMCTL" --socket "$SPM_TMP/none" $args
        spm_check_match "spmctl $args says what is wrong" "^spmctl: " "$SPM_ERR"
done
spm_check_rc "--help works" 0 "$SPMCTL" --help
for verb in status jobs job-start job-end ranges hint policy drain freeze thaw reload monitor; do
        spm_check_match "--help lists $verb" "^  $verb " "$SPM_OUT"
done
spm_check_rc "--version works" 0 "$SPMCTL" --version
spm_check_match "--version prints the version" "^spmctl [0-9]+\.[0-9]+" "$SPM_OUT"

# --- not running: exit 3 and the exact message, for every verb ---------------
for args in status jobs "job-start 1 --gpus 0" "job-end 1" ranges "hint 1 0x1000 4K cold" \
        policy "drain 0" freeze thaw reload monitor hints "attach 1 2" "detach 2"; do
        # shellcheck disable=SC2086
        spm_check_rc "spmctl $args without a daemon" 3 "$SPMCTL" --socket "$SPM_TMP/none" $args
        spm_check_match "spmctl $args: not-running message" \
                "^spmtierd is not running \(no socket at $SPM_TMP/none\)$" "$SPM_ERR"
done
spm_check_rc "SPMTIER_SOCKET is used" 3 env SPMTIER_SOCKET="$SPM_TMP/env.sock" "$SPMCTL" status
spm_check_match "SPMTIER_SOCKET path in the message" "no socket at $SPM_TMP/env.sock" "$SPM_ERR"
spm_check_rc "--socket beats SPMTIER_SOCKET" 3 env SPMTIER_SOCKET="$SPM_TMP/env.sock" \
        "$SPMCTL" --socket "$SPM_TMP/opt.sock" status
spm_check_match "--socket path in the message" "no socket at $SPM_TMP/opt.sock" "$SPM_ERR"

# A stale socket file (daemon died without cleaning up): nobody listens.
"$SPM_PYTHON" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$SPM_TMP/stale.sock"
spm_check_rc "stale socket" 3 "$SPMCTL" --socket "$SPM_TMP/stale.sock" status
spm_check_match "stale socket message" "spmtierd is not running \(nobody listens on" "$SPM_ERR"

# --- a server that accepts but never answers: --timeout, exit 5 --------------
"$SPM_PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)' "$SPM_TMP/mute.sock" &
SPM_PIDS+=($!)
spm_wait_socket "$SPM_TMP/mute.sock" 5
spm_check_rc "silent daemon times out" 5 "$SPMCTL" --socket "$SPM_TMP/mute.sock" --timeout 300ms status
spm_check_match "timeout message" "did not answer GetStatus within 0.3s" "$SPM_ERR"

# --- a server that hangs up mid-call: exit 3 ----------------------------------
"$SPM_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept(); c.recv(65536); c.close()' "$SPM_TMP/hangup.sock" &
SPM_PIDS+=($!)
spm_wait_socket "$SPM_TMP/hangup.sock" 5
spm_check_rc "daemon hanging up" 3 "$SPMCTL" --socket "$SPM_TMP/hangup.sock" jobs
spm_check_match "hang-up message" "closed the connection during ListJobs" "$SPM_ERR"

# --- a socket this user may not open: exit 4 ----------------------------------
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
        mkdir -m 0700 "$SPM_TMP/private"
        "$SPM_PYTHON" -c 'import socket, sys, time; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); time.sleep(60)' \
                "$SPM_TMP/private/s.sock" &
        SPM_PIDS+=($!)
        spm_wait_socket "$SPM_TMP/private/s.sock" 5
        spm_check_rc "unreadable socket is permission denied" 4 \
                setpriv --reuid=nobody --regid=nogroup --clear-groups "$SPMCTL" --socket "$SPM_TMP/private/s.sock" status
        spm_check_match "permission message" "Permission denied connecting to spmtierd at" "$SPM_ERR"
else
        spm_log "not root: the socket permission check needs setpriv as root"
        exit 77
fi
spm_done
