#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (Debian packages when root,
# npm dependencies), builds, and runs every test with vitest. Fails loudly when a needed system
# part is missing; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
npx tsc -p tsconfig.json
exec npx vitest run "$@"
