"""What a switch will do, decided before anything changes: every file HAProxy loads and the state
file as they are now, the routing, the minimal edit (of the one file that holds the deciding
line), the target's health and the plan (with its hash, which approval binds). Reads only;
switch.py executes the plan.

With several HAProxy nodes the plan covers every node: each node's files are read and must route
the app for certain to the same LIVE; each gets its own minimal edit, and the hash binds every
node's lines. A reconcile plan changes only the nodes that route elsewhere than the primary.

Also the re-plans made under the locks: the one the executed switch must match, and the one an
auto-rollback makes from the cfg as it is by then (another app may have switched meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.approval import plan_hash, same_commit, short, stale_plan_reason
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.deployed_commit import Deployed, deployed_command
from bluegreen.domain.haproxy_files import HAProxyFiles
from bluegreen.domain.routing import RoutingAnalysis, SwitchEdit, app_lines, plan_switch
from bluegreen.domain.switch_commands import check_path
from bluegreen.engine.context import Context
from bluegreen.engine.nodes import RECONCILE_HINT, file_apart
from bluegreen.engine.pool_target import check_pool, pool_summary
from bluegreen.engine.probing import as_health, http_probe
from bluegreen.engine.status import deployed_of, files_routing
from bluegreen.engine.status_reads import read_cfg
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
class CfgSwap:
    """One file's replacement: `path` (one of `files`, every file HAProxy loads) goes from its
    bytes in `files` to `new`; the others stay as they are."""

    files: HAProxyFiles
    path: str
    new: bytes

    @property
    def old(self) -> bytes:
        return self.files.data(self.path)

    @property
    def after(self) -> HAProxyFiles:
        return self.files.replaced(self.path, self.new)

    @property
    def check_paths(self) -> tuple[str, ...]:
        """Every file HAProxy loads, in order, the candidate (staged next to `path`) in its
        place: what `haproxy -c` checks."""
        candidate = check_path(self.path)
        return tuple(candidate if p == self.path else p for p in self.files.paths)


def edit_swap(files: HAProxyFiles, edit: SwitchEdit) -> CfgSwap:
    return CfgSwap(files, edit.path, edit.text.encode())


@dataclass(frozen=True)
class NodeChange:
    """One HAProxy node's part of a cfg change (the switch's, or its rollback's)."""

    name: str
    host: str
    swap: CfgSwap


@dataclass(frozen=True)
class NodePlan:
    """One HAProxy node's part of a switch: its files as read, its minimal edit, and what an
    approval binds there (routing.app_lines)."""

    name: str
    host: str
    swap: CfgSwap
    edit: SwitchEdit
    lines: bytes


@dataclass
class Prepared:
    """A switch plan with everything needed to execute it exactly."""

    app_name: str
    app: AppConfig
    state_raw: bytes | None
    analysis: RoutingAnalysis  # the primary's
    plan: SwitchPlan
    nodes: tuple[NodePlan, ...]  # every HAProxy node that changes, the primary first

    @property
    def swap(self) -> CfgSwap:
        return self.nodes[0].swap

    @property
    def changes(self) -> list[NodeChange]:
        return [NodeChange(n.name, n.host, n.swap) for n in self.nodes]

    @property
    def from_live(self) -> str:
        return self.plan.from_live

    @property
    def to_live(self) -> str:
        return self.plan.to_live


