#!/usr/bin/env bash
# Debian's headless chromium for the dashboard's browser test (tests/lab/test_operator_view.py).
# Idempotent; the browser comes from apt, never from a download at test time.
set -euo pipefail

log() { printf '[ensure-browser] %s\n' "$*" >&2; }

if command -v chromium >/dev/null 2>&1; then
  log "chromium is installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "no chromium and not root: install Debian's chromium package (apt-get install chromium) and retry"
  exit 1
fi
log "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium fonts-dejavu-core >/dev/null 2>&1 \
  || { apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }
