"""get_deployment_status: which server is LIVE, which is STANDBY, and whether anything disagrees.

Every remote read runs at once (status_reads.py), so status costs about one round trip. A host that
cannot be reached is reported as such; it never fails the whole answer. haproxy.cfg decides
LIVE/STANDBY; everything else is a witness. This module assembles each app's AppStatus from the
round's reads; status_next_step.py words what to do next.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bluegreen.domain import lock as lock_mod
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.deployed_commit import Deployed, parse_deployed
from bluegreen.domain.haproxy_cfg import HAProxyConfig
from bluegreen.domain.haproxy_files import HAProxyFiles
from bluegreen.domain.preview import preview_command, public_frontend_url
from bluegreen.domain.reconcile import reconcile
from bluegreen.domain.routing import (
    ColorRoute,
    LoadedConfig,
    RoutingAnalysis,
    ServerSpec,
    analyze_routing,
    describe,
)
from bluegreen.domain.routing.model import file_line
from bluegreen.domain.runtime import StatRow
from bluegreen.domain.runtime_compare import CfgServer, runtime_disagreements
from bluegreen.domain.state_file import StateReading, format_timestamp, parse_state
from bluegreen.domain.switch_commands import frontend_bind
from bluegreen.engine.context import Context
from bluegreen.engine.lock import is_stale
from bluegreen.engine.nodes import NodeRead, files_apart, node_problems, node_view, state_drift
from bluegreen.engine.probing import as_health
from bluegreen.engine.status_next_step import next_step
from bluegreen.engine.status_reads import Reads, lock_holder_path, probe_key, read_everything
from bluegreen.errors import BlueGreenError, HAProxyConfigError
from bluegreen.models import (
    AppStatus,
    DriftItem,
    LockHolder,
    NodeStatus,
    PreviewRoute,
    Role,
    Routing,
    ServerStatus,
    StateFileView,
)
from bluegreen.transport.base import CommandResult


def server_specs(app: AppConfig) -> list[ServerSpec]:
    return [
        _server_spec(color, cfg.backend, cfg.members(color)) for color, cfg in app.servers.items()
    ]


def _server_spec(color: str, backend: str | None, members: tuple[Member, ...]) -> ServerSpec:
    first = members[0]
    if not first.in_pool:
        return ServerSpec(color, first.address, backend, first.server)
    pool = tuple((m.server or "", m.address) for m in members)
    return ServerSpec(color, first.address, backend, pool=pool)


def app_routing(cfg: HAProxyConfig | LoadedConfig, app: AppConfig) -> RoutingAnalysis:
    """How `cfg` routes the app's users: in a shared frontend, the requests its rule and Host
    headers select."""
    return analyze_routing(cfg, app.frontend, server_specs(app), rule=app.rule, hosts=app.hosts)


def files_routing(
    files: HAProxyFiles, app: AppConfig, loaded: LoadedConfig | None = None
) -> RoutingAnalysis:
    """How every file HAProxy loads routes the app, never certain when the running HAProxy
    loads other files than the configured ones (`loaded`: the files already parsed)."""
    return files.checked(app_routing(loaded or files.loaded(), app))


def get_status(ctx: Context, app_name: str) -> AppStatus:
    return get_statuses(ctx, [app_name])[0]


def get_statuses(ctx: Context, app_names: Sequence[str]) -> list[AppStatus]:
    """Statuses of several apps from one shared round of reads."""
    started = time.monotonic()
    apps = [(name, ctx.config.app(name)) for name in app_names]
    reads = read_everything(ctx, apps)
    return [_status(ctx, name, app, reads, started) for name, app in apps]


def _status(ctx: Context, app_name: str, app: AppConfig, reads: Reads, started: float) -> AppStatus:
    problems: list[str] = []
    hp = ctx.config.haproxy

    analysis, routing = _routing(reads, hp.ssh, hp.files, app, problems)
    reading, state_view = _state(reads.file(app.state_file), app, problems)
    drift = []
    if reading is not None:
        for d in reconcile(analysis.live if analysis else None, _standby(analysis), reading):
            drift.append(
                DriftItem(
                    field=d.field,
                    state_file=d.state_file_value,
                    haproxy=d.haproxy_value,
                    message=d.message,
                )
            )
    problems += [d.message for d in drift]

    stat_rows, runtime_findings, runtime_error = _runtime(reads, analysis)
    # The running HAProxy may route differently from the file: LIVE is not known for certain.
    not_reloaded = bool(reads.not_reloaded)
    problems += runtime_findings
    nodes = _nodes(ctx, app, reads)
    nodes_unsure = node_problems(nodes)
    problems += nodes_unsure + state_drift(nodes) + files_apart(nodes)
    holder = _lock(reads.file(lock_holder_path(hp, app_name)), ctx, problems)

    servers: list[ServerStatus] = []
    for color in app.servers:
        role: Role | None = None
        if analysis and analysis.certain:
            role = "LIVE" if color == analysis.live else "STANDBY"
        route = analysis.route(color) if analysis else None
        members = [
            _member_status(app, member, role, route, reads, stat_rows, problems)
            for member in app.members(color)
        ]
        preview = _preview(analysis, color)
        rule = next((p for p in preview if p.hosts), None)
        reach = preview_command(routing.frontend_url, rule.hosts if rule else [],
                                rule.line if rule else None, members[0].address)  # fmt: skip
        note = reach.note
        colour = members[0]
        if app.is_pool(color):
            colour = _pool_status(color, role, members, app.min_healthy, problems)
            if rule is None or routing.frontend_url is None:  # straight at the first's address
                note += f"; {members[0].server}, the first server of the pool"
        where = {"preview": preview, "preview_command": reach.command, "preview_note": note}
        servers.append(colour.model_copy(update=where))

    live = next((s for s in servers if s.role == "LIVE"), None)
    standby = next((s for s in servers if s.role == "STANDBY"), None)
    state = reading.state if reading else None
    status = AppStatus(
        app=app_name,
        certain=bool(analysis and analysis.certain) and not not_reloaded and not nodes_unsure,
        live=live,
        standby=standby,
        servers=servers,
        routing=routing,
        runtime_disagreements=runtime_findings,
        runtime_error=runtime_error,
        state_file=state_view,
        drift=drift,
        nodes=nodes,
        lock=holder,
        last_switch=format_timestamp(state.last_switch) if state and state.last_switch else None,
        switch_count=state.switch_count if state else None,
        problems=problems,
        checked_at=ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    status.next_step = next_step(status)
    return status


def _member_status(
    app: AppConfig,
    member: Member,
    role: Role | None,
    route: ColorRoute | None,
    reads: Reads,
    stat_rows: tuple[StatRow, ...],
    problems: list[str],
) -> ServerStatus:
    """One server as the round's reads saw it; what needs attention goes into `problems`."""
    health = as_health(reads.health[probe_key(app, member)])
    server = member.server if member.in_pool else (route.server if route else None)
    row = _stat_row(stat_rows, route.backend if route else None, server)
    deployed = deployed_of(reads.deployed[(member.ssh, app.on(member.color).app_dir)])
    host_error = deployed.error
    label = member.label + (f" ({role})" if role else "")
    if host_error:
        problems.append(f"{label} host is unreachable over SSH: {host_error}")
    if health.unknown:
        problems.append(f"{label} health unknown: {health.error}")
    elif not health.healthy:
        problems.append(f"{label} is not healthy: {health.error}")
    return ServerStatus(
        color=member.color,
        role=role,
        ssh=member.ssh,
        address=member.address,
        backend=route.backend if route else None,
        server=server,
        reachable=host_error is None,
        healthy=None if health.unknown else health.healthy,
        health=health,
        commit=deployed.commit,
        deployed_at=deployed.since,
        runtime_state=row.state if row else None,
        prompt_installed=deployed.prompt,
        error=host_error,
    )


