"""Docker plumbing for the lab: the SDK and engine, files and commands in containers, ports.

Every function works on one container (or the engine) and knows nothing of the lab's roles.
"""

from __future__ import annotations

import io
import socket
import tarfile
from typing import Any

from bluegreen.errors import LabError


def docker_sdk() -> Any:
    """The Docker SDK, which only the lab needs: it comes with the `lab` extra, so a lean install
    (the CLI and MCP server against real hosts) gets a LabError that says how to add it."""
    try:
        import docker
    except ModuleNotFoundError as exc:
        raise LabError(
            "the lab needs the Docker SDK for Python, which is not installed",
            hint="install the lab's extra: pip install 'bluegreen-mcp[lab]' (a checkout: make venv)",
        ) from exc
    return docker


def docker_client() -> Any:
    docker = docker_sdk()
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise LabError(
            f"no Docker engine answers ({exc})",
            hint="start Docker (or run scripts/ensure-docker.sh as root) and retry",
        ) from exc
    return client


def put_file(container: Any, path: str, data: bytes, mode: int) -> None:
    directory, _, name = path.rpartition("/")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entry = tarfile.TarInfo(name)
        entry.size = len(data)
        entry.mode = mode
        tar.addfile(entry, io.BytesIO(data))
    container.put_archive(directory, buf.getvalue())


def exec_checked(container: Any, argv: list[str]) -> str:
    """Run argv in the container; its output, or a LabError with the output's tail."""
    code, output = container.exec_run(argv, demux=False)
    text = output.decode(errors="replace") if output else ""
    if code != 0:
        raise LabError(f"{container.name}: {' '.join(argv)} exited {code}:\n{text[-2000:]}")
    return text


def install_key(container: Any, public_key: str) -> None:
    put_file(container, "/root/.ssh/authorized_keys", public_key.encode(), 0o600)


def loopback_port() -> tuple[str, int]:
    """A free port on 127.0.0.1, fixed at creation so it survives a container restart (Docker
    picks a new random port on every start when left to choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return ("127.0.0.1", int(probe.getsockname()[1]))


def host_port(container: Any, port: str) -> int:
    bindings = container.attrs["NetworkSettings"]["Ports"].get(port) or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", ""):
            return int(binding["HostPort"])
    raise LabError(f"{container.name}: port {port} is not published on 127.0.0.1")
