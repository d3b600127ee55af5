"""One STANDBY server's part of a deploy: its pipeline steps, its health wait and, after a
failure, its restore. deploy.py runs one of these per server of the STANDBY colour (one, or every
server of a pool) and reports them together.

Every change is preceded by a fresh read of haproxy.cfg (`ensure_standby`): a hand edit may have
made this colour LIVE mid-deploy. What happened so far is kept here, to report and to recover.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from threading import Event

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.deploy_commands import HealthVerdict
from bluegreen.engine.context import Context
from bluegreen.engine.deploy_plan import READ_TIMEOUT_S, DeployOptions, Roles, resolve_roles
from bluegreen.engine.guard import GuardedRunner
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
from bluegreen.transport.base import CommandResult
from bluegreen.transport.parallel import parallel

STEPS = ("preflight", "backup", "fetch", "build", "migrate", "restart", "health")
RESTORE_HEALTH_ATTEMPTS = 5

Sleep = Callable[[float], None]
Step = tuple[str, Callable[[], str], str | None]  # name, action, why it is skipped (None: run)


@dataclass(frozen=True)
class Failure:
    """The pipeline step that failed, and why."""

    step: str
    error: BlueGreenError


@dataclass(frozen=True)
class Shared:
    """What every server's run of one deploy shares."""

    ctx: Context
    app_name: str
    app: AppConfig  # as it runs on STANDBY (its own app dir, branch, restart, log file)
    options: DeployOptions
    target: Roles
    ref: str | None
    runner: GuardedRunner  # refuses any change to a LIVE server
    recorder: StepRecorder
    sleep: Sleep
    warnings: list[str]  # appended to from every server's thread (list.append is atomic)
    stop: Event  # set when a server failed: the others stop before their next step