def _pool_status(
    color: str,
    role: Role | None,
    members: list[ServerStatus],
    min_healthy: int | None,
    problems: list[str],
) -> ServerStatus:
    """A pool colour as one: healthy when enough of its servers are (`min_healthy`, else every
    one), its commit only when every server runs the same one (drift is a problem)."""
    healthy = sum(1 for m in members if m.healthy)
    unknown = sum(1 for m in members if m.healthy is None)
    needed = min_healthy or len(members)
    verdict = True if healthy >= needed else (None if healthy + unknown >= needed else False)
    commits = {m.commit for m in members if m.commit}
    if len(commits) > 1:
        each = ", ".join(f"{m.server} {(m.commit or '?')[:12]}" for m in members)
        label = color.upper() + (f" ({role})" if role else "")
        problems.append(
            f"{label}'s servers run different commits ({each}): deploy_to_standby puts one "
            "commit on every server of a pool"
            + ("; users of the LIVE pool get different versions" if role == "LIVE" else "")
        )
    prompts = [m.prompt_installed for m in members]
    return ServerStatus(
        color=color,
        role=role,
        ssh=", ".join(m.ssh for m in members),
        address=", ".join(m.address for m in members),
        backend=members[0].backend,
        reachable=all(m.reachable for m in members),
        healthy=verdict,
        commit=commits.pop() if len(commits) == 1 and all(m.commit for m in members) else None,
        deployed_at=max((m.deployed_at for m in members if m.deployed_at), default=None),
        prompt_installed=None if None in prompts else all(prompts),
        pool=members,
        pool_healthy=healthy,
    )


def _nodes(ctx: Context, app: AppConfig, reads: Reads) -> list[NodeStatus]:
    """Each HAProxy node's view when several are configured (none with one: the status is it)."""
    hp = ctx.config.haproxy
    if not reads.others:
        return []

    def analyse(files: HAProxyFiles) -> RoutingAnalysis:
        return files_routing(files, app, reads.loaded(files))

    nodes = reads.all_nodes(next(iter(hp.node_targets)))
    return [node_view(NodeRead.of(node, app, hp), app, hp, analyse) for node in nodes]


