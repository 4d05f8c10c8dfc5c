#!/bin/bash
# spmimport --damon: good imports match their committed traces (and parse); malformed input
# fails with exit 1 and a message naming the file and the line or the record.
# Usage: test-spmimport.sh SPMIMPORT SPMTRACE SOURCE_ROOT
set -u
spmimport=$1 spmtrace=$2 src=$3
data="$src/tests/data/damon"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

check() {  # name, want, got
        if [ "$2" != "$3" ]; then
                echo "FAIL $1: wanted '$2', got '$3'"; fail=1
        else
                echo "ok   $1"
        fi
}

# --- good imports ---
for name in record report-raw; do
        "$spmimport" --damon "$data/$name.json" > "$tmp/$name.trace" 2> "$tmp/err"
        check "$name: exit" 0 $?
        if cmp -s "$tmp/$name.trace" "$data/$name.trace"; then echo "ok   $name: output"
        else echo "FAIL $name: output differs:"; diff "$data/$name.trace" "$tmp/$name.trace" | head; fail=1; fi
        "$spmtrace" stat "$tmp/$name.trace" > /dev/null
        check "$name: parses" 0 $?
done

# gzip'd on stdin gives the same trace.
gzip -c "$data/record.json" | "$spmimport" --damon - > "$tmp/stdin.trace"
check "gzip stdin: exit" 0 $?
cmp -s "$tmp/stdin.trace" "$data/record.trace"
check "gzip stdin: same output" 0 $?

# damo record's default json_compressed (a zlib stream) gives the same trace; cut short, an error.
"$spmimport" --damon "$data/record.data" > "$tmp/zlib.trace"
check "json_compressed: exit" 0 $?
cmp -s "$tmp/zlib.trace" "$data/record.trace"
check "json_compressed: same output" 0 $?
head -c 300 "$data/record.data" > "$tmp/cut.data"
"$spmimport" --damon "$tmp/cut.data" > /dev/null 2> "$tmp/err"
check "json_compressed cut: exit" 1 $?
check "json_compressed cut: message" "spmimport: $tmp/cut.data: corrupt zlib stream (damo's json_compressed)" \
        "$(cat "$tmp/err")"

# --pid, --accessor, --span, --scale: every row is pid 77 on gpu1, no row over 1 MiB, reads x2.
"$spmimport" --damon "$data/record.json" --pid 77 --accessor gpu1 --span 1M --scale 2 \
        > "$tmp/opts.trace"
check "options: exit" 0 $?
check "options: pid/accessor" 0 "$(grep -v '^#' "$tmp/opts.trace" | tail -n +2 |
        grep -cv '^[0-9]*,77,0x[0-9a-f]*,[0-9]*,gpu1,')"
check "options: spans <= 256 pages" 0 "$(grep -v '^#' "$tmp/opts.trace" | tail -n +2 |
        awk -F, '$4 > 256' | wc -l)"
check "options: mmap hot span reads doubled" \
        "0,77,0x7f3a40000000,256,gpu1,655360,0" "$(grep '^0,77,0x7f3a40000000,' "$tmp/opts.trace")"

# --- malformed input: exit 1, message names file and line/record ---
bad() {  # name, expected substring, json text, [extra args]
        local name=$1 want=$2 text=$3
        shift 3
        printf '%s' "$text" > "$tmp/$name.json"
        "$spmimport" --damon "$tmp/$name.json" "$@" > "$tmp/out" 2> "$tmp/err"
        local rc=$?
        local msg
        msg=$(cat "$tmp/err")
        if [ $rc -ne 1 ] || [[ "$msg" != *"$tmp/$name.json"* ]] || [[ "$msg" != *"$want"* ]]; then
                echo "FAIL bad $name: rc=$rc msg='$msg' (wanted rc=1 and '$want')"; fail=1
        elif [ -s "$tmp/out" ]; then
                echo "FAIL bad $name: wrote a partial trace"; fail=1
        else
                echo "ok   bad $name: $msg"
        fi
}
R='"start": 4096, "end": 8192, "nr_accesses": 1'
S='"start_time": 0, "end_time": 100'
bad syntax ".json:3:" $'[\n {"target_id": 1,\n  "snapshots": [}\n'
bad syntax-msg "JSON syntax error" $'[\n {"target_id": 1,\n  "snapshots": [}\n'
bad truncated "unexpected end of input" '[{"target_id": 1, "snapshots": ['
bad empty "unexpected end of input" ''
bad object "top level is not an array" '{"target_id": 1}'
bad no-records "no records" '[]'
bad no-snapshots "record 0: 'snapshots' is missing" '[{"target_id": 1}]'
bad record-type "record 1: not an object" "[{\"target_id\": 1, \"snapshots\": []}, 7]"
bad no-regions "record 0, snapshot 0: 'regions' is missing" "[{\"target_id\": 1, \"snapshots\": [{$S}]}]"
bad times "record 0, snapshot 1: end_time 50 is not after start_time 100" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": []}, {\"start_time\": 100, \"end_time\": 50, \"regions\": []}]}]"
bad end-before-start "record 0, snapshot 0, region 1: end 0x1000 is not after start 0x2000" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{$R}, {\"start\": 8192, \"end\": 4096, \"nr_accesses\": 1}]}]}]"
bad unaligned "region 0: 0x1001-0x2000 is not page aligned" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{\"start\": 4097, \"end\": 8192, \"nr_accesses\": 1}]}]}]"
bad overlap "region 1: 0x1000-0x3000 overlaps the previous region" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{$R}, {\"start\": 4096, \"end\": 12288, \"nr_accesses\": 1}]}]}]"
bad human-number "'aggr_us' is \"100 ms\", not a raw number" \
        "[{\"target_id\": 1, \"intervals\": {\"sample_us\": \"5 ms\", \"aggr_us\": \"100 ms\"}, \"snapshots\": []}]"
bad no-nr-accesses "region 0: 'nr_accesses' is missing" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{\"start\": 4096, \"end\": 8192}]}]}]"
bad negative "region 0: 'nr_accesses' is negative" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{\"start\": 4096, \"end\": 8192, \"nr_accesses\": -1}]}]}]"
bad samples-type "region 0: 'samples' is a double, not a number" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{\"start\": 4096, \"end\": 8192, \"nr_accesses\": {\"samples\": 1.5}}]}]}]"
bad target-zero "record 0: target_id 0 is not a pid; pass --pid" \
        "[{\"target_id\": 0, \"snapshots\": [{$S, \"regions\": [{$R}]}]}]"
bad two-targets-pid "record 1: a second target (target_id 2)" \
        "[{\"target_id\": 1, \"snapshots\": [{$S, \"regions\": [{$R}]}]}, {\"target_id\": 2, \"snapshots\": []}]" --pid 5
bad trailing "trailing data after the JSON value" '[] x'
bad no-snapshot-at-all "no snapshots in any record" '[{"target_id": 1, "snapshots": []}]'

"$spmimport" --damon "$tmp/does-not-exist.json" > /dev/null 2> "$tmp/err"
check "missing file: exit" 1 $?
grep -q "does-not-exist.json: No such file" "$tmp/err"
check "missing file: message" 0 $?
"$spmimport" --damon "$data/record.json" --accessor npu0 > /dev/null 2>&1
check "bad accessor: usage exit" 2 $?
"$spmimport" > /dev/null 2>&1
check "no --damon: usage exit" 2 $?

exit $fail
