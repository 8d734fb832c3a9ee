#!/usr/bin/env bash
# This workload needs no files: its context is an empty directory.
set -euo pipefail
out=${1:?usage: context.sh OUT [quick|full]}
rm -rf "$out" && mkdir -p "$out"
