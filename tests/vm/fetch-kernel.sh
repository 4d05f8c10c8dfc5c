#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetches a Debian kernel into a cache directory WITHOUT installing it: an `apt-get install` of
# a kernel runs update-initramfs and hooks for minutes, `apt-get download` + `dpkg-deb -x`
# takes seconds and installs nothing. The default is the 6.12 cloud kernel (NUMA, HMAT and
# DAMON sysfs with vaddr built in); the vm suite also boots bookworm's 6.1 (meta package
# linux-image-amd64), which has no DAMON.
#
# usage: fetch-kernel.sh CACHE_DIR [META_PACKAGE VERSION_GLOB]
#   e.g. fetch-kernel.sh /var/cache/spmtier-vm linux-image-amd64 '6.1.*-amd64'
# Prints the path of the vmlinuz on success. Exits 77 (with the reason on stderr) when no
# kernel can be had: no bookworm-security in sources.list, no network, no apt, nothing cached.
# SPMTIER_VM_PREFER_CACHE=1 (the test): a cached kernel is used without asking apt, so a run
# after `make deps` needs no network; without one it says so and fetches.
set -eu

cache=${1:?usage: fetch-kernel.sh CACHE_DIR [META_PACKAGE VERSION_GLOB]}
meta=${2:-${SPMTIER_VM_KERNEL_META:-linux-image-6.12-cloud-amd64}}
glob=${3:-6.12.*-cloud-amd64}

# The newest kernel already in the cache, if any: used when apt cannot deliver (offline CI).
cached() {
        ls "$cache"/*/boot/vmlinuz-$glob 2>/dev/null | sort -V | tail -n 1
}

skip() {
        k=$(cached)
        if [ -n "$k" ]; then
                echo "fetch-kernel: $*; using the cached $k" >&2
                echo "$k"
                exit 0
        fi
        echo "fetch-kernel: $*" >&2
        exit 77
}

if [ "${SPMTIER_VM_PREFER_CACHE:-}" = 1 ]; then
        k=$(cached)
        if [ -n "$k" ]; then
                echo "$k"
                exit 0
        fi
        echo "fetch-kernel: no $glob kernel in $cache (make deps fetches it): fetching $meta now" >&2
fi

command -v apt-cache >/dev/null && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
        skip "apt-cache/apt-get/dpkg-deb not found: cannot fetch a Debian kernel"

# The versioned package behind the meta package moves with every security update, so resolve
# it each time; fall back to the newest `apt-cache search` hit when the meta package is unknown.
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [ -z "$pkg" ] && [ -z "${2:-}" ]; then
        pkg=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$' 2>/dev/null |
              awk '{print $1}' | sort -V | tail -n 1)
fi
[ -n "$pkg" ] || skip "no kernel package behind $meta known to apt (for 6.12: is bookworm-security in sources.list? try apt-get update)"

dir="$cache/$pkg"
if ! ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
        mkdir -p "$cache"
        tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        # apt-get download writes into the current directory; as root it warns about the
        # unsandboxed _apt user, which is harmless.
        if ! (cd "$tmp" && apt-get download -q "$pkg" >"$tmp/log" 2>&1); then
                cat "$tmp/log" >&2
                skip "apt-get download $pkg failed (network or archive unreachable)"
        fi
        mkdir -p "$tmp/x"
        dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/x" || skip "dpkg-deb -x of $pkg failed"
        rm -rf "$dir"
        mkdir -p "$dir"
        mv "$tmp/x/boot" "$dir/boot"
fi
ls "$dir"/boot/vmlinuz-$glob | head -n 1
