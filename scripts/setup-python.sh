#!/usr/bin/env bash
# Links a venv built once per machine from pinned requirements: by default gpu-worker/.venv from
# gpu-worker/requirements.txt; `setup-python.sh REQUIREMENTS LINK` for another (the API fuzzer).
# Venvs live in ~/.cache/apex-portraits/venvs/<hash of the requirements>: torch alone is gigabytes,
# and a fresh clone (CI) must not download it again. Packages are not installed into them; code
# runs from the checkout, so one venv serves every clone.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=${1:-gpu-worker/requirements.txt}
link=${2:-gpu-worker/.venv}
want=$(sha256sum "$requirements" | cut -c1-16)
venv="${APEX_CACHE_DIR:-$HOME/.cache/apex-portraits}/venvs/$want"
if [ ! -f "$venv/.complete" ]; then
  echo "[setup] building a Python venv from $requirements (first time on this machine: may take minutes)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$venv/.complete"
fi
if [ "$(readlink "$link" 2>/dev/null)" != "$venv" ]; then
  rm -rf "$link"
  ln -s "$venv" "$link"
fi
