# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Shared helpers for shell integration tests (integration, kfd, slurm, vm suites).
# Source it from a bash test script:
#
#   . "$(dirname "$0")/lib.sh"
#   spm_setup                        # temp dir, cleanup trap, paths
#   spm_start_daemon [ARGS...]       # real spmtierd on a private socket + state dir
#   spm_ctl status                   # spmctl against that socket
#   spm_check "what" CMD...          # one assertion: CMD must succeed
#   spm_done                         # prints the count, exits 0/1
#
# Every daemon started here is stopped by the EXIT trap (SIGTERM, then SIGKILL),
# and on failure the daemon's log is dumped to stderr. Set SPMTIER_WRAPPER to run
# the daemon under a wrapper, e.g. SPMTIER_WRAPPER="valgrind --error-exitcode=99 -q".
# Paths come from meson's test environment (SPMTIER_BUILD_ROOT/SPMTIER_SOURCE_ROOT)
# and can be overridden with SPMTIERD, SPMCTL and VARLINK_RAW.

set -u

SPM_BUILD=${SPMTIER_BUILD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
SPM_SRC=${SPMTIER_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SPMTIERD=${SPMTIERD:-$SPM_BUILD/daemon/spmtierd}
SPMCTL=${SPMCTL:-$SPM_BUILD/cli/spmctl}
VARLINK_RAW=${VARLINK_RAW:-$SPM_SRC/tests/integration/varlink-raw.py}
# Debian's python3 directly: a version-manager shim earlier in PATH can cost seconds a call.
SPM_PYTHON=${SPM_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

SPM_TESTS=0
SPM_FAILED=0
SPM_DAEMON_PID=
SPM_PIDS=()

spm_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# Exits 77 (meson's "skipped") with a reason. Use only for what the machine lacks.
spm_skip() {
        spm_log "SKIP: $*"
        exit 77
}

# Fails the test unless each named program or path exists.
spm_require() {
        local x
        for x in "$@"; do
                if [[ $x == /* ]]; then
                        [[ -x $x ]] || { spm_log "FAIL: $x is not built"; exit 1; }
                else
                        command -v "$x" >/dev/null || spm_skip "$x is not installed"
                fi
        done
}

spm_setup() {
        SPM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-test.XXXXXX")
        chmod 0755 "$SPM_TMP"
        SPM_SOCK=$SPM_TMP/run/io.spmtier.daemon
        SPM_STATE=$SPM_TMP/state
        SPM_CONF=$SPM_TMP/spmtierd.conf
        SPM_LOG=$SPM_TMP/daemon.log
        mkdir -p "$SPM_TMP/run" "$SPM_STATE"
        : >"$SPM_CONF"
        : >"$SPM_LOG"
        export SPMTIER_SOCKET=$SPM_SOCK
        trap spm_cleanup EXIT
        trap 'exit 130' INT TERM
        spm_require "$SPMTIERD" "$SPMCTL"
}

spm_dump_log() {
        [[ -s ${SPM_LOG:-} ]] || return 0
        echo "----- daemon log ($SPM_LOG) -----" >&2
        tail -n 200 "$SPM_LOG" >&2
        echo "----- end of daemon log -----" >&2
}

spm_cleanup() {
        local rc=$?
        local p
        for p in "${SPM_PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null
        done
        for p in "${SPM_PIDS[@]}"; do
                spm_reap "$p"
        done
        if ((rc != 0 && rc != 77)) || ((SPM_FAILED)); then
                spm_dump_log
        fi
        [[ -n ${SPM_TMP:-} && -z ${SPM_KEEP:-} ]] && rm -rf "$SPM_TMP"
        exit "$rc"
}

# Waits up to 5 s for PID to exit after a signal, then SIGKILLs it.
spm_reap() {
        local p=$1 i
        for ((i = 0; i < 50; i++)); do
                kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
                sleep 0.1
        done
        spm_log "pid $p ignored SIGTERM for 5s, killing it"
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        return 0
}

# Waits until PATH is a listening socket (connect succeeds), up to $2 s (default 10).
spm_wait_socket() {
        local path=$1 limit=${2:-10} i
        for ((i = 0; i < limit * 20; i++)); do
                if [[ -S $path ]] && "$SPM_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])' "$path" 2>/dev/null; then
                        return 0
                fi
                if [[ -n $SPM_DAEMON_PID ]] && ! kill -0 "$SPM_DAEMON_PID" 2>/dev/null; then
                        spm_log "daemon (pid $SPM_DAEMON_PID) exited before listening"
                        return 1
                fi
                sleep 0.05
        done
        spm_log "no socket at $path after ${limit}s"
        return 1
}

# Starts the real daemon on the test's socket, state dir and config; extra
# arguments are passed on. Logs go to $SPM_LOG (appended, so restarts keep history).
spm_start_daemon() {
        echo "----- spmtierd $* ($(date +%T.%N)) -----" >>"$SPM_LOG"
        # shellcheck disable=SC2086
        ${SPMTIER_WRAPPER:-} "$SPMTIERD" --socket "$SPM_SOCK" --state-dir "$SPM_STATE" \
                --config "$SPM_CONF" "$@" >>"$SPM_LOG" 2>&1 &
        SPM_DAEMON_PID=$!
        SPM_PIDS+=("$SPM_DAEMON_PID")
        spm_wait_socket "$SPM_SOCK" || { spm_fail "spmtierd did not start"; exit 1; }
}

# Stops the daemon started last: SIGTERM and wait; returns its exit status.
spm_stop_daemon() {
        local rc
        [[ -n $SPM_DAEMON_PID ]] || return 0
        kill -TERM "$SPM_DAEMON_PID" 2>/dev/null
        wait "$SPM_DAEMON_PID"
        rc=$?
        SPM_DAEMON_PID=
        return "$rc"
}

# SIGKILLs the daemon started last (a crash: no chance to save anything).
spm_kill9_daemon() {
        [[ -n $SPM_DAEMON_PID ]] || return 0
        kill -KILL "$SPM_DAEMON_PID" 2>/dev/null
        wait "$SPM_DAEMON_PID" 2>/dev/null
        SPM_DAEMON_PID=
        return 0
}

spm_daemon_alive() {
        [[ -n $SPM_DAEMON_PID ]] && kill -0 "$SPM_DAEMON_PID" 2>/dev/null
}

# spmctl against the test daemon.
spm_ctl() {
        "$SPMCTL" --socket "$SPM_SOCK" "$@"
}

# Raw varlink client (tests/integration/varlink-raw.py) against the test daemon.
spm_raw() {
        "$SPM_PYTHON" "$VARLINK_RAW" "$SPM_SOCK" "$@"
}

spm_fail() {
        SPM_FAILED=$((SPM_FAILED + 1))
        spm_log "FAIL: $*"
}

# spm_check "description" CMD... : one assertion, CMD must exit 0.
spm_check() {
        local what=$1
        shift
        SPM_TESTS=$((SPM_TESTS + 1))
        if "$@"; then
                return 0
        fi
        spm_fail "$what"
        return 1
}

# spm_check_rc "description" RC CMD... : CMD must exit with RC; its output is
# kept in $SPM_OUT (stdout) and $SPM_ERR (stderr).
spm_check_rc() {
        local what=$1 want=$2 got
        shift 2
        SPM_TESTS=$((SPM_TESTS + 1))
        "$@" >"$SPM_TMP/out" 2>"$SPM_TMP/err"
        got=$?
        SPM_OUT=$(cat "$SPM_TMP/out")
        SPM_ERR=$(cat "$SPM_TMP/err")
        if ((got == want)); then
                return 0
        fi
        spm_fail "$what: exit $got, want $want (cmd: $*)"
        [[ -n $SPM_OUT ]] && printf 'stdout: %s\n' "$SPM_OUT" >&2
        [[ -n $SPM_ERR ]] && printf 'stderr: %s\n' "$SPM_ERR" >&2
        return 1
}

# spm_check_match "description" REGEX TEXT : TEXT must match the extended regex.
spm_check_match() {
        SPM_TESTS=$((SPM_TESTS + 1))
        if grep -Eq -- "$2" <<<"$3"; then
                return 0
        fi
        spm_fail "$1: /$2/ not found in: ${3:0:400}"
        return 1
}

# spm_json EXPR : evaluates a Python expression over the JSON on stdin bound to j.
spm_json() {
        "$SPM_PYTHON" -c 'import json, sys; j = json.load(sys.stdin); r = eval(sys.argv[1]); print(json.dumps(r) if not isinstance(r, str) else r)' "$1"
}

# The daemon must still be running and answering GetStatus.
spm_check_alive() {
        SPM_TESTS=$((SPM_TESTS + 1))
        if spm_daemon_alive && spm_raw call io.spmtier.daemon.GetStatus >/dev/null 2>&1; then
                return 0
        fi
        spm_fail "daemon not alive after: $1"
        return 1
}

# Prints the summary line and exits with the result.
spm_done() {
        if ((SPM_FAILED)); then
                spm_log "$SPM_FAILED of $SPM_TESTS checks failed"
                exit 1
        fi
        spm_log "all $SPM_TESTS checks passed"
        exit 0
}

# Listens on an AF_UNIX datagram socket at $1 like systemd's NOTIFY_SOCKET and
# appends each message to $2, one datagram per line ('\n' inside → ' | ').
spm_notify_listen() {
        local sock=$1 out=$2 i
        "$SPM_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(65536).decode(errors="replace").strip("\n").replace("\n", " | ") + "\n")
' "$sock" "$out" &
        SPM_PIDS+=($!)
        for ((i = 0; i < 100; i++)); do
                [[ -S $sock ]] && return 0
                sleep 0.02
        done
        spm_log "notify listener did not bind $sock"
        return 1
}

# Waits up to $3 s (default 5) until file $1 has a line matching regex $2.
spm_wait_line() {
        local f=$1 re=$2 limit=${3:-5} i
        for ((i = 0; i < limit * 20; i++)); do
                grep -Eq -- "$re" "$f" 2>/dev/null && return 0
                sleep 0.05
        done
        return 1
}

# spm_wait_until SECONDS CMD... : polls CMD every 50 ms for up to SECONDS x SPM_WAIT_SCALE
# (default 4: a shared 2-core machine under load stretches the daemon's epochs; a pass returns
# at once), then runs it a last time.
spm_wait_until() {
        local deadline=$((SECONDS + $1 * ${SPM_WAIT_SCALE:-4}))
        shift
        while ((SECONDS < deadline)); do
                "$@" && return 0
                sleep 0.05
        done
        "$@"
}

# Writes a config for a modelled node with $1 GPUs (default 2): jobs can then
# name GPUs, and Drain and GPU hints have somewhere to go. Extra lines ($2...) follow.
spm_gpu_config() {
        local n=${1:-2}
        shift
        printf '[Machine]\nProfile=mi250x-gcd\nGPUs=%s\n' "$n" >"$SPM_CONF"
        [[ $# -gt 0 ]] && printf '%s\n' "$@" >>"$SPM_CONF"
        return 0
}

# spm_kfd_node ROOT COLLECTOR [LINE...]: a fake KFD node under ROOT (one GPU, 64 MiB of VRAM)
# and the daemon's config for it: its roots, the kfd-svm mover, 50 ms epochs, COLLECTOR; the
# LINEs go at the end (in [Move], or after a section header of their own).
spm_kfd_node() {
        local root=$1 collector=$2
        shift 2
        mkdir -p "$root/etc"
        printf 'gpus=1\nvram=64M\n' >"$root/etc/fakekfd.conf"
        FAKEKFD_ROOT=$root "$SPM_BUILD/fakekfd/fakekfd-setup" || return 1
        printf '[Daemon]\nSysRoot=%s/sys\nKfdDevice=%s/dev/kfd\nFakeKfdRoot=%s\n[Machine]\nProfile=auto\n[Policy]\nEpochSec=50ms\n[Collect]\nCollectors=%s\n[Move]\nMover=kfd-svm\n' \
                "$root" "$root" "$root" "$collector" >"$SPM_CONF"
        (($# == 0)) || printf '%s\n' "$@" >>"$SPM_CONF"
}

# Starts a process to attach to jobs (`sleep 600`, or the command given) and
# sets SPM_SPAWNED to its pid; the EXIT trap ends it.
spm_spawn() {
        if (($#)); then
                "$@" &
        else
                sleep 600 &
        fi
        SPM_SPAWNED=$!
        SPM_PIDS+=("$SPM_SPAWNED")
}

# Waits up to $2 s (default 5) for the background child $1 to exit by itself,
# kills it if it does not, and returns its exit status (143 when killed).
spm_wait_exit() {
        local p=$1 limit=${2:-5} i
        for ((i = 0; i < limit * 20; i++)); do
                kill -0 "$p" 2>/dev/null || break
                sleep 0.05
        done
        kill "$p" 2>/dev/null
        wait "$p"
}
