"""Which colour haproxy.cfg routes to, and the minimal edit that switches it. Pure, no I/O.

Two routing styles are understood:
- backend-per-color: one backend per colour; the frontend's unconditional `use_backend` (the first
  one wins) or else its `default_backend` names the LIVE colour's backend.
- shared-backend: one backend (or listen section) holds both servers; the STANDBY server carries a
  standby marker (`backup`, `disabled` or `weight 0`) and the LIVE one carries none.

The analysis never guesses: anything it cannot reason about becomes a sentence in `problems`, and
only an analysis with no problem is `certain`, which `plan_switch` requires.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from bluegreen.domain.haproxy_cfg import (
    HAProxyConfig,
    Line,
    Section,
    ServerLine,
    server_line,
)
from bluegreen.errors import HAProxyConfigError, ValidationError

Style = Literal["backend-per-color", "shared-backend"]
BACKEND_PER_COLOR: Style = "backend-per-color"
SHARED_BACKEND: Style = "shared-backend"

_COLOR = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_BACKEND_KINDS = ("backend", "listen")
_FRONTEND_KINDS = ("frontend", "listen")
_FLAG_MARKERS = ("backup", "disabled")
_COUNTER_MARKERS = ("no-backup", "enabled")  # undo a marker inherited from default-server


@dataclass(frozen=True)
class ServerSpec:
    """One colour as the bluegreen config describes it."""

    color: str  # "blue" | "green" (any [a-z0-9][a-z0-9_-]* name)
    address: str  # host:port as HAProxy sees it, e.g. "blue:3001" or "10.92.3.22:3001"
    backend: str | None = None  # haproxy backend name, when configured explicitly
    server: str | None = None  # haproxy `server` name, when configured explicitly


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


@dataclass(frozen=True)
class RoutingAnalysis:
    """What haproxy.cfg says about one app's routing.

    `live`/`standby` report what the deciding lines say even when there are problems; act on them
    only when `certain`.
    """

    frontend: str
    servers: tuple[ServerSpec, ...]
    style: Style | None = None
    live: str | None = None
    standby: str | None = None
    colors: tuple[ColorRoute, ...] = ()
    frontend_line: int | None = None
    routed_backend: str | None = None  # the backend the frontend sends unconditional traffic to
    deciding_lines: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()

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


@dataclass(frozen=True)
class SwitchEdit:
    """A planned switch: the new cfg text, its diff against the old one, and the lines changed."""

    target: str
    previous_live: str
    text: str
    diff: str
    changed_lines: tuple[int, ...]
    analysis: RoutingAnalysis  # of the new text


@dataclass(frozen=True)
class _Rule:
    """A `use_backend` or `default_backend` line of the frontend (or of its defaults)."""

    line: Line
    backend: str | None  # None when missing or built at run time (`%[...]`)
    conditional: bool


@dataclass
class _Work:
    cfg: HAProxyConfig
    frontend: str
    specs: tuple[ServerSpec, ...]
    problems: list[str] = field(default_factory=list)

    def problem(self, sentence: str) -> None:
        if sentence not in self.problems:
            self.problems.append(sentence)


def analyze_routing(
    cfg: HAProxyConfig, frontend: str, servers: Sequence[ServerSpec]
) -> RoutingAnalysis:
    """Tell which colour is LIVE for `frontend`, or say exactly why that is uncertain."""
    work = _Work(cfg, frontend, tuple(servers))
    base = RoutingAnalysis(frontend, work.specs)
    if not _check_specs(work):
        return _finish(work, base)
    for line in cfg.errors:
        work.problem(
            f"Line {line.number} cannot be parsed ({line.error}); HAProxy would refuse this file."
        )
    front = _find_frontend(work)
    found = [_locate(work, spec) for spec in work.specs]
    routes = [route for route, _ in found]
    sections = [section for _, section in found]
    base = replace(base, colors=tuple(routes), frontend_line=front.header.number if front else None)
    if sections[0] is None or sections[1] is None:
        return _finish(work, base)
    if routes[0].server_line == routes[1].server_line:
        work.problem(
            f"{routes[0].color.upper()} and {routes[1].color.upper()} both match the server at "
            f"line {routes[0].server_line}; give each colour its own address or `server`."
        )
        return _finish(work, base)
    if sections[0] is sections[1]:
        result = _shared_backend(work, base, front, sections[0])
    else:
        result = _backend_per_color(work, base, front, (sections[0], sections[1]))
    return _finish(work, result)


def _finish(work: _Work, analysis: RoutingAnalysis) -> RoutingAnalysis:
    return replace(analysis, problems=tuple(work.problems))


def _check_specs(work: _Work) -> bool:
    colors = [spec.color for spec in work.specs]
    if len(colors) != 2 or colors[0] == colors[1]:
        work.problem(
            f"Exactly two distinct colours are needed to analyse routing; got {colors or 'none'}."
        )
        return False
    for color in colors:
        if not _COLOR.match(color):
            work.problem(f"Colour name {color!r} is invalid: use [a-z0-9][a-z0-9_-]*.")
    return not work.problems


def _find_frontend(work: _Work) -> Section | None:
    found = work.cfg.find_sections(_FRONTEND_KINDS, work.frontend)
    if len(found) > 1:
        lines = ", ".join(str(s.header.number) for s in found)
        work.problem(f"Frontend {work.frontend} is defined {len(found)} times (lines {lines}).")
        return None
    if not found:
        others = [s.name for s in work.cfg.find_sections(_FRONTEND_KINDS) if s.name]
        known = f" (frontends and listen sections found: {', '.join(others)})" if others else ""
        work.problem(f"Frontend {work.frontend} not found in haproxy.cfg{known}.")
        return None
    front = found[0]
    _check_section(work, front)
    return front


def _check_section(work: _Work, section: Section) -> None:
    label = f"{section.kind} {section.name}"
    if section.header.depth:
        work.problem(
            f"The {label} header (line {section.header.number}) is inside a .if block; "
            "the tool cannot tell whether HAProxy reads it."
        )
    for line in section.directives("disabled"):
        work.problem(f"The {label} is disabled (line {line.number}).")


def _same_address(written: str, wanted: str) -> bool:
    def norm(address: str) -> str:
        address = address.strip().lower()
        for prefix in ("ipv4@", "ipv6@"):
            address = address.removeprefix(prefix)
        return address

    return norm(written) == norm(wanted)


def _locate(work: _Work, spec: ServerSpec) -> tuple[ColorRoute, Section | None]:
    """Find a colour's server line: explicit names first, else its address, else its colour."""
    label = spec.color.upper()
    scope = work.cfg.find_sections(_BACKEND_KINDS, spec.backend)
    if spec.backend is not None:
        if not scope:
            work.problem(f"Backend {spec.backend} (configured for {label}) not found.")
            return ColorRoute(spec.color, backend=spec.backend), None
        if len(scope) > 1:
            work.problem(
                f"Backend {spec.backend} (configured for {label}) is defined {len(scope)} times."
            )
            return ColorRoute(spec.color, backend=spec.backend), None
    servers = [
        (section, server)
        for section in scope
        for line in section.directives("server")
        if (server := server_line(line)) is not None and server.name is not None
    ]
    if spec.server is not None:
        how = f"named {spec.server}"
        matches = [(sec, srv) for sec, srv in servers if srv.name == spec.server]
    else:
        how = f"with address {spec.address} or named {spec.color}"
        matches = [
            (sec, srv) for sec, srv in servers if _same_address(srv.address or "", spec.address)
        ]
        if not matches:
            matches = [(sec, srv) for sec, srv in servers if srv.name == spec.color]
    where = f"in backend {spec.backend}" if spec.backend else "in any backend or listen section"
    if not matches:
        work.problem(f"No server line for {label} found {where} (looked for a server {how}).")
        return ColorRoute(spec.color, backend=spec.backend), None
    if len(matches) > 1:
        places = ", ".join(f"{sec.name} (line {srv.line.number})" for sec, srv in matches)
        fix = "server" if len({id(sec) for sec, _ in matches}) == 1 else "backend"
        work.problem(
            f"Several server lines match {label} ({how}): {places}; "
            f"set `{fix}` for {spec.color} in the bluegreen config."
        )
        return ColorRoute(spec.color, backend=spec.backend), None
    section, server = matches[0]
    _check_section(work, section)
    _check_server(work, server, label)
    route = ColorRoute(
        spec.color,
        backend=section.name,
        server=server.name,
        address=server.address,
        backend_line=section.header.number,
        server_line=server.line.number,
        markers=_markers(work, server),
        weight=server.option("weight"),
    )
    return route, section


