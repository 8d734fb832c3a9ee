#!/usr/bin/env bash
# One incompressible file, blob.bin: AES-CTR keystream over zeros with a fixed key (deterministic).
set -euo pipefail
out=${1:?usage: context.sh OUT [quick|full]}
scale=${2:-full}
if [ "$scale" = quick ]; then mib=30; else mib=300; fi
rm -rf "$out" && mkdir -p "$out"
head -c $((mib * 1024 * 1024)) /dev/zero \
  | openssl enc -aes-256-ctr -nosalt -K "$(printf '%064x' 300)" -iv 00000000000000000000000000000000 > "$out/blob.bin"