class ServerRun:
    """The pipeline on one STANDBY server."""

    def __init__(self, shared: Shared, member: Member, *, probes_live: bool) -> None:
        self.s, self.member, self.label = shared, member, member.label
        self.app = shared.app
        self.sudo = shared.app.server(member.color).sudo
        self.probes_live = probes_live  # the first server's preflight probes LIVE (a witness)
        self.host = StandbyHost(
            shared.runner, self.app, member, self.sudo, shared.ctx.config.ssh.command_timeout_s
        )
        self.commit_before: str | None = None
        self.deployed: str | None = None  # the commit this run puts on the server
        self.backup_path: str | None = None
        self.changed = False  # the app dir (or the running app) was changed by this run
        self.restarted = False
        self.target_lost = False  # haproxy.cfg no longer says our target is STANDBY
        self.failure: Failure | None = None
        self.restored: bool | None = None
        self.state: str | None = None  # after a failure: what the server is left running

    def name(self, step: str) -> str:
        """The step as its progress shows it: `build`, or `build green1` in a pool."""
        return f"{step} {self.member.server}" if self.member.in_pool else step

    def run_steps(self, steps: list[Step]) -> bool:
        """Run (or skip) each step in order; False when one of them failed (the steps left are
        skipped once another server failed)."""
        for step, action, skipped in steps:
            index = STEPS.index(step) + 1
            if self.s.stop.is_set():
                self.s.recorder.skip(self.name(step), "stopped: another server failed", index)
                continue
            if skipped:
                self.s.recorder.skip(self.name(step), skipped, index)
                continue
            try:
                self.s.recorder.run(self.name(step), action, self.member.ssh, index)
            except BlueGreenError as exc:
                self.failure = Failure(step, exc)
                self.s.stop.set()
                return False
        return True

    # -- host access ------------------------------------------------------------------------

    def ensure_standby(self) -> None:
        """Re-read haproxy.cfg before changing the app: a hand edit may have made it LIVE."""
        try:
            now = resolve_roles(self.s.ctx, self.app, self.s.runner)
        except BlueGreenError as exc:
            self.target_lost = True
            raise UnsafeOperationError(
                f"stopped before changing {self.label}: haproxy.cfg no longer says for certain "
                f"that it is STANDBY ({exc.message})"
            ) from exc
        if now != self.s.target:
            self.target_lost = True
            raise UnsafeOperationError(
                f"stopped: haproxy.cfg changed during the deploy and now routes users to "
                f"{self.label}; nothing more is done to it"
            )

    def wait_healthy(self, step: str, attempts: int) -> tuple[HealthVerdict, int]:
        """Probe this server until healthy or out of attempts, backing off between tries."""
        delays = dc.backoff_delays(attempts, self.app.health.interval_s)
        verdict = probe(self.s, self.member, self.deployed)
        tries = 1
        while not verdict.healthy and tries < attempts:
            pause = delays[tries - 1]
            message = f"attempt {tries}/{attempts}: {verdict.sentence}; retrying in {pause:g}s"
            self.s.recorder.info(self.name(step), message)
            self.s.sleep(pause)
            verdict = probe(self.s, self.member, self.deployed)
            tries += 1
        return verdict, tries

    # -- steps ------------------------------------------------------------------------------

    def preflight(self) -> str:
        d, sudo, ssh, runner = self.app.app_dir, self.sudo, self.member.ssh, self.s.runner
        reads: list[Callable[[], object]] = [
            lambda: runner.run(ssh, dc.head_command(d, sudo), timeout=READ_TIMEOUT_S),
            lambda: runner.run(ssh, dc.dirty_command(d, sudo), timeout=READ_TIMEOUT_S),
            lambda: runner.run(ssh, dc.disk_command(d, sudo), timeout=READ_TIMEOUT_S),
        ]
        if self.probes_live:
            reads.append(lambda: live_before(self.s))
        outcomes = parallel(reads)
        head, dirty, disk = (_command_result(outcome) for outcome in outcomes[:3])
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
            raise PreflightFailed(f"unexpected `git rev-parse` output: {head.tail(2)}", host=ssh)
        self.host.check(disk, f"`df` of {d}")
        free = dc.parse_available_mb(disk.stdout)
        if free is None:
            raise PreflightFailed(f"cannot read free space from `df`: {disk.tail(3)}", host=ssh)
        if free < self.app.min_free_disk_mb:
            raise PreflightFailed(
                f"only {free} MB free for {d} on {self.label}; min_free_disk_mb is "
                f"{self.app.min_free_disk_mb}",
                host=ssh,
                hint=f"free disk space (old backups are in {dc.backup_dir(d)})",
            )
        changes = [line for line in dirty.stdout.splitlines() if line.strip()]
        if changes and dirty.ok and self.s.options.pull:
            kept = " (they are in the backup)" if self.s.options.backup else ""
            self.s.warnings.append(
                f"{self.label} had {len(changes)} local change(s) in {d}; the checkout "
                f"discarded them{kept}"
            )
        if not self.s.options.pull:
            self.deployed = self.commit_before
        said = f"{self.label} at {self.commit_before[:12]}, {free} MB free"
        return f"{said}; LIVE {outcomes[3]}" if self.probes_live else said

    def backup(self) -> str:
        assert self.commit_before is not None
        app, ctx = self.app, self.s.ctx
        path = dc.backup_path(app.app_dir, self.s.app_name, ctx.now(), self.commit_before)
        command = dc.backup_command(app.app_dir, path, self.s.app_name, app.backups_kept, self.sudo)
        self.host.check(self.host.run(command), f"the backup to {path}")
        self.backup_path = path
        return f"saved {path}"

    def fetch(self) -> str:
        ref = self.s.ref
        assert ref is not None
        d, sudo = self.app.app_dir, self.sudo
        self.host.check(self.host.run(dc.fetch_command(d, sudo)), "git fetch")
        resolved = self.host.run(dc.resolve_command(d, ref, sudo), READ_TIMEOUT_S)
        commit = dc.parse_commit(resolved.stdout) if resolved.ok else None
        if commit is None:
            raise CommandFailed(
                f"ref {ref!r} is neither a branch on origin nor a tag or commit known to "
                f"{self.label}",
                host=self.member.ssh,
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
        return f"checked out {commit[:12]} ({ref})"

    def snippet(self, snippet: str, *, restart: bool = False) -> CommandResult:
        self.ensure_standby()
        self.changed = True
        self.restarted = self.restarted or restart
        return self.host.run(dc.snippet_command(snippet, self.app.app_dir, self.sudo))

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
            host=self.member.ssh,
            output_tail=self.host.log_tail(),
        )

    # -- after a failure --------------------------------------------------------------------

    def recover(self) -> None:
        """Restore the backup when that makes sense; sets `restored` and `state`."""
        before = (self.commit_before or "?")[:12]
        if self.target_lost:
            self.restored = False if self.changed else None
            self.state = (
                f"{self.label} was left as it was when the change to haproxy.cfg was seen "
                f"({self.left()}); check status before doing anything else"
            )
        elif not self.changed:
            self.state = f"{self.label} was not changed: it still runs {before}"
        elif not self.s.options.restore_on_failure:
            self.restored = False
            self.state = f"{self.label} is left {self.left()} (restore_on_failure is off)"
        elif self.backup_path is None:
            self.restored = False
            self.state = f"{self.label} is left {self.left()}: no backup was made, none restored"
        else:
            try:
                message = self.s.recorder.run(self.name("restore"), self.restore, self.member.ssh)
            except BlueGreenError as exc:
                self.restored = False
                self.state = (
                    f"restoring {self.label} failed ({exc}); it is left {self.left()}. "
                    f"The backup is {self.backup_path}"
                )
                return
            self.restored, self.state = True, f"{self.label} was {message}"

    def left(self) -> str:
        commit = (self.deployed or "?")[:12]
        if self.restarted:
            return f"on {commit}, restarted but not proven healthy"
        return f"with files at {commit} but not restarted (the previous process still runs)"

    def restore(self) -> str:
        assert self.backup_path is not None
        self.ensure_standby()
        d, sudo = self.app.app_dir, self.sudo
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

    @property
    def commit_after(self) -> str | None:
        if not self.s.stop.is_set():  # no server failed
            return self.deployed
        return self.commit_before if (self.restored or not self.changed) else self.deployed


