#!/usr/bin/env bash
# Runs the benchmark: compiles the harness (bench/src → bench/.state/build) and runs it with Node.
#   bash bench/run.sh [--quick] [--reps N] [--only parse,many-steps] [--builders kiln,buildkit,buildah]
#   bash bench/run.sh --render    # rewrite RESULTS.md and results.svg from bench/.state/results.json
# One command: whatever bench/setup.sh makes (peers, bases, docker's images, kiln's build) is set up
# first when missing, and kiln is rebuilt when a source is newer than its build. Writes
# bench/RESULTS.md and bench/results.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--render" ]; then
  if [ ! -f bench/.state/setup.done ] || ! command -v dockerd buildah debootstrap /usr/bin/time >/dev/null 2>&1 \
    || [ ! -f bench/.state/bases/busybox.tar ] || [ ! -f bench/.state/bases/debian.tar ]; then
    bash bench/setup.sh
  elif [ ! -f dist/bundle/main.cjs ] || [ -n "$(find frontend solver worker exporter cli -name '*.ts*' -newer dist/bundle/main.cjs -print -quit)" ]; then
    echo "kiln's sources are newer than its build: npm run build" >&2
    npm run build --silent
  fi
fi
npx tsc -p bench/tsconfig.json
exec node bench/.state/build/run.js "$@"
