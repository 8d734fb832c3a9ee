#!/usr/bin/env bash
# Prepares the benchmark (as root, on Debian 12): installs the peers when missing (Debian's
# docker.io, buildah and debootstrap), builds kiln and the harness, and makes the base images
# every builder needs under bench/.state (gitignored):
#   bases/busybox.tar  from Debian's busybox-static (scripts/make-busybox-rootfs.sh)
#   bases/debian.tar   a debootstrap minbase of bookworm, fetched through a loopback forwarder to
#                      the mirror named in apt's own sources (so no file here names the mirror)
# docker gets both through `docker import` into the private dockerd's image store (started and
# stopped by bench/lib/dockerd.sh, by PID). kiln and buildah get them per state root at run time
# (`kiln import`, `buildah from scratch` + `buildah add` + `buildah commit`), since a cold run of
# either starts from an empty root.
set -euo pipefail
cd "$(dirname "$0")/.."
state=bench/.state
mkdir -p "$state/bases"

declare -A need=([dockerd]=docker.io [buildah]=buildah [debootstrap]=debootstrap [/usr/bin/time]=time)
missing=()
for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "bench needs root to install: ${missing[*]}" >&2; exit 1; }
  echo "Installing Debian packages: ${missing[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
bash scripts/ensure-system.sh
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
npm run build --silent || { [ -f dist/cli/main.js ] && echo "kiln's build failed; benchmarking the existing dist/" >&2; }
npx tsc -p bench/tsconfig.json

if [ ! -f "$state/bases/busybox.tar" ]; then
  rm -rf "$state/bases/busybox"
  bash scripts/make-busybox-rootfs.sh "$state/bases/busybox"
  tar -C "$state/bases/busybox" --numeric-owner -cf "$state/bases/busybox.tar.part" .
  mv "$state/bases/busybox.tar.part" "$state/bases/busybox.tar"
  rm -rf "$state/bases/busybox"
fi

if [ ! -f "$state/bases/debian.tar" ]; then
  rm -f "$state/apt-proxy.port"
  node "$state/build/apt-proxy.js" "$state/apt-proxy.port" &
  proxy=$!
  trap 'kill "$proxy" 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do [ -s "$state/apt-proxy.port" ] && break; sleep 0.1; done
  port=$(cat "$state/apt-proxy.port")
  echo "debootstrap --variant=minbase bookworm (a few minutes)" >&2
  bash scripts/make-debian-rootfs.sh "$state/bases/debian.tar" "http://127.0.0.1:$port/"
  kill "$proxy"; trap - EXIT
fi

bash bench/lib/dockerd.sh start
trap 'bash bench/lib/dockerd.sh stop' EXIT
docker=(/usr/bin/docker -H "unix://$PWD/$state/docker/docker.sock")
"${docker[@]}" image inspect busybox:latest >/dev/null 2>&1 || "${docker[@]}" import "$state/bases/busybox.tar" busybox:latest >/dev/null
"${docker[@]}" image inspect bench-debian:bookworm >/dev/null 2>&1 || "${docker[@]}" import "$state/bases/debian.tar" bench-debian:bookworm >/dev/null
touch "$state/setup.done"
echo "bench setup done: bases in $state/bases, docker images busybox:latest and bench-debian:bookworm" >&2
