#!/usr/bin/env bash
# Creates gpu-worker/.venv and installs the pinned requirements; a second run costs a second
# (the stamp file records which requirements the venv was built from).
set -euo pipefail
cd "$(dirname "$0")/../gpu-worker"
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "[setup] building gpu-worker/.venv from requirements.txt" >&2
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt >&2
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e . >&2
echo "$want" > "$stamp"
