#!/usr/bin/env bash
# Links gpu-worker/.venv to a venv built once per machine from the pinned requirements, kept in
# ~/.cache/apex-portraits/venvs/<hash of requirements.txt>: torch alone is gigabytes, and a fresh
# clone (CI) must not download it again. The package itself is not installed into the venv; it runs
# from the checkout (cwd gpu-worker/), so one venv serves every clone.
set -euo pipefail
cd "$(dirname "$0")/../gpu-worker"
want=$(sha256sum requirements.txt | cut -c1-16)
venv="${APEX_CACHE_DIR:-$HOME/.cache/apex-portraits}/venvs/$want"
if [ ! -f "$venv/.complete" ]; then
  echo "[setup] building the Python venv from gpu-worker/requirements.txt (first time on this machine: several minutes)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt >&2
  touch "$venv/.complete"
fi
if [ "$(readlink .venv 2>/dev/null)" != "$venv" ]; then
  rm -rf .venv
  ln -s "$venv" .venv
fi