def _probe_health(ctx: Context, app: AppConfig, member: Member, timeout_s: float) -> Health:
    url = dc.server_health_url(app, member)
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
    members = [m for color in app.servers for m in app.members(color)]
    others = list(hp.node_targets.items())[1:]
    outcomes = parallel(
        [lambda: read_cfg(ctx),
         lambda: ctx.runner.read_file(hp.ssh, app.state_file),
         *(_read_checkout(ctx, app, member) for member in members),
         *(_read_node(ctx, host) for _, host in others)]
    )  # fmt: skip
    files = cast("HAProxyFiles | Exception", outcomes[0])
    state_raw = cast("bytes | Exception | None", outcomes[1])
    n = 2 + len(members)
    deployed = {member: deployed_of(cast("CommandResult | Exception", checkout))
                for member, checkout in zip(members, outcomes[2:n], strict=True)}  # fmt: skip
    if isinstance(files, Exception):
        raise files
    state_bytes = None if isinstance(state_raw, Exception) else state_raw
    loaded = files.loaded()
    analysis = files_routing(files, app, loaded)
    if not analysis.certain or analysis.live is None or analysis.standby is None:
        raise HAProxyConfigError(
            "refusing to switch: haproxy.cfg's routing for this app is not certain: "
            + "; ".join(analysis.problems),
            hint="fix haproxy.cfg by hand, check it with `bluegreen inspect-cfg`, then retry",
        )
    name = next(iter(hp.node_targets))
    primary = _Primary(name, analysis.live, analysis.deciding_file)
    if reconcile:
        # The primary's answer is the one: only the nodes that route elsewhere change.
        source, target = analysis.standby, analysis.live
        mine = None
    else:
        source, target = analysis.live, analysis.standby
        edit = plan_switch(loaded, analysis, target)
        lines = app_lines(loaded.cfg, analysis, edit)
        mine = NodePlan(name, hp.ssh, edit_swap(files, edit), edit, lines)
    others_plans = [
        _node_plan(app, node, host, cast("HAProxyFiles | Exception", read), primary, target,
                   reconcile)
        for (node, host), read in zip(others, outcomes[n:], strict=True)
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
    warnings: list[str] = []
    outcome = "emergency switch" if emergency else "the switch will be refused"
    if app.is_pool(target):
        pool = check_pool(ctx, app, target, deployed)
        health, target_commit, witnesses = pool.health, pool.commit, pool.witnesses
        if not pool.healthy:
            said = pool_summary(pool.servers, pool.needed, pool.commit, target.upper())
            warnings.append(f"target {said} ({pool.health.error}): {outcome}")
    else:
        pool = None
        (member,) = app.members(target)
        health = _probe_health(ctx, app, member, app.health.timeout_s)
        if not health.healthy:
            verdict = "health is unknown" if health.unknown else "is not healthy"
            warnings.append(f"target {target.upper()} {verdict} ({health.error}): {outcome}")
        target_commit, checkout_error = deployed[member].commit, deployed[member].error
        witnesses = (target_commit, health.commit)
        if target_commit is None:
            warnings.append(f"the commit on {target.upper()} could not be read "
                            f"({checkout_error or 'no git checkout'}): the approval cannot name it")  # fmt: skip
        elif health.commit and not same_commit(target_commit, health.commit):
            warnings.append(f"{target.upper()} has {short(target_commit)} checked out but its "
                            f"health endpoint reports {short(health.commit)} (not restarted?)")  # fmt: skip
    if health.color and health.color != target:
        warnings.append(f"{target.upper()}'s health endpoint reports colour {health.color!r}")
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
        cfg_file=nodes[0].edit.path,
        target_healthy=health.healthy,
        target_health=health,
        target_commit=target_commit,
        live_commit=_colour_commit(app, source, deployed),
        target_servers=pool.servers if pool else [],
        target_needed=pool.needed if pool else None,
        warnings=warnings,
        plan_hash=plan_hash(
            app_name,
            source,
            target,
            emergency,
            (b"reconcile\n" if reconcile else b"") + _lines(nodes, several),
            state_bytes,
            witnesses,
        ),
        approval=mode,
    )
    return Prepared(app_name, app, state_bytes, analysis, plan, nodes)


def _read_node(ctx: Context, host: str) -> Callable[[], HAProxyFiles]:
    return lambda: read_cfg(ctx, host=host)


@dataclass(frozen=True)
class _Primary:
    """What every other node is held to: the primary's name, its LIVE and the file holding the
    app's deciding line there."""

    name: str
    live: str
    path: str | None


def _node_plan(
    app: AppConfig, name: str, host: str, files: HAProxyFiles | Exception, primary: _Primary,
    target: str, reconcile: bool,
) -> NodePlan | None:  # fmt: skip
    """Another node's edit to `target` (None: reconciling, and it routes there already). Refuses
    (nothing changes on any node) when the node cannot be read or is not certain, unless
    reconciling when it does not route the app where the primary does, and when it holds the
    app's deciding line in another file than the primary (the switch locks, backs up and names
    one file for every node). Lines that differ otherwise get each node's own edit."""
    where = f"HAProxy node {name} ({host})"
    if isinstance(files, TransportError):
        raise TransportError(
            f"refusing to switch: {where} cannot be read ({files}): no node is changed",
            host=host,
            hint="a switch changes every node or none: bring the node back, then retry",
        )
    if isinstance(files, Exception):
        raise HAProxyConfigError(f"refusing to switch: {where}: {files}: no node is changed")
    loaded = files.loaded()
    analysis = files_routing(files, app, loaded)
    if not analysis.certain or analysis.live is None:
        raise HAProxyConfigError(
            f"refusing to switch: the routing of {where} is not certain: "
            + "; ".join(analysis.problems),
            hint="fix that node's haproxy.cfg by hand, then retry",
        )
    if reconcile and analysis.live == target:
        return None
    if not reconcile and analysis.live != primary.live:
        raise UnsafeOperationError(
            f"refusing to switch: the HAProxy nodes disagree ({primary.name} routes to "
            f"{primary.live.upper()}, {name} routes to {analysis.live.upper()})",
            hint=RECONCILE_HINT,
        )
    edit = plan_switch(loaded, analysis, target)
    if primary.path is not None and edit.path != primary.path:
        apart = file_apart(name, host, edit.path, primary.name, primary.path)
        raise HAProxyConfigError(f"refusing to switch: {apart}: no node is changed",
                                 hint="keep the app's routing lines in the same file on every node")  # fmt: skip
    return NodePlan(name, host, edit_swap(files, edit), edit, app_lines(loaded.cfg, analysis, edit))


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