def _check_server(work: _Work, server: ServerLine, label: str) -> None:
    n = server.line.number
    if server.option("track") is not None:
        work.problem(
            f"Server {server.name} for {label} (line {n}) uses `track`: its state follows "
            "another server, which the tool cannot reason about."
        )
    if server.line.depth:
        work.problem(
            f"Server {server.name} for {label} (line {n}) is inside a .if block; the tool "
            "cannot tell whether HAProxy reads it."
        )
    for counter in _COUNTER_MARKERS:
        if server.has_flag(counter):
            work.problem(
                f"Server {server.name} for {label} (line {n}) uses `{counter}`, which the tool "
                "does not edit."
            )


def _markers(work: _Work, server: ServerLine) -> tuple[str, ...]:
    markers = [flag for flag in _FLAG_MARKERS if server.has_flag(flag)]
    weight = server.option("weight")
    if weight is not None:
        if not weight.isdigit():
            work.problem(
                f"Server {server.name} (line {server.line.number}) has weight {weight!r}, "
                "which is not a number."
            )
        elif int(weight) == 0:
            markers.append("weight 0")
    return tuple(markers)


def _rules(section: Section) -> list[_Rule]:
    rules: list[_Rule] = []
    for line in section.directives("use_backend", "default_backend"):
        name = line.args[0].value if line.args else None
        if name is not None and "%[" in name:
            name = None  # dynamic name: which backend it picks is only known at run time
        rules.append(_Rule(line, name, line.condition is not None))
    return rules


