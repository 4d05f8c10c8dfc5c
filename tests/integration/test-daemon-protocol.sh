#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bad input on the wire, sent as raw bytes: malformed frames, wrong types,
# missing and unknown fields, unknown methods and interfaces, oversize
# messages. After each one the daemon must still answer and its jobs and hints
# must be exactly what they were.

. "$(dirname "$0")/lib.sh"
spm_setup
spm_gpu_config 2
spm_start_daemon

spm_spawn
P1=$SPM_SPAWNED
spm_check_rc "setup: job" 0 spm_ctl job-start 7 --uid 0 --gpus 0 --vram-quota 1G --ttl 1h
spm_check_rc "setup: attach" 0 spm_ctl attach 7 "$P1"
spm_check_rc "setup: range" 0 spm_raw call io.spmtier.daemon.AddRange "{\"pid\":$P1,\"start\":4194304,\"length\":4194304}"
spm_check_rc "setup: hint" 0 spm_ctl hint "$P1" 0x400000 2M pin-gpu --gpu 0

# What must survive every bad input (lease times included: bad input renews nothing).
before=$(spm_raw state)
spm_check_match "state has job 7" '"id": 7' "$before"

intact() {
        local now
        SPM_TESTS=$((SPM_TESTS + 1))
        now=$(spm_raw state)
        if ! spm_daemon_alive || [[ -z $now ]]; then
                spm_fail "daemon not alive after: $1"
        elif [[ $now != "$before" ]]; then
                spm_fail "state changed after $1: $(diff <(echo "$before") <(echo "$now"))"
        fi
}

# A frame that breaks the protocol: the daemon hangs up on that peer (or
# answers with an error), and nothing else changes.
bad_frame() {
        local what=$1
        shift
        spm_check_rc "$what: raw client ran" 0 spm_raw send "$@" --timeout 1
        spm_check_match "$what: disconnected or error" '^EOF$|"error"' "$SPM_OUT"
        intact "$what"
}
bad_frame "not JSON" 'this is not json\0'
bad_frame "truncated JSON" '{"method":"io.spmtier.daemon.GetStatus"\0'
bad_frame "JSON array" '[1,2,3]\0'
bad_frame "JSON string" '"io.spmtier.daemon.GetStatus"\0'
bad_frame "no method" '{"parameters":{}}\0'
bad_frame "method is a number" '{"method":42}\0'
bad_frame "method is not qualified" '{"method":"GetStatus"}\0'
bad_frame "trailing garbage" '{"method":"io.spmtier.daemon.GetStatus"} trailing\0'
bad_frame "empty frame" '\0'
bad_frame "NUL inside a string" '{"method":"io.spmtier.daemon.Get\0Status"}\0'
bad_frame "invalid UTF-8" '{"method":"io.spmtier.daemon.GetStatus","parameters":{"x":"\xff\xfe"}}\0'
bad_frame "deep nesting" "$(printf '%0.s[' {1..5000})\\0"
bad_frame "parameters is an array" '{"method":"io.spmtier.daemon.UnregisterJob","parameters":[7]}\0'
bad_frame "parameters is a string" '{"method":"io.spmtier.daemon.UnregisterJob","parameters":"7"}\0'

# Oversize: 17 MiB without a NUL, and one complete 17 MiB call.
spm_check_rc "oversize frame" 0 spm_raw flood $((17 * 1024 * 1024)) --timeout 20
spm_check_match "oversize: disconnected" '^EOF$' "$SPM_OUT"
intact "oversize frame"

# A frame split across many writes is still one call; three calls in one write get three replies.
spm_check_rc "split frame" 0 spm_raw send '{"method":"io.spmtier.daemon.GetStatus"}\0' --chunk 3 --timeout 1
spm_check_match "split frame: answered" '"status"' "$SPM_OUT"
spm_check_rc "pipelined calls" 0 spm_raw send '{"method":"io.spmtier.daemon.GetPolicy"}\0' --repeat 3 --timeout 1
spm_check_match "pipelined: three replies" '^3$' "$(grep -c '"policy"' <<<"$SPM_OUT")"
spm_check_rc "oneway" 0 spm_raw call io.spmtier.daemon.GetStatus '{}' --oneway --timeout 1
spm_check_match "oneway: no reply, still connected" '^OPEN$' "$SPM_OUT"
spm_check_rc "more on a plain method" 0 spm_raw call io.spmtier.daemon.GetPolicy '{}' --more 5 --timeout 2
spm_check "more on a plain method: one final reply" bash -c '! grep -q continues <<<"$1"' _ "$SPM_OUT"
intact "valid framing variants"

# A well-formed call with the wrong content gets a varlink error, and the
# connection stays usable.
bad_call() {
        local what=$1 method=$2 params=$3 want=$4
        spm_check_rc "$what: error reply" 1 spm_raw call "$method" "$params"
        spm_check_match "$what: $want" "$want" "$SPM_OUT"
        intact "$what"
}
bad_call "unknown method" io.spmtier.daemon.NoSuchMethod '{}' \
        '"error": "org.varlink.service.MethodNotFound"'
bad_call "unknown interface" com.example.nothing.Ping '{}' \
        '"error": "org.varlink.service.InterfaceNotFound"'
bad_call "unknown interface description" org.varlink.service.GetInterfaceDescription \
        '{"interface":"com.example.nothing"}' '"error": "org.varlink.service.(InterfaceNotFound|InvalidParameter)"'
bad_call "id is a string" io.spmtier.daemon.UnregisterJob '{"id":"7"}' '"parameter": "id"'
bad_call "id is a float" io.spmtier.daemon.UnregisterJob '{"id":7.5}' '"parameter": "id"'
bad_call "id is null" io.spmtier.daemon.UnregisterJob '{"id":null}' '"parameter": "id"'
bad_call "id missing" io.spmtier.daemon.UnregisterJob '{}' '"parameter": "id"'
bad_call "gpus not a list" io.spmtier.daemon.RegisterJob '{"id":8,"uid":0,"gpus":"0"}' '"parameter": "gpus"'
bad_call "gpus of strings" io.spmtier.daemon.RegisterJob '{"id":8,"uid":0,"gpus":["a"]}' \
        '"parameter": "gpus|InvalidValue'
bad_call "uid missing" io.spmtier.daemon.RegisterJob '{"id":8,"gpus":[0]}' '"parameter": "uid"'
bad_call "uid negative" io.spmtier.daemon.RegisterJob '{"id":8,"uid":-1,"gpus":[0]}' \
        '"parameter": "uid"|InvalidValue'
bad_call "unknown field" io.spmtier.daemon.UnregisterJob '{"id":7,"force":true}' '"parameter": "force"'
bad_call "hint kind unknown" io.spmtier.daemon.Hint "{\"pid\":$P1,\"start\":4194304,\"length\":2097152,\"kind\":\"warm\"}" \
        '"parameter": "kind"|InvalidValue'
bad_call "hint length zero" io.spmtier.daemon.Hint "{\"pid\":$P1,\"start\":4194304,\"length\":0,\"kind\":\"cold\"}" \
        'InvalidValue|InvalidParameter'
bad_call "hint wraps the address space" io.spmtier.daemon.Hint \
        "{\"pid\":$P1,\"start\":18446744073709547520,\"length\":8192,\"kind\":\"cold\"}" \
        'InvalidValue|InvalidParameter'
bad_call "hint past the user address space" io.spmtier.daemon.Hint \
        "{\"pid\":$P1,\"start\":9223372036854775808,\"length\":2097152,\"kind\":\"cold\"}" \
        'InvalidValue|InvalidParameter'
bad_call "huge integer" io.spmtier.daemon.UnregisterJob '{"id":123456789012345678901234567890}' \
        '"parameter": "id"|NoSuchJob'
bad_call "settings wrong type" io.spmtier.daemon.SetPolicy '{"settings":{"hysteresis":"high"}}' \
        'InvalidParameter|InvalidValue'
bad_call "Monitor without more" io.spmtier.daemon.Monitor '{}' \
        'ExpectedMore|InvalidParameter'

# Many connections opened and dropped mid-frame do not leak or block the daemon.
spm_check_rc "50 connections dropped mid-call" 0 \
        spm_raw send '{"method":"io.spmtier.daemon.GetSta' --connections 50 --timeout 0.01
intact "50 half-sent calls"
spm_done
