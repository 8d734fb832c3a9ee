#!/usr/bin/env bash
# Runs the benchmark: compiles the harness (bench/src → bench/.state/build) and runs it with Node.
#   bash bench/run.sh [--quick] [--reps N] [--only parse,many-steps] [--builders kiln,buildkit,buildah]
#   bash bench/run.sh --render    # rewrite RESULTS.md and results.svg from bench/.state/results.json
# Needs bench/setup.sh first. Writes bench/RESULTS.md and bench/results.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p bench/tsconfig.json
exec node bench/.state/build/run.js "$@"
