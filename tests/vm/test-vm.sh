#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The `vm` suite: boots Debian's 6.12 kernel under QEMU (TCG) on a two-node NUMA machine whose
# node 1 is CPU-less with HMAT attributes, runs spm-vmtest inside (damon collector + real engine
# + numa mover moving a workload's hot part to the fast node and back), then the real spmtierd
# (Profile=numa-sysfs, Collectors=damon, Mover=numa) with spmctl on the same workload, and
# asserts on the verdicts the guest prints on its serial console.
#
# usage: test-vm.sh SPM_VMTEST SPM_VM_WORKLOAD SPMTIERD SPMCTL
# Then boots Debian 12's 6.1 kernel, which has no DAMON, and checks that the collector says so
# and that topology and the numa mover work without it.
# Environment: SPMTIER_VM_CACHE (kernel cache; default /var/cache/spmtier-vm when writable,
# else $SPMTIER_BUILD_ROOT/vm-cache), SPMTIER_VM_LOG (prefix of the console logs to keep:
# PREFIX-dmn.log, PREFIX-nodamon.log).
# Exit: 0 pass, 1 fail, 77 when the kernel, QEMU or a static busybox cannot be had here.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vmtest=${1:?usage: test-vm.sh SPM_VMTEST SPM_VM_WORKLOAD SPMTIERD SPMCTL}
workload=${2:?}
spmtierd=${3:?}
spmctl=${4:?}

skip() {
        echo "SKIP: $*"
        exit 77
}

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not found (make deps installs qemu-system-x86)"
busybox=/bin/busybox
[ -x "$busybox" ] && ! readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter' ||
        skip "$busybox is not a static busybox (make deps installs busybox-static)"
command -v cpio >/dev/null || skip "cpio not found (make deps installs it)"

# make deps (tools/fetch-vm-kernel) fills /var/cache/spmtier-vm; the kernels there are used
# as they are (no apt, no network). When it lacks them and is not writable (not root), they
# are fetched into the build tree.
cache=${SPMTIER_VM_CACHE:-}
if [ -z "$cache" ]; then
        cache=/var/cache/spmtier-vm
        if ! ls "$cache"/*/boot/vmlinuz-* >/dev/null 2>&1; then
                mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=${SPMTIER_BUILD_ROOT:-$PWD}/vm-cache
        fi
fi
export SPMTIER_VM_PREFER_CACHE=1
t0=$(date +%s.%N)
rc=0
kernel=$("$here/fetch-kernel.sh" "$cache") || rc=$?
if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 77 ] && skip "cannot fetch Debian's 6.12 cloud kernel (see above)"
        echo "fetch-kernel.sh failed ($rc)"
        exit 1
fi
kernel61=$("$here/fetch-kernel.sh" "$cache" linux-image-amd64 '6.1.*-amd64') || rc=$?
if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 77 ] && skip "cannot fetch Debian 12's 6.1 kernel (see above)"
        echo "fetch-kernel.sh failed ($rc)"
        exit 1
fi
t1=$(date +%s.%N)

work=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/build-initramfs.sh" "$work/initramfs.cpio.gz" "$here/init" "$busybox" "$vmtest" "$workload" \
        "$spmtierd" "$spmctl"
t2=$(date +%s.%N)

span() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
fail=0
expect() {
        if grep -qa "$1" "$log"; then
                echo "ok: $2"
        else
                echo "FAIL: $2 (no '$1' in $log)"
                fail=1
        fi
}
# Boots one kernel and shows what happened inside, without the firmware's escape sequences and
# the kernel's boot chatter. usage: boot NAME KERNEL APPEND
boot() {
        log=${SPMTIER_VM_LOG:-$work/console}-$1.log
        b0=$(date +%s.%N)
        "$here/run-vm.sh" "$2" "$work/initramfs.cpio.gz" "$log" 240 "$3"
        b1=$(date +%s.%N)
        echo "--- $1: $2 ($3)"
        grep -aE '^(=== |CHECK |TIMING |EPOCH |  MOVE |  RESULT |  REGION |INFO |POLL |<[0-7]>|Job |Process |[A-Z]+-VERDICT|numa_balancing)' "$log" || true
        echo "TIMING $1_qemu_wall_s $(span "$b0" "$b1")"
        echo "TIMING $1_guest_boot_to_init_s $(sed -n 's/.*=== VM-INIT uptime=\([0-9.]*\).*/\1/p' "$log" | head -n 1)"
        expect '=== VM-INIT' "$1: the guest booted into our /init"
}

