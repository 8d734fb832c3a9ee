#!/usr/bin/env bash
# Makes sure the Debian packages kiln and its tests use are installed: as root it installs the
# missing ones; otherwise it names them and fails. Quiet when everything is there.
set -euo pipefail
declare -A need=(
  [runc]=runc                       # the OCI runtime every RUN goes through
  [newuidmap]=uidmap                # rootless: subuid/subgid ranges
  [busybox]=busybox-static          # the base image of the example and the tests
  [docker-registry]=docker-registry # a real registry for tests
  [skopeo]=skopeo                   # independent OCI client that checks kiln's output
  [umoci]=umoci                     # likewise, and unpacks images into runc bundles
  [zstd]=zstd                       # zstd-compressed layers (Node 20 has no zstd)
  [git]=git                         # ADD of a git repository (and the test repositories it is served from)
  [bzip2]=bzip2                     # ADD of a bzip2-compressed local archive
  [xz]=xz-utils                     # ADD of an xz-compressed local archive
  [openssl]=openssl                 # the registry tests sign bearer tokens with a certificate it makes
  [dockerd]=docker.io               # docker load of type=docker outputs, in a test's own private daemon
  [tmux]=tmux                       # the tty progress view is tested in a real terminal
  [debootstrap]=debootstrap         # the slow test's Debian base (scripts/make-debian-rootfs.sh)
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# Debian's dynamic busybox package also provides /bin/busybox: kiln needs the static one.
# (ldd exits 1 for a static binary: read its answer first, or pipefail would misread the test.)
if command -v busybox >/dev/null 2>&1; then
  linkage=$(ldd "$(command -v busybox)" 2>&1 || true)
  grep -q "not a dynamic executable" <<<"$linkage" || missing+=(busybox-static)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "kiln needs these Debian packages: ${missing[*]}" >&2
  echo "install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}" >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
