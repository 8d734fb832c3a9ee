#!/usr/bin/env bash
# From a fresh clone to a real build, as root: the Debian packages kiln needs, npm dependencies,
# the TypeScript build, a busybox base image in kiln's local image store; then it builds
# examples/hello into an OCI image, unpacks it with umoci and runs it with runc.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system.sh
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent

if ! bin/kiln images | grep -q '^busybox:latest '; then
  work=$(mktemp -d)
  bash scripts/make-busybox-rootfs.sh "$work/rootfs"
  bin/kiln import "$work/rootfs" busybox:latest >/dev/null
  rm -rf "$work"
  echo "Stored busybox:latest in kiln's local image store"
fi

bin/kiln build --progress plain -f examples/hello/Dockerfile --output type=oci,dest=/tmp/hello.tar examples/hello

# Run what was built, with tools that are not kiln's: umoci unpacks the image into a runtime
# bundle, runc runs it.
run=$(mktemp -d)
mkdir "$run/layout"
tar -xf /tmp/hello.tar -C "$run/layout"
umoci unpack --rootless --image "$run/layout:latest" "$run/bundle" >/dev/null
sed -i 's/"terminal": *true/"terminal": false/' "$run/bundle/config.json"
runc run --bundle "$run/bundle" "kiln-hello-$$"
rm -rf "$run"
