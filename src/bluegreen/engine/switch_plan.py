"""What a switch will do, decided before anything changes: haproxy.cfg and the state file as they
are now, the routing, the minimal edit, the target's health and the plan (with its hash, which
approval binds). Reads only; switch.py executes the plan.

With several HAProxy nodes the plan covers every node: each node's cfg is read and must route the
app for certain to the same LIVE; each gets its own minimal edit, and the hash binds every node's
lines. Also the re-plans made under the locks: the one the executed switch must match, and the one an
auto-rollback makes from the cfg as it is by then (another app may have switched meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.approval import plan_hash, same_commit, short, stale_plan_reason
from bluegreen.domain.config import AppConfig
from bluegreen.domain.deployed_commit import deployed_command
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.routing import RoutingAnalysis, SwitchEdit, app_lines, plan_switch
from bluegreen.engine.context import Context
from bluegreen.engine.nodes import RECONCILE_HINT
from bluegreen.engine.probing import as_health, http_probe
from bluegreen.engine.status import app_routing, deployed_of
from bluegreen.engine.switch_nodes import NodeChange
from bluegreen.errors import (
    ApprovalError,
    CfgChanged,
    HAProxyConfigError,
    TransportError,
    UnsafeOperationError,
    ValidationError,
)
from bluegreen.models import Health, SwitchPlan
from bluegreen.transport.base import CommandResult
from bluegreen.transport.parallel import parallel


@dataclass(frozen=True)
class NodePlan:
    """One HAProxy node's part of a switch: the cfg read there and its minimal edit."""

    name: str
    host: str
    cfg_raw: bytes
    edit: SwitchEdit
    lines: bytes  # routing.app_lines: what an approval binds on this node


@dataclass
class Prepared:
    """A switch plan with everything needed to execute it exactly."""

    app_name: str
    app: AppConfig
    state_raw: bytes | None
    analysis: RoutingAnalysis  # the primary's
    plan: SwitchPlan
    nodes: tuple[NodePlan, ...]  # every HAProxy node, the primary first

    @property
    def cfg_raw(self) -> bytes:
        return self.nodes[0].cfg_raw

    @property
    def edit(self) -> SwitchEdit:
        return self.nodes[0].edit

    @property
    def changes(self) -> list[NodeChange]:
        return [NodeChange(n.name, n.host, n.cfg_raw, n.edit.text.encode()) for n in self.nodes]

    @property
    def from_live(self) -> str:
        return self.plan.from_live

    @property
    def to_live(self) -> str:
        return self.plan.to_live


def _probe_health(ctx: Context, app: AppConfig, color: str, timeout_s: float) -> Health:
    url = dc.server_health_url(app, color)
    hp = ctx.config.haproxy
    return as_health(http_probe(ctx.runner, hp.ssh, url, timeout_s, app.health.expect_status))