def _route_target(work: _Work, front: Section, targets: dict[str, str]) -> _Rule | None:
    """The rule that routes all of the frontend's traffic, after reporting the ones in doubt.

    `targets` maps the backends that matter (colour backends, or the shared one) to a label.
    """
    rules = _rules(front)
    label = f"{front.kind} {front.name}"
    named: dict[str, int] = {}
    for rule in rules:
        if rule.line.depth and (rule.backend in targets or not rule.conditional):
            work.problem(
                f"Line {rule.line.number} of {label} ({rule.line.text.strip()!r}) is inside a "
                ".if block; the tool cannot tell whether HAProxy reads it."
            )
        if rule.conditional or rule.backend is None:
            if rule.backend is None or rule.backend in targets:
                what = "a backend chosen at run time" if rule.backend is None else rule.backend
                work.problem(
                    f"Line {rule.line.number} of {label} sends traffic to {what} "
                    f"({rule.line.text.strip()!r}); the tool cannot reason about that rule."
                )
            continue
        if rule.backend in targets:
            named.setdefault(targets[rule.backend], rule.line.number)
    if len(named) > 1:
        listing = ", ".join(f"{who} (line {n})" for who, n in named.items())
        work.problem(f"The {label} routes to more than one colour: {listing}.")
    unconditional = [r for r in rules if not r.conditional]
    first_use = next((r for r in unconditional if r.line.keyword == "use_backend"), None)
    if first_use is not None:
        return first_use
    defaults = [r for r in unconditional if r.line.keyword == "default_backend"]
    if len(defaults) > 1:
        lines = ", ".join(str(r.line.number) for r in defaults)
        work.problem(f"The {label} has several default_backend lines ({lines}).")
    if defaults:
        return defaults[-1]
    parent = work.cfg.defaults_for(front)
    inherited = [r for r in _rules(parent) if r.line.keyword == "default_backend"] if parent else []
    if inherited:
        work.problem(
            f"The {label} takes its default_backend from the defaults section "
            f"(line {inherited[-1].line.number}); editing it would change every proxy that "
            "inherits it: put default_backend in the frontend."
        )
        return inherited[-1]
    return None


