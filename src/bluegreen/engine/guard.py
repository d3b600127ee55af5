"""GuardedRunner: the last line of defence for "LIVE is never touched by a deploy".

The deploy pipeline only ever addresses STANDBY, but a bug (a wrong variable, a stale target) must
not be able to change LIVE. Every command goes through this wrapper; one marked `mutating`, or any
file write, addressed to a protected host raises UnsafeOperationError before anything is sent.
Read-only probes and reads pass. Hosts are compared by ssh target without the user (`root@h` and
`deploy@h` are the same machine) and without the default port.
"""

from __future__ import annotations

from collections.abc import Iterable

from bluegreen.domain.command import Command
from bluegreen.errors import UnsafeOperationError
from bluegreen.transport.base import CommandResult, Exchange, Runner, TcpRequest


def machine(target: str) -> str:
    """The part of an ssh target that names the machine: `root@Host:22` -> `host`."""
    host = target.rsplit("@", 1)[-1].lower()
    return host[:-3] if host.endswith(":22") else host


class GuardedRunner:
    """Wraps a Runner; refuses changes to `protected` hosts (ssh targets)."""

    def __init__(self, inner: Runner, protected: str | Iterable[str], *, why: str = "LIVE") -> None:
        self.inner = inner
        targets = [protected] if isinstance(protected, str) else list(protected)
        self.protected = frozenset(machine(t) for t in targets)
        self.why = why

    def is_protected(self, host: str) -> bool:
        return machine(host) in self.protected

    def _refuse(self, host: str, what: str) -> UnsafeOperationError:
        return UnsafeOperationError(
            f"refused to {what} on {host}: it is {self.why}, and only read-only commands may "
            "reach it",
            hint="nothing was sent; this is a bug in bluegreen, please report it",
        )

    def run(self, host: str, command: Command, *, timeout: float | None = None) -> CommandResult:
        if command.mutating and self.is_protected(host):
            raise self._refuse(host, f"run `{command.display()}`")
        return self.inner.run(host, command, timeout=timeout)

    def read_file(self, host: str, path: str) -> bytes | None:
        return self.inner.read_file(host, path)

    def exchange(self, host: str, request: TcpRequest) -> Exchange:
        """Passes: it connects FROM `host` (the HAProxy host); probes are read-only GETs."""
        return self.inner.exchange(host, request)

    def write_file_atomic(
        self, host: str, path: str, data: bytes, *, mode: int | None = None
    ) -> None:
        if self.is_protected(host):
            raise self._refuse(host, f"write {path}")
        self.inner.write_file_atomic(host, path, data, mode=mode)

    def close(self) -> None:
        """Nothing: the wrapped runner (and its connections) belongs to whoever made it."""
