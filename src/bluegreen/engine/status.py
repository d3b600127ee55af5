"""get_deployment_status: which server is LIVE, which is STANDBY, and whether anything disagrees.

Every remote read runs at once (cfg, state file, lock, runtime API, health probes, deployed
commits), so status costs about one round trip. A host that cannot be reached is reported as such;
it never fails the whole answer. haproxy.cfg decides LIVE/STANDBY; everything else is a witness.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bluegreen.domain import lock as lock_mod
from bluegreen.domain.command import Command
from bluegreen.domain.config import AppConfig
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.probe import HealthResult, health_command, health_url, parse_health
from bluegreen.domain.reconcile import reconcile
from bluegreen.domain.routing import RoutingAnalysis, ServerSpec, analyze_routing, describe
from bluegreen.domain.runtime import (
    CfgServer,
    RuntimeOutputError,
    StatRow,
    parse_show_servers_state,
    parse_show_stat,
    runtime_disagreements,
)
from bluegreen.domain.state_file import StateReading, format_timestamp, parse_state
from bluegreen.engine.context import Context
from bluegreen.engine.haproxy_reads import runtime_command
from bluegreen.engine.lock import is_stale
from bluegreen.errors import BlueGreenError
from bluegreen.models import (
    AppStatus,
    DriftItem,
    Health,
    LockHolder,
    Role,
    Routing,
    ServerStatus,
    StateFileView,
)
from bluegreen.transport.base import CommandResult
from bluegreen.transport.parallel import parallel

# HEAD's commit and when HEAD last moved (the reflog): what is deployed and since when.
_DEPLOYED = (
    'git -C "$1" log -g -1 --date=iso-strict --format="%H %gd" 2>/dev/null'
    ' || git -C "$1" log -1 --format="%H HEAD@{%cI}"'
)


# Ages in seconds of haproxy.cfg on disk and of the running worker (pid from `show info`), both
# measured on the HAProxy host with sub-second precision: a younger cfg was not reloaded. Only
# then the cfg is also checked (the check argv follows the socket): would a reload even work?
_CFG_AGE = r"""pid=$(echo "show info" | socat -t 5 stdio "unix-connect:$2" | awk -F': ' '$1=="Pid"{print $2}')
[ -n "$pid" ] || exit 3
ticks=$(getconf CLK_TCK)
up=$(cut -d' ' -f1 /proc/uptime)
proc_age=$(awk -v up="$up" -v t="$ticks" '{print up - $22 / t}' "/proc/$pid/stat")
cfg_age=$(echo "$(date +%s.%N) $(stat -c %.9Y -- "$1")" | awk '{print $1 - $2}')
echo "$cfg_age $proc_age"
[ $# -gt 2 ] || exit 0
awk -v c="$cfg_age" -v p="$proc_age" 'BEGIN { exit !(c < p - 0.05) }' || exit 0
cfg=$1; shift 2
out=$("$@" "$cfg" 2>&1) && exit 0
echo "check-failed"
printf '%s\n' "$out" | tail -n 5
"""
CHECK_FAILED = "check-failed"


def cfg_age_command(path: str, socket_path: str, check: Sequence[str] = ()) -> Command:
    return Command.of(
        "sh", "-c", _CFG_AGE, "bluegreen-status", path, socket_path, *check, mutating=False
    )


def deployed_command(app_dir: str) -> Command:
    return Command.of("sh", "-c", _DEPLOYED, "bluegreen-status", app_dir, mutating=False)


def server_specs(app: AppConfig) -> list[ServerSpec]:
    return [
        ServerSpec(color=color, address=cfg.address, backend=cfg.backend, server=cfg.server)
        for color, cfg in app.servers.items()
    ]


@dataclass
class Reads:
    """What the parallel reads brought back (a value, or the exception that stopped it)."""

    cfg: bytes | Exception | None
    state: bytes | Exception | None
    holder: bytes | Exception | None
    stat: CommandResult | Exception
    servers_state: CommandResult | Exception
    cfg_age: CommandResult | Exception
    health: dict[str, CommandResult | Exception]
    deployed: dict[str, CommandResult | Exception]


class ReadCache:
    """Reads shared by several statuses taken at once (status of many apps): the same file or
    read-only command on the same host is fetched once, and every app waits for that answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str, str], Future[Any]] = {}

    def get(self, key: tuple[str, str, str], fetch: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(fetch())
            except Exception as exc:
                future.set_exception(exc)
        return future.result()


def read_everything(
    ctx: Context, app_name: str, app: AppConfig, cache: ReadCache | None = None
) -> Reads:
    hp = ctx.config.haproxy
    runner = ctx.runner
    colors = list(app.servers)
    timeout = app.health.timeout_s + 10
    shared = cache or ReadCache()

    def read(host: str, path: str) -> Callable[[], bytes | None]:
        return lambda: shared.get(("read", host, path), lambda: runner.read_file(host, path))

    def run(host: str, command: Command, limit: float) -> Callable[[], CommandResult]:
        key = ("run", host, command.render() + repr(command.stdin))
        return lambda: shared.get(key, lambda: runner.run(host, command, timeout=limit))

    def probe(color: str) -> Callable[[], CommandResult]:
        address = _probe_address(app, color)
        return run(hp.ssh, health_command(address, app.health.path, app.health.timeout_s), timeout)

    calls: list[Callable[[], object]] = [
        read(hp.ssh, hp.config_path),
        read(hp.ssh, app.state_file),
        read(hp.ssh, lock_mod.holder_path(hp.work_dir, app_name)),
        run(hp.ssh, runtime_command(hp.runtime_socket, "show stat"), 15),
        run(hp.ssh, runtime_command(hp.runtime_socket, "show servers state"), 15),
        run(hp.ssh, cfg_age_command(hp.config_path, hp.runtime_socket, hp.check), 15),
        *(probe(c) for c in colors),
        *(run(app.servers[c].ssh, deployed_command(app.app_dir), 30) for c in colors),
    ]
    out = parallel(calls)
    n = len(colors)
    return Reads(
        cfg=out[0],  # type: ignore[arg-type]
        state=out[1],  # type: ignore[arg-type]
        holder=out[2],  # type: ignore[arg-type]
        stat=out[3],  # type: ignore[arg-type]
        servers_state=out[4],  # type: ignore[arg-type]
        cfg_age=out[5],  # type: ignore[arg-type]
        health=dict(zip(colors, out[6 : 6 + n], strict=True)),  # type: ignore[arg-type]
        deployed=dict(zip(colors, out[6 + n :], strict=True)),  # type: ignore[arg-type]
    )


def _probe_address(app: AppConfig, color: str) -> str:
    host = app.servers[color].address.rsplit(":", 1)[0]
    return f"{host}:{app.health_port(color)}"


def get_status(ctx: Context, app_name: str, cache: ReadCache | None = None) -> AppStatus:
    started = time.monotonic()
    app = ctx.config.app(app_name)
    reads = read_everything(ctx, app_name, app, cache)
    problems: list[str] = []
    hp = ctx.config.haproxy

    analysis, routing = _routing(reads.cfg, hp.ssh, hp.config_path, app, problems)
    reading, state_view = _state(reads.state, app, problems)
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
    not_reloaded = bool(_not_reloaded(reads))
    problems += runtime_findings
    holder = _lock(reads.holder, ctx, problems)

    servers: list[ServerStatus] = []
    for color, server in app.servers.items():
        route = analysis.route(color) if analysis else None
        health = _health(reads.health[color], app, color)
        row = _stat_row(
            stat_rows, route.backend if route else None, route.server if route else None
        )
        commit, deployed_at, host_error = _deployed(reads.deployed[color], server.ssh)
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
                healthy=health.healthy,
                health=health,
                commit=commit,
                deployed_at=deployed_at,
                runtime_state=row.state if row else None,
                error=host_error,
            )
        )
        label = f"{color.upper()}" + (f" ({role})" if role else "")
        if host_error:
            problems.append(f"{label} host is unreachable over SSH: {host_error}")
        if not health.healthy:
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
    raw: bytes | Exception | None, host: str, path: str, app: AppConfig, problems: list[str]
) -> tuple[RoutingAnalysis | None, Routing]:
    def unknown(reason: str) -> tuple[None, Routing]:
        problems.append(reason)
        return None, Routing(
            certain=False, frontend=app.frontend, summary=reason, problems=[reason]
        )

    if isinstance(raw, Exception):
        return unknown(f"cannot read haproxy.cfg from {host}: {raw}")
    if raw is None:
        return unknown(f"haproxy.cfg not found at {path} on {host}")
    try:
        analysis = analyze_routing(
            parse(raw.decode(errors="replace")), app.frontend, server_specs(app)
        )
    except BlueGreenError as exc:
        return unknown(f"haproxy.cfg at {path} cannot be analysed: {exc}")
    problems.extend(analysis.problems)
    routing = Routing(
        certain=analysis.certain,
        style=analysis.style,
        frontend=analysis.frontend,
        summary=describe(analysis),
        problems=list(analysis.problems),
    )
    return analysis, routing


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
    rows: tuple[StatRow, ...] = ()
    errors: list[str] = []
    stat = reads.stat
    if isinstance(stat, Exception):
        errors.append(str(stat))
    elif not stat.ok:
        errors.append(f"`show stat` failed: {stat.tail(3)}")
    else:
        try:
            rows = parse_show_stat(stat.stdout)
        except RuntimeOutputError as exc:
            errors.append(str(exc))
    states = None
    ss = reads.servers_state
    if isinstance(ss, CommandResult) and ss.ok:
        try:
            states = parse_show_servers_state(ss.stdout)
        except RuntimeOutputError as exc:
            errors.append(str(exc))
    error = ("HAProxy's runtime API did not answer: " + "; ".join(errors)) if errors else None
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
    return rows, [*report.disagreements, *_not_reloaded(reads)], error


