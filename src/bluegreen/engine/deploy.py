"""deploy_to_standby: put a commit on the STANDBY server, build, restart and prove it healthy.

The target comes from haproxy.cfg read at call time, under the app's lock (a switch holds the same
lock, so the roles cannot change under us through this tool); it is read again before every step
that changes the app, in case someone edits the cfg by hand mid-deploy. Every command goes through
a GuardedRunner that refuses any change to LIVE. Health is probed from the HAProxy host, the path
HAProxy itself uses. A failure anywhere is reported as a result (which step, why, the output),
restores the backup made in this run when asked, and always says what STANDBY is left running.

The lock and the history line are fixed commands written to the HAProxy host through the plain
runner: in a small setup that host may also be an app host, and they must still work there.
The checks made before anything runs, the target and the dry-run plan are in deploy_plan.py;
STANDBY's guarded command access in standby_host.py; the next step and the history line in
deploy_report.py; the step recorder (shared with switch) in steps.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.config import AppConfig, ServerConfig
from bluegreen.domain.deploy_commands import HealthVerdict
from bluegreen.domain.validate import validate_app_name
from bluegreen.engine import deploy_report
from bluegreen.engine.context import Context
from bluegreen.engine.deploy_plan import (
    READ_TIMEOUT_S,
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
from bluegreen.engine.guard import GuardedRunner
from bluegreen.engine.lock import OperationLock
from bluegreen.engine.probing import http_probe
from bluegreen.engine.standby_host import StandbyHost
from bluegreen.engine.steps import StepRecorder
from bluegreen.errors import (
    BlueGreenError,
    CommandFailed,
    HealthCheckFailed,
    PreflightFailed,
    UnsafeOperationError,
)
from bluegreen.models import DeployResult
from bluegreen.transport.base import CommandResult
from bluegreen.transport.parallel import parallel

STEPS = ("preflight", "backup", "fetch", "build", "migrate", "restart", "health")
RESTORE_HEALTH_ATTEMPTS = 5

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Failure:
    """The pipeline step that failed, and why."""

    step: str
    error: BlueGreenError


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
    """One run of the pipeline; keeps what happened so far, to report and to recover."""

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
        self.ctx, self.app_name, self.app, self.opts = ctx, app_name, app, options
        self.ref, self.target, self.sleep = deploy_ref(app, options), target, sleep
        self.hp = ctx.config.haproxy.ssh
        self.std: ServerConfig = app.server(target.standby)
        self.label, self.live_label = target.standby.upper(), target.live.upper()
        self.runner = GuardedRunner(ctx.runner, app.server(target.live).ssh)
        self.host = StandbyHost(
            self.runner, app, self.std, self.label, ctx.config.ssh.command_timeout_s
        )
        self.recorder = StepRecorder(ctx, total=len(STEPS))
        self.warnings = request_warnings(app, options, target.standby)
        self.commit_before: str | None = None
        self.deployed: str | None = None  # the commit this run puts on STANDBY
        self.backup_path: str | None = None
        self.changed = False  # the app dir (or the running app) was changed by this run
        self.restarted = False
        self.target_lost = False  # haproxy.cfg no longer says our target is STANDBY

    # -- driving ----------------------------------------------------------------------------

    def execute(self, started: float) -> DeployResult:
        pipeline: list[tuple[str, Callable[[], str], str | None]] = [
            ("preflight", self.preflight, None),
            ("backup", self.backup, None if self.opts.backup else "backup is off"),
            ("fetch", self.fetch, None if self.opts.pull else "pull is off"),
            ("build", self.build, None if self.app.build else "no build configured"),
            ("migrate", self.migrate, None if self.opts.migrate else "migrations not requested"),
            ("restart", self.restart, None),
            ("health", self.health, None),
        ]
        failure: Failure | None = None
        for index, (name, action, skipped) in enumerate(pipeline, start=1):
            if skipped:
                self.recorder.skip(name, skipped, index)
                continue
            try:
                self.recorder.run(name, action, self.std.ssh, index)
            except BlueGreenError as exc:
                failure = Failure(name, exc)
                break
        restored, standby_state = self.recover() if failure else (None, None)
        live_after = self.live_healthy_after()
        result = self.result(failure, restored, standby_state, live_after, started)
        deploy_report.record(self.ctx, result)
        return result

    # -- host access ------------------------------------------------------------------------

    def ensure_standby(self) -> None:
        """Re-read haproxy.cfg before changing the app: a hand edit may have made it LIVE."""
        try:
            now = resolve_roles(self.ctx, self.app, self.runner)
        except BlueGreenError as exc:
            self.target_lost = True
            raise UnsafeOperationError(
                f"stopped before changing {self.label}: haproxy.cfg no longer says for certain "
                f"that it is STANDBY ({exc.message})"
            ) from exc
        if now != self.target:
            self.target_lost = True
            raise UnsafeOperationError(
                f"stopped: haproxy.cfg changed during the deploy and now routes users to "
                f"{self.label}; nothing more is done to it"
            )

    def probe(self, color: str) -> HealthVerdict:
        health = self.app.health
        parsed = http_probe(
            self.runner, self.hp, dc.server_health_url(self.app, color), health.timeout_s,
            health.expect_status,
        )  # fmt: skip
        expected = self.deployed if color == self.target.standby else None
        return dc.judge_health(parsed, color.upper(), health.expect_status, expected)

    def wait_healthy(self, step: str, attempts: int) -> tuple[HealthVerdict, int]:
        """Probe STANDBY until healthy or out of attempts, backing off between tries."""
        delays = dc.backoff_delays(attempts, self.app.health.interval_s)
        verdict = self.probe(self.target.standby)
        tries = 1
        while not verdict.healthy and tries < attempts:
            pause = delays[tries - 1]
            message = f"attempt {tries}/{attempts}: {verdict.sentence}; retrying in {pause:g}s"
            self.recorder.info(step, message)
            self.sleep(pause)
            verdict = self.probe(self.target.standby)
            tries += 1
        return verdict, tries

    # -- steps ------------------------------------------------------------------------------

    def preflight(self) -> str:
        d, sudo, ssh = self.app.app_dir, self.std.sudo, self.std.ssh
        *reads, live = parallel(
            [
                lambda: self.runner.run(ssh, dc.head_command(d, sudo), timeout=READ_TIMEOUT_S),
                lambda: self.runner.run(ssh, dc.dirty_command(d, sudo), timeout=READ_TIMEOUT_S),
                lambda: self.runner.run(ssh, dc.disk_command(d, sudo), timeout=READ_TIMEOUT_S),
                lambda: self.probe(self.target.live),
            ]
        )
        # LIVE's health before is a witness for the report, never a reason to stop.
        live_word = "healthy"
        if not isinstance(live, HealthVerdict):
            live_word = "not probed"
            self.warnings.append(f"LIVE {self.live_label} could not be probed before: {live}")
        elif not live.healthy:
            live_word = "NOT healthy"
            self.warnings.append(f"LIVE {self.live_label} was not healthy before: {live.sentence}")
        head, dirty, disk = (_command_result(outcome) for outcome in reads)
        if not head.ok:
            raise CommandFailed(
                f"{d} on {self.label} is not a git checkout: {head.tail(1)}",
                host=ssh,
                exit_status=head.exit_status,
                output_tail=head.tail(dc.TAIL_LINES),
                hint=f"clone the app's repository into {d} on {self.label} first",
            )
        self.commit_before = dc.parse_commit(head.stdout)
        if self.commit_before is None:
            raise PreflightFailed(
                f"unexpected `git rev-parse` output: {head.tail(2)}",
                host=ssh,
            )
        self.host.check(disk, f"`df` of {d}")
        free = dc.parse_available_mb(disk.stdout)
        if free is None:
            raise PreflightFailed(
                f"cannot read free space from `df`: {disk.tail(3)}",
                host=ssh,
            )
        if free < self.app.min_free_disk_mb:
            raise PreflightFailed(
                f"only {free} MB free for {d} on {self.label}; min_free_disk_mb is "
                f"{self.app.min_free_disk_mb}",
                host=ssh,
                hint=f"free disk space (old backups are in {dc.backup_dir(d)})",
            )
        changes = [line for line in dirty.stdout.splitlines() if line.strip()]
        if changes and dirty.ok and self.opts.pull:
            kept = " (they are in the backup)" if self.opts.backup else ""
            self.warnings.append(
                f"{self.label} had {len(changes)} local change(s) in {d}; the checkout "
                f"discarded them{kept}"
            )
        if not self.opts.pull:
            self.deployed = self.commit_before
        return (
            f"{self.label} at {self.commit_before[:12]}, {free} MB free; "
            f"LIVE {self.live_label} {live_word}"
        )

    def backup(self) -> str:
        assert self.commit_before is not None
        path = dc.backup_path(self.app.app_dir, self.app_name, self.ctx.now(), self.commit_before)
        command = dc.backup_command(
            self.app.app_dir, path, self.app_name, self.app.backups_kept, self.std.sudo
        )
        self.host.check(self.host.run(command), f"the backup to {path}")
        self.backup_path = path
        return f"saved {path}"

    def fetch(self) -> str:
        assert self.ref is not None
        d, sudo = self.app.app_dir, self.std.sudo
        self.host.check(self.host.run(dc.fetch_command(d, sudo)), "git fetch")
        resolved = self.host.run(dc.resolve_command(d, self.ref, sudo), READ_TIMEOUT_S)
        commit = dc.parse_commit(resolved.stdout) if resolved.ok else None
        if commit is None:
            raise CommandFailed(
                f"ref {self.ref!r} is neither a branch on origin nor a tag or commit known to "
                f"{self.label}",
                host=self.std.ssh,
                exit_status=resolved.exit_status,
                output_tail=resolved.tail(dc.TAIL_LINES),
                hint="check the spelling, or push the ref first",
            )
        self.ensure_standby()
        self.changed = True
        self.host.check(
            self.host.run(dc.checkout_command(d, commit, sudo)), f"git checkout of {commit[:12]}"
        )
        self.host.check(self.host.run(dc.clean_command(d, sudo)), "git clean")
        self.deployed = commit
        return f"checked out {commit[:12]} ({self.ref})"

    def snippet(self, snippet: str, *, restart: bool = False) -> CommandResult:
        self.ensure_standby()
        self.changed = True
        self.restarted = self.restarted or restart
        return self.host.run(dc.snippet_command(snippet, self.app.app_dir, self.std.sudo))

    def build(self) -> str:
        assert self.app.build is not None
        result = self.snippet(self.app.build)
        self.host.check(result, f"the build `{self.app.build}`")
        return f"built in {result.duration_s:.1f}s"

    def migrate(self) -> str:
        assert self.app.migrate is not None
        result = self.snippet(self.app.migrate)
        self.host.check(result, f"the migration `{self.app.migrate}`")
        return f"migrated in {result.duration_s:.1f}s"

    def restart(self) -> str:
        result = self.snippet(self.app.restart, restart=True)
        self.host.check(
            result, f"the restart `{self.app.restart}`", None if result.ok else self.host.log_tail()
        )
        return f"restarted in {result.duration_s:.1f}s"

    def health(self) -> str:
        attempts = self.app.health.attempts
        verdict, tries = self.wait_healthy("health", attempts)
        if verdict.healthy:
            return f"{verdict.sentence} (attempt {tries}/{attempts})"
        raise HealthCheckFailed(
            f"{verdict.sentence}; still failing after {tries} attempt(s) from the HAProxy host",
            host=self.std.ssh,
            output_tail=self.host.log_tail(),
        )

    # -- after a failure --------------------------------------------------------------------

    def recover(self) -> tuple[bool | None, str]:
        """Restore the backup when that makes sense; (restored, what STANDBY is left running)."""
        before = (self.commit_before or "?")[:12]
        if self.target_lost:
            return (False if self.changed else None), (
                f"{self.label} was left as it was when the change to haproxy.cfg was seen "
                f"({self.left()}); check status before doing anything else"
            )
        if not self.changed:
            return None, f"{self.label} was not changed: it still runs {before}"
        if not self.opts.restore_on_failure:
            return False, f"{self.label} is left {self.left()} (restore_on_failure is off)"
        if self.backup_path is None:
            return False, f"{self.label} is left {self.left()}: no backup was made, none restored"
        try:
            message = self.recorder.run("restore", self.restore, self.std.ssh)
        except BlueGreenError as exc:
            return False, (
                f"restoring {self.label} failed ({exc}); it is left {self.left()}. "
                f"The backup is {self.backup_path}"
            )
        return True, f"{self.label} was {message}"

    def left(self) -> str:
        commit = (self.deployed or "?")[:12]
        if self.restarted:
            return f"on {commit}, restarted but not proven healthy"
        return f"with files at {commit} but not restarted (the previous process still runs)"

    def restore(self) -> str:
        assert self.backup_path is not None
        self.ensure_standby()
        d, sudo = self.app.app_dir, self.std.sudo
        self.host.check(self.host.run(dc.restore_command(d, self.backup_path, sudo)), "the restore")
        result = self.host.run(dc.snippet_command(self.app.restart, d, sudo))
        self.host.check(
            result, "the restart after restoring", None if result.ok else self.host.log_tail()
        )
        self.deployed = self.commit_before
        attempts = min(self.app.health.attempts, RESTORE_HEALTH_ATTEMPTS)
        verdict, _ = self.wait_healthy("restore", attempts)
        state = (
            "it is healthy again" if verdict.healthy else f"it is NOT healthy: {verdict.sentence}"
        )
        return (
            f"restored from {self.backup_path} to {(self.commit_before or '?')[:12]} and "
            f"restarted; {state}"
        )

    def live_healthy_after(self) -> bool | None:
        try:
            verdict = self.probe(self.target.live)
        except BlueGreenError as exc:
            self.warnings.append(f"LIVE {self.live_label} could not be probed after: {exc}")
            return None
        if not verdict.healthy:
            self.warnings.append(f"LIVE {self.live_label} is not healthy now: {verdict.sentence}")
        return verdict.healthy

    # -- reporting --------------------------------------------------------------------------

    def result(
        self,
        failure: Failure | None,
        restored: bool | None,
        standby_state: str | None,
        live_after: bool | None,
        started: float,
    ) -> DeployResult:
        error = failure.error if failure else None
        if failure is None:
            commit_after = self.deployed
        else:
            commit_after = self.commit_before if (restored or not self.changed) else self.deployed
        result = DeployResult(
            app=self.app_name,
            ok=failure is None,
            color=self.target.standby,
            host=self.std.ssh,
            address=self.std.address,
            ref=self.ref,
            commit_before=self.commit_before,
            commit_after=commit_after,
            backup_path=self.backup_path,
            steps=self.recorder.steps,
            warnings=self.warnings,
            failed_step=failure.step if failure else None,
            error=str(error) if error else None,
            error_type=type(error).__name__ if error else None,
            exit_status=getattr(error, "exit_status", None),
            output_tail=getattr(error, "output_tail", None),
            restored=restored,
            standby_state=standby_state,
            live_color=self.target.live,
            live_healthy_after=live_after,
            duration_s=round(time.monotonic() - started, 3),
        )
        result.next_step = deploy_report.next_step(result)
        return result


def _command_result(outcome: object) -> CommandResult:
    if isinstance(outcome, Exception):
        raise outcome  # STANDBY unreachable: the transport's error says how
    assert isinstance(outcome, CommandResult)
    return outcome
