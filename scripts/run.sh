#!/usr/bin/env bash
# Runs a command on the project's Node.js with its dependencies installed:
#   bash scripts/run.sh [--full] COMMAND ARGS...
# --full also sets up what the whole product needs: the Python venv and the studio page (the local
# services' binaries are installed by startServices itself).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node-runtime.sh
bash scripts/ensure-node-deps.sh
if [ "${1:-}" = "--full" ]; then
  shift
  bash scripts/setup-python.sh
  tsx scripts/build-studio.ts
fi
exec "$@"
