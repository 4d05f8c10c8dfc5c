#!/bin/sh
# The workload on the fake: with XNACK on, the driver's own fault migration puts the hot set in
# VRAM, so the modelled time must beat XNACK off (GPU reads RAM over the link) by a wide margin;
# bad arguments are refused with a message.
set -eu
wl=$1
root=$(mktemp -d /tmp/fakekfd-wl.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc" && printf 'gpus=1\nvram=128M\n' > "$root/etc/fakekfd.conf"
export FAKEKFD_ROOT=$root
off=$("$wl" --size 64 --hot 16 --phases 2 --iters 4 --xnack 0 --json | tail -n 1)
on=$("$wl" --size 64 --hot 16 --phases 2 --iters 4 --xnack 1 --json | tail -n 1)
echo "xnack off: $off"
echo "xnack on:  $on"
t_off=$(echo "$off" | sed 's/.*"total_usec":\([0-9.]*\).*/\1/')
t_on=$(echo "$on" | sed 's/.*"total_usec":\([0-9.]*\).*/\1/')
faults_on=$(echo "$on" | sed 's/.*"faults":\([0-9]*\).*/\1/')
awk -v a="$t_on" -v b="$t_off" 'BEGIN { exit !(a * 2 < b) }' || { echo "FAIL: XNACK on ($t_on) not faster than off ($t_off)"; exit 1; }
[ "$faults_on" -gt 0 ] || { echo "FAIL: no GPU faults with XNACK on"; exit 1; }
if "$wl" --size 0 2>/dev/null; then echo "FAIL: --size 0 accepted"; exit 1; fi
if "$wl" --hot 999 --size 8 2>/dev/null; then echo "FAIL: hot > size accepted"; exit 1; fi
echo OK
