#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the VM test's initramfs: static busybox (busybox-static), our /init, and the given
# programs in /bin. A dynamically linked program (spmtierd, spmctl) brings its shared
# libraries as ldd resolves them on the host, under their sonames in /lib/x86_64-linux-gnu
# (a default search directory, so build-tree RPATHs do not matter), and the dynamic loader at
# the path its PT_INTERP names. The guest and the host run the same Debian 12 userland.
#
# usage: build-initramfs.sh OUT.cpio.gz INIT BUSYBOX PROGRAM...
set -eu
out=${1:?usage: build-initramfs.sh OUT INIT BUSYBOX PROGRAM...}
init=${2:?}
busybox=${3:?}
shift 3

root=$(mktemp -d "${TMPDIR:-/tmp}/spmtier-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/lib/x86_64-linux-gnu"
cp "$busybox" "$root/bin/busybox"
install -m 755 "$init" "$root/init"
for p in "$@"; do
        install -m 755 "$p" "$root/bin/$(basename "$p")"
        interp=$(readelf -l "$p" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
        [ -n "$interp" ] || continue
        mkdir -p "$root/$(dirname "$interp")"
        cp -L "$interp" "$root/$interp"
        # "libfoo.so.1 => /path/libfoo.so.1.2.3 (0x...)"; vdso and the loader have no "=>".
        ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r soname path; do
                cp -L "$path" "$root/lib/x86_64-linux-gnu/$soname"
        done
        if ldd "$p" | grep -q 'not found'; then
                echo "build-initramfs: $p needs a library ldd cannot find:" >&2
                ldd "$p" | grep 'not found' >&2
                exit 1
        fi
done
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