def _backend_per_color(
    work: _Work,
    base: RoutingAnalysis,
    front: Section | None,
    sections: tuple[Section, Section],
) -> RoutingAnalysis:
    routes = base.colors
    by_backend = {route.backend or "": route.color.upper() for route in routes}
    for route in routes:
        if "disabled" in route.markers or "weight 0" in route.markers:
            work.problem(
                f"Server {route.server} for {route.color.upper()} (line {route.server_line}) is "
                f"{' and '.join(route.markers)}; with a backend per colour both servers must be "
                "able to take traffic."
            )
    analysis = replace(base, style=BACKEND_PER_COLOR)
    if front is None:
        return analysis
    rule = _route_target(work, front, by_backend)
    expected = " or ".join(s.name or "?" for s in sections)
    if rule is not None and rule.backend is None:
        return analysis  # a run-time choice, already reported
    if rule is None:
        work.problem(
            f"Frontend {front.name} routes to neither colour: it has no default_backend and no "
            f"unconditional use_backend (expected {expected})."
        )
        return analysis
    if rule.backend not in by_backend:
        exists = (
            "" if work.cfg.find_sections(_BACKEND_KINDS, rule.backend) else ", which is not defined"
        )
        work.problem(
            f"Frontend {front.name} routes to backend {rule.backend} (line {rule.line.number})"
            f"{exists}; it is not a colour backend (expected {expected})."
        )
        return analysis
    live = next(r for r in routes if r.backend == rule.backend)
    standby = next(r for r in routes if r is not live)
    decided = tuple(
        replace(r, deciding_lines=(rule.line.number,) if r is live else ()) for r in routes
    )
    return replace(
        analysis,
        live=live.color,
        standby=standby.color,
        colors=decided,
        routed_backend=rule.backend,
        deciding_lines=(rule.line.number,),
    )


def _shared_backend(
    work: _Work, base: RoutingAnalysis, front: Section | None, shared: Section
) -> RoutingAnalysis:
    routes = base.colors
    analysis = replace(base, style=SHARED_BACKEND, routed_backend=shared.name)
    name = shared.name or "?"
    if front is not None:
        rule = _route_target(work, front, {name: f"backend {name}"})
        if rule is None and front is not shared:
            work.problem(
                f"Frontend {front.name} routes nowhere: it has no default_backend and no "
                f"unconditional use_backend naming {name}."
            )
        # A rule with no backend is a run-time choice, already reported.
        elif rule is not None and rule.backend not in (None, shared.name):
            work.problem(
                f"Frontend {front.name} routes to backend {rule.backend} "
                f"(line {rule.line.number}), not to {name}, which holds both servers."
            )
    _check_default_servers(work, shared)
    colour_servers = {route.server for route in routes}
    for line in shared.directives("use-server"):
        if line.args and line.args[0].value in colour_servers:
            work.problem(
                f"Line {line.number} of {shared.kind} {name} picks server {line.args[0].value} "
                f"itself ({line.text.strip()!r}), overriding backup and weight markers; the tool "
                "cannot reason about that rule."
            )
    colour_lines = {route.server_line for route in routes}
    for line in shared.directives("server"):
        other = server_line(line)
        if other is not None and line.number not in colour_lines and not _markers(work, other):
            work.problem(
                f"Backend {name} also sends traffic to server {other.name} (line {line.number}), "
                "which is neither colour."
            )
    active = [route for route in routes if not route.markers]
    listing = " and ".join(f"{r.server} (line {r.server_line})" for r in routes)
    if len(active) == 2:
        work.problem(
            f"Both colours are routed: servers {listing} in backend {name} are active (none is "
            "backup, disabled or weight 0), so traffic is balanced across both."
        )
        return analysis
    if not active:
        work.problem(
            f"Neither colour is routed: servers {listing} in backend {name} are both marked "
            "backup, disabled or weight 0."
        )
        return analysis
    live = active[0]
    standby = next(r for r in routes if r is not live)
    decided = tuple(replace(r, deciding_lines=(r.server_line or 0,)) for r in routes)
    return replace(
        analysis,
        live=live.color,
        standby=standby.color,
        colors=decided,
        deciding_lines=tuple(r.server_line or 0 for r in routes),
    )


def _check_default_servers(work: _Work, shared: Section) -> None:
    """A marker on `default-server` applies to every server below it: refuse to reason."""
    scopes = [shared]
    parent = work.cfg.defaults_for(shared)
    if parent is not None:
        scopes.append(parent)
    for scope in scopes:
        for line in scope.directives("default-server"):
            ds = server_line(line)
            if ds is None:
                continue
            markers = [*_markers(work, ds), *(f for f in _COUNTER_MARKERS if ds.has_flag(f))]
            if markers:
                work.problem(
                    f"The default-server at line {line.number} sets {', '.join(markers)} for every "
                    "server; the tool cannot reason about inherited standby markers."
                )


