"""The answers of the routing analysis and of the switch plan (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Style = Literal["backend-per-color", "shared-backend"]
BACKEND_PER_COLOR: Style = "backend-per-color"
SHARED_BACKEND: Style = "shared-backend"


@dataclass(frozen=True)
class ServerSpec:
    """One colour as the bluegreen config describes it."""

    color: str  # "blue" | "green" (any [a-z0-9][a-z0-9_-]* name)
    address: str  # host:port as HAProxy sees it, e.g. "blue:3001" or "10.92.3.22:3001"
    backend: str | None = None  # haproxy backend name, when configured explicitly
    server: str | None = None  # haproxy `server` name, when configured explicitly
    # A pool: each server's HAProxy name and address (`address`/`server` are then the first's).
    pool: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AppTraffic:
    """Which requests are the app's users: the ACL that decides its LIVE and/or its Host names.

    Both empty means the old single-app layouts: every request of the frontend is the app's.
    """

    rule: str | None = None  # ACL name, e.g. "is_theoshift" (never matches is_theoshift_blue)
    hosts: tuple[str, ...] = ()  # Host header values, e.g. ("theoshift.com",)


@dataclass(frozen=True)
class PoolLine:
    """One server of a colour's pool as haproxy.cfg has it."""

    server: str
    line: int
    markers: tuple[str, ...] = ()  # only `backup` is allowed in a pool
    weight: str | None = None


@dataclass(frozen=True)
class ColorRoute:
    """Where one colour sits in haproxy.cfg."""

    color: str
    backend: str | None = None
    server: str | None = None
    address: str | None = None  # as written on the server line
    backend_line: int | None = None  # the backend section's header
    server_line: int | None = None
    markers: tuple[str, ...] = ()  # standby markers on the server line: backup, disabled, weight 0
    weight: str | None = None  # explicit `weight` value, if any
    deciding_lines: tuple[int, ...] = ()  # lines that make this colour LIVE or STANDBY
    pool_lines: tuple[PoolLine, ...] = ()  # a pool: each of its servers

    @property
    def server_names(self) -> list[str]:
        """The HAProxy name of each of this colour's servers (one, or each of its pool)."""
        return [p.server for p in self.pool_lines] or ([self.server] if self.server else [])


@dataclass(frozen=True)
class RuleNote:
    """A routing line that is not the app's deciding line: reported, never moved."""

    line: int
    text: str  # the line as written, stripped
    backend: str | None
    color: str | None = None  # the fixed colour a preview line sends its requests to
    hosts: tuple[str, ...] = ()  # the Host values it routes, when its condition is exactly those


@dataclass(frozen=True)
class RoutingAnalysis:
    """What haproxy.cfg says about one app's routing.

    `live`/`standby` report what the deciding lines say even when there are problems; act on them
    only when `certain`. Line numbers count through every file HAProxy loads, in load order
    (`where` names the file and its own line number).
    """

    frontend: str
    servers: tuple[ServerSpec, ...]
    traffic: AppTraffic = AppTraffic()
    style: Style | None = None
    live: str | None = None
    standby: str | None = None
    colors: tuple[ColorRoute, ...] = ()
    frontend_line: int | None = None
    routed_backend: str | None = None  # the backend the app's users are sent to
    deciding_lines: tuple[int, ...] = ()
    frontends: tuple[str, ...] = ()  # every frontend/listen that sends the app's users to a colour
    preview: tuple[RuleNote, ...] = ()  # fixed lines to one colour that never see the app's users
    others: tuple[RuleNote, ...] = ()  # lines to other backends (other apps, default pages)
    notes: tuple[str, ...] = ()  # facts that do not make the answer uncertain
    problems: tuple[str, ...] = ()
    locations: tuple[tuple[str, int], ...] = ()  # (file, its first line's number), load order

    @property
    def certain(self) -> bool:
        return (
            not self.problems
            and self.live is not None
            and self.standby is not None
            and self.live != self.standby
        )

    def route(self, color: str) -> ColorRoute:
        for route in self.colors:
            if route.color == color:
                return route
        raise KeyError(color)

    def where(self, number: int) -> str:
        """`line N`, or `line N of FILE` when HAProxy loads several files."""
        return where(self.locations, number)

    @property
    def deciding_file(self) -> str | None:
        """The file holding the (first) deciding line; None without one or without files."""
        if not self.deciding_lines or not self.locations:
            return None
        return _in_file(self.locations, self.deciding_lines[0])[0]


def where(locations: tuple[tuple[str, int], ...], number: int) -> str:
    """Line `number` of the combined configuration as a person finds it: `line N`, or `line N of
    FILE` when there are several files (`locations`: each file and its first line's number)."""
    if len(locations) <= 1:
        return f"line {number}"
    path, own = _in_file(locations, number)
    return f"line {own} of {path}"


def _in_file(locations: tuple[tuple[str, int], ...], number: int) -> tuple[str, int]:
    path, first = next((p, f) for p, f in reversed(locations) if f <= number)
    return path, number - first + 1


def file_line(locations: tuple[tuple[str, int], ...], number: int, path: str) -> str:
    """`FILE:N` for line `number` of the combined configuration; `path` names a single file."""
    if len(locations) <= 1:
        return f"{path}:{number}"
    name, own = _in_file(locations, number)
    return f"{name}:{own}"


@dataclass(frozen=True)
class SwitchEdit:
    """A planned switch: the new text of the one file that changes, its diff, the lines changed."""

    target: str
    previous_live: str
    text: str
    diff: str
    changed_lines: tuple[int, ...]  # line numbers within `path`
    analysis: RoutingAnalysis  # of the new configuration
    path: str = "haproxy.cfg"  # the file to replace (only this one)
