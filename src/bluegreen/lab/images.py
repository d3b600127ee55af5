"""Build the lab's images from their build context when missing, tagged by a hash of it.

The context is the package's `lab/docker/` folder (package data, so the lab works from an installed
wheel too). A change to any file in it gives a new tag, so a stale image is never reused.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from bluegreen.errors import BlueGreenError

log = logging.getLogger("bluegreen.lab")

KINDS = ("origin", "app-host", "haproxy")
BASE_IMAGE = "debian:bookworm-slim"


def docker_dir() -> Path:
    """The images' build context, shipped inside the package."""
    root = Path(__file__).resolve().with_name("docker")
    if not (root / "haproxy" / "Dockerfile").is_file():
        raise BlueGreenError(
            f"the lab's build files are missing from this installation ({root})",
            hint="reinstall bluegreen-mcp: pip install --force-reinstall 'bluegreen-mcp[lab]'",
        )
    return root


def context_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def image_tag(kind: str, root: Path | None = None) -> str:
    return f"bluegreen-lab-{kind}:{context_hash(root or docker_dir())}"


def ensure_images(client: Any, progress: Any = None) -> dict[str, str]:
    """Return {kind: tag}, building whatever image is missing."""
    import docker.errors

    root = docker_dir()
    tags: dict[str, str] = {}
    for kind in KINDS:
        tag = image_tag(kind, root)
        tags[kind] = tag
        try:
            client.images.get(tag)
            continue
        except docker.errors.ImageNotFound:
            pass
        try:
            client.images.get(BASE_IMAGE)
        except docker.errors.ImageNotFound as exc:
            raise BlueGreenError(
                f"base image {BASE_IMAGE} is missing",
                hint="run scripts/ensure-base-image.sh (pulls it, or builds it with debootstrap)",
            ) from exc
        if progress:
            progress(f"building image {tag}")
        log.info("building %s", tag)
        try:
            client.images.build(
                path=str(root), dockerfile=f"{kind}/Dockerfile", tag=tag, rm=True, pull=False
            )
        except docker.errors.BuildError as exc:
            tail = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-2000:]
            raise BlueGreenError(f"building {tag} failed: {exc.msg}\n{tail}") from exc
    return tags
