"""deploy_to_standby: put a commit on every STANDBY server, build, restart and prove it healthy.

The target comes from every file HAProxy loads (`config_files`), read at call time under the app's
lock (a switch holds the same lock, so the roles cannot change under us through this tool); with
several HAProxy nodes every node must route the app for certain to the same LIVE, else the deploy
refuses before anything runs. The PRIMARY's files are read again before every step that changes a
server, in case someone edits the cfg by hand mid-deploy. Every command goes through a
GuardedRunner that refuses any change to LIVE. Health is probed from the PRIMARY, the path HAProxy
itself uses. A failure anywhere is reported as a result (which step, which server, why,
the output), restores the backup made in this run on every server it changed when asked, and
always says what each STANDBY server is left running.

A pool's servers are deployed in parallel, at most POOL_PARALLEL at a time: each server builds on
its own CPU, so running them together costs the deploy nothing, while the git origin every server
fetches from and our own SSH sessions (one per server) are shared; 8 keeps those modest and still
deploys the pools we know of (2 to 3 servers, up to 8) in the time of one.

The lock and the history line are fixed commands written to the HAProxy host through the plain
runner: in a small setup that host may also be an app host, and they must still work there.
The checks made before anything runs, the target and the dry-run plan are in deploy_plan.py; one
server's pipeline and restore in deploy_server.py; STANDBY's guarded command access in
standby_host.py; the next step and the history line in deploy_report.py; the step recorder
(shared with switch) in steps.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from threading import Event
from typing import TypeVar, cast

from bluegreen.domain.config import AppConfig
from bluegreen.domain.deploy_commands import HealthVerdict
from bluegreen.domain.validate import validate_app_name
from bluegreen.engine import deploy_report
from bluegreen.engine.context import Context
from bluegreen.engine.deploy_plan import (
    DeployOptions,
    Roles,
    check_request,
    deploy_ref,
    plan_deploy,
    refuse_nodes_unsure,
    refuse_shared_host,
    refuse_unreloaded_cfg,
    request_warnings,
    resolve_roles,
)
from bluegreen.engine.deploy_server import STEPS, ServerRun, Shared, Sleep, Step, probes
from bluegreen.engine.guard import GuardedRunner
from bluegreen.engine.lock import OperationLock
from bluegreen.engine.steps import StepRecorder
from bluegreen.models import DeployResult, ServerDeployment
from bluegreen.transport.parallel import parallel

POOL_PARALLEL = 8
T = TypeVar("T")


def deploy_to_standby(
    ctx: Context,
    app_name: str,
    options: DeployOptions | None = None,
    *,
    sleep: Sleep = time.sleep,
) -> DeployResult:
    """Raises for preconditions (bad request, unclear routing, lock held); a failure once the
    pipeline started is a DeployResult with ok=False."""
    options = options or DeployOptions()
    app = ctx.config.app(validate_app_name(app_name))
    check_request(app_name, app, options)
    if options.dry_run:
        return plan_deploy(ctx, app_name, app, options)
    started = time.monotonic()
    with OperationLock(
        ctx, app_name, "deploy", break_lock=options.break_lock, wait_s=options.lock_wait_s
    ) as lock:
        target = resolve_roles(ctx, app)
        refuse_shared_host(app, target)
        refuse_unreloaded_cfg(ctx, lock.broken)
        refuse_nodes_unsure(ctx, app)
        return _Deploy(ctx, app_name, app, options, target, sleep).execute(started)


# ---- the pipeline --------------------------------------------------------------------------------


class _Deploy:
    """One run of the pipeline on every server of the STANDBY colour, in phases: preflight on
    every server, backup to build on every server, migrations once (on the first), restart and
    health on every server. A phase starts only when the previous one worked on every server: a
    server that fails its preflight leaves every server unchanged, a build that fails on one
    leaves none restarted; then every server this run changed is restored."""

    def __init__(
        self,
        ctx: Context,
        app_name: str,
        app: AppConfig,
        options: DeployOptions,
        target: Roles,
        sleep: Sleep,
    ) -> None:
        app = app.on(target.standby)  # STANDBY's own app dir, branch, restart and log file
        live = [m.ssh for m in app.members(target.live)]
        self.shared = Shared(
            ctx=ctx, app_name=app_name, app=app, options=options, target=target,
            ref=deploy_ref(app, options), runner=GuardedRunner(ctx.runner, live),
            recorder=StepRecorder(ctx, total=len(STEPS)), sleep=sleep,
            warnings=request_warnings(app, options, target.standby), stop=Event(),
        )  # fmt: skip
        members = app.members(target.standby)
        self.runs = [ServerRun(self.shared, m, probes_live=i == 0) for i, m in enumerate(members)]

    def phases(self, run: ServerRun) -> list[list[Step]]:
        """The steps of `run`'s server, phase by phase (a skipped step says why)."""
        opts, app, lead = self.shared.options, self.shared.app, self.runs[0]
        once = None if run is lead else f"runs once for the pool, on {lead.member.server}"
        return [
            [("preflight", run.preflight, None)],
            [
                ("backup", run.backup, None if opts.backup else "backup is off"),
                ("fetch", run.fetch, None if opts.pull else "pull is off"),
                ("build", run.build, None if app.build else "no build configured"),
            ],
            [("migrate", run.migrate, once if opts.migrate else "migrations not requested")],
            [("restart", run.restart, None), ("health", run.health, None)],
        ]

    def run_phase(self, phase: int, run: ServerRun) -> bool:
        return run.run_steps(self.phases(run)[phase])

    def execute(self, started: float) -> DeployResult:
        s = self.shared
        for phase in range(len(self.phases(self.runs[0]))):
            if not all(_each(self.runs, partial(self.run_phase, phase))):
                break
        failed = [r for r in self.runs if r.failure]
        if failed:
            _each(self.runs, ServerRun.recover)
        live_after = self.live_healthy_after()
        result = self.result(failed, live_after, started)
        deploy_report.record(s.ctx, result)
        return result

    def live_healthy_after(self) -> bool | None:
        s = self.shared
        verdicts = probes(s, s.app.members(s.target.live))
        healthy: list[bool | None] = []
        for member, verdict in zip(s.app.members(s.target.live), verdicts, strict=True):
            if not isinstance(verdict, HealthVerdict):
                s.warnings.append(f"LIVE {member.label} could not be probed after: {verdict}")
                healthy.append(None)
            else:
                if not verdict.healthy:
                    s.warnings.append(f"LIVE {member.label} is not healthy now: {verdict.sentence}")
                healthy.append(verdict.healthy)
        return False if False in healthy else (None if None in healthy else True)

    # -- reporting --------------------------------------------------------------------------

    def result(
        self, failed: list[ServerRun], live_after: bool | None, started: float
    ) -> DeployResult:
        s, runs = self.shared, self.runs
        first = failed[0] if failed else None
        error = first.failure.error if first and first.failure else None
        changed = [r for r in runs if r.restored is not None]
        pool = runs[0].member.in_pool
        result = DeployResult(
            app=s.app_name,
            ok=first is None,
            color=s.target.standby,
            host=", ".join(r.member.ssh for r in runs),
            address=", ".join(r.member.address for r in runs),
            ref=s.ref,
            commit_before=_common(r.commit_before for r in runs),
            commit_after=_common(r.commit_after for r in runs),
            backup_path=_common(r.backup_path for r in runs),
            steps=s.recorder.steps,
            warnings=s.warnings,
            failed_step=first.failure.step if first and first.failure else None,
            failed_server=first.member.server if first and pool else None,
            error=str(error) if error else None,
            error_type=type(error).__name__ if error else None,
            exit_status=getattr(error, "exit_status", None),
            output_tail=getattr(error, "output_tail", None),
            restored=all(r.restored for r in changed) if changed else None,
            standby_state="; ".join(r.state for r in runs if r.state) or None,
            live_color=s.target.live,
            live_healthy_after=live_after,
            duration_s=round(time.monotonic() - started, 3),
            servers=[_server_report(r) for r in runs] if pool else [],
        )
        result.next_step = deploy_report.next_step(result)
        return result


def _each(runs: list[ServerRun], action: Callable[[ServerRun], T]) -> list[T]:
    """`action` on every server at once, at most POOL_PARALLEL at a time; a bug raises here."""
    outcomes = parallel([partial(action, r) for r in runs], max_workers=POOL_PARALLEL)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return cast("list[T]", outcomes)


def _common(values: Iterable[str | None]) -> str | None:
    """The value every server has (a pool's servers may differ: then None, see `servers`)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _server_report(run: ServerRun) -> ServerDeployment:
    failure = run.failure
    return ServerDeployment(
        server=run.member.server or run.member.color,
        host=run.member.ssh,
        address=run.member.address,
        ok=failure is None and not run.s.stop.is_set(),
        commit_before=run.commit_before,
        commit_after=run.commit_after,
        backup_path=run.backup_path,
        failed_step=failure.step if failure else None,
        error=str(failure.error) if failure else None,
        restored=run.restored,
        state=run.state,
    )
