#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Reload with good and bad configurations: a good one takes effect before
# `spmctl reload` returns; a bad one (bad value, unknown key, unknown section,
# unreadable file) is refused with file:line, exit 1, and the old configuration
# keeps running with jobs untouched. SIGHUP reloads too. --check-config agrees.

. "$(dirname "$0")/lib.sh"
spm_setup
write_conf() {
        spm_gpu_config 2 "[Policy]" "$1"
}
hysteresis() {
        spm_ctl policy --json | spm_json 'j["policy"]["settings"]["hysteresis"]'
}
write_conf "Hysteresis=1.5"

spm_check_rc "an unknown option is a usage error" 2 "$SPMTIERD" --no-such-option
spm_check_rc "a positional argument is a usage error" 2 "$SPMTIERD" extra
spm_check_rc "--check-config of a good file" 0 "$SPMTIERD" --check-config --config "$SPM_CONF"
spm_check_match "--check-config prints the normalised config" "^Hysteresis=1\.5" "$SPM_OUT"
spm_check_match "--check-config prints defaults too" "^\[Limits\]" "$SPM_OUT"
printf '%s\n' "$SPM_OUT" >"$SPM_TMP/normalised.conf"
spm_check_rc "the printed config parses again" 0 "$SPMTIERD" --check-config --config "$SPM_TMP/normalised.conf"

spm_start_daemon
spm_check_match "config in effect at start" '^1.5$' "$(hysteresis)"
spm_check_rc "a job" 0 spm_ctl job-start 5 --uid 0 --gpus 0 --ttl 1h
jobs_before=$(spm_raw call io.spmtier.daemon.ListJobs '{}')

write_conf "Hysteresis=2.5"
spm_check_rc "reload a good config" 0 spm_ctl reload
spm_check_match "new value in effect when reload returns" '^2.5$' "$(hysteresis)"
spm_check_rc "status after a good reload" 0 spm_ctl status --json
spm_check_match "last reload ok" '^ok$' "$(spm_json 'j["status"]["last_reload"]' <<<"$SPM_OUT")"

refused() {
        local what=$1 content=$2 want=$3
        printf '%s\n' "$content" >"$SPM_CONF"
        spm_check_rc "$what: --check-config refuses" 1 "$SPMTIERD" --check-config --config "$SPM_CONF"
        spm_check_match "$what: --check-config names file:line" "$want" "$SPM_ERR$SPM_OUT"
        spm_check_rc "$what: reload refused" 1 spm_ctl reload
        spm_check_match "$what: spmctl names file:line" "refused, the old one stays: .*$want" "$SPM_ERR"
        spm_check_match "$what: old value still in effect" '^2.5$' "$(hysteresis)"
        spm_check_rc "$what: status" 0 spm_ctl status --json
        spm_check_match "$what: last_reload says why" "$want" "$(spm_json 'j["status"]["last_reload"]' <<<"$SPM_OUT")"
        spm_check_rc "$what: --json error" 1 spm_ctl reload --json
        spm_check_match "$what: InvalidConfig with line" '"error": ?"io.spmtier.daemon.InvalidConfig"' "$SPM_OUT"
        spm_check_alive "$what"
        SPM_TESTS=$((SPM_TESTS + 1))
        [[ $(spm_raw call io.spmtier.daemon.ListJobs '{}') == "$jobs_before" ]] ||
                spm_fail "$what: jobs changed"
}
refused "bad value" $'[Policy]\nHysteresis=banana' "spmtierd.conf:2"
refused "out of range" $'[Policy]\n# a comment\nEpochSec=5h' "spmtierd.conf:3"
refused "unknown key" $'[Policy]\nHysteresis=2\nColour=blue' "spmtierd.conf:3"
refused "unknown section" $'[Nonsense]\nA=b' "spmtierd.conf:1"
refused "no section" $'Hysteresis=2' "spmtierd.conf:1"
refused "continued bad line" $'[Policy]\nHysteresis=\\\n  banana' "spmtierd.conf:2"

# Drop-ins: FILE.d/*.conf after FILE, in file-name order; the last assignment wins.
write_conf "Hysteresis=2.5"
mkdir -p "$SPM_CONF.d"
printf '[Policy]\nHysteresis=4\n' >"$SPM_CONF.d/20-b.conf"
printf '[Policy]\nHysteresis=3\nQuarantineEpochs=77\n' >"$SPM_CONF.d/10-a.conf"
printf '[Policy]\nHysteresis=9\n' >"$SPM_CONF.d/30-c.conf.disabled"
spm_check_rc "reload with drop-ins" 0 spm_ctl reload
spm_check_match "reload lists the files in order" "spmtierd.conf, .*10-a.conf, .*20-b.conf\.$" "$SPM_OUT"
spm_check_match "last drop-in wins" '^4.0$|^4$' "$(hysteresis)"
spm_check_match "earlier drop-in keys stay" '^77$' \
        "$(spm_ctl policy --json | spm_json 'j["policy"]["settings"]["quarantine_epochs"]')"
printf '[Policy]\nHysteresis=x\n' >"$SPM_CONF.d/20-b.conf"
spm_check_rc "a bad drop-in is refused" 1 spm_ctl reload
spm_check_match "naming the drop-in and line" "20-b.conf:2" "$SPM_ERR"
spm_check_match "old value kept after a bad drop-in" '^4.0$|^4$' "$(hysteresis)"
rm -rf "$SPM_CONF.d"

write_conf "Hysteresis=3.5"
kill -HUP "$SPM_DAEMON_PID"
for ((i = 0; i < 100; i++)); do
        [[ $(hysteresis) == 3.5 ]] && break
        sleep 0.05
done
spm_check_match "SIGHUP reloads" '^3.5$' "$(hysteresis)"

# A config that disappeared: refused (the daemon was told to read that file).
rm -f "$SPM_CONF"
spm_check_rc "reload with the file gone" 1 spm_ctl reload
spm_check_match "old value kept when the file is gone" '^3.5$' "$(hysteresis)"
write_conf "Hysteresis=1.25"
spm_check_rc "reload after fixing it" 0 spm_ctl reload
spm_check_match "fixed value in effect" '^1.25$' "$(hysteresis)"
spm_check "SIGTERM exits 0" spm_stop_daemon

# A bad config at start: the daemon refuses to start, naming file:line.
printf '[Policy]\nHysteresis=banana\n' >"$SPM_CONF"
spm_check_rc "start with a bad config fails" 1 "$SPMTIERD" --socket "$SPM_TMP/x.sock" \
        --state-dir "$SPM_STATE" --config "$SPM_CONF"
spm_check_match "and says where" "spmtierd.conf:2" "$SPM_ERR"
spm_done
