#!/usr/bin/env bash
# Eight small text files, files/f1.txt … files/f8.txt, one per COPY step.
set -euo pipefail
out=${1:?usage: context.sh OUT [quick|full]}
rm -rf "$out" && mkdir -p "$out/files"
for i in $(seq 1 8); do printf 'file %d of the 40-step workload\n' "$i" > "$out/files/f$i.txt"; done
