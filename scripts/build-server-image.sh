#!/usr/bin/env bash
# Build the MCP server's container image (Dockerfile) without a package index inside the build:
# the project's wheel and the wheels pinned (with hashes) in requirements-server.lock are fetched
# here, for the image's Python (Debian bookworm: CPython 3.11, glibc 2.36), then copied in.
#   scripts/build-server-image.sh [TAG]        (default bluegreen-mcp:local)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-bluegreen-mcp:local}"
PYTHON="${PYTHON:-python3}"
OUT=dist/image-wheels
log() { printf '[server-image] %s\n' "$*" >&2; }

rm -rf "$OUT"
mkdir -p "$OUT/project" "$OUT/deps"
log "building the project's wheel"
"$PYTHON" -m pip wheel -q --no-deps -w "$OUT/project" .
log "fetching the locked wheels for CPython 3.11 on x86_64 glibc <= 2.36"
# pip takes platform tags literally: every manylinux level the image's glibc 2.36 can run.
platforms=(--platform any --platform manylinux2014_x86_64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
"$PYTHON" -m pip download -q --require-hashes -r requirements-server.lock -d "$OUT/deps" \
  --only-binary=:all: --implementation cp --python-version 3.11 \
  --abi cp311 --abi abi3 --abi none "${platforms[@]}"
bash scripts/ensure-base-image.sh
log "building $TAG"
docker build -q -t "$TAG" . >/dev/null
log "built $TAG"
