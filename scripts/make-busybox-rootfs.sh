#!/usr/bin/env bash
# Makes a minimal busybox root filesystem in DIR from Debian's busybox-static: every applet linked
# in /bin, /etc/passwd with root and nobody, /etc/group, /tmp with mode 1777. kiln's tests and the
# README's example use it as their base image (no public image registry is reachable here).
set -euo pipefail
dir=${1:?usage: make-busybox-rootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
case "$(ldd "$busybox" 2>&1 || true)" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) echo "make-busybox-rootfs: $busybox is not statically linked; install Debian's busybox-static" >&2; exit 1 ;;
esac
rm -rf "$dir"
mkdir -p "$dir"/{bin,etc,root,tmp,proc,sys,dev,var/tmp}
cp "$busybox" "$dir/bin/busybox"
chmod 0755 "$dir/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
chmod 1777 "$dir/tmp" "$dir/var/tmp"
chmod 0700 "$dir/root"
