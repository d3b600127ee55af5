"""Which colour HAProxy sends one app's users to, or exactly why that is uncertain.

Two shapes are understood (the README's "layouts understood" table lists every variant):
- backend-per-color: one backend per colour; in every frontend and listen section, the line that
  decides where the app's users go (first matching `use_backend`, else `default_backend`) names
  the LIVE colour's backend. Preview lines (fixed per colour) and other apps' lines are reported.
- shared-backend: one backend (or listen section) holds both servers; the STANDBY server carries a
  standby marker (`backup`, `disabled` or `weight 0`) and the LIVE one carries none.

The analysis never guesses: anything it cannot reason about becomes a sentence in `problems`, and
only an analysis with no problem is `certain`, which `plan_switch` requires.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bluegreen.domain.haproxy_cfg import SECTION_KINDS, HAProxyConfig, Section, server_line
from bluegreen.domain.routing.acl import acl_hosts, defined
from bluegreen.domain.routing.context import Work
from bluegreen.domain.routing.frontends import Decision, Targets, decide
from bluegreen.domain.routing.model import (
    BACKEND_PER_COLOR,
    SHARED_BACKEND,
    AppTraffic,
    RoutingAnalysis,
    ServerSpec,
)
from bluegreen.domain.routing.servers import (
    check_default_servers,
    check_section,
    locate,
    locate_pool,
    markers,
    persistence,
)
from bluegreen.domain.routing.sources import LoadedConfig, single

_COLOR = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
FRONTEND_KINDS = ("frontend", "listen")


def analyze_routing(
    cfg: HAProxyConfig | LoadedConfig,
    frontend: str,
    servers: Sequence[ServerSpec],
    *,
    rule: str | None = None,
    hosts: Sequence[str] = (),
) -> RoutingAnalysis:
    """Tell which colour is LIVE for the app's users, or say exactly why that is uncertain.

    `cfg`: one file, or every file HAProxy loads (`sources.load`). `frontend`: the one the app's
    config names; every other frontend and listen section is read too. `rule` (an ACL name) and
    `hosts` (Host header values) say which requests are the app's in a shared frontend; without
    them every request of the frontend is the app's.
    """
    loaded = cfg if isinstance(cfg, LoadedConfig) else single(cfg)
    traffic = AppTraffic(rule, tuple(hosts))
    work = Work(loaded, frontend, tuple(servers), traffic)
    base = RoutingAnalysis(frontend, work.specs, traffic, locations=loaded.locations)
    if not _check_specs(work):
        return _finish(work, base)
    for line in loaded.cfg.errors:
        work.problem(
            f"{work.at(line.number, opening=True)} cannot be parsed ({line.error}); "
            "HAProxy would refuse this file."
        )
    _check_files(work)
    front = _find_frontend(work)
    found = [locate_pool(work, spec) if spec.pool else locate(work, spec) for spec in work.specs]
    routes = [route for route, _ in found]
    sections = [section for _, section in found]
    base = replace(base, colors=tuple(routes), frontend_line=front.header.number if front else None)
    if sections[0] is None or sections[1] is None:
        return _finish(work, base)
    if routes[0].server_line == routes[1].server_line:
        work.problem(
            f"{routes[0].color.upper()} and {routes[1].color.upper()} both match the server at "
            f"{work.at(routes[0].server_line or 0)}; give each colour its own address or `server`."
        )
        return _finish(work, base)
    if sections[0] is sections[1] and any(spec.pool for spec in work.specs):
        work.problem(
            f"Backend {sections[0].name} holds servers of both colours; with a pool, each "
            "colour needs its own backend (set `backend` for each colour)."
        )
        return _finish(work, base)
    if sections[0] is sections[1]:
        result = _shared_backend(work, base, front, sections[0])
    else:
        result = _backend_per_color(work, base, front, (sections[0], sections[1]))
    return _finish(work, result)


def _finish(work: Work, analysis: RoutingAnalysis) -> RoutingAnalysis:
    return replace(
        analysis,
        problems=tuple(work.problems),
        notes=tuple(work.notes),
        preview=tuple(work.preview),
        others=tuple(work.others),
    )


def _check_specs(work: Work) -> bool:
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


def _check_files(work: Work) -> None:
    """A file that does not open with a section header would continue the previous file's
    section, which the tool does not assume HAProxy does. A file without a final newline is
    refused by HAProxy 2.6 and later (`haproxy -c` before a reload catches it)."""
    for source in work.loaded.files:
        text = work.loaded.text(source.path)
        if text and not text.endswith("\n"):
            work.note(
                f"{source.path} does not end with a newline: HAProxy 2.6 and later refuse it "
                "('Missing LF on last line'); add one."
            )
    for source in work.loaded.files[1:]:
        lines = work.cfg.lines[source.first - 1 : source.first - 1 + source.count]
        first = next((line for line in lines if line.keyword is not None), None)
        if first is not None and first.keyword not in SECTION_KINDS:
            work.problem(
                f"{source.path} starts with {first.text.strip()!r} before any section header; "
                "the tool cannot tell which section HAProxy adds it to."
            )


def _find_frontend(work: Work) -> Section | None:
    found = work.cfg.find_sections(FRONTEND_KINDS, work.frontend)
    if len(found) > 1:
        lines = work.lines([s.header.number for s in found])
        work.problem(f"Frontend {work.frontend} is defined {len(found)} times ({lines}).")
        return None
    if not found:
        others = [s.name for s in work.cfg.find_sections(FRONTEND_KINDS) if s.name]
        known = f" (frontends and listen sections found: {', '.join(others)})" if others else ""
        work.problem(f"Frontend {work.frontend} not found in haproxy.cfg{known}.")
        return None
    front = found[0]
    check_section(work, front)
    rule, hosts = work.traffic.rule, {h.lower() for h in work.traffic.hosts}
    if rule is not None and not defined(front, rule):
        work.problem(f"The app's rule {rule} is not an ACL of {front.kind} {front.name}.")
    elif rule is not None and hosts:
        listed = acl_hosts(front, rule)
        if listed is not None and not hosts <= listed:
            work.problem(
                f"The app's rule {rule} does not match its hosts "
                f"{', '.join(sorted(hosts - listed))}: fix `rule` or `hosts` in the config."
            )
    return front


def _other_frontends(work: Work, front: Section) -> list[Section]:
    """Every other frontend and listen section that accepts connections."""
    return [
        section
        for section in work.cfg.find_sections(FRONTEND_KINDS)
        if section is not front and section.directives("bind")
    ]


def _backend_per_color(
    work: Work,
    base: RoutingAnalysis,
    front: Section | None,
    sections: tuple[Section, Section],
) -> RoutingAnalysis:
    routes = base.colors
    for route in routes:
        if "disabled" in route.markers or "weight 0" in route.markers:
            work.problem(
                f"Server {route.server} for {route.color.upper()} "
                f"({work.at(route.server_line or 0)}) is {' and '.join(route.markers)}; with a "
                "backend per colour both servers must be able to take traffic."
            )
    for section, route in zip(sections, routes, strict=True):
        binds = section.directives("bind")
        if binds and section is not front:
            work.problem(
                f"The {section.kind} {section.name} holds {route.color.upper()}'s server and "
                f"accepts connections itself ({work.at(binds[0].number)}): its users reach "
                f"{route.color.upper()} whichever colour is LIVE."
            )
    analysis = replace(base, style=BACKEND_PER_COLOR)
    if front is None:
        return analysis
    targets: Targets = {r.backend or "": (r.color.upper(), r.color) for r in routes}
    decision = decide(work, front, targets)
    expected = " or ".join(s.name or "?" for s in sections)
    if decision is not None and decision.backend is None:
        return analysis  # a run-time choice, already reported
    if decision is None:
        work.problem(
            f"Frontend {front.name} routes to neither colour: it has no default_backend and no "
            f"use_backend that applies to the app's users (expected {expected})."
        )
        return analysis
    if decision.backend not in targets:
        exists = (
            ""
            if work.cfg.find_sections(("backend", "listen"), decision.backend)
            else ", which is not defined"
        )
        work.problem(
            f"Frontend {front.name} routes to backend {decision.backend} "
            f"({work.at(decision.line.number)}){exists}; it is not a colour backend "
            f"(expected {expected})."
        )
        return analysis
    decisions = [decision, *_agreeing(work, decision, targets)]
    live = next(r for r in routes if r.backend == decision.backend)
    standby = next(r for r in routes if r is not live)
    lines = tuple(sorted({line.number for d in decisions for line in (d.line, *d.also)}))
    decided = tuple(replace(r, deciding_lines=lines if r is live else ()) for r in routes)
    return replace(
        analysis,
        live=live.color,
        standby=standby.color,
        colors=decided,
        routed_backend=decision.backend,
        deciding_lines=lines,
        frontends=tuple(d.front.name or "" for d in decisions),
    )


def _agreeing(work: Work, decision: Decision, targets: Targets) -> list[Decision]:
    """The other frontends that send the app's users to a colour: each must agree."""
    found: list[Decision] = []
    live = targets[decision.backend or ""][0]
    for other in _other_frontends(work, decision.front):
        theirs = decide(work, other, targets)
        if theirs is None or theirs.backend not in targets:
            continue  # nowhere, another app, or a run-time choice (already reported)
        if theirs.backend == decision.backend:
            found.append(theirs)
            continue
        elsewhere = targets[theirs.backend or ""][0]
        work.problem(
            f"The {other.kind} {other.name} sends the app's users to "
            f"{elsewhere} ({work.at(theirs.line.number)}) while "
            f"{decision.front.kind} {decision.front.name} sends them to {live} "
            f"({work.at(decision.line.number)}): users reach both colours."
        )
    return found


