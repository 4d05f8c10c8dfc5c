#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Lints the shipped systemd units the way systemd itself would load them, and
# keeps docs/spmtierd.service.security.txt (the `systemd-analyze security
# --offline=yes` report) in step with the unit. Needs no running systemd.
#
# systemd-analyze verify insists that ExecStart=/ExecReload= binaries exist, so
# the installed unit (build/systemd/spmtierd.service) is checked with its two
# command paths pointed at the built spmtierd and spmctl; nothing else changes.
# Set SPMTIER_REGENERATE=1 to rewrite the committed security report.

. "$(dirname "$0")/lib.sh"
spm_require systemd-analyze "$SPMTIERD" "$SPMCTL"

SPM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-units.XXXXXX")
trap 'rm -rf "$SPM_TMP"' EXIT
service=$SPM_BUILD/systemd/spmtierd.service
socket=$SPM_SRC/systemd/spmtierd.socket
report=$SPM_SRC/docs/spmtierd.service.security.txt

sed -E -e "s|^ExecStart=[^ ]*/spmtierd|ExecStart=$SPMTIERD|" \
        -e "s|^ExecReload=[^ ]*/spmctl|ExecReload=$SPMCTL|" "$service" >"$SPM_TMP/spmtierd.service"
cp "$socket" "$SPM_TMP/spmtierd.socket"

spm_check "service has ExecStart= pointed at the build" \
        grep -qx "ExecStart=$SPMTIERD" "$SPM_TMP/spmtierd.service"
spm_check "service reloads synchronously via spmctl" \
        grep -qx "ExecReload=$SPMCTL reload" "$SPM_TMP/spmtierd.service"

# verify prints warnings but may still exit 0: any output is a failure.
lint() {
        (cd "$SPM_TMP" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$@" 2>&1)
}
out=$(lint ./spmtierd.socket ./spmtierd.service)
rc=$?
spm_check "systemd-analyze verify accepts the units (rc=$rc: $out)" test "$rc" = 0 -a -z "$out"

# The lint must be able to fail: an inline comment (which systemd does not
# support) has to be reported.
mkdir "$SPM_TMP/bad"
sed -e 's|^WatchdogSec=30s$|WatchdogSec=30s # half a minute|' "$SPM_TMP/spmtierd.service" \
        >"$SPM_TMP/bad/spmtierd.service"
cp "$socket" "$SPM_TMP/bad/"
out=$(cd "$SPM_TMP/bad" && systemd-analyze verify --man=no ./spmtierd.socket ./spmtierd.service 2>&1)
spm_check_match "verify reports an inline comment" "WatchdogSec|parse" "$out"

for key in Type=notify WatchdogSec=30s DevicePolicy=closed "DeviceAllow=/dev/kfd rw" \
        ProtectSystem=strict SystemCallFilter=@system-service RuntimeDirectoryPreserve=yes; do
        spm_check "service sets $key" grep -qx "$key" "$SPM_TMP/spmtierd.service"
done
spm_check "service does not use PrivateDevices= (it would hide /dev/kfd)" \
        bash -c "! grep -q '^PrivateDevices=' '$SPM_TMP/spmtierd.service'"
spm_check "socket is named varlink" grep -qx FileDescriptorName=varlink "$socket"
spm_check "socket listens on the default path" \
        grep -qx ListenStream=/run/spmtierd/io.spmtier.daemon "$socket"

# tmpfiles.d: applied to an empty root, it makes the directories the units expect.
out=$(systemd-tmpfiles --create --root="$SPM_TMP/root" "$SPM_SRC/systemd/spmtierd.tmpfiles" 2>&1)
spm_check "systemd-tmpfiles accepts spmtierd.tmpfiles: $out" test -z "$out"
for d in "755 run/spmtierd" "700 var/lib/spmtierd" "755 etc/spmtierd.conf.d"; do
        spm_check "tmpfiles creates ${d#* } with mode ${d%% *}" \
                test "$(stat -c %a "$SPM_TMP/root/${d#* }" 2>&1)" = "${d%% *}"
done

(cd "$SPM_TMP" && SYSTEMD_COLORS=0 COLUMNS=200 systemd-analyze security --offline=yes --no-pager \
        ./spmtierd.service) >"$SPM_TMP/security.txt" 2>&1
rc=$?
spm_check "systemd-analyze security --offline=yes runs (rc=$rc)" test "$rc" = 0
score=$(grep -E '^→ Overall exposure level' "$SPM_TMP/security.txt")
spm_check_match "security report has an overall score" "Overall exposure level for spmtierd.service: [0-9.]+ (OK|SAFE)" "$score"
if [[ -n ${SPMTIER_REGENERATE:-} ]]; then
        cp "$SPM_TMP/security.txt" "$report"
        spm_log "rewrote $report"
fi
spm_check "docs/spmtierd.service.security.txt matches the unit (SPMTIER_REGENERATE=1 to refresh)" \
        diff -u "$report" "$SPM_TMP/security.txt"
spm_log "$score"
spm_done
