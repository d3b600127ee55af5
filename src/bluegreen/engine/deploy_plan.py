"""What a deploy will do, decided before anything changes: the request's checks, the roles
(LIVE and STANDBY from haproxy.cfg as it is now), the refusals made before anything runs, the
warnings, and the dry-run plan of every command. Reads only; deploy.py runs the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.lock import Holder
from bluegreen.domain.validate import validate_ref
from bluegreen.engine.context import Context
from bluegreen.engine.guard import GuardedRunner, machine
from bluegreen.engine.nodes import refuse_disagreeing_nodes
from bluegreen.engine.status import files_routing
from bluegreen.engine.status_reads import cfg_not_reloaded, read_cfg
from bluegreen.errors import (
    BlueGreenError,
    ConfigError,
    HAProxyConfigError,
    UnsafeOperationError,
    ValidationError,
)
from bluegreen.models import DeployResult, PlannedCommand
from bluegreen.transport.base import Runner

READ_TIMEOUT_S = 30.0
MIGRATE_WARNING = "migrations run against the database LIVE uses"


@dataclass(frozen=True)
class DeployOptions:
    pull: bool = True
    backup: bool = True
    migrate: bool = False
    ref: str | None = None
    dry_run: bool = False
    break_lock: bool = False
    restore_on_failure: bool = True
    lock_wait_s: float = 0.0


@dataclass(frozen=True)
class Roles:
    """Which colour is LIVE and which STANDBY, as haproxy.cfg says now."""

    live: str
    standby: str


def resolve_roles(ctx: Context, app: AppConfig, runner: Runner | None = None) -> Roles:
    """LIVE and STANDBY from haproxy.cfg as it is on the HAProxy host now; refuse when unsure."""
    analysis = files_routing(read_cfg(ctx, runner), app)
    if not analysis.certain or analysis.live is None or analysis.standby is None:
        problems = " ".join(analysis.problems) or "LIVE and STANDBY cannot be told apart."
        raise HAProxyConfigError(
            f"refusing to deploy: haproxy.cfg does not say for certain which server is STANDBY. "
            f"{problems}",
            hint="fix the routing in haproxy.cfg (see status), then deploy again",
        )
    return Roles(live=analysis.live, standby=analysis.standby)


def check_request(app_name: str, app: AppConfig, options: DeployOptions) -> None:
    """Refuse a bad request before anything runs."""
    if options.ref is not None:
        validate_ref(options.ref)
        if not options.pull:
            raise ValidationError(
                "a ref is only deployed together with pull",
                hint="pass pull=true to check out the ref, or no ref to rebuild what is there",
            )
    if options.migrate and app.migrate is None:
        raise ConfigError(
            f"migrations were requested but apps.{app_name}.migrate is not configured",
            hint=f'add migrate = "..." under [apps.{app_name}], or deploy without migrate',
        )


def deploy_ref(on_standby: AppConfig, options: DeployOptions) -> str | None:
    """The ref that will be deployed (None: no pull); the branch is STANDBY's own when it sets one."""
    return (options.ref or on_standby.branch) if options.pull else None


def request_warnings(app: AppConfig, options: DeployOptions, standby: str) -> list[str]:
    label = standby.upper()
    warnings = []
    if options.migrate:
        warnings.append(f"{MIGRATE_WARNING}: they must stay compatible with the code LIVE runs")
    if not options.backup:
        warnings.append(f"no backup: if the deploy fails, {label} cannot be restored")
    if not options.pull:
        warnings.append(f"pull is off: {label} rebuilds and restarts what is checked out there")
    return warnings


# ---- dry run -------------------------------------------------------------------------------------