def prepare(
    ctx: Context, app_name: str, *, emergency: bool = False, mode: str = "token",
    reconcile: bool = False,
) -> Prepared:  # fmt: skip
    """Read cfg, state and target health (in parallel) and build the plan. Changes nothing.
    `reconcile`: the plan that brings the nodes routing elsewhere back to the primary's LIVE."""
    app = ctx.config.app(app_name)
    hp = ctx.config.haproxy
    others = list(hp.node_targets.items())[1:]
    outcomes = parallel(
        [lambda: ctx.runner.read_file(hp.ssh, hp.config_path),
         lambda: ctx.runner.read_file(hp.ssh, app.state_file),
         *(_read_checkout(ctx, app, color) for color in app.servers),
         *(_read_cfg(ctx, host) for _, host in others)]
    )  # fmt: skip
    cfg_raw, state_raw = cast("list[bytes | Exception | None]", outcomes[:2])
    n = 2 + len(app.servers)
    commits = {color: deployed_of(cast("CommandResult | Exception", checkout))
               for color, checkout in zip(app.servers, outcomes[2:n], strict=True)}  # fmt: skip
    if isinstance(cfg_raw, Exception):
        raise cfg_raw
    if cfg_raw is None:
        raise HAProxyConfigError(f"haproxy.cfg not found at {hp.config_path} on {hp.ssh}")
    state_bytes = None if isinstance(state_raw, Exception) else state_raw
    cfg = parse(cfg_raw.decode(errors="replace"))
    analysis = app_routing(cfg, app)
    if not analysis.certain or analysis.live is None or analysis.standby is None:
        raise HAProxyConfigError(
            "refusing to switch: haproxy.cfg's routing for this app is not certain: "
            + "; ".join(analysis.problems),
            hint="fix haproxy.cfg by hand, check it with `bluegreen inspect-cfg`, then retry",
        )
    name = next(iter(hp.node_targets))
    if reconcile:
        # The primary's answer is the one: only the nodes that route elsewhere change.
        source, target = analysis.standby, analysis.live
        mine = None
    else:
        source, target = analysis.live, analysis.standby
        edit = plan_switch(cfg, analysis, target)
        mine = NodePlan(name, hp.ssh, cfg_raw, edit, app_lines(cfg, analysis, edit))
    others_plans = [
        _node_plan(app, node, host, cast("bytes | Exception | None", raw), (name, analysis.live),
                   target, reconcile)
        for (node, host), raw in zip(others, outcomes[n:], strict=True)
    ]  # fmt: skip
    nodes = tuple(p for p in (mine, *others_plans) if p is not None)
    if reconcile and not hp.several_nodes:
        raise ValidationError(
            "reconcile brings several HAProxy nodes back to one answer; this config names one",
            hint="switch without reconcile",
        )
    if not nodes:
        raise UnsafeOperationError(
            f"nothing to reconcile: every HAProxy node routes {app_name} to {target.upper()}",
            hint="run status; a normal switch moves every node",
        )
    health = _probe_health(ctx, app, target, app.health.timeout_s)
    warnings: list[str] = []
    if not health.healthy:
        verdict = "health is unknown" if health.unknown else "is not healthy"
        outcome = "emergency switch" if emergency else "the switch will be refused"
        warnings.append(f"target {target.upper()} {verdict} ({health.error}): {outcome}")
    if health.color and health.color != target:
        warnings.append(f"{target.upper()}'s health endpoint reports colour {health.color!r}")
    target_commit, checkout_error = commits[target].commit, commits[target].error
    if target_commit is None:
        warnings.append(f"the commit on {target.upper()} could not be read "
                        f"({checkout_error or 'no git checkout'}): the approval cannot name it")  # fmt: skip
    elif health.commit and not same_commit(target_commit, health.commit):
        warnings.append(f"{target.upper()} has {short(target_commit)} checked out but its health "
                        f"endpoint reports {short(health.commit)} (not restarted?)")  # fmt: skip
    if state_raw is None or isinstance(state_raw, Exception):
        warnings.append("the state file is missing or unreadable: the switch writes a fresh one")
    if emergency:
        warnings.append("EMERGENCY: drain wait and slow checks are skipped; marked in history")
    if reconcile:
        changed = ", ".join(p.name for p in nodes)
        warnings.append(f"RECONCILE: only {changed} change, to route to {target.upper()} as the "
                        f"primary {name} does; users on those nodes move from {source.upper()}")  # fmt: skip
    several = hp.several_nodes
    plan = SwitchPlan(
        app=app_name,
        from_live=source,
        to_live=target,
        emergency=emergency,
        reconcile=reconcile,
        diff=_diff(nodes, several),
        target_healthy=health.healthy,
        target_health=health,
        target_commit=target_commit,
        live_commit=commits[source].commit,
        warnings=warnings,
        plan_hash=plan_hash(
            app_name,
            source,
            target,
            emergency,
            (b"reconcile\n" if reconcile else b"") + _lines(nodes, several),
            state_bytes,
            (target_commit, health.commit),
        ),
        approval=mode,
    )
    return Prepared(app_name, app, state_bytes, analysis, plan, nodes)


def _read_cfg(ctx: Context, host: str) -> Callable[[], bytes | None]:
    return lambda: ctx.runner.read_file(host, ctx.config.haproxy.config_path)


def _node_plan(
    app: AppConfig, name: str, host: str, raw: bytes | Exception | None,
    primary: tuple[str, str], target: str, reconcile: bool,
) -> NodePlan | None:  # fmt: skip
    """Another node's edit to `target` (None: reconciling, and it routes there already). Refuses
    (nothing changes on any node) when the node cannot be read or is not certain, and, unless
    reconciling, when it does not route the app where the primary does."""
    where = f"HAProxy node {name} ({host})"
    if isinstance(raw, Exception):
        raise TransportError(
            f"refusing to switch: {where} cannot be read ({raw}): no node is changed",
            host=host,
            hint="a switch changes every node or none: bring the node back, then retry",
        )
    if raw is None:
        raise HAProxyConfigError(f"refusing to switch: {where} has no haproxy.cfg")
    cfg = parse(raw.decode(errors="replace"))
    analysis = app_routing(cfg, app)
    if not analysis.certain or analysis.live is None:
        raise HAProxyConfigError(
            f"refusing to switch: the routing of {where} is not certain: "
            + "; ".join(analysis.problems),
            hint="fix that node's haproxy.cfg by hand, then retry",
        )
    if reconcile and analysis.live == target:
        return None
    primary_name, primary_live = primary
    if not reconcile and analysis.live != primary_live:
        raise UnsafeOperationError(
            f"refusing to switch: the HAProxy nodes disagree ({primary_name} routes to "
            f"{primary_live.upper()}, {name} routes to {analysis.live.upper()})",
            hint=RECONCILE_HINT,
        )
    edit = plan_switch(cfg, analysis, target)
    return NodePlan(name, host, raw, edit, app_lines(cfg, analysis, edit))


