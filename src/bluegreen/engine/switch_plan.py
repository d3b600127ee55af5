"""What a switch will do, decided before anything changes: every file HAProxy loads and the state
file as they are now, the routing, the minimal edit (of the one file that holds the deciding
line), the target's health and the plan (with its hash, which approval binds). Reads only;
switch.py executes the plan.

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
from bluegreen.engine.pool_target import check_pool, pool_summary
from bluegreen.engine.probing import as_health, http_probe
from bluegreen.engine.status import deployed_of, files_routing
from bluegreen.engine.status_reads import read_cfg
from bluegreen.errors import ApprovalError, CfgChanged, HAProxyConfigError, UnsafeOperationError
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


@dataclass
class Prepared:
    """A switch plan with everything needed to execute it exactly."""

    app_name: str
    app: AppConfig
    swap: CfgSwap
    state_raw: bytes | None
    analysis: RoutingAnalysis
    edit: SwitchEdit
    plan: SwitchPlan

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
    ctx: Context, app_name: str, *, emergency: bool = False, mode: str = "token"
) -> Prepared:
    """Read cfg, state and target health (in parallel) and build the plan. Changes nothing."""
    app = ctx.config.app(app_name)
    hp = ctx.config.haproxy
    members = [m for color in app.servers for m in app.members(color)]
    outcomes = parallel(
        [lambda: read_cfg(ctx),
         lambda: ctx.runner.read_file(hp.ssh, app.state_file),
         *(_read_checkout(ctx, app, member) for member in members)]
    )  # fmt: skip
    files = cast("HAProxyFiles | Exception", outcomes[0])
    state_raw = cast("bytes | Exception | None", outcomes[1])
    deployed = {member: deployed_of(cast("CommandResult | Exception", checkout))
                for member, checkout in zip(members, outcomes[2:], strict=True)}  # fmt: skip
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
    target = analysis.standby
    edit = plan_switch(loaded, analysis, target)
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
    plan = SwitchPlan(
        app=app_name,
        from_live=analysis.live,
        to_live=target,
        emergency=emergency,
        diff=edit.diff,
        cfg_file=edit.path,
        target_healthy=health.healthy,
        target_health=health,
        target_commit=target_commit,
        live_commit=_colour_commit(app, analysis.live, deployed),
        target_servers=pool.servers if pool else [],
        target_needed=pool.needed if pool else None,
        warnings=warnings,
        plan_hash=plan_hash(
            app_name,
            analysis.live,
            target,
            emergency,
            app_lines(loaded.cfg, analysis, edit),
            state_bytes,
            witnesses,
        ),
        approval=mode,
    )
    return Prepared(app_name, app, edit_swap(files, edit), state_bytes, analysis, edit, plan)


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
    prepared = prepare(ctx, app_name, emergency=emergency)
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


def plan_rollback(ctx: Context, prepared: Prepared) -> CfgSwap:
    """The swap that routes the app back, from every file HAProxy loads as read under the cfg
    lock of the file the switch replaced.

    The file this switch wrote goes back to the one it read, byte for byte. A file another app's
    switch changed since is edited the same minimal way instead (only this app's deciding line),
    so that switch is kept; a file that no longer routes this app to the new LIVE is left alone."""
    path = prepared.swap.path
    try:
        files = read_cfg(ctx)
    except HAProxyConfigError as exc:
        raise CfgChanged(
            f"{exc}: nothing rolled back", hint="run status and decide by hand"
        ) from exc
    if path not in files.paths:
        raise CfgChanged(f"{path} is no longer loaded by HAProxy: nothing rolled back")
    if files.data(path) == prepared.swap.new:
        return CfgSwap(files, path, prepared.swap.old)
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
