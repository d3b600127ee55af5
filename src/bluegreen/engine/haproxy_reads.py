"""Read-only views of the HAProxy host: cfg, state file, lock holder, runtime API."""

from __future__ import annotations

from bluegreen.domain.command import Command


def runtime_command(socket_path: str, query: str, sudo: bool = False) -> Command:
    """Ask HAProxy's runtime API one question through socat (read-only queries only)."""
    return Command.of(
        "socat",
        "-t",
        "5",
        "stdio",
        f"unix-connect:{socket_path}",
        stdin=f"{query}\n".encode(),
        mutating=False,
        sudo=sudo,
    )
