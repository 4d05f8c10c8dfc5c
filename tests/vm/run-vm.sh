#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Boots KERNEL with INITRD under QEMU (TCG, no KVM) on a fixed two-node NUMA machine and writes
# the serial console to LOG (CRs stripped):
#   node 0: 2 CPUs + 768 MiB, HMAT 100 ns / 100 GB/s from initiator 0  -> the fast node
#   node 1: no CPU + 768 MiB, HMAT 500 ns /  32 GB/s from initiator 0  -> the slow node
# Deterministic: fixed -m and node sizes (they must add up to -m), no network, no reboot,
# panic=-1 so a dying /init ends QEMU instead of hanging, and a hard timeout.
# QEMU exits 0 whatever the guest did: the verdict is in LOG.
#
# usage: run-vm.sh KERNEL INITRD LOG [TIMEOUT_SECONDS] [EXTRA_KERNEL_ARGS]
set -eu
kernel=${1:?usage: run-vm.sh KERNEL INITRD LOG [TIMEOUT] [ARGS]}
initrd=${2:?}
log=${3:?}
limit=${4:-240}
extra=${5:-}

# -smp 2: with 2 host cores shared by other jobs, more vCPUs only slow the boot down.
# thread=single: both vCPUs run in one TCG thread, taking turns. With one thread per vCPU
# (QEMU's default) a 6.12 guest died at 2 s of boot once in CI, an "Oops: int3" in
# sched_clock_cpu while the other vCPU was patching kernel text (static keys are switched with
# an int3 breakpoint; under multi-threaded TCG a vCPU can still run the breakpoint after the
# patch is finished). One thread costs ~4 s of the suite's ~32 s here.
timeout --kill-after=10 "$limit" qemu-system-x86_64 \
        -accel tcg,thread=single -machine pc,hmat=on -cpu max -nographic -no-reboot -nic none \
        -m 1536M -smp 2,sockets=1,cores=2 \
        -object memory-backend-ram,id=m0,size=768M \
        -object memory-backend-ram,id=m1,size=768M \
        -numa node,nodeid=0,cpus=0-1,memdev=m0 \
        -numa node,nodeid=1,memdev=m1,initiator=0 \
        -numa dist,src=0,dst=1,val=20 \
        -numa hmat-lb,initiator=0,target=0,hierarchy=memory,data-type=access-latency,latency=100 \
        -numa hmat-lb,initiator=0,target=0,hierarchy=memory,data-type=access-bandwidth,bandwidth=100G \
        -numa hmat-lb,initiator=0,target=1,hierarchy=memory,data-type=access-latency,latency=500 \
        -numa hmat-lb,initiator=0,target=1,hierarchy=memory,data-type=access-bandwidth,bandwidth=32G \
        -kernel "$kernel" -initrd "$initrd" \
        -append "console=ttyS0 rdinit=/init panic=-1 loglevel=4 $extra" \
        </dev/null 2>&1 | tr -d '\r' >"$log"
