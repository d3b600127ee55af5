#!/usr/bin/env bash
# Make a Docker engine answer on this machine, installing Debian's docker.io and starting dockerd
# when none runs. Idempotent. Exits non-zero with a clear message when Docker cannot be made to work.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

# The unit tests also use OpenSSH's own ssh-keygen and ssh-agent as reference tools.
if ! command -v ssh-keygen >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing openssh-client (ssh-keygen, ssh-agent)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq openssh-client >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq openssh-client >/dev/null; }
fi

if docker info >/dev/null 2>&1; then
  log "a Docker engine already answers"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    log "no dockerd and not root: install Docker (https://docs.docker.com/engine/install/) and retry"
    exit 1
  fi
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io iptables >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p /var/log
  # Try the default storage driver first, then vfs (works where overlayfs cannot be mounted).
  for driver in "" vfs; do
    args=()
    [ -n "$driver" ] && args+=(--storage-driver "$driver")
    nohup dockerd "${args[@]}" >/var/log/bluegreen-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then break 2; fi
      if ! kill -0 $! 2>/dev/null; then break; fi
      sleep 1
    done
    log "dockerd ${driver:-default driver} did not come up; last log lines:"
    tail -n 5 /var/log/bluegreen-dockerd.log >&2 || true
    kill $! 2>/dev/null || true
    sleep 1
  done
fi

if ! docker info >/dev/null 2>&1; then
  log "FATAL: Docker engine could not be started (see /var/log/bluegreen-dockerd.log)"
  exit 1
fi
log "Docker engine ready: $(docker info --format '{{.ServerVersion}} storage={{.Driver}}')"