# 6.12: DAMON, engine and mover end to end. pti=on: every kernel entry switches CR3, which
# flushes TCG's software TLB, so Accessed bits are set again as on hardware with a real TLB
# (tests/vm/README.md).
boot dmn "$kernel" "pti=on"
for c in topology_cpuless_node topology_hmat_access0 topology_memory_tiers topology_fast_node \
         topology_machine damon_probe workload_on_slow_node damon_leftover_running \
         damon_refuses_foreign_kdamond damon_recovers_own_kdamond engine_tracks_workload \
         phase1_converged phase1_hot_on_fast_node phase1_cold_on_slow_node \
         phase1_numa_maps_agrees damon_sees_hot_and_cold damon_targets_apart phase2_converged \
         phase2_new_hot_on_fast_node phase2_cold_on_slow_node damon_follows_phase \
         mover_results mover_shared_pages workload_data_intact mover_vanished_pid \
         damon_stop_cleans_up; do
        expect "^CHECK $c PASS" "$c"
done
expect '^VMTEST-VERDICT pass=[0-9]* fail=0$' "dmn: no check failed"
expect '^=== VM-EXIT status=0' "dmn: spm-vmtest exited 0"
# The real daemon in the same boot.
for c in daemon_started daemon_workload_on_slow_node daemon_job_attached daemon_phase1_converged \
         daemon_phase1_hot_on_fast_node daemon_phase1_cold_on_slow_node \
         daemon_phase1_numa_maps_agrees daemon_phase1_ranges_agree daemon_phase1_heat \
         daemon_phase2_converged daemon_phase2_hot_on_fast_node daemon_phase2_cold_on_slow_node \
         daemon_phase2_old_hot_part_demoted daemon_phase2_numa_maps_agrees \
         daemon_phase2_ranges_agree daemon_phase2_heat daemon_status daemon_workload_data_intact \
         daemon_job_end daemon_stops_cleanly; do
        expect "^CHECK $c PASS" "$c"
done
expect '^<6>Machine numa-sysfs: location 0 node0, 18 MiB' "daemon: NodeCapacity=0:18M reached the engine"
expect '^DAEMON-VERDICT pass=[0-9]* fail=0$' "daemon: no check failed"
expect '^=== VM-DAEMON-EXIT status=0' "daemon: spm-vmtest --daemon exited 0"
log_dmn=$log

# 6.1: no DAMON at all; the collector says so, topology and mover work without it.
boot nodamon "$kernel61" "mitigations=off spmtier.mode=nodamon"
for c in nodamon_topology nodamon_probe_says_why nodamon_collector_refuses nodamon_mover_moves \
         mover_shared_pages nodamon_data_intact; do
        expect "^CHECK $c PASS" "$c"
done
expect '^VMTEST-VERDICT pass=[0-9]* fail=0$' "nodamon: no check failed"
expect '^=== VM-EXIT status=0' "nodamon: spm-vmtest exited 0"
t3=$(date +%s.%N)

echo "TIMING fetch_s $(span "$t0" "$t1")"
echo "TIMING initramfs_s $(span "$t1" "$t2")"
echo "TIMING boots_s $(span "$t2" "$t3")"
if [ "$fail" -ne 0 ]; then
        for l in "$log_dmn" "$log"; do
                echo "--- console log tail: $l"
                tail -n 40 "$l"
        done
        exit 1
fi
exit 0
