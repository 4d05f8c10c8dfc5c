#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Every method of io.spmtier.daemon (and org.varlink.service) against the real
# spmtierd on a private socket and state directory, driven by spmctl where it
# has a verb and by the raw varlink client otherwise. Replies are checked for
# content, not just success: what a call changes, the next call must show.

. "$(dirname "$0")/lib.sh"
spm_setup
spm_gpu_config 2 "[Policy]" "EpochSec=10ms"
spm_start_daemon

spm_spawn
P1=$SPM_SPAWNED
spm_spawn
P2=$SPM_SPAWNED
A=0x7f0000000000

# --- org.varlink.service -------------------------------------------------------
spm_check_rc "GetInfo" 0 spm_raw call org.varlink.service.GetInfo
spm_check_match "GetInfo lists io.spmtier.daemon" '"io.spmtier.daemon"' "$SPM_OUT"
spm_check_match "GetInfo lists org.varlink.service" '"org.varlink.service"' "$SPM_OUT"
spm_check_rc "GetInterfaceDescription" 0 spm_raw call org.varlink.service.GetInterfaceDescription \
        '{"interface":"io.spmtier.daemon"}'
desc=$(spm_json 'j["parameters"]["description"]' <<<"$SPM_OUT")
spm_check "the served IDL is daemon/io.spmtier.daemon.varlink" \
        diff <(printf '%s\n' "$desc") "$SPM_SRC/daemon/io.spmtier.daemon.varlink"

# --- GetStatus ---------------------------------------------------------------------
spm_check_rc "spmctl status" 0 spm_ctl status
spm_check_match "status names the daemon" "^spmtierd [0-9.]+: " "$SPM_OUT"
spm_check_match "status shows the GPU table" "^GPU +LOCATION +CAPACITY" "$SPM_OUT"
spm_check_match "status shows the machine" "Machine: mi250x-gcd, 2 GPUs" "$SPM_OUT"
spm_check_rc "spmctl status --json" 0 spm_ctl status --json
spm_check_match "status: 2 GPUs" '^2$' "$(spm_json 'len(j["status"]["gpus"])' <<<"$SPM_OUT")"
spm_check_match "status: has_gpu" '^true$' "$(spm_json 'j["status"]["has_gpu"]' <<<"$SPM_OUT")"
spm_check_match "status: not frozen" '^false$' "$(spm_json 'j["status"]["frozen"]' <<<"$SPM_OUT")"
spm_check_match "status: no jobs" '^0$' "$(spm_json 'j["status"]["jobs"]' <<<"$SPM_OUT")"

# --- RegisterJob / RenewJob / ListJobs ----------------------------------------------
spm_check_rc "job-start" 0 spm_ctl job-start 100 --uid 0 --gpus 0,1 --vram-quota 16G --ttl 1h
spm_check_match "job-start says what it registered" "^Job 100 registered: uid 0, GPUs 0,1, VRAM quota 16G, policy spmtier, lease 1h 0min\.$" "$SPM_OUT"
spm_check_rc "job-start again renews" 0 spm_ctl job-start 100 --uid 0 --gpus 0,1 --vram-quota 16G --ttl 1h --json
spm_check_match "created is false on renewal" '^false$' "$(spm_json 'j["created"]' <<<"$SPM_OUT")"
spm_check_rc "job-start 101 without quota" 0 spm_ctl job-start 101 --gpus 1 --policy none
spm_check_rc "jobs --json" 0 spm_ctl jobs --json
job100='[j for j in j["jobs"] if j["id"] == 100][0]'
spm_check_match "job 100 quota is 16 GiB" '^17179869184$' "$(spm_json "$job100[\"vram_quota\"]" <<<"$SPM_OUT")"
spm_check_match "job 100 GPUs" '^\[0, 1\]$' "$(spm_json "$job100[\"gpus\"]" <<<"$SPM_OUT")"
spm_check_match "job 100 ttl is 1h" '^3600000000$' "$(spm_json "$job100[\"ttl_usec\"]" <<<"$SPM_OUT")"
spm_check_match "job 100 policy defaults to spmtier" '^spmtier$' "$(spm_json "$job100[\"policy\"]" <<<"$SPM_OUT")"
spm_check_match "job 101 has no quota and policy none" '^\[null, "none", 0\]$' \
        "$(spm_json '[[x.get("vram_quota"), x["policy"], x["uid"]] for x in j["jobs"] if x["id"] == 101][0]' <<<"$SPM_OUT")"