def cfg_not_reloaded(ctx: Context) -> list[str]:
    """Asks the HAProxy host now: findings when haproxy.cfg was changed and not reloaded."""
    hp = ctx.config.haproxy
    command = cfg_age_command(hp.config_path, hp.runtime_socket, hp.check)
    return _age_findings(ctx.runner.run(hp.ssh, command, timeout=15))


def _not_reloaded(reads: Reads) -> list[str]:
    return _age_findings(reads.cfg_age)


def _age_findings(age: CommandResult | Exception) -> list[str]:
    """The cfg file changed after the running HAProxy worker started: edited and not reloaded."""
    if not isinstance(age, CommandResult) or not age.ok:
        return []
    first, *rest = age.stdout.strip().splitlines() or [""]
    try:
        cfg_age, proc_age = (float(word) for word in first.split())
    except ValueError:
        return []
    if cfg_age < proc_age - 0.05:  # 50 ms: the clock ticks are 10 ms
        findings = [
            f"haproxy.cfg on disk was modified {cfg_age:.1f}s ago, after the running HAProxy "
            f"worker started ({proc_age:.1f}s ago): it was edited and not reloaded, so the "
            "running routing may differ from the file"
        ]
        if rest and rest[0] == CHECK_FAILED:
            findings.append(
                "haproxy.cfg on disk does not pass `haproxy -c`, so a reload would fail and "
                "HAProxy keeps running the previous cfg: " + " ".join(rest[1:])[-300:]
            )
        return findings
    return []


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _stat_row(rows: tuple[StatRow, ...], backend: str | None, server: str | None) -> StatRow | None:
    return next(
        (r for r in rows if r.pxname == backend and r.svname == server and r.is_server), None
    )


def _health(outcome: CommandResult | Exception, app: AppConfig, color: str) -> Health:
    url = health_url(_probe_address(app, color), app.health.path)
    if isinstance(outcome, Exception):
        return Health(url=url, healthy=False, error=f"probe could not run: {outcome}")
    result: HealthResult = parse_health(
        url, outcome.exit_status, outcome.stdout, outcome.stderr, app.health.expect_status
    )
    return Health(
        url=result.url,
        healthy=result.healthy,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        color=result.color,
        commit=result.commit,
        error=result.error,
    )


def _deployed(
    outcome: CommandResult | Exception, host: str
) -> tuple[str | None, str | None, str | None]:
    if isinstance(outcome, Exception):
        return None, None, str(outcome)
    if not outcome.ok:
        return None, None, None if outcome.exit_status != 128 else "app dir is not a git checkout"
    words = outcome.stdout.strip().split(" ", 1)
    commit = words[0] if words and len(words[0]) >= 7 else None
    when = None
    if len(words) == 2 and "@{" in words[1]:
        when = words[1].split("@{", 1)[1].rstrip("}")
    return commit, when, None


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