def _read_checkout(ctx: Context, app: AppConfig, member: Member) -> Callable[[], CommandResult]:
    """What a status shows as deployed on `member` (the witness a plan binds its approval to)."""
    return lambda: ctx.runner.run(
        member.ssh, deployed_command(app.on(member.color).app_dir), timeout=30
    )


def _colour_commit(app: AppConfig, color: str, deployed: Mapping[Member, Deployed]) -> str | None:
    """The commit every server of `color` has checked out (None when they differ)."""
    commits = {deployed[m].commit for m in app.members(color)}
    return commits.pop() if len(commits) == 1 else None


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
    if prepared.plan.target_servers:
        return _check_pool_target(prepared.plan, emergency, force)
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


def _check_pool_target(plan: SwitchPlan, emergency: bool, force: bool) -> str:
    """Enough servers of the target pool ready (healthy on the commit that goes LIVE), or refused
    naming each server that is not."""
    servers, needed = plan.target_servers, plan.target_needed or len(plan.target_servers)
    target = plan.to_live.upper()
    said = pool_summary(servers, needed, plan.target_commit, target)
    if plan.target_healthy:
        return said
    not_ready = "; ".join(f"{s.server} {s.problem}" for s in servers if s.problem)
    if emergency and force:
        return f"{said}: {not_ready}; forced emergency switch goes on"
    hint = (f"deploy_to_standby puts the commit on every {target} server and restarts it"
            if not emergency else "an emergency switch to an unhealthy target needs force=true")  # fmt: skip
    raise UnsafeOperationError(
        f"refusing to switch: {said}, {needed} needed: {not_ready}", hint=hint
    )


def plan_rollback(ctx: Context, prepared: Prepared) -> list[NodeChange]:
    """Per node, the swap that routes the app back, read under the cfg lock. Every node is read
    before any changes: one that cannot be rolled back stops them all."""
    outcomes = parallel([_rollback_of(ctx, prepared, node) for node in prepared.nodes])
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return cast("list[NodeChange]", outcomes)


def _rollback_of(ctx: Context, prepared: Prepared, node: NodePlan) -> Callable[[], NodeChange]:
    return lambda: NodeChange(node.name, node.host, _node_rollback(ctx, prepared, node))


def _node_rollback(ctx: Context, prepared: Prepared, node: NodePlan) -> CfgSwap:
    """The swap that routes the app back on `node`, from every file HAProxy loads there as read
    under the cfg lock of the file the switch replaced.

    The file this switch wrote goes back to the one it read, byte for byte. A file another app's
    switch changed since is edited the same minimal way instead (only this app's deciding line),
    so that switch is kept; a file that no longer routes this app to the new LIVE is left alone."""
    path = node.swap.path
    try:
        files = read_cfg(ctx, host=node.host)
    except HAProxyConfigError as exc:
        raise CfgChanged(
            f"{exc}: nothing rolled back", hint="run status and decide by hand"
        ) from exc
    if path not in files.paths:
        raise CfgChanged(f"{path} is no longer loaded by HAProxy: nothing rolled back")
    if files.data(path) == node.swap.new:
        return CfgSwap(files, path, node.swap.old)
    loaded = files.loaded()
    analysis = files_routing(files, prepared.app, loaded)
    if not analysis.certain or analysis.live != prepared.to_live:
        raise CfgChanged(
            f"haproxy.cfg was changed since the switch and no longer routes {prepared.app_name} "
            f"to {prepared.to_live.upper()} for certain: left as it is, nothing rolled back",
            hint="run status and decide by hand",
        )
    back = plan_switch(loaded, analysis, prepared.from_live)
    if back.path != path:
        raise CfgChanged(
            f"{prepared.app_name}'s deciding line moved from {path} to {back.path} since the "
            "switch: left as it is, nothing rolled back",
            hint="run status and decide by hand",
        )
    return edit_swap(files, back)
