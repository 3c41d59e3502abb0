#!/usr/bin/env bash
# Installs node_modules from the lockfile when missing or older than the lockfile (seconds otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing node dependencies from package-lock.json" >&2
  # Not `npm ci`: npm 11 writes lockfiles without the other platforms' optional binaries
  # (@swc/core-*, sharp's @img/*) and then refuses them in `npm ci`; install keeps the locked versions.
  npm install --no-audit --no-fund >&2
fi