def plan_deploy(
    ctx: Context, app_name: str, app: AppConfig, options: DeployOptions
) -> DeployResult:
    """Resolve the roles (reads only) and list every command the deploy would run. Nothing that
    changes a host can run: every host is guarded. No lock, no history."""
    hp = ctx.config.haproxy
    roles = resolve_roles(ctx, app)
    app = app.on(roles.standby)
    ref = deploy_ref(app, options)
    live, std = app.members(roles.live), app.members(roles.standby)
    hosts = (hp.ssh, *(m.ssh for m in (*live, *std)))
    runner = GuardedRunner(ctx.runner, hosts, why="a dry run")
    warnings = request_warnings(app, options, roles.standby)
    shared = shared_hosts(app, roles)
    if shared:
        warnings.append(f"{shared}: a real deploy refuses to run")
    sudo = app.server(roles.standby).sudo
    try:
        refuse_nodes_unsure(ctx, app)
    except UnsafeOperationError as exc:
        warnings.append(f"a real deploy refuses now: {exc.message}")

    def head(member: Member) -> str | None:
        try:
            read = runner.run(
                member.ssh, dc.head_command(app.app_dir, sudo), timeout=READ_TIMEOUT_S
            )
        except BlueGreenError as exc:
            warnings.append(f"{member.label} could not be read: {exc}")
            return None
        commit = dc.parse_commit(read.stdout) if read.ok else None
        if commit is None:
            warnings.append(f"{app.app_dir} on {member.label}: {read.tail(2)}")
        return commit

    commits = [head(m) for m in std]
    archives = [dc.backup_path(app.app_dir, app_name, ctx.now(), c or "HEAD") for c in commits]
    choices = dc.PlanChoices(
        backup=options.backup,
        migrate=options.migrate,
        restore_on_failure=options.restore_on_failure,
        ref=ref,
    )
    steps = dc.plan_steps(app_name, app, hp.ssh, roles.live, roles.standby, archives, choices)
    return DeployResult(
        app=app_name,
        ok=True,
        dry_run=True,
        color=roles.standby,
        host=", ".join(m.ssh for m in std),
        address=", ".join(m.address for m in std),
        ref=ref,
        commit_before=commits[0] if len(set(commits)) == 1 else None,
        backup_path=archives[0] if options.backup and len(set(archives)) == 1 else None,
        plan=[PlannedCommand.model_validate(step, from_attributes=True) for step in steps],
        warnings=warnings,
        live_color=roles.live,
        next_step="Nothing was run. Deploy without dryRun to run this plan.",
    )


def refuse_unreloaded_cfg(ctx: Context, broken: Holder | None) -> None:
    """The target comes from haproxy.cfg on disk. When the file changed after the running HAProxy
    worker started (edited by hand and not reloaded, or a switch killed between the replace and
    the reload), HAProxy may still route users to the file's "STANDBY": never deploy there."""
    findings = cfg_not_reloaded(ctx)
    if not findings:
        return
    if broken is not None and broken.operation == "switch":
        raise UnsafeOperationError(
            f"refusing to deploy: the interrupted {broken.describe()} left haproxy.cfg changed "
            f"and not reloaded, so STANDBY may be serving users: {findings[0]}",
            hint="run status, then switch_traffic (it reloads and verifies) or check and "
            "reload HAProxy by hand",
        )
    raise UnsafeOperationError(
        "refusing to deploy: haproxy.cfg was changed and not reloaded, so the server the file "
        f"calls STANDBY may be serving users: {' '.join(findings)}",
        hint="check the edit (`haproxy -c`) and reload HAProxy, or put the previous cfg back; "
        "then run status and deploy again",
    )


def shared_hosts(app: AppConfig, roles: Roles) -> str | None:
    """Why a deploy must not run when two servers share one machine (None: they do not): a
    STANDBY server on a LIVE server's host would change LIVE; two STANDBY servers on one host
    would run their checkouts in the same app_dir at once."""
    live, standby = app.members(roles.live), app.members(roles.standby)
    for i, std in enumerate(standby):
        for other in (*live, *standby[i + 1 :]):
            if machine(other.ssh) == machine(std.ssh):
                is_live = other.color == roles.live
                return (
                    f"{std.label} and {'LIVE' if is_live else 'STANDBY'} {other.label} are the "
                    f"same ssh host ({std.ssh}) with one app_dir: "
                    + ("deploying to STANDBY would change LIVE" if is_live else "their deploys "
                       "would collide")
                )  # fmt: skip
    return None


def refuse_nodes_unsure(ctx: Context, app: AppConfig) -> None:
    """Several HAProxy nodes: STANDBY must be STANDBY on every one of them (users reach whichever
    holds the virtual IP), so a node that disagrees, cannot be read or was not reloaded refuses."""
    refuse_disagreeing_nodes(ctx, app, "deploy", lambda files: files_routing(files, app))


def refuse_shared_host(app: AppConfig, roles: Roles) -> None:
    shared = shared_hosts(app, roles)
    if shared:
        raise UnsafeOperationError(shared, hint="give each server its own host")
