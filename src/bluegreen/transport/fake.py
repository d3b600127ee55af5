"""FakeRunner: a scripted, deterministic Runner for unit tests of the engine.

    fake = FakeRunner()
    fake.on("systemctl is-active theoshift", host="blue", stdout="active\\n")
    fake.on(re.compile(r"^git fetch"), host="green", exit_status=1, stderr="no route")
    fake.on(lambda c: c.argv[:1] == ("curl",), respond=lambda host, c: Reply(stdout="ok"))
    fake.put_file("haproxy", "/etc/haproxy/haproxy.cfg", CFG)
    ... engine runs ...
    fake.assert_read_only("blue")          # nothing mutating reached BLUE
    assert fake.commands("green") == [...]  # rendered lines, in order

Rules are tried in the order they were added; the first one that matches and still has uses
left answers (so `times=1` rules placed first script a sequence: fail once, then succeed).
A match is an exact rendered line (str), a Command (compared by its rendered line), a compiled
regex (searched in the rendered line) or a predicate on the Command. An unmatched command raises
AssertionError naming it, unless a `default` reply was given. Every call is recorded in order.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from bluegreen.domain.command import Command
from bluegreen.errors import ForwardingRefused
from bluegreen.transport.base import CommandResult, Exchange, TcpRequest

Kind: TypeAlias = Literal["run", "read", "write", "tcp"]
Matcher: TypeAlias = str | Command | re.Pattern[str] | Callable[[Command], bool]
NEW_FILE_MODE = 0o644


@dataclass(frozen=True)
class Reply:
    """What a scripted command answers."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0
    duration_s: float = 0.0


Responder: TypeAlias = Callable[[str, Command], Reply]
# (host, address, port, request) -> the bytes the peer answers, or raise a TransportError.
TcpResponder: TypeAlias = Callable[[str, str, int, bytes], bytes]


@dataclass(frozen=True)
class Call:
    """One recorded call. `line` is the rendered command (run) or the path (read/write)."""

    kind: Kind
    host: str
    line: str
    command: Command | None = None
    data: bytes | None = field(default=None, repr=False)
    timeout: float | None = None

    @property
    def mutating(self) -> bool:
        if self.kind == "write":
            return True
        return self.command is not None and self.command.mutating


@dataclass
class Rule:
    match: Matcher
    host: str | None = None
    reply: Reply = field(default_factory=Reply)
    raises: BaseException | None = None
    respond: Responder | None = None
    times: int | None = None  # None: unlimited
    hits: int = 0

    def accepts(self, host: str, command: Command) -> bool:
        if self.host is not None and self.host != host:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        match = self.match
        if isinstance(match, str):
            return match == command.render()
        if isinstance(match, Command):
            return match.render() == command.render()
        if isinstance(match, re.Pattern):
            return match.search(command.render()) is not None
        return bool(match(command))

    def describe(self) -> str:
        match = self.match
        if isinstance(match, Command):
            text = repr(match.render())
        elif isinstance(match, re.Pattern):
            text = f"re {match.pattern!r}"
        elif isinstance(match, str):
            text = repr(match)
        else:
            text = getattr(match, "__name__", "predicate")
        uses = "" if self.times is None else f" ({self.hits}/{self.times} used)"
        return f"{self.host or '*'}: {text}{uses}"


@dataclass
class _FileFault:
    host: str
    path: str
    kind: Kind | None
    error: BaseException
    times: int | None
    hits: int = 0