def _diff(nodes: tuple[NodePlan, ...], several: bool) -> str:
    """The change; with several nodes, each node's under its name."""
    if not several:
        return nodes[0].edit.diff
    return "\n".join(f"# HAProxy node {n.name} ({n.host})\n{n.edit.diff}" for n in nodes)


def _lines(nodes: tuple[NodePlan, ...], several: bool) -> bytes:
    """What the approval binds: the app's lines on every node that changes (one node: as ever)."""
    if not several:
        return nodes[0].lines
    return b"".join(f"node {n.name}\n".encode() + n.lines for n in nodes)


def _read_checkout(ctx: Context, app: AppConfig, color: str) -> Callable[[], CommandResult]:
    """What a status shows as deployed on `color` (the witness a plan binds its approval to)."""
    return lambda: ctx.runner.run(
        app.servers[color].ssh, deployed_command(app.on(color).app_dir), timeout=30
    )


def replan(ctx: Context, app_name: str, emergency: bool, approved: SwitchPlan) -> Prepared:
    """The plan again, under the locks: it must be the one that was approved (the target's
    deployed commit included)."""
    prepared = prepare(ctx, app_name, emergency=emergency, reconcile=approved.reconcile)
    if prepared.plan.plan_hash != approved.plan_hash:
        raise ApprovalError(
            stale_plan_reason(
                approved.to_live, approved.target_commit, prepared.plan.target_commit
            ),
            hint="ask for a new plan (switch_traffic without confirmToken) and approve that one",
        )
    return prepared


def check_target(prepared: Prepared, emergency: bool, force: bool) -> str:
    health = prepared.plan.target_health
    target = prepared.to_live.upper()
    if health and health.healthy:
        return f"{target} healthy ({health.status_code}, {health.latency_ms} ms)"
    error = health.error if health else "no health answer"
    verdict = "health is unknown" if health and health.unknown else "is not healthy"
    if emergency and force:
        return f"{target} {verdict} ({error}); forced emergency switch goes on"
    hint = ("deploy_to_standby repairs it" if not emergency
            else "an emergency switch to an unhealthy target needs force=true")  # fmt: skip
    if health and health.unknown:
        hint = "the probe could not be made (our SSH path to the HAProxy host): try again"
    raise UnsafeOperationError(f"refusing to switch: {target} {verdict}: {error}", hint=hint)


def plan_rollback(ctx: Context, prepared: Prepared) -> list[NodeChange]:
    """Per node: haproxy.cfg now and the cfg that routes the app back, read under the cfg lock.
    Every node is read before any changes: one that cannot be rolled back stops them all."""
    outcomes = parallel([_rollback_of(ctx, prepared, node) for node in prepared.nodes])
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return cast("list[NodeChange]", outcomes)


def _rollback_of(ctx: Context, prepared: Prepared, node: NodePlan) -> Callable[[], NodeChange]:
    return lambda: NodeChange(node.name, node.host, *_node_rollback(ctx, prepared, node))


def _node_rollback(ctx: Context, prepared: Prepared, node: NodePlan) -> tuple[bytes, bytes]:
    """The file this switch wrote goes back to the one it read, byte for byte. A file another app's
    switch changed since is edited the same minimal way instead (only this app's deciding line),
    so that switch is kept; a file that no longer routes this app to the new LIVE is left alone."""
    hp = ctx.config.haproxy
    now = ctx.runner.read_file(node.host, hp.config_path)
    if now == node.edit.text.encode():
        return now, node.cfg_raw
    if now is None:
        raise CfgChanged(f"haproxy.cfg is gone from {hp.config_path}: nothing rolled back")
    cfg = parse(now.decode(errors="replace"))
    analysis = app_routing(cfg, prepared.app)
    if not analysis.certain or analysis.live != prepared.to_live:
        raise CfgChanged(
            f"haproxy.cfg was changed since the switch and no longer routes {prepared.app_name} "
            f"to {prepared.to_live.upper()} for certain: left as it is, nothing rolled back",
            hint="run status and decide by hand",
        )
    return now, plan_switch(cfg, analysis, prepared.from_live).text.encode()
