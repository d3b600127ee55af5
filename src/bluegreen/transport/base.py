"""The Runner protocol: the only way the engine touches a host.

Hosts are named by an ssh target string exactly as written in the config (an alias from
~/.ssh/config, or user@host[:port]). Implementations: `ssh.SSHRunner` (paramiko, pooled) and
`fake.FakeRunner` (scripted, records every call, for unit tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bluegreen.domain.command import Command

TAIL_MAX_CHARS = 4000


@dataclass(frozen=True)
class CommandResult:
    host: str
    command: str  # the masked display form
    exit_status: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def tail(self, lines: int = 20, max_chars: int = TAIL_MAX_CHARS) -> str:
        """Last lines of stdout+stderr, for error reports: at most `max_chars` (the end of the
        text), so one huge line cannot bloat a result, an MCP answer or the history file. Lines
        end at `\n` only, so the text is kept exactly (str.splitlines() would turn a `\r`, U+2028
        or U+0085 into a line break); readers make it safe to show."""
        text = "\n".join(part for part in (self.stdout.rstrip(), self.stderr.rstrip()) if part)
        tail = "\n".join(text[-(max_chars * 4) :].split("\n")[-lines:])
        if len(tail) > max_chars:
            return "…" + tail[-(max_chars - 1) :]
        return tail


@dataclass(frozen=True)
class TcpRequest:
    """Bytes to send over a TCP connection to `address:port`, made from the runner's host.

    The peer's answer ends where it closes the connection, or earlier where `complete(received)`
    says it is whole (a peer that keeps the connection open must not turn a full answer into a
    timeout). `timeout` is the peer's: it runs from the moment the connection is open, plus the
    time opening it took (the answer crosses the runner's own path once more); opening it has
    the runner's connect budget."""

    address: str
    port: int
    payload: bytes
    timeout: float
    complete: Callable[[bytes], bool] | None = None

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Exchange:
    """What a peer answered over a TCP connection, and how long the connection took (opening
    it included, connecting to SSH itself not)."""

    data: bytes
    duration_s: float


class Runner(Protocol):
    def run(self, host: str, command: Command, *, timeout: float | None = None) -> CommandResult:
        """Run one command; return its result whatever the exit status.

        Raises TransportError (or a subclass) when the host cannot be reached or the command does
        not finish within `timeout` seconds. A non-zero exit is NOT an exception here.
        """
        ...

    def read_file(self, host: str, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist. TransportError otherwise."""
        ...

    def exchange(self, host: str, request: TcpRequest) -> Exchange:
        """Open a TCP connection FROM `host` to the request's address (an SSH direct-tcpip
        channel: the network path the host itself has), send its payload, and return the answer
        (see TcpRequest; at most 1 MiB).

        Raises ForwardingRefused when the host does not allow this, TargetUnreachable when the
        host's connection to the peer fails (refused, no route), CommandTimeout when the peer,
        once connected, does not finish within `timeout`, and TransportError when our own path
        (the SSH connection, the channel open) fails: that says nothing about the peer.
        """
        ...

    def write_file_atomic(
        self, host: str, path: str, data: bytes, *, mode: int | None = None
    ) -> None:
        """Write to a temp file in the same directory, then rename over `path`.

        Keeps the existing file's mode and owner (or `mode` for a new file). A reader sees the old
        content or the new, never a partial file.
        """
        ...

    def close(self) -> None:
        """Close every pooled connection."""
        ...
