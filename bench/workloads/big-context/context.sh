#!/usr/bin/env bash
# Deterministic: small/dNN/fNNNNN.txt hold 4 KiB derived from their number; large/blobN.bin are
# AES-CTR keystream over zeros with a fixed key (incompressible, same bytes on every machine).
set -euo pipefail
out=${1:?usage: context.sh OUT [quick|full]}
scale=${2:-full}
if [ "$scale" = quick ]; then small=2000; blobs=1; blob_mib=25; else small=20000; blobs=5; blob_mib=50; fi
rm -rf "$out" && mkdir -p "$out/small" "$out/large"
for ((d = 0; d * 1000 < small; d++)); do mkdir -p "$out/small/d$d"; done
awk -v n="$small" -v out="$out/small" 'BEGIN {
  pad = sprintf("%063d\n", 0); block = ""; for (k = 0; k < 63; k++) block = block pad
  for (i = 0; i < n; i++) {
    f = sprintf("%s/d%d/f%05d.txt", out, int(i / 1000), i)
    printf "%063d\n%s", i, block > f; close(f)
  }
}'
for ((b = 0; b < blobs; b++)); do
  head -c $((blob_mib * 1024 * 1024)) /dev/zero \
    | openssl enc -aes-256-ctr -nosalt -K "$(printf '%064x' "$b")" -iv 00000000000000000000000000000000 > "$out/large/blob$b.bin"
done
