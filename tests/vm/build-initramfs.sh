#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the VM test's initramfs: static busybox (busybox-static), our /init, and the given
# programs in /bin (they must be static: the image has no libc).
#
# usage: build-initramfs.sh OUT.cpio.gz INIT BUSYBOX PROGRAM...
set -eu
out=${1:?usage: build-initramfs.sh OUT INIT BUSYBOX PROGRAM...}
init=${2:?}
busybox=${3:?}
shift 3

root=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin"
cp "$busybox" "$root/bin/busybox"
install -m 755 "$init" "$root/init"
for p in "$@"; do
        if readelf -l "$p" 2>/dev/null | grep -q 'program interpreter'; then
                echo "build-initramfs: $p is not statically linked" >&2
                exit 1
        fi
        install -m 755 "$p" "$root/bin/$(basename "$p")"
done
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
