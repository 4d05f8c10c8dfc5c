#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# spmtierd keeps the summaries of ended jobs: UnregisterJob's summary, ListJobs "finished"
# (filtered by owner like the leases), and <state-dir>/jobs/<id>.json.
. "$(dirname "$0")/lib.sh"
spm_setup
spm_gpu_config 2
spm_start_daemon

spm_check "job-start" spm_ctl job-start 41 --uid 0 --gpus 0,1 --vram-quota 1G --policy none
spm_check "job-start for nobody" spm_ctl job-start 42 --uid 65534 --gpus 1
spm_check_rc "job-end" 0 spm_ctl --json job-end 41
end=$SPM_OUT
spm_check_match "summary names the job" '"id": 41' "$end"
spm_check_match "summary keeps the quota" '"vram_quota": 1073741824' "$end"
spm_check_match "summary keeps the policy" '"policy": "none"' "$end"
spm_check "summary keeps the GPUs" test "$(spm_json 'j["summary"]["gpus"]' <<<"$end")" = '[0, 1]'
spm_check_match "summary says how it ended" '"ended": "unregistered"' "$end"

spm_check_rc "jobs --json" 0 spm_ctl --json jobs
jobs=$SPM_OUT
spm_check "job 41 is finished, job 42 still a lease" test "$(spm_json \
        '[[x["id"] for x in j["jobs"]], [x["id"] for x in j["finished"]]]' <<<"$jobs")" = '[[42], [41]]'
spm_check "the finished entry is the summary job-end printed" test \
        "$(spm_json 'j["summary"]' <<<"$end")" = "$(spm_json 'j["finished"][0]' <<<"$jobs")"

f=$SPM_STATE/jobs/41.json
spm_check "summary file written" test -s "$f"
spm_check "summary file is the summary" test "$(spm_json 'j' <"$f")" = "$(spm_json 'j["summary"]' <<<"$end")"

# Another user sees only its own finished jobs.
spm_check_rc "job-end 42" 0 spm_ctl job-end 42
if id nobody >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        chmod 0755 "$SPM_TMP/run"
        spm_check_rc "jobs as nobody" 0 runuser -u nobody -- "$SPMCTL" --socket "$SPM_SOCK" --json jobs
        spm_check "nobody sees only job 42" test "$(spm_json '[x["id"] for x in j["finished"]]' \
                <<<"$SPM_OUT")" = '[42]'
fi

# The summaries live in memory: a restart forgets them (the files stay).
spm_stop_daemon
spm_start_daemon
spm_check_rc "jobs after restart" 0 spm_ctl --json jobs
spm_check "no finished jobs after a restart" test "$(spm_json 'j["finished"]' <<<"$SPM_OUT")" = '[]'
spm_check "files stay" test -s "$f"
# 260 jobs more than fill the list (256): the oldest four go, with their files. One
# connection, pipelined, to keep the test fast.
calls=$("$SPM_PYTHON" -c '
for i in range(1000, 1260):
    print("{\"method\":\"io.spmtier.daemon.RegisterJob\",\"parameters\":{\"id\":%d,\"uid\":0,\"gpus\":[0]}}\\0"
          "{\"method\":\"io.spmtier.daemon.UnregisterJob\",\"parameters\":{\"id\":%d}}\\0" % (i, i), end="")')
spm_raw send "$calls" >/dev/null
spm_check_rc "jobs after 260 more" 0 spm_ctl --json jobs
spm_check "the last 256 are kept" test "$(spm_json '[len(j["finished"]), j["finished"][0]["id"], j["finished"][-1]["id"]]' \
        <<<"$SPM_OUT")" = '[256, 1004, 1259]'
spm_check "the dropped ones' files are gone" test ! -e "$SPM_STATE/jobs/1003.json"
spm_check "the kept ones' files stay" test -s "$SPM_STATE/jobs/1004.json"
spm_check_alive "finished jobs"
spm_done
