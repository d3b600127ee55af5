"""Requests per second per colour, read from HAProxy's runtime statistics (`show stat`) again
and again: what `bluegreen watch` and the dashboard show while traffic moves."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from bluegreen.domain.routing import RoutingAnalysis
from bluegreen.domain.runtime import RuntimeOutputError, StatRow, parse_show_stat, runtime_command
from bluegreen.domain.traffic_stats import ColourCounters, per_second, servers_counters
from bluegreen.engine.context import Context
from bluegreen.engine.status import files_routing
from bluegreen.engine.status_reads import read_cfg
from bluegreen.models import Role
from bluegreen.models_traffic import ColourTraffic, TrafficSample


def sample(ctx: Context, app_name: str, previous: TrafficSample | None = None) -> TrafficSample:
    """One reading; rates are computed against `previous` (the last reading of the same app)."""
    app = ctx.config.app(app_name)
    at = ctx.now()
    analysis = files_routing(read_cfg(ctx), app)
    rows, error = _stat_rows(ctx)
    before = {c.color: c for c in previous.colours} if previous else {}
    elapsed = (at - datetime.fromisoformat(previous.at)).total_seconds() if previous else 0.0
    colours = []
    for counters in (_counters(rows, analysis, color) for color in app.servers):
        earlier = before.get(counters.color)
        colours.append(
            ColourTraffic(
                color=counters.color, role=_role(analysis, counters.color),
                backend=counters.backend, server=counters.server,
                requests_total=counters.total, haproxy_rate=counters.rate,
                per_second=per_second(earlier.requests_total if earlier else None,
                                      counters.total, elapsed),
            )
        )  # fmt: skip
    return TrafficSample(app=app_name, at=at.isoformat(), colours=colours, error=error)


def watch(
    ctx: Context,
    app_name: str,
    on_sample: Callable[[TrafficSample], None],
    *,
    every_s: float = 1.0,
    count: int | None = None,
) -> None:
    """Read every `every_s` seconds and hand each reading on; `count` readings, or until
    interrupted."""
    previous: TrafficSample | None = None
    taken = 0
    while count is None or taken < count:
        started = time.monotonic()
        previous = sample(ctx, app_name, previous)
        on_sample(previous)
        taken += 1
        if count is None or taken < count:
            time.sleep(max(0.0, every_s - (time.monotonic() - started)))


def _counters(rows: tuple[StatRow, ...], analysis: RoutingAnalysis, color: str) -> ColourCounters:
    """A colour's counters: its server's, or every server's of its pool together."""
    try:
        route = analysis.route(color)
    except KeyError:
        return servers_counters(rows, color, None, ())
    return servers_counters(rows, color, route.backend, route.server_names)


def _role(analysis: RoutingAnalysis, color: str) -> Role | None:
    if not analysis.certain:
        return None
    return "LIVE" if analysis.live == color else "STANDBY"


def _stat_rows(ctx: Context) -> tuple[tuple[StatRow, ...], str | None]:
    hp = ctx.config.haproxy
    r = ctx.runner.run(hp.ssh, runtime_command(hp.runtime_socket, "show stat", hp.sudo), timeout=15)
    try:
        if not r.ok:
            raise RuntimeOutputError(r.tail(1) or f"socat exited {r.exit_status}")
        return parse_show_stat(r.stdout), None
    except RuntimeOutputError as exc:
        return (), f"runtime API not read: {exc}"