def probe(shared: Shared, member: Member, expected: str | None) -> HealthVerdict:
    """`member`'s health from the HAProxy host, judged against the commit it should run
    (`expected`; None for LIVE, whose commit is not ours to check)."""
    health, hp = shared.app.health, shared.ctx.config.haproxy.ssh
    url = dc.server_health_url(shared.app, member)
    parsed = http_probe(shared.runner, hp, url, health.timeout_s, health.expect_status)
    return dc.judge_health(parsed, member.label, health.expect_status, expected)


def probes(shared: Shared, members: tuple[Member, ...]) -> list[HealthVerdict | Exception]:
    """Every server's health at once (LIVE's: no commit expected)."""

    def one(member: Member) -> Callable[[], HealthVerdict]:
        return lambda: probe(shared, member, None)

    return parallel([one(m) for m in members])


def live_before(shared: Shared) -> str:
    """LIVE's health before the deploy, in a word; each problem becomes a warning. A witness
    for the report, never a reason to stop."""
    live = shared.app.members(shared.target.live)
    words = []
    for member, verdict in zip(live, probes(shared, live), strict=True):
        if not isinstance(verdict, HealthVerdict):
            words.append("not probed")
            shared.warnings.append(f"LIVE {member.label} could not be probed before: {verdict}")
        elif not verdict.healthy:
            words.append("NOT healthy")
            shared.warnings.append(
                f"LIVE {member.label} was not healthy before: {verdict.sentence}"
            )
        else:
            words.append("healthy")
    label = shared.target.live.upper()
    return f"{label} {words[0]}" if len(set(words)) == 1 else f"{label} " + ", ".join(words)


def _command_result(outcome: object) -> CommandResult:
    if isinstance(outcome, Exception):
        raise outcome  # STANDBY unreachable: the transport's error says how
    assert isinstance(outcome, CommandResult)
    return outcome
