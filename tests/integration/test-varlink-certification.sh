#!/bin/sh
# Certifies libspmvarlink against the varlink project's reference peer, both ways:
#   1. Debian's `varlink-go-certification -client` walks our certification service
#      (tests/integration/varlink-cert-service.c). That client exits 0 whatever happens and
#      prints "<step>() failed" on an error, so "pass" means: every step printed, the last
#      line is "End: 'true'", no "failed" line, AND our service's own strict verdict
#      (--exit-after-end: exit 0 only if every value the client sent was right) is 0.
#   2. our blocking client (varlink-cert-client) walks the reference server.
# Usage: test-varlink-certification.sh SERVICE CLIENT
set -u
service=$1
client=$2
cert=${VARLINK_GO_CERTIFICATION:-varlink-go-certification}
if ! command -v "$cert" >/dev/null 2>&1; then
        echo "SKIP: $cert not installed (Debian package varlink-go; make deps installs it)"
        exit 77
fi
dir=$(mktemp -d)
spid=
cleanup() {
        [ -n "$spid" ] && kill "$spid" 2>/dev/null
        rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

wait_socket() {
        i=0
        while [ ! -S "$1" ]; do
                i=$((i + 1)); [ $i -gt 100 ] && return 1
                sleep 0.05
        done
}

echo "== 1. reference client against our service"
"$service" --exit-after-end "unix:$dir/cert.sock" 2>"$dir/service.log" &
spid=$!
wait_socket "$dir/cert.sock" || fail "service did not create its socket"
timeout 60 "$cert" -client -varlink "unix:$dir/cert.sock" >"$dir/client.out" 2>&1
crc=$?
cat "$dir/client.out"
wait "$spid"; src=$?; spid=
cat "$dir/service.log"
[ $crc -eq 0 ] || fail "reference client exited $crc"
grep -q "failed" "$dir/client.out" && fail "reference client reported a failed step"
for s in Start Test01 Test02 Test03 Test04 Test05 Test06 Test07 Test08 Test09 Test10 Test11; do
        grep -q "^$s: " "$dir/client.out" || fail "reference client never got past $s"
done
[ "$(tail -n 1 "$dir/client.out")" = "End: 'true'" ] || fail "last line is not End: 'true'"
[ $src -eq 0 ] || fail "our service judged the client's calls wrong (exit $src)"
n=$(grep -c "Receive: 'Reply number" "$dir/client.out")
[ "$n" -eq 10 ] || fail "Test10 streamed $n replies, want 10"

echo "== 2. our client against the reference service"
"$cert" -varlink "unix:$dir/ref.sock" >"$dir/ref.log" 2>&1 &
spid=$!
wait_socket "$dir/ref.sock" || fail "reference server did not create its socket"
timeout 60 "$client" "unix:$dir/ref.sock" || fail "our client failed against the reference server"
echo "PASS: certification both ways"
