#!/usr/bin/env bash
# Makes a Debian bookworm minbase root filesystem with debootstrap and writes it as one tar:
#   make-debian-rootfs.sh OUT.tar MIRROR_URL [SUITE]
# MIRROR_URL is the loopback address of an apt forwarder (bench/src/apt-proxy.ts), so that no file
# names the real mirror; the tar has no apt sources, no device nodes and empty package lists.
# The tar is written next to OUT as OUT.part and renamed, so a half-made base is never found.
# bench/setup.sh and the debootstrap test (test/features/debian.test.ts) both use it.
set -euo pipefail
out=${1:?usage: make-debian-rootfs.sh OUT.tar MIRROR_URL [SUITE]}
mirror=${2:?usage: make-debian-rootfs.sh OUT.tar MIRROR_URL [SUITE]}
suite=${3:-bookworm}
command -v debootstrap >/dev/null || { echo "make-debian-rootfs: debootstrap is not installed (Debian package debootstrap)" >&2; exit 1; }
work=$(mktemp -d "${out}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Device nodes come from the runtime, and apt's sources come from whoever uses the base.
rm -rf "$root"/dev/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root/etc/apt/sources.list"
mkdir -p "$root/var/lib/apt/lists/partial"
tar -C "$root" --numeric-owner --xattrs -cf "$out.part" .
mv "$out.part" "$out"
