#!/usr/bin/env bash
# Static checks of the deployment files, runnable without a Docker engine or a cluster: hadolint on
# the Dockerfiles, the Compose spec's JSON Schema on docker-compose.yml, yamllint on everything.
# (test/deploy.test.ts checks what ties them to the code: roles, env names, queue keys.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-python.sh deploy/requirements-check.txt deploy/.venv
bin=deploy/.venv/bin
"$bin/hadolint" --failure-threshold warning Dockerfile.api Dockerfile.gpu
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
"$bin/yamllint" -d '{extends: relaxed, rules: {line-length: {max: 160}}}' docker-compose.yml deploy/k8s
echo "[deploy] Dockerfiles, compose file and Kubernetes manifests pass their static checks"
