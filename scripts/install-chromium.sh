#!/usr/bin/env bash
# Debian's Chromium for the studio page's browser tests (playwright-core drives it; Playwright's own
# browser download is not reachable from these machines). Seconds when it is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "[setup] installing chromium from Debian (for the studio page tests)" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; update only when the first try cannot find it.
apt-get install -y --no-install-recommends chromium >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends chromium >&2; }
