#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The man pages render without groff warnings and document what the programs
# actually have: every spmctl verb and option, every spmtierd option, every
# key of the shipped config/spmtierd.conf, and the exit codes spmctl uses.
# With --with-daemon (meson passes it once spmtierd is built) the daemon's
# --help and the shipped config are checked too.

. "$(dirname "$0")/lib.sh"
spm_require groff "$SPMCTL"
with_daemon=${1:-}
docs=$SPM_SRC/docs
SPM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-man.XXXXXX")
trap 'rm -rf "$SPM_TMP"' EXIT

render() {
        groff -man -Tutf8 -P-cbou -rLL=200n "$1" 2>/dev/null | sed 's/‐/-/g'
}

for page in spmtierd.8 spmctl.8 spmtierd.conf.5; do
        out=$(groff -man -ww -z "$docs/$page" 2>&1)
        spm_check "$page renders without warnings: $out" test -z "$out"
        spm_check "$page has NAME, SYNOPSIS, DESCRIPTION, SEE ALSO" \
                bash -c "grep -q '^.SH NAME' '$docs/$page' && grep -q '^.SH SYNOPSIS' '$docs/$page' && grep -q '^.SH DESCRIPTION' '$docs/$page' && grep -q '^.SH SEE ALSO' '$docs/$page'"
done

ctl=$(render "$docs/spmctl.8")
help=$("$SPMCTL" --help)
verbs=$(sed -n "s/^  \\([a-z][a-z-]*\\) .*/\\1/p" <<<"$help")
spm_check "spmctl --help lists verbs" test -n "$verbs"
for v in $verbs; do
        spm_check_match "spmctl.8 documents verb $v" "^ +$v( |$)" "$ctl"
done
for o in $(grep -oE -- '--[a-z-]+' <<<"$help" | sort -u); do
        spm_check_match "spmctl.8 documents option $o" -- "$o" "$ctl"
done
for o in $(grep -oE -- '"[a-z-]+", (required|no)_argument' "$SPM_SRC/cli/spmctl.c" | cut -d'"' -f2); do
        spm_check_match "spmctl.8 documents option --$o" -- "--$o" "$ctl"
done
for code in $(grep -oE 'EXIT_[A-Z_]+ = [0-9]+' "$SPM_SRC/cli/spmctl.c" | awk '{print $3}'); do
        spm_check_match "spmctl.8 documents exit status $code" "^ +$code +[A-Za-z]" "$ctl"
done

if [[ $with_daemon == --with-daemon ]]; then
        spm_require "$SPMTIERD"
        d=$(render "$docs/spmtierd.8")
        dhelp=$("$SPMTIERD" --help 2>&1)
        for o in $(grep -oE -- '--[a-z][a-z-]+' <<<"$dhelp" | sort -u); do
                spm_check_match "spmtierd.8 documents option $o" -- "$o" "$d"
        done
        conf=$(render "$docs/spmtierd.conf.5")
        shipped=$SPM_SRC/config/spmtierd.conf
        spm_check "config/spmtierd.conf exists" test -f "$shipped"
        section=
        while IFS= read -r line; do
                if [[ $line =~ ^\[([A-Za-z]+)\]$ ]]; then
                        section=${BASH_REMATCH[1]}
                        spm_check_match "spmtierd.conf.5 documents [$section]" "^\[$section\] SECTION" "$conf"
                elif [[ $line =~ ^#([A-Z][A-Za-z]+)= ]]; then
                        spm_check_match "spmtierd.conf.5 documents $section.${BASH_REMATCH[1]}" \
                                "^ +${BASH_REMATCH[1]}=" "$conf"
                fi
        done <"$shipped"
        # Keys in the man page that the shipped file does not know are stale.
        for k in $(grep -oE '^ {7}[A-Z][A-Za-z]+=' <<<"$conf" | tr -d ' ='); do
                spm_check "spmtierd.conf.5 key $k exists in config/spmtierd.conf" grep -q "^#$k=" "$shipped"
        done
fi
spm_done
