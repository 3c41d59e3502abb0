#!/usr/bin/env bash
# npm test: installs what is missing, type-checks, then runs every suite against real services
# (jest's global setup starts Redis, FerretDB and MinIO on free ports and stops them afterwards),
# then the Python worker's pytest suite. Arguments go to jest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node-runtime.sh
bash scripts/ensure-node-deps.sh
bash scripts/setup-python.sh
bash scripts/setup-python.sh test/fuzz/requirements.txt test/fuzz/.venv  # schemathesis, for test/fuzz.test.ts
npx tsx scripts/services.ts install
bash scripts/install-chromium.sh        # Debian's Chromium, for the studio page's browser tests
npx tsx scripts/build-studio.ts         # the studio page the API serves at /
npx tsc -p .
bash scripts/check-deploy.sh
status=0
npx jest "$@" || status=$?
(cd gpu-worker && .venv/bin/python -m pytest) || status=$?
exit "$status"
