#!/usr/bin/env bash
# Make the base image the Dockerfiles use (debian:bookworm-slim) available. Pull it when a registry
# answers; otherwise build it offline with debootstrap from the Debian mirror this machine's apt uses,
# then `docker import` it under the same tag. Idempotent.
set -euo pipefail

TAG="${BASE_IMAGE:-debian:bookworm-slim}"
log() { printf '[base-image] %s\n' "$*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG present"
  exit 0
fi
if timeout 60 docker pull -q "$TAG" >/dev/null 2>&1; then
  log "pulled $TAG"
  exit 0
fi
log "$TAG cannot be pulled; building it with debootstrap"

mirror_from_apt_sources() {
  # deb822 sources first (URIs: ...), then one-line sources (deb URL suite ...).
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources | grep -v security || true)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
  fi
  printf '%s' "$m"
}

MIRROR="${DEBIAN_MIRROR:-$(mirror_from_apt_sources)}"
if [ -z "$MIRROR" ]; then
  log "FATAL: no Debian mirror found in apt sources; set DEBIAN_MIRROR"
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi

ROOT=$(mktemp -d /tmp/bluegreen-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
log "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >/tmp/bluegreen-debootstrap.log 2>&1 \
  || { tail -n 20 /tmp/bluegreen-debootstrap.log >&2; log "FATAL: debootstrap failed"; exit 1; }
# Slim it like the official image: no apt lists, no docs.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/var/cache/apt/*.bin
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR" >"$ROOT/etc/apt/sources.list"
tar -C "$ROOT" -c . | docker import --change 'CMD ["bash"]' - "$TAG" >/dev/null
log "imported $TAG"