spm_check_rc "jobs table" 0 spm_ctl jobs
spm_check_match "jobs table lists job 100" "^100 +0 +0,1 +16G +spmtier +no +- +in 59min" "$SPM_OUT"
spm_check_rc "jobs --uid 12345 is empty" 0 spm_ctl jobs --uid 12345
spm_check_match "no jobs for uid 12345" "^No jobs\.$" "$SPM_OUT"
spm_check_rc "RenewJob" 0 spm_raw call io.spmtier.daemon.RenewJob '{"id":100,"ttl_usec":7200000000}'
spm_check_match "RenewJob returns the new ttl" '"ttl_usec": 7200000000' "$SPM_OUT"
spm_check_rc "RenewJob of an unknown job" 1 spm_raw call io.spmtier.daemon.RenewJob '{"id":999}'
spm_check_match "NoSuchJob" "io.spmtier.daemon.NoSuchJob" "$SPM_OUT"

# --- AttachProcess / DetachProcess ----------------------------------------------------
spm_check_rc "attach" 0 spm_ctl attach 100 "$P1"
spm_check_rc "attach via raw" 0 spm_raw call io.spmtier.daemon.AttachProcess "{\"job\":100,\"pid\":$P2}"
spm_check_rc "attach to a second job" 1 spm_ctl attach 101 "$P1"
spm_check_match "ProcessAttached" "already attached to job 100" "$SPM_ERR"
spm_check_rc "attach to an unknown job" 1 spm_ctl attach 999 "$P1"
spm_check_match "attach: no such job" "No such job: 999" "$SPM_ERR"
spm_check_rc "jobs shows pids" 0 spm_ctl jobs --json
spm_check_match "job 100 has both pids" "^\[$((P1 < P2 ? P1 : P2)), $((P1 < P2 ? P2 : P1))\]$" \
        "$(spm_json "sorted($job100[\"pids\"])" <<<"$SPM_OUT")"
spm_check_rc "detach" 0 spm_ctl detach "$P2"
spm_check_rc "detach again" 1 spm_ctl detach "$P2"
spm_check_match "detach again: no such process" "No such process attached: pid $P2" "$SPM_ERR"

# --- AddRange / ListRanges / RemoveRange ------------------------------------------------
spm_check_rc "AddRange" 0 spm_raw call io.spmtier.daemon.AddRange "{\"pid\":$P1,\"start\":$((A)),\"length\":67108864}"
spm_check_rc "AddRange 2" 0 spm_raw call io.spmtier.daemon.AddRange "{\"pid\":$P1,\"start\":$((A + 0x10000000)),\"length\":8388608,\"location\":\"gpu0\"}"
spm_check_rc "AddRange of an unattached pid" 1 spm_raw call io.spmtier.daemon.AddRange "{\"pid\":$P2,\"start\":$((A)),\"length\":4096}"
spm_check_rc "ranges --json" 0 spm_ctl ranges --job 100 --json
spm_check_match "ranges cover the 72 MiB added" '^75497472$' "$(spm_json 'sum(r["length"] for r in j["ranges"])' <<<"$SPM_OUT")"
spm_check_match "first range starts in RAM" '^ram$' \
        "$(spm_json "[r['location'] for r in j['ranges'] if r['start'] == $((A))][0]" <<<"$SPM_OUT")"
spm_check_rc "ranges table" 0 spm_ctl ranges --pid "$P1"
spm_check_match "ranges table shows the start" "^$P1 +100 +$A " "$SPM_OUT"
spm_check_rc "RemoveRange" 0 spm_raw call io.spmtier.daemon.RemoveRange "{\"pid\":$P1,\"start\":$((A + 0x10000000)),\"length\":8388608}"
spm_check_rc "ranges after RemoveRange" 0 spm_ctl ranges --job 100 --json
spm_check_match "64 MiB left" '^67108864$' "$(spm_json 'sum(r["length"] for r in j["ranges"])' <<<"$SPM_OUT")"
spm_check_rc "RemoveRange of nothing" 1 spm_raw call io.spmtier.daemon.RemoveRange "{\"pid\":$P1,\"start\":4096,\"length\":4096}"
spm_check_match "NoSuchRange" "io.spmtier.daemon.NoSuchRange" "$SPM_OUT"

# --- Hint / ListHints --------------------------------------------------------------------
spm_check_rc "hint pin-gpu" 0 spm_ctl hint "$P1" "$A" 2M pin-gpu --gpu 0
spm_check_rc "hint cold with ttl" 0 spm_ctl hint "$P1" $((A + 0x200000)) 4M cold --ttl 1h
spm_check_rc "hint hot without --gpu" 1 spm_ctl hint "$P1" "$A" 2M hot
spm_check_rc "hint on a GPU that does not exist" 1 spm_ctl hint "$P1" "$A" 2M pin-gpu --gpu 7
spm_check_rc "hints --json" 0 spm_ctl hints --pid "$P1" --json
spm_check_match "two hints" '^2$' "$(spm_json 'len(j["hints"])' <<<"$SPM_OUT")"
spm_check_match "pin_gpu on gpu 0, no expiry" '^\["pin_gpu", 0, null\]$' \
        "$(spm_json "[[h['kind'], h.get('gpu'), h.get('expires_realtime_usec')] for h in j['hints'] if h['start'] == $((A))][0]" <<<"$SPM_OUT")"
spm_check_rc "hints table" 0 spm_ctl hints --job 100
spm_check_match "hints table" "$A +2\.0M +pin_gpu +0 +never" "$SPM_OUT"
spm_check_rc "ranges show the hint" 0 spm_ctl ranges --pid "$P1" --json
spm_check_match "pinned range is preferred on gpu0" "gpu0" \
        "$(spm_json "[r.get('preferred') for r in j['ranges'] if r['start'] == $((A))]" <<<"$SPM_OUT")"
spm_check_rc "hint none clears" 0 spm_ctl hint "$P1" $((A + 0x200000)) 4M none
spm_check_rc "hints after clearing" 0 spm_ctl hints --pid "$P1" --json
spm_check_match "one hint left" '^1$' "$(spm_json 'len(j["hints"])' <<<"$SPM_OUT")"

# --- GetPolicy / SetPolicy -------------------------------------------------------------
spm_check_rc "policy" 0 spm_ctl policy
spm_check_match "policy shows the name" "^Policy: spmtier" "$SPM_OUT"
spm_check_rc "policy set" 0 spm_ctl policy hysteresis=1.75 quarantine_epochs=99 migrate-budget-bytes=1G epoch_usec=20ms
spm_check_rc "policy --json" 0 spm_ctl policy --json
spm_check_match "settings applied" '^\[1.75, 99, 1073741824, 20000\]$' \
        "$(spm_json '[j["policy"]["settings"][k] for k in ("hysteresis", "quarantine_epochs", "migrate_budget_bytes", "epoch_usec")]' <<<"$SPM_OUT")"
spm_check_match "available policies" 'spmtier.*none|none.*spmtier' "$(spm_json 'j["policy"]["available"]' <<<"$SPM_OUT")"
spm_check_rc "job policy set" 0 spm_ctl policy --job 100 none
spm_check_rc "job policy get" 0 spm_ctl policy --job 100 --json
spm_check_match "job 100 policy is none" '^none$' "$(spm_json 'j["policy"]["name"]' <<<"$SPM_OUT")"
spm_check_rc "unknown policy" 1 spm_ctl policy --job 100 lru
spm_check_match "UnknownPolicy lists the available ones" 'Unknown policy "lru" \(available: ' "$SPM_ERR"
spm_check_rc "invalid setting value" 1 spm_ctl policy hysteresis=-3
spm_check_rc "policy of an unknown job" 1 spm_ctl policy --job 999
spm_check_rc "job policy back" 0 spm_ctl policy --job 100 spmtier

# --- Freeze / Thaw -------------------------------------------------------------------------
spm_check_rc "freeze" 0 spm_ctl freeze
spm_check_rc "status frozen" 0 spm_ctl status --json
spm_check_match "node frozen" '^true$' "$(spm_json 'j["status"]["frozen"]' <<<"$SPM_OUT")"
spm_check_rc "thaw" 0 spm_ctl thaw
spm_check_rc "status thawed" 0 spm_ctl status --json
spm_check_match "node thawed" '^false$' "$(spm_json 'j["status"]["frozen"]' <<<"$SPM_OUT")"
spm_check_rc "freeze a job" 0 spm_ctl freeze --job 100
spm_check_rc "jobs after freezing one" 0 spm_ctl jobs --json
spm_check_match "job 100 frozen, 101 not" '^\[true, false\]$' \
        "$(spm_json '[x["frozen"] for x in sorted(j["jobs"], key=lambda x: x["id"])]' <<<"$SPM_OUT")"
spm_check_rc "thaw a job" 0 spm_ctl thaw --job 100
spm_check_rc "freeze an unknown job" 1 spm_ctl freeze --job 999

# --- Monitor -----------------------------------------------------------------------------------
spm_ctl monitor --json --count 2 >"$SPM_TMP/monitor" 2>"$SPM_TMP/monitor.err" &
mon=$!
for ((i = 0; i < 100; i++)); do
        grep -q subscribed "$SPM_TMP/monitor" && break
        sleep 0.05
done
spm_check_match "monitor subscribed first" '"kind": ?"subscribed"' "$(head -n1 "$SPM_TMP/monitor")"
spm_ctl freeze >/dev/null
spm_ctl thaw >/dev/null
spm_wait_exit "$mon"
spm_check "monitor --count 2 ended by itself with 0" test $? = 0
events=$(cat "$SPM_TMP/monitor")
spm_check_match "monitor saw the freeze" '"kind": ?"freeze"' "$events"
spm_check_match "monitor saw the thaw" '"kind": ?"thaw"' "$events"
spm_check_rc "Monitor via raw, 1 reply" 0 spm_raw call io.spmtier.daemon.Monitor '{}' --more 1
spm_check_match "raw Monitor continues" '"continues": true' "$SPM_OUT"
spm_check_rc "Monitor of an unknown job" 1 spm_ctl monitor --job 999

# --- Drain -------------------------------------------------------------------------------------
spm_check_rc "drain 0" 0 spm_ctl drain 0
spm_check_match "drain reports" "^Drained GPU 0: [0-9]+ moves" "$SPM_OUT"
spm_check_rc "drain --json" 0 spm_ctl drain 1 --job 100 --json
spm_check_match "drain reply has moves, bytes, failures" '^\[0, 0, 0\]$|^\[[0-9]+, [0-9]+, 0\]$' \
        "$(spm_json '[j["moves"], j["bytes"], j["failures"]]' <<<"$SPM_OUT")"
spm_check_rc "drain of a GPU that does not exist" 1 spm_ctl drain 7
spm_check_match "NoSuchGpu" "No such GPU: 7" "$SPM_ERR"
spm_check_rc "ranges after drain" 0 spm_ctl ranges --job 100 --json
spm_check_match "nothing left on gpu0" '^0$' "$(spm_json 'sum(1 for r in j["ranges"] if r["location"] == "gpu0")' <<<"$SPM_OUT")"

# --- Reload ---------------------------------------------------------------------------------------
spm_check_rc "reload" 0 spm_ctl reload
spm_check_match "reload names the config" "Configuration reloaded from .*spmtierd.conf" "$SPM_OUT"
spm_check_rc "reload --json" 0 spm_ctl reload --json
spm_check_match "Reload returns config_files" "spmtierd.conf" "$(spm_json 'j["config_files"]' <<<"$SPM_OUT")"

# --- Leases expire -------------------------------------------------------------------------------
spm_check_rc "short lease" 0 spm_ctl job-start 150 --uid 0 --gpus 0 --ttl 2s
spm_ctl monitor --json --job 150 --count 1 >"$SPM_TMP/monitor-lease" 2>&1 &
mon=$!
for ((i = 0; i < 100; i++)); do
        spm_ctl jobs --json | grep -q '"id": 150' || break
        sleep 0.1
done
spm_check_rc "jobs after the lease ran out" 0 spm_ctl jobs --json
spm_check_match "job 150 expired and is gone" '^\[\]$' \
        "$(spm_json '[x["id"] for x in j["jobs"] if x["id"] == 150]' <<<"$SPM_OUT")"
spm_wait_exit "$mon"
spm_check_match "monitor saw the expiry" 'expired' "$(cat "$SPM_TMP/monitor-lease")"

# --- UnregisterJob ----------------------------------------------------------------------------------
spm_check_rc "job-end" 0 spm_ctl job-end 100
spm_check_match "job-end prints the summary" "^Job 100 \(uid 0\) unregistered after .*migrations" "$SPM_OUT"
spm_check_rc "job-end --json" 0 spm_ctl job-end 101 --json
spm_check_match "summary counters" '^unregistered$' "$(spm_json 'j["summary"]["ended"]' <<<"$SPM_OUT")"
spm_check_rc "job-end again" 1 spm_ctl job-end 100
spm_check_match "job-end again: no such job" "No such job: 100" "$SPM_ERR"
spm_check_rc "job-end --json error" 1 spm_ctl job-end 100 --json
spm_check_match "json error on stdout" '"error": ?"io.spmtier.daemon.NoSuchJob"' "$SPM_OUT"
spm_check_rc "no jobs left" 0 spm_ctl jobs
spm_check_match "jobs empty" "^No jobs\.$" "$SPM_OUT"
spm_check_match "jobs lists the finished ones" "^Finished:$" "$SPM_OUT"
spm_check_match "job 100 ended by unregistering" "^100 +0 +0,1 +unregistered " "$SPM_OUT"
spm_check_match "job 150 ended by expiry" "^150 +0 +0 +expired " "$SPM_OUT"
spm_check_rc "hints dropped with the job" 0 spm_ctl hints --json
spm_check_match "no hints" '^0$' "$(spm_json 'len(j["hints"])' <<<"$SPM_OUT")"

spm_check_rc "SPMTIER_SOCKET alone finds the daemon" 0 env SPMTIER_SOCKET="$SPM_SOCK" "$SPMCTL" status

# A monitor whose daemon goes away ends with exit 3, not a hang.
spm_ctl monitor >"$SPM_TMP/monitor-end" 2>&1 &
mon=$!
spm_check "monitor subscribed" spm_wait_line "$SPM_TMP/monitor-end" subscribed
spm_check "daemon still running" spm_daemon_alive
spm_check "SIGTERM stops it cleanly" spm_stop_daemon
spm_wait_exit "$mon"
spm_check "monitor exits 3 when the daemon stops" test $? = 3
spm_check_match "and says so" "closed the connection during Monitor" "$(cat "$SPM_TMP/monitor-end")"
spm_done