def _preview(analysis: RoutingAnalysis | None, color: str) -> list[PreviewRoute]:
    """The cfg's fixed rules to `color`, each named by its file and line."""
    if analysis is None or not analysis.locations:
        return []
    path = analysis.locations[0][0]  # the one file, when HAProxy loads only one
    return [
        PreviewRoute(
            hosts=list(rule.hosts), line=file_line(analysis.locations, rule.line, path),
            text=rule.text,
        )
        for rule in analysis.preview
        if rule.color == color
    ]  # fmt: skip


def _standby(analysis: RoutingAnalysis | None) -> str | None:
    return analysis.standby if analysis else None


def _routing(
    reads: Reads, host: str, paths: tuple[str, ...], app: AppConfig, problems: list[str]
) -> tuple[RoutingAnalysis | None, Routing]:
    def unknown(reason: str) -> tuple[None, Routing]:
        problems.append(reason)
        return None, Routing(
            certain=False, frontend=app.frontend, summary=reason, problems=[reason],
            frontend_url=app.frontend_url,
        )  # fmt: skip

    files = reads.haproxy_files(paths)
    if isinstance(files, HAProxyConfigError):
        return unknown(str(files))
    if isinstance(files, Exception):
        return unknown(f"cannot read haproxy.cfg from {host}: {files}")
    try:
        loaded = reads.loaded(files)
        analysis = files_routing(files, app, loaded)
    except BlueGreenError as exc:
        return unknown(f"haproxy.cfg ({', '.join(paths)}) cannot be analysed: {exc}")
    problems.extend(analysis.problems)
    bind = frontend_bind(loaded.cfg, app.frontend)
    return analysis, routing_model(analysis, public_frontend_url(app.frontend_url, bind, host))


def routing_model(analysis: RoutingAnalysis, frontend_url: str | None) -> Routing:
    return Routing(
        certain=analysis.certain,
        style=analysis.style,
        frontend=analysis.frontend,
        summary=describe(analysis),
        problems=list(analysis.problems),
        notes=list(analysis.notes),
        frontend_url=frontend_url,
    )


def _state(
    raw: bytes | Exception | None, app: AppConfig, problems: list[str]
) -> tuple[StateReading | None, StateFileView]:
    if isinstance(raw, Exception):
        message = f"cannot read the state file: {raw}"
        problems.append(message)
        return None, StateFileView(path=app.state_file, present=False, valid=False, error=message)
    reading = parse_state(raw, list(app.servers))
    view = StateFileView(
        path=app.state_file,
        present=reading.status != "missing",
        valid=reading.ok,
        contents=dict(reading.state.document) if reading.state.document else None,
        error="; ".join(reading.describe()) or None,
    )
    return reading, view


def _runtime(
    reads: Reads, analysis: RoutingAnalysis | None
) -> tuple[tuple[StatRow, ...], list[str], str | None]:
    rows, states, error = reads.runtime_tables
    if analysis is None or (not rows and states is None):
        return rows, [], error
    cfg_servers = [
        CfgServer(
            color=route.color,
            backend=route.backend,
            server=server,
            disabled="disabled" in markers,
            backup="backup" in markers,
            weight=_int(weight),
            routed=route.color == analysis.live,
        )
        for route in analysis.colors
        if route.backend and route.server
        for server, markers, weight in _cfg_lines(route)
    ]
    report = runtime_disagreements(cfg_servers, rows or None, states)
    return rows, [*report.disagreements, *reads.not_reloaded], error


def _cfg_lines(route: ColorRoute) -> list[tuple[str, tuple[str, ...], str | None]]:
    """Each server line of a colour: (server name, standby markers, weight), every one of a pool."""
    if route.pool_lines:
        return [(p.server, p.markers, p.weight) for p in route.pool_lines]
    return [(route.server or "", route.markers, route.weight)]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _stat_row(rows: tuple[StatRow, ...], backend: str | None, server: str | None) -> StatRow | None:
    return next(
        (r for r in rows if r.pxname == backend and r.svname == server and r.is_server), None
    )


def deployed_of(outcome: CommandResult | Exception) -> Deployed:
    """What a host's deployed-commit read says, or why it could not be read."""
    if isinstance(outcome, Exception):
        return Deployed(None, None, str(outcome))
    return parse_deployed(outcome.exit_status, outcome.stdout)


def _lock(raw: bytes | Exception | None, ctx: Context, problems: list[str]) -> LockHolder | None:
    if isinstance(raw, Exception) or raw is None:
        return None
    holder = lock_mod.parse_holder(raw)
    if holder is None:
        problems.append("the lock exists but its holder file is unreadable")
        return None
    stale = is_stale(holder, ctx.now())
    if stale:
        problems.append(f"a STALE lock is held: {holder.describe()}; break it with breakLock")
    return LockHolder(
        operation=holder.operation,
        user=holder.user,
        host=holder.host,
        pid=holder.pid,
        since=holder.since,
        stale=stale,
    )
