#!/usr/bin/env bash
# npm run calibrate-identity -- DIR: the identity gate's rates on a deployment's own labelled photos
# (gpu-worker/apex_gpu_worker/calibrate_identity.py). DIR is read from where npm was started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/setup-python.sh" >&2
cd "${INIT_CWD:-$PWD}"
PYTHONPATH="$root/gpu-worker" exec "$root/gpu-worker/.venv/bin/python" -m apex_gpu_worker.calibrate_identity "$@"