def plan_switch(cfg: HAProxyConfig, analysis: RoutingAnalysis, target: str) -> SwitchEdit:
    """The minimal edit that makes `target` LIVE; refuses unless the analysis is certain."""
    if analyze_routing(cfg, analysis.frontend, analysis.servers) != analysis:
        raise HAProxyConfigError(
            "The routing analysis does not match this haproxy.cfg.",
            hint="analyse the current file again before planning a switch",
        )
    if not analysis.certain:
        raise HAProxyConfigError(
            f"Refusing to switch: the routing of frontend {analysis.frontend} is uncertain. "
            + " ".join(analysis.problems),
            hint="fix haproxy.cfg or the bluegreen config so the routing is unambiguous",
        )
    assert analysis.live is not None
    colors = [route.color for route in analysis.colors]
    if target not in colors:
        raise ValidationError(f"Unknown colour {target!r}: expected one of {', '.join(colors)}.")
    if target == analysis.live:
        raise HAProxyConfigError(f"{target.upper()} is already LIVE; there is nothing to switch.")
    new = analysis.route(target)
    old = analysis.route(analysis.live)
    if analysis.style == BACKEND_PER_COLOR:
        assert new.backend is not None
        edited = cfg.replace_arg(analysis.deciding_lines[0], 0, new.backend)
    else:
        edited = _swap_markers(cfg, old, new)
    text = edited.render()
    after = analyze_routing(edited, analysis.frontend, analysis.servers)
    if not after.certain or after.live != target:
        raise HAProxyConfigError(
            f"Internal check failed: after the edit, {target.upper()} is not certainly LIVE. "
            + " ".join(after.problems),
            hint="haproxy.cfg was not changed; report this as a bug",
        )
    before_lines, after_lines = cfg.lines, edited.lines
    changed = tuple(
        a.number for a, b in zip(before_lines, after_lines, strict=True) if a.text != b.text
    )
    return SwitchEdit(
        target=target,
        previous_live=analysis.live,
        text=text,
        diff=unified_diff(cfg.render(), text),
        changed_lines=changed,
        analysis=after,
    )


def _swap_markers(cfg: HAProxyConfig, old: ColorRoute, new: ColorRoute) -> HAProxyConfig:
    """Move the standby markers from the new LIVE server to the old one, keeping their kind and
    their place among the parameters (so switching back restores the original lines)."""
    assert old.server_line is not None and new.server_line is not None
    source = server_line(cfg.line(new.server_line))
    assert source is not None
    for flag in _FLAG_MARKERS:
        if flag in new.markers:
            at = source.position(flag)
            cfg = cfg.remove_server_flag(new.server_line, flag)
            cfg = cfg.add_server_flag(old.server_line, flag, at)
    if "weight 0" in new.markers:
        if old.weight is None:
            # The old LIVE used the default weight: the new LIVE goes back to it too.
            cfg = cfg.remove_server_option(new.server_line, "weight")
        else:
            cfg = cfg.set_server_option(new.server_line, "weight", old.weight)
        cfg = cfg.set_server_option(old.server_line, "weight", "0", source.position("weight"))
    return cfg


def unified_diff(old: str, new: str) -> str:
    """A unified diff of two cfg texts (a/haproxy.cfg, b/haproxy.cfg), as git would show it."""
    out: list[str] = []
    for chunk in difflib.unified_diff(
        _keep_ends(old), _keep_ends(new), "a/haproxy.cfg", "b/haproxy.cfg"
    ):
        out.append(chunk if chunk.endswith("\n") else chunk + "\n\\ No newline at end of file\n")
    return "".join(out)


def _keep_ends(text: str) -> list[str]:
    # Split on "\n" only: str.splitlines would split inside lines HAProxy reads as one.
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def describe(analysis: RoutingAnalysis) -> str:
    """A short human summary of the analysis."""
    front = f"frontend {analysis.frontend}"
    if not analysis.certain:
        return f"Routing of {front} is uncertain: " + " ".join(analysis.problems)
    live = analysis.route(analysis.live or "")
    standby = analysis.route(analysis.standby or "")
    roles = f"{live.color.upper()} is LIVE, {standby.color.upper()} is STANDBY"
    if analysis.style == BACKEND_PER_COLOR:
        return (
            f"{front} routes to backend {live.backend} (server {live.server}, {live.address}): "
            f"{roles}"
        )
    return (
        f"{front} routes to backend {live.backend}: server {live.server} ({live.address}) is "
        f"active, server {standby.server} ({standby.address}) is {' and '.join(standby.markers)}: "
        f"{roles}"
    )
