#!/usr/bin/env bash
# Builds the desktop app's user interface into ui/dist (which src-tauri embeds), after its
# type check; `scripts/ui.sh test` runs its unit tests (Vitest) first.
set -euo pipefail
cd "$(dirname "$0")/../ui"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "${1:-build}" = test ]; then
  npx vitest run
fi
npm run --silent build
