#!/bin/sh
# Every bundled trace parses with the strict reader, and regenerating it from its config gives
# the committed trace byte for byte (after gunzip). Also: no config without its trace, no
# trace without its config, each trace < 4 MiB gzip'd.
# Usage: test-bundled-traces.sh SPMGEN SPMTRACE SOURCE_ROOT
set -eu
spmgen=$1 spmtrace=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 n=0
for conf in "$src"/tests/data/workloads/*.conf; do
        name=$(basename "$conf" .conf)
        trace="$src/tests/data/traces/$name.trace.gz"
        n=$((n + 1))
        if [ ! -f "$trace" ]; then
                echo "FAIL $name: no $trace (run tools/gen-traces)"; fail=1; continue
        fi
        size=$(wc -c < "$trace")
        if [ "$size" -ge 4194304 ]; then
                echo "FAIL $name: $size bytes gzip'd, the limit is 4 MiB"; fail=1
        fi
        "$spmgen" "$conf" > "$tmp/new"
        gzip -dc "$trace" > "$tmp/old"
        if ! cmp -s "$tmp/new" "$tmp/old"; then
                echo "FAIL $name: regenerated trace differs from the committed one:"
                diff "$tmp/old" "$tmp/new" | head -5
                fail=1
        fi
        if ! "$spmtrace" stat "$trace"; then
                echo "FAIL $name: does not parse"; fail=1
        fi
done
for trace in "$src"/tests/data/traces/*.trace.gz; do
        name=$(basename "$trace" .trace.gz)
        [ -f "$src/tests/data/workloads/$name.conf" ] || {
                echo "FAIL $name: trace without a config"; fail=1; }
done
if [ "$n" -lt 12 ]; then
        echo "FAIL: $n bundled workloads, want >= 12"; fail=1
fi
[ $fail -eq 0 ] && echo "ok: $n bundled traces regenerate identically and parse"
exit $fail
