#!/usr/bin/env bash
# npm test: installs what is missing, type-checks, then runs every suite against real services
# (jest's global setup starts Redis, FerretDB and MinIO on free ports and stops them afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
npx tsx scripts/services.ts install
npx tsc -p .
npx jest "$@"
