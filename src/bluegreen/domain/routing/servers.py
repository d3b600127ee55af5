"""Where each colour's server line is, and what its standby markers say."""

from __future__ import annotations

import re

from bluegreen.domain.haproxy_cfg import Line, Section, ServerLine, server_line
from bluegreen.domain.routing.context import Work
from bluegreen.domain.routing.model import ColorRoute, PoolLine, ServerSpec

BACKEND_KINDS = ("backend", "listen")
FLAG_MARKERS = ("backup", "disabled")
COUNTER_MARKERS = ("no-backup", "enabled")  # undo a marker inherited from default-server
# Directives that send a client back to the server it used before, whatever its weight or backup
# (`option persist` too, see `persistence`).
PERSISTENCE = ("cookie", "stick", "persist", "force-persist", "appsession")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[-:][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def global_env(work: Work) -> tuple[dict[str, str], set[str]]:
    """Variables the global sections set (`setenv`, `presetenv`, `unsetenv`, `resetenv`), in
    order, and which of them only `presetenv` set (the process environment may override those)."""
    env: dict[str, str] = {}
    preset: set[str] = set()
    for section in work.cfg.find_sections(("global",)):
        for line in section.directives("setenv", "presetenv", "unsetenv", "resetenv"):
            words = [token.value for token in line.args]
            if line.keyword == "setenv" and len(words) >= 2:
                env[words[0]] = words[1]
                preset.discard(words[0])
            elif line.keyword == "presetenv" and len(words) >= 2 and words[0] not in env:
                env[words[0]] = words[1]
                preset.add(words[0])
            elif line.keyword == "unsetenv":
                for name in words:
                    env.pop(name, None)
            elif line.keyword == "resetenv":
                env = {k: v for k, v in env.items() if k in words}
    return env, preset


def _expand(work: Work, server: ServerLine) -> str | None:
    """The server's address with `"${VAR}"` replaced from the global section; None when a
    variable is not set there (the tool never reads its own environment)."""
    address = server.address or ""
    token = server.line.args[2 if server.line.keyword == "server-template" else 1]
    if "$" not in address or '"' not in token.raw or "'" in token.raw:
        return address  # HAProxy expands variables only inside double quotes
    env, preset = global_env(work)
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in env:
            missing.append(name)
            return ""
        if name in preset:
            work.note(
                f"Server {server.name} ({work.at(server.line.number)}) takes its address from "
                f"{name}, set by presetenv: a {name} in HAProxy's own environment would win."
            )
        return env[name]

    expanded = _VARIABLE.sub(value, address)
    return None if missing else expanded


def same_address(written: str, wanted: str) -> bool:
    def norm(address: str) -> str:
        address = address.strip().lower()
        for prefix in ("ipv4@", "ipv6@"):
            address = address.removeprefix(prefix)
        return address

    return norm(written) == norm(wanted)


def check_section(work: Work, section: Section) -> None:
    label = f"{section.kind} {section.name}"
    if section.header.depth:
        work.problem(
            f"The {label} header ({work.at(section.header.number)}) is inside a .if block; "
            "the tool cannot tell whether HAProxy reads it."
        )
    for line in section.directives("disabled"):
        work.problem(f"The {label} is disabled ({work.at(line.number)}).")


def locate(work: Work, spec: ServerSpec) -> tuple[ColorRoute, Section | None]:
    """Find a colour's server line: explicit names first, else its address, else its colour."""
    label = spec.color.upper()
    unlocated = ColorRoute(spec.color, backend=spec.backend)
    scope = work.cfg.find_sections(BACKEND_KINDS, spec.backend)
    if spec.backend is not None:
        if not scope:
            work.problem(f"Backend {spec.backend} (configured for {label}) not found.")
            return unlocated, None
        if len(scope) > 1:
            work.problem(
                f"Backend {spec.backend} (configured for {label}) is defined {len(scope)} times."
            )
            return unlocated, None
    servers = [
        (section, server)
        for section in scope
        for line in section.directives("server", "server-template")
        if (server := server_line(line)) is not None and server.name is not None
    ]
    if spec.server is not None:
        how = f"named {spec.server}"
        matches = [(sec, srv) for sec, srv in servers if srv.name == spec.server]
    else:
        how = f"with address {spec.address} or named {spec.color}"
        addresses = [(sec, srv, _expand(work, srv)) for sec, srv in servers]
        matches = [
            (sec, srv) for sec, srv, addr in addresses if addr and same_address(addr, spec.address)
        ]
        if not matches:
            matches = [(sec, srv) for sec, srv in servers if srv.name == spec.color]
        for _, srv, addr in addresses:
            if addr is None:
                work.problem(
                    f"Server {srv.name} ({work.at(srv.line.number)}) takes its address from a "
                    "variable the global section does not set (setenv/presetenv), so it may be "
                    f"{label}'s; the tool never reads its own environment: set it with setenv, "
                    f"or set `server` for {spec.color} in the bluegreen config."
                )
    where = f"in backend {spec.backend}" if spec.backend else "in any backend or listen section"
    if not matches:
        work.problem(f"No server line for {label} found {where} (looked for a server {how}).")
        return unlocated, None
    if len(matches) > 1:
        places = ", ".join(f"{sec.name} ({work.at(srv.line.number)})" for sec, srv in matches)
        fix = "server" if len({id(sec) for sec, _ in matches}) == 1 else "backend"
        work.problem(
            f"Several server lines match {label} ({how}): {places}; "
            f"set `{fix}` for {spec.color} in the bluegreen config."
        )
        return unlocated, None
    section, server = matches[0]
    check_section(work, section)
    _check_server(work, server, label)
    route = ColorRoute(
        spec.color,
        backend=section.name,
        server=server.name,
        address=server.address,
        backend_line=section.header.number,
        server_line=server.line.number,
        markers=markers(work, server),
        weight=server.option("weight"),
    )
    return route, section


def locate_pool(work: Work, spec: ServerSpec) -> tuple[ColorRoute, Section | None]:
    """Find every server of a colour's pool by its HAProxy name: all of them in one backend (the
    configured one, else wherever they are), at their configured addresses, each able to take
    traffic, and no other active server beside them (it would get users the deploy never reaches)."""
    label = spec.color.upper()
    unlocated = ColorRoute(spec.color, backend=spec.backend)
    scope = work.cfg.find_sections(BACKEND_KINDS, spec.backend)
    if spec.backend is not None and len(scope) != 1:
        found = "not found" if not scope else f"defined {len(scope)} times"
        work.problem(f"Backend {spec.backend} (configured for {label}'s pool) {found}.")
        return unlocated, None
    lines: list[tuple[Section, ServerLine]] = []
    for name, address in spec.pool:
        matches = [
            (section, server)
            for section in scope
            for line in section.directives("server")
            if (server := server_line(line)) is not None and server.name == name
        ]
        where = f"backend {spec.backend}" if spec.backend else "any backend or listen section"
        if len(matches) != 1:
            places = ", ".join(f"{sec.name} ({work.at(srv.line.number)})" for sec, srv in matches)
            work.problem(
                f"Server {name} of {label}'s pool: "
                + (f"no server line named {name} in {where}; every server of the pool must be "
                   "in the colour's backend" if not matches
                   else f"several server lines are named {name} ({places}); set `backend` for "
                   f"{spec.color} in the bluegreen config")
            )  # fmt: skip
            continue
        section, server = matches[0]
        written = _expand(work, server)
        if written is not None and not same_address(written, address):
            work.problem(
                f"Server {name} of {label}'s pool ({work.at(server.line.number)}) has address "
                f"{server.address}, the bluegreen config says {address}: users would reach a "
                "server the deploy does not."
            )
        lines.append((section, server))
    if len(lines) != len(spec.pool):
        return unlocated, None
    sections = {id(section): section for section, _ in lines}
    if len(sections) > 1:
        places = ", ".join(f"{srv.name} in {sec.name}" for sec, srv in lines)
        work.problem(f"{label}'s pool is split over several backends ({places}): keep it in one.")
        return unlocated, None
    section = lines[0][0]
    check_section(work, section)
    for _, server in lines:
        _check_server(work, server, label)
        off = [m for m in markers(work, server) if m != "backup"]
        if off:
            work.problem(
                f"Server {server.name} of {label}'s pool ({work.at(server.line.number)}) is "
                f"{' and '.join(off)}: every server of a pool must be able to take traffic."
            )
    pool_names = {name for name, _ in spec.pool}
    for line in section.directives("server", "server-template"):
        other = server_line(line)
        if other is None or other.name in pool_names or markers(work, other):
            continue
        owner = _other_colour(work, other, spec.color)
        whose = (
            f"{owner.upper()}'s: the backend holds servers of both colours, so "
            f"{label}'s users would also reach {owner.upper()}"
            if owner
            else f"not in {label}'s pool: add it to the pool or remove it"
        )
        work.problem(
            f"Backend {section.name} also sends {label}'s users to server {other.name} "
            f"({work.at(line.number)}), which is {whose}."
        )
    first = lines[0][1]
    route = ColorRoute(
        spec.color,
        backend=section.name,
        server=first.name,
        address=first.address,
        backend_line=section.header.number,
        server_line=first.line.number,
        pool_lines=tuple(
            PoolLine(srv.name or "", srv.line.number, markers(work, srv), srv.option("weight"))
            for _, srv in lines
        ),
    )
    return route, section


def _other_colour(work: Work, server: ServerLine, color: str) -> str | None:
    """The other colour a server line belongs to by the bluegreen config (name or address)."""
    for spec in (s for s in work.specs if s.color != color):
        names = {name for name, _ in spec.pool} | {spec.server or spec.color}
        addresses = [address for _, address in spec.pool] or [spec.address]
        written = server.address or ""
        if server.name in names or any(same_address(written, a) for a in addresses):
            return spec.color
    return None


def _check_server(work: Work, server: ServerLine, label: str) -> None:
    where = work.at(server.line.number)
    if server.option("track") is not None:
        work.problem(
            f"Server {server.name} for {label} ({where}) uses `track`: its state follows "
            "another server, which the tool cannot reason about."
        )
    if server.line.depth:
        work.problem(
            f"Server {server.name} for {label} ({where}) is inside a .if block; the tool "
            "cannot tell whether HAProxy reads it."
        )
    for counter in COUNTER_MARKERS:
        if server.has_flag(counter):
            work.problem(
                f"Server {server.name} for {label} ({where}) uses `{counter}`, which the tool "
                "does not edit."
            )


def markers(work: Work, server: ServerLine) -> tuple[str, ...]:
    found = [flag for flag in FLAG_MARKERS if server.has_flag(flag)]
    weight = server.option("weight")
    if weight is not None:
        if not weight.isdigit():
            work.problem(
                f"Server {server.name} ({work.at(server.line.number)}) has weight {weight!r}, "
                "which is not a number."
            )
        elif int(weight) == 0:
            found.append("weight 0")
    return tuple(found)


def persistence(work: Work, backend: Section) -> tuple[tuple[Line, ...], tuple[Line, ...]]:
    """Lines that keep clients on the server they used before (here or inherited), and those of
    them that do so even when that server is down or disabled (`force-persist`, `option persist`)."""
    scopes = [backend]
    parent = work.cfg.defaults_for(backend)
    if parent is not None:
        scopes.append(parent)
    lines = tuple(
        line
        for scope in scopes
        for line in scope.directives(*PERSISTENCE, "option")
        if line.keyword != "option" or [t.value for t in line.args[:1]] == ["persist"]
    )
    forced = tuple(line for line in lines if line.keyword in ("force-persist", "option"))
    return lines, forced


def check_default_servers(work: Work, shared: Section) -> None:
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
            found = [*markers(work, ds), *(f for f in COUNTER_MARKERS if ds.has_flag(f))]
            if found:
                work.problem(
                    f"The default-server at {work.at(line.number)} sets {', '.join(found)} for "
                    "every server; the tool cannot reason about inherited standby markers."
                )
