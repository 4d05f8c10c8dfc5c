#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The kfd-sysfs collector on a fake KFD node (docs/fakekfd.md): a GPU process with the agent
# preloaded faults its pages into VRAM and takes a plain VRAM BO; spmtierd must report the
# fake's counters and VRAM use in GetStatus and shrink what the engine may fill.
#
#   test-kfd-sysfs.sh <kfd-actor>
. "$(dirname "$0")/lib.sh"

ACTOR=${1:?usage: test-kfd-sysfs.sh <kfd-actor>}
spm_setup
trap '' PIPE
AGENT=$SPM_BUILD/agent/libspmtier-agent.so
spm_require "$ACTOR" "$SPM_BUILD/fakekfd/fakekfd-setup"
[[ -f $AGENT ]] || { spm_log "FAIL: $AGENT is not built"; exit 1; }

ROOT=$SPM_TMP/node
MiB=1048576
spm_kfd_node "$ROOT" kfd-sysfs "[Metrics]" "Path=$SPM_TMP/spmtierd.prom" "IntervalSec=100ms" || exit 1
spm_start_daemon

# One actor (XNACK on: a GPU touch faults the pages into VRAM), commands on a FIFO.
mkfifo "$SPM_TMP/a.in"
: >"$SPM_TMP/a.out"
env FAKEKFD_ROOT="$ROOT" LD_LIBRARY_PATH="$SPM_BUILD/fakekfd" LD_PRELOAD="$AGENT" \
        SPMTIER_SOCKET="$SPM_SOCK" "$ACTOR" 8 --xnack 1 <"$SPM_TMP/a.in" >"$SPM_TMP/a.out" &
APID=$!
SPM_PIDS+=($APID)
exec {AFD}>"$SPM_TMP/a.in"
ask() { # COMMAND... -> the actor's answer line
        local n i
        n=$(wc -l <"$SPM_TMP/a.out")
        echo "$*" >&"$AFD"
        for ((i = 0; i < 250; i++)); do
                (($(wc -l <"$SPM_TMP/a.out") > n)) && break
                sleep 0.02
        done
        tail -n 1 "$SPM_TMP/a.out"
}
gpu0() { spm_ctl status --json | spm_json "j['status']['gpus'][0].get('$1', -1)"; }
eventually() { # SECONDS CMD...: polls CMD (the machine is shared and slow)
        local deadline=$((SECONDS + $1 * ${SPM_WAIT_SCALE:-4}))
        shift
        until "$@"; do
                ((SECONDS < deadline)) || return 1
                sleep 0.05
        done
}
at_least() { (($(gpu0 "$1") >= $2)); }
at_most() { (($(gpu0 "$1") >= 0 && $(gpu0 "$1") <= $2)); }
# (a function, not grep <(...): a process substitution is read once, and eventually polls)
status_says() { spm_ctl status | grep -q "$1"; }

spm_check_match "the actor runs" "^base 0x" "$(ask base)"
spm_check "the driver's VRAM size is reported" eventually 5 at_least driver_vram_total $((64 * MiB))
spm_check "and exactly" at_most driver_vram_total $((64 * MiB))
spm_check "the process is on KFD" eventually 5 \
        status_says "kfd-sysfs: 1 of 1 processes on KFD"
spm_check_match "GPU touch" "^ok" "$(ask gpu 0 4)"
spm_check "its faulted pages count as pages in" eventually 5 at_least kfd_pages_in 1024
spm_check "and its faults" at_least kfd_faults 1
spm_check "the driver's VRAM use includes them" eventually 5 at_least driver_vram_used $((4 * MiB))
full=$(gpu0 fill_limit)
spm_log "fill limit with 4 MiB faulted in: $full"
spm_check "the engine may fill at most 15/16 of VRAM" test "$full" -le $((60 * MiB))
spm_check_rc "spmctl status" 0 spm_ctl status
spm_check_match "the GPU table has the driver's columns" "^GPU +LOCATION +CAPACITY +USED +DRIVER-USED +FILL-LIMIT" "$SPM_OUT"
spm_check_match "and the driver's figures" "^0 +gpu0 +64M +[0-9.]+[KMG]?B? +[0-9.]+M +[0-9.]+M " "$SPM_OUT"
metric() { grep -q "^spmtierd_$1{gpu=\"0\"} [1-9]" "$SPM_TMP/spmtierd.prom" 2>/dev/null; }
spm_check "the metrics file has the driver's VRAM use" eventually 5 metric gpu_driver_vram_used_bytes
spm_check "and the KFD pages in" eventually 5 metric gpu_kfd_pages_in_total
bo=$(ask vram 32 | cut -d' ' -f2)
spm_check "a 32 MiB VRAM BO" test "$bo" -gt 0
spm_check "the BO shrinks what the engine may fill" eventually 5 at_most fill_limit $((28 * MiB))
spm_check_match "free the BO" "^ok" "$(ask free "$bo")"
spm_check "the room comes back" eventually 5 at_least fill_limit $((full))
spm_check_alive "kfd-sysfs"
echo quit >&"$AFD"
spm_done
