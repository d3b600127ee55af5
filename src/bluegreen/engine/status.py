"""get_deployment_status: which server is LIVE, which is STANDBY, and whether anything disagrees.

Every remote read runs at once (cfg, state file, lock, runtime API, health probes, deployed
commits), so status costs about one round trip. A host that cannot be reached is reported as such;
it never fails the whole answer. haproxy.cfg decides LIVE/STANDBY; everything else is a witness.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain import lock as lock_mod
from bluegreen.domain.config import AppConfig, HAProxySettings
from bluegreen.domain.deployed_commit import Deployed, deployed_command, parse_deployed
from bluegreen.domain.haproxy_cfg import HAProxyConfig, parse
from bluegreen.domain.probe import HealthResult, unknown_health
from bluegreen.domain.prompt_snippet import snippet_path
from bluegreen.domain.reconcile import reconcile
from bluegreen.domain.routing import RoutingAnalysis, ServerSpec, analyze_routing, describe
from bluegreen.domain.runtime import (
    RuntimeOutputError,
    ServerState,
    StatRow,
    parse_show_servers_state,
    parse_show_stat,
)
from bluegreen.domain.runtime_compare import CfgServer, runtime_disagreements
from bluegreen.domain.snapshot import Snapshot, SnapshotError, parse_snapshot, snapshot_command
from bluegreen.domain.state_file import StateReading, format_timestamp, parse_state
from bluegreen.domain.switch_commands import COMMAND_NOT_FOUND, check_command, not_found
from bluegreen.engine.context import Context
from bluegreen.engine.lock import is_stale
from bluegreen.engine.probing import as_health, http_probe
from bluegreen.errors import BlueGreenError, TransportError
from bluegreen.models import (
    AppStatus,
    DriftItem,
    LockHolder,
    Role,
    Routing,
    ServerStatus,
    StateFileView,
)
from bluegreen.transport.base import CommandResult
from bluegreen.transport.parallel import parallel

# 50 ms: the kernel's process start time ticks in 10 ms.
_CLOCK_SLACK_S = 0.05


def lock_holder_path(hp: HAProxySettings, app_name: str) -> str:
    return lock_mod.holder_path(hp.work_dir, app_name)


def server_specs(app: AppConfig) -> list[ServerSpec]:
    return [
        ServerSpec(color=color, address=cfg.address, backend=cfg.backend, server=cfg.server)
        for color, cfg in app.servers.items()
    ]


def app_routing(cfg: HAProxyConfig, app: AppConfig) -> RoutingAnalysis:
    """How `cfg` routes the app's users: in a shared frontend, the requests its rule and Host
    headers select."""
    return analyze_routing(cfg, app.frontend, server_specs(app), rule=app.rule, hosts=app.hosts)


@dataclass
class Reads:
    """What one round of reads brought back, shared by every app of a multi-app status."""

    host: str
    snapshot: Snapshot | Exception
    not_reloaded: list[str]
    health: dict[tuple[str, int, float], HealthResult]  # by probe_key()
    deployed: dict[tuple[str, str], CommandResult | Exception]  # by (ssh target, app dir)
    _parsed: dict[str, HAProxyConfig] = field(default_factory=dict, repr=False)

    def parsed_cfg(self, text: str) -> HAProxyConfig:
        """haproxy.cfg parsed once for all the apps of this round (the parse is immutable)."""
        if text not in self._parsed:
            self._parsed[text] = parse(text)
        return self._parsed[text]

    @cached_property
    def runtime_tables(
        self,
    ) -> tuple[tuple[StatRow, ...], tuple[ServerState, ...] | None, str | None]:
        """`show stat` and `show servers state` parsed once for every app of the round, and
        why they could not be read."""
        rows: tuple[StatRow, ...] = ()
        states: tuple[ServerState, ...] | None = None
        errors: list[str] = []
        snap = self.snapshot
        if isinstance(snap, Exception):
            errors.append(str(snap))
        elif problem := snap.runtime_problem():
            errors.append(problem)
        else:
            try:
                rows = parse_show_stat(snap.runtime_answer("show stat") or "")
            except RuntimeOutputError as exc:
                errors.append(str(exc))
            try:
                states = parse_show_servers_state(snap.runtime_answer("show servers state") or "")
            except RuntimeOutputError as exc:
                errors.append(str(exc))
        error = ("HAProxy's runtime API did not answer: " + "; ".join(errors)) if errors else None
        return rows, states, error

    def file(self, path: str) -> bytes | Exception | None:
        if isinstance(self.snapshot, Exception):
            return self.snapshot
        read = self.snapshot.files[path]
        if read.error is not None:
            return TransportError(f"reading {path} failed: {read.error}", host=self.host)
        return read.data


def read_everything(ctx: Context, apps: Sequence[tuple[str, AppConfig]]) -> Reads:
    """Every read the statuses of `apps` need, all at once: ONE command on the HAProxy host
    (cfg, state files, lock holders, runtime API, clocks), the health probes (over the HAProxy
    host's own connections) and one `git log` per app host and app dir."""
    hp = ctx.config.haproxy
    runner = ctx.runner
    files = list(
        dict.fromkeys(
            [hp.config_path]
            + [p for name, app in apps for p in (app.state_file, lock_holder_path(hp, name))]
        )
    )
    # One probe per distinct URL and verdict rule: apps sharing a server share its probe.
    probes = {probe_key(app, c): app for _, app in apps for c in app.servers}
    checkouts = list(
        dict.fromkeys((s.ssh, app.on(c).app_dir) for _, app in apps for c, s in app.servers.items())
    )

    def snapshot() -> Snapshot:
        return read_snapshot(ctx, files)

    def probe(key: tuple[str, int, float]) -> Callable[[], HealthResult]:
        url, expect_status, timeout_s = key
        return lambda: http_probe(runner, hp.ssh, url, timeout_s, expect_status)

    def deployed(host: str, app_dir: str) -> Callable[[], CommandResult]:
        # The same read says whether the prompt snippet is installed (`bluegreen prompt`).
        command = deployed_command(app_dir, snippet_path(app_dir))
        return lambda: runner.run(host, command, timeout=30)

    out = parallel(
        [
            snapshot,
            *(probe(key) for key in probes),
            *(deployed(host, app_dir) for host, app_dir in checkouts),
        ]
    )
    snap = out[0]
    health: dict[tuple[str, int, float], HealthResult] = {}
    for key, outcome in zip(probes, out[1 : 1 + len(probes)], strict=True):
        health[key] = (
            outcome if isinstance(outcome, HealthResult) else unknown_health(key[0], outcome)
        )
    return Reads(
        host=hp.ssh,
        snapshot=snap,  # type: ignore[arg-type]
        not_reloaded=not_reloaded(ctx, snap) if isinstance(snap, Snapshot) else [],
        health=health,
        deployed=dict(zip(checkouts, out[1 + len(probes) :], strict=True)),  # type: ignore[arg-type]
    )


def probe_key(app: AppConfig, color: str) -> tuple[str, int, float]:
    """What makes two probes the same: the URL, the expected status and the timeout."""
    return (dc.server_health_url(app, color), app.health.expect_status, app.health.timeout_s)


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

    analysis, routing = _routing(reads, hp.ssh, hp.config_path, app, problems)
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
    holder = _lock(reads.file(lock_holder_path(hp, app_name)), ctx, problems)

    servers: list[ServerStatus] = []
    for color, server in app.servers.items():
        route = analysis.route(color) if analysis else None
        health = as_health(reads.health[probe_key(app, color)])
        row = _stat_row(
            stat_rows, route.backend if route else None, route.server if route else None
        )
        deployed = deployed_of(reads.deployed[(server.ssh, app.on(color).app_dir)])
        host_error = deployed.error
        role: Role | None = None
        if analysis and analysis.certain:
            role = "LIVE" if color == analysis.live else "STANDBY"
        servers.append(
            ServerStatus(
                color=color,
                role=role,
                ssh=server.ssh,
                address=server.address,
                backend=route.backend if route else None,
                server=route.server if route else None,
                reachable=host_error is None,
                healthy=None if health.unknown else health.healthy,
                health=health,
                commit=deployed.commit,
                deployed_at=deployed.since,
                runtime_state=row.state if row else None,
                prompt_installed=deployed.prompt,
                error=host_error,
            )
        )
        label = f"{color.upper()}" + (f" ({role})" if role else "")
        if host_error:
            problems.append(f"{label} host is unreachable over SSH: {host_error}")
        if health.unknown:
            problems.append(f"{label} health unknown: {health.error}")
        elif not health.healthy:
            problems.append(f"{label} is not healthy: {health.error}")

    live = next((s for s in servers if s.role == "LIVE"), None)
    standby = next((s for s in servers if s.role == "STANDBY"), None)
    state = reading.state if reading else None
    status = AppStatus(
        app=app_name,
        certain=bool(analysis and analysis.certain) and not not_reloaded,
        live=live,
        standby=standby,
        servers=servers,
        routing=routing,
        runtime_disagreements=runtime_findings,
        runtime_error=runtime_error,
        state_file=state_view,
        drift=drift,
        lock=holder,
        last_switch=format_timestamp(state.last_switch) if state and state.last_switch else None,
        switch_count=state.switch_count if state else None,
        problems=problems,
        checked_at=ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    status.next_step = _next_step(status)
    return status


def _standby(analysis: RoutingAnalysis | None) -> str | None:
    return analysis.standby if analysis else None


def _routing(
    reads: Reads, host: str, path: str, app: AppConfig, problems: list[str]
) -> tuple[RoutingAnalysis | None, Routing]:
    def unknown(reason: str) -> tuple[None, Routing]:
        problems.append(reason)
        return None, Routing(
            certain=False, frontend=app.frontend, summary=reason, problems=[reason]
        )

    raw = reads.file(path)
    if isinstance(raw, Exception):
        return unknown(f"cannot read haproxy.cfg from {host}: {raw}")
    if raw is None:
        return unknown(f"haproxy.cfg not found at {path} on {host}")
    try:
        cfg = reads.parsed_cfg(raw.decode(errors="replace"))
        analysis = app_routing(cfg, app)
    except BlueGreenError as exc:
        return unknown(f"haproxy.cfg at {path} cannot be analysed: {exc}")
    problems.extend(analysis.problems)
    return analysis, routing_model(analysis)


def routing_model(analysis: RoutingAnalysis) -> Routing:
    return Routing(
        certain=analysis.certain,
        style=analysis.style,
        frontend=analysis.frontend,
        summary=describe(analysis),
        problems=list(analysis.problems),
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
            server=route.server,
            disabled="disabled" in route.markers,
            backup="backup" in route.markers,
            weight=_int(route.weight),
            routed=route.color == analysis.live,
        )
        for route in analysis.colors
        if route.backend and route.server
    ]
    report = runtime_disagreements(cfg_servers, rows or None, states)
    return rows, [*report.disagreements, *reads.not_reloaded], error


def read_snapshot(ctx: Context, files: list[str]) -> Snapshot:
    """The HAProxy host's snapshot (see domain/snapshot.py); TransportError when unreadable."""
    hp = ctx.config.haproxy
    command = snapshot_command(hp.config_path, hp.runtime_socket, files, sudo=hp.sudo)
    result = ctx.runner.run(hp.ssh, command, timeout=15)
    try:
        return parse_snapshot(result.stdout, files)
    except SnapshotError as exc:
        raise TransportError(
            f"reading the HAProxy host failed (exit {result.exit_status}): {exc}; {result.tail(3)}",
            host=hp.ssh,
            hint="the read needs a POSIX sh with base64, stat, getconf and socat on the host",
        ) from exc


def cfg_not_reloaded(ctx: Context) -> list[str]:
    """Asks the HAProxy host now: findings when haproxy.cfg was changed and not reloaded."""
    return not_reloaded(ctx, read_snapshot(ctx, []))


def not_reloaded(ctx: Context, snap: Snapshot) -> list[str]:
    """The cfg file changed after the running HAProxy worker started: edited and not reloaded.
    Only then it is also checked (would a reload even work?)."""
    ages = snap.ages()
    if ages is None:
        return []
    cfg_age, proc_age = ages
    if cfg_age >= proc_age - _CLOCK_SLACK_S:
        return []
    findings = [
        f"haproxy.cfg on disk was modified {cfg_age:.1f}s ago, after the running HAProxy "
        f"worker started ({proc_age:.1f}s ago): it was edited and not reloaded, so the "
        "running routing may differ from the file"
    ]
    hp = ctx.config.haproxy
    if hp.check:
        check = check_command(hp.check, hp.config_path, hp.sudo)
        try:
            result = ctx.runner.run(hp.ssh, check, timeout=30)
        except BlueGreenError:
            return findings
        if result.exit_status == COMMAND_NOT_FOUND:
            findings.append(f"haproxy.cfg on disk could not be checked: {not_found(hp.check[0])}")
        elif not result.ok:
            findings.append(
                "haproxy.cfg on disk does not pass `haproxy -c`, so a reload would fail and "
                "HAProxy keeps running the previous cfg: " + " ".join(result.tail(5).split())[-300:]
            )
    return findings


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


def _deployed_later(a: str | None, b: str | None) -> bool:
    """Whether deploy time `a` is after `b` (ISO 8601 from git's reflog); True when unknown."""
    try:
        return a is None or b is None or datetime.fromisoformat(a) > datetime.fromisoformat(b)
    except ValueError:
        return True


def _next_step(status: AppStatus) -> str:
    if status.routing.certain and not status.certain:  # certain from the file, not reloaded
        return (
            "haproxy.cfg was changed and not reloaded: HAProxy may route differently from the "
            "file. Check it with `haproxy -c` and reload HAProxy (or put the previous cfg back) "
            "before deploying; switch_traffic also reloads."
        )
    if not status.certain:
        return "Fix haproxy.cfg's routing for this app (see routing.problems) before deploying."
    assert status.live and status.standby
    if status.lock:
        return f"Wait: {status.lock.operation} is in progress (or break a stale lock)."
    standby = status.standby
    if standby.healthy is None:
        return f"STANDBY {standby.color.upper()}'s health is unknown (not measured): ask again."
    if not standby.healthy:
        return f"STANDBY {standby.color.upper()} is unhealthy: deploy_to_standby repairs it."
    if status.live.commit and standby.commit and status.live.commit != standby.commit:
        if _deployed_later(standby.deployed_at, status.live.deployed_at):
            return (
                f"STANDBY {standby.color.upper()} runs {standby.commit[:12]}, deployed after "
                f"LIVE's: test it at {standby.address}, then switch_traffic to release it."
            )
        return (
            f"STANDBY {standby.color.upper()} runs the earlier {standby.commit[:12]} (the "
            "rollback target: switch_traffic goes back to it); deploy_to_standby brings it up "
            "to date."
        )
    return "Both servers run the same commit: deploy_to_standby to release a new version."