def _shared_backend(
    work: Work, base: RoutingAnalysis, front: Section | None, shared: Section
) -> RoutingAnalysis:
    routes = base.colors
    analysis = replace(base, style=SHARED_BACKEND, routed_backend=shared.name)
    name = shared.name or "?"
    if front is not None:
        decision = decide(work, front, {name: (f"backend {name}", None)})
        if decision is None and front is not shared:
            work.problem(
                f"Frontend {front.name} routes nowhere: it has no default_backend and no "
                f"use_backend naming {name} that applies to the app's users."
            )
        # A rule with no backend is a run-time choice, already reported.
        elif decision is not None and decision.backend not in (None, shared.name):
            work.problem(
                f"Frontend {front.name} routes to backend {decision.backend} "
                f"({work.at(decision.line.number)}), not to {name}, which holds both servers."
            )
    check_default_servers(work, shared)
    colour_servers = {route.server for route in routes}
    for line in shared.directives("use-server"):
        if line.args and line.args[0].value in colour_servers:
            work.problem(
                f"{work.at(line.number, opening=True)} of {shared.kind} {name} picks server "
                f"{line.args[0].value} itself ({line.text.strip()!r}), overriding backup and "
                "weight markers; the tool cannot reason about that rule."
            )
    colour_lines = {route.server_line for route in routes}
    for line in shared.directives("server", "server-template"):
        other = server_line(line)
        if other is None:
            continue
        if line.keyword == "server-template" and line.number in colour_lines:
            work.problem(
                f"The server-template at {work.at(line.number)} makes several servers from one "
                "line; a standby marker cannot be moved between colours in it."
            )
        elif line.number not in colour_lines and not markers(work, other):
            work.problem(
                f"Backend {name} also sends traffic to server {other.name} "
                f"({work.at(line.number)}), which is neither colour."
            )
    active = [route for route in routes if not route.markers]
    listing = " and ".join(f"{r.server} ({work.at(r.server_line or 0)})" for r in routes)
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
    keeps, forced = persistence(work, shared)
    if forced or (keeps and "disabled" not in standby.markers):
        line = (forced or keeps)[0]
        fix = "remove that line" if forced else "mark the STANDBY server `disabled` instead"
        work.problem(
            f"Backend {name} keeps clients on the server they used before "
            f"({work.at(line.number)}: {line.text.strip()!r}), so "
            f"{' and '.join(standby.markers)} on {standby.server} does not keep them off it: "
            f"{fix}."
        )
    decided = tuple(replace(r, deciding_lines=(r.server_line or 0,)) for r in routes)
    return replace(
        analysis,
        live=live.color,
        standby=standby.color,
        colors=decided,
        deciding_lines=tuple(r.server_line or 0 for r in routes),
        frontends=(front.name or "",) if front is not None else (),
    )


def describe(analysis: RoutingAnalysis) -> str:
    """A short human summary of the analysis."""
    front = f"frontend {analysis.frontend}"
    if not analysis.certain:
        return f"Routing of {front} is uncertain: " + " ".join(analysis.problems)
    live = analysis.route(analysis.live or "")
    standby = analysis.route(analysis.standby or "")
    roles = f"{live.color.upper()} is LIVE, {standby.color.upper()} is STANDBY"
    kept = (
        f" ({len(analysis.preview)} preview line(s) stay as they are)" if analysis.preview else ""
    )
    if analysis.style == BACKEND_PER_COLOR:
        extra = [name for name in analysis.frontends if name != analysis.frontend]
        also = f" (and {', '.join(extra)})" if extra else ""
        return (
            f"{front}{also} routes to backend {live.backend} (server {live.server}, "
            f"{live.address}): {roles}{kept}"
        )
    return (
        f"{front} routes to backend {live.backend}: server {live.server} ({live.address}) is "
        f"active, server {standby.server} ({standby.address}) is {' and '.join(standby.markers)}: "
        f"{roles}"
    )