class FakeRunner:
    """Implements the Runner protocol from scripted rules and an in-memory file system."""

    def __init__(self, *, default: Reply | None = None) -> None:
        self.default = default
        self.closed = False
        self._rules: list[Rule] = []
        self._calls: list[Call] = []
        self._files: dict[str, dict[str, tuple[bytes, int]]] = {}
        self._faults: list[_FileFault] = []
        self._lock = threading.RLock()  # the engine may call from several threads
        # Without a responder every host refuses TCP forwarding (as `AllowTcpForwarding no`).
        self.tcp_responder: TcpResponder | None = None

    # -- scripting ------------------------------------------------------------------------

    def on(
        self,
        match: Matcher,
        *,
        host: str | None = None,
        stdout: str = "",
        stderr: str = "",
        exit_status: int = 0,
        duration_s: float = 0.0,
        raises: BaseException | None = None,
        respond: Responder | None = None,
        times: int | None = None,
    ) -> Rule:
        """Script an answer for matching commands (on `host`, or any host when None)."""
        rule = Rule(
            match=match,
            host=host,
            reply=Reply(stdout, stderr, exit_status, duration_s),
            raises=raises,
            respond=respond,
            times=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def put_file(
        self, host: str, path: str, data: bytes | str, *, mode: int = NEW_FILE_MODE
    ) -> None:
        """Seed the in-memory file system (not recorded as a call)."""
        raw = data.encode() if isinstance(data, str) else data
        with self._lock:
            self._files.setdefault(host, {})[path] = (raw, mode)

    def remove_file(self, host: str, path: str) -> None:
        with self._lock:
            self._files.get(host, {}).pop(path, None)

    def fail_file(
        self,
        host: str,
        path: str,
        error: BaseException,
        *,
        kind: Literal["read", "write"] | None = None,
        times: int | None = None,
    ) -> None:
        """Make reads and/or writes of `path` on `host` raise `error`."""
        with self._lock:
            self._faults.append(_FileFault(host, path, kind, error, times))

    # -- Runner protocol ------------------------------------------------------------------

    def run(self, host: str, command: Command, *, timeout: float | None = None) -> CommandResult:
        line = command.render()
        with self._lock:
            self._calls.append(Call("run", host, line, command=command, timeout=timeout))
            rule = next((r for r in self._rules if r.accepts(host, command)), None)
            if rule is not None:
                rule.hits += 1
            elif self.default is None:
                raise AssertionError(self._unmatched(host, line))
        if rule is None:
            assert self.default is not None
            reply = self.default
        elif rule.raises is not None:
            raise rule.raises
        elif rule.respond is not None:
            reply = rule.respond(host, command)
        else:
            reply = rule.reply
        return CommandResult(
            host=host,
            command=command.display(),
            exit_status=reply.exit_status,
            stdout=reply.stdout,
            stderr=reply.stderr,
            duration_s=reply.duration_s,
        )

    def read_file(self, host: str, path: str) -> bytes | None:
        with self._lock:
            self._calls.append(Call("read", host, path))
            self._raise_fault(host, path, "read")
            entry = self._files.get(host, {}).get(path)
        return None if entry is None else entry[0]

    def exchange(self, host: str, request: TcpRequest) -> Exchange:
        with self._lock:
            self._calls.append(
                Call("tcp", host, request.where, data=request.payload, timeout=request.timeout)
            )
            responder = self.tcp_responder
        if responder is None:
            raise ForwardingRefused(f"{host} does not allow TCP forwarding (fake)", host=host)
        return Exchange(responder(host, request.address, request.port, request.payload), 0.001)

    def write_file_atomic(
        self, host: str, path: str, data: bytes, *, mode: int | None = None
    ) -> None:
        with self._lock:
            self._calls.append(Call("write", host, path, data=bytes(data)))
            self._raise_fault(host, path, "write")
            files = self._files.setdefault(host, {})
            # Same rule as the real runners: an existing file keeps its mode.
            kept = files[path][1] if path in files else (NEW_FILE_MODE if mode is None else mode)
            files[path] = (bytes(data), kept)

    def close(self) -> None:
        self.closed = True

    # -- inspection -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, host: str, kind: Kind | None = None) -> list[Call]:
        return [c for c in self.calls if c.host == host and (kind is None or c.kind == kind)]

    def commands(self, host: str | None = None) -> list[str]:
        """Rendered command lines in call order (one host, or all)."""
        return [c.line for c in self.calls if c.kind == "run" and host in (None, c.host)]

    def mutating_calls(self, host: str) -> list[Call]:
        return [c for c in self.calls_to(host) if c.mutating]

    def assert_read_only(self, host: str) -> None:
        """Fail when any mutating command or file write reached `host`."""
        bad = self.mutating_calls(host)
        if bad:
            listing = "\n".join(f"  {c.kind}: {c.line}" for c in bad)
            raise AssertionError(f"mutating calls reached {host}:\n{listing}")

    def unused_rules(self) -> list[Rule]:
        with self._lock:
            return [r for r in self._rules if r.hits == 0]

    def paths(self, host: str) -> list[str]:
        """Every path in the host's in-memory file system."""
        with self._lock:
            return sorted(self._files.get(host, {}))

    def file(self, host: str, path: str) -> bytes | None:
        with self._lock:
            entry = self._files.get(host, {}).get(path)
        return None if entry is None else entry[0]

    def file_mode(self, host: str, path: str) -> int | None:
        with self._lock:
            entry = self._files.get(host, {}).get(path)
        return None if entry is None else entry[1]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- internals ------------------------------------------------------------------------

    def _raise_fault(self, host: str, path: str, kind: Kind) -> None:
        for fault in self._faults:
            if (fault.host, fault.path) != (host, path) or fault.kind not in (None, kind):
                continue
            if fault.times is not None and fault.hits >= fault.times:
                continue
            fault.hits += 1
            raise fault.error

    def _unmatched(self, host: str, line: str) -> str:
        scripted = "\n".join(f"  {r.describe()}" for r in self._rules) or "  (none)"
        return (
            f"FakeRunner: no scripted answer for a command on {host}:\n  {line}\n"
            f"scripted:\n{scripted}"
        )
