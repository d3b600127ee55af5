"""switch_traffic: make STANDBY the new LIVE, atomically, verified, with an instant way back.

Order of work (each a step event): lock -> re-plan under the lock and compare with what was
approved -> target check -> back up haproxy.cfg -> check the candidate cfg with `haproxy -c` ->
atomic replace -> seamless reload -> verify through the frontend that the new LIVE answers ->
drain -> state file -> environment indicators -> history -> post-switch watch (auto-rollback).
Any failure from the replace on puts the previous cfg back, reloads, and verifies the old LIVE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.approval import plan_hash
from bluegreen.domain.config import AppConfig
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.routing import RoutingAnalysis, SwitchEdit, analyze_routing, plan_switch
from bluegreen.domain.runtime import (
    RuntimeOutputError,
    parse_show_proc,
    parse_show_stat,
    runtime_command,
)
from bluegreen.domain.state_file import parse_state, updated_for_switch
from bluegreen.domain.switch_commands import (
    COMMAND_NOT_FOUND,
    backup_cfg_command,
    cfg_backup_dir,
    cfg_backup_name,
    check_command,
    check_path,
    env_display,
    frontend_url,
    not_found,
    reload_command,
    remove_command,
)
from bluegreen.engine import history
from bluegreen.engine.context import Context, StepEvent
from bluegreen.engine.lock import OperationLock
from bluegreen.engine.probing import as_health, http_probe
from bluegreen.engine.status import server_specs
from bluegreen.errors import (
    ApprovalError,
    BlueGreenError,
    HAProxyConfigError,
    TransportError,
    UnsafeOperationError,
)
from bluegreen.models import Health, HistoryEntry, StepResult, SwitchPlan, SwitchResult
from bluegreen.transport.parallel import parallel

T = TypeVar("T")
VERIFY_TIMEOUT_S = 15.0
VERIFY_STREAK = 5  # consecutive answers from the new LIVE before the switch counts as done
WATCH_FAILURES = 3  # consecutive failures during the watch that trigger the auto-rollback
# After a failure from the replace on, how long to keep trying to reach the HAProxy host again to
# put the previous cfg back (a dropped connection, sshd restarting): reconnecting is cheap, and an
# unapplied cfg left on disk is what must not happen.
RESTORE_RETRY_S = 30.0


@dataclass
class Prepared:
    """A switch plan with everything needed to execute it exactly."""

    app_name: str
    app: AppConfig
    cfg_raw: bytes
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


def _probe_health(ctx: Context, app: AppConfig, color: str, timeout_s: float) -> Health:
    url = dc.server_health_url(app, color)
    hp = ctx.config.haproxy
    return as_health(http_probe(ctx.runner, hp.ssh, url, timeout_s, app.health.expect_status))


def prepare(
    ctx: Context, app_name: str, *, emergency: bool = False, mode: str = "token"
) -> Prepared:
    """Read cfg, state and target health (in parallel) and build the plan. Changes nothing."""
    app = ctx.config.app(app_name)
    hp = ctx.config.haproxy
    cfg_raw, state_raw = parallel(
        [lambda: ctx.runner.read_file(hp.ssh, hp.config_path),
         lambda: ctx.runner.read_file(hp.ssh, app.state_file)]
    )  # fmt: skip
    if isinstance(cfg_raw, Exception):
        raise cfg_raw
    if cfg_raw is None:
        raise HAProxyConfigError(f"haproxy.cfg not found at {hp.config_path} on {hp.ssh}")
    state_bytes = None if isinstance(state_raw, Exception) else state_raw
    cfg = parse(cfg_raw.decode(errors="replace"))
    analysis = analyze_routing(cfg, app.frontend, server_specs(app))
    if not analysis.certain or analysis.live is None or analysis.standby is None:
        raise HAProxyConfigError(
            "refusing to switch: haproxy.cfg's routing for this app is not certain: "
            + "; ".join(analysis.problems),
            hint="fix haproxy.cfg by hand, check it with `bluegreen inspect-cfg`, then retry",
        )
    target = analysis.standby
    edit = plan_switch(cfg, analysis, target)
    health = _probe_health(ctx, app, target, app.health.timeout_s)
    warnings: list[str] = []
    if not health.healthy:
        verdict = "health is unknown" if health.unknown else "is not healthy"
        if emergency:
            warnings.append(f"target {target.upper()} {verdict} ({health.error}): emergency switch")
        else:
            warnings.append(
                f"target {target.upper()} {verdict} ({health.error}): the switch will be refused"
            )
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
        target_healthy=health.healthy,
        target_health=health,
        target_commit=health.commit,
        warnings=warnings,
        plan_hash=plan_hash(app_name, analysis.live, target, emergency, cfg_raw, state_bytes),
        approval=mode,
    )
    return Prepared(app_name, app, cfg_raw, state_bytes, analysis, edit, plan)


@dataclass
class _Run:
    ctx: Context
    steps: list[StepResult] = field(default_factory=list)

    def step(self, name: str, action: Callable[[], T], host: str | None = None) -> T:
        self.ctx.progress(StepEvent(name, "start"))
        started = time.monotonic()
        try:
            value = action()
        except BlueGreenError as exc:
            took = round(time.monotonic() - started, 3)
            self.steps.append(StepResult(name=name, status="failed", duration_s=took,
                                         message=str(exc), host=host,
                                         exit_status=getattr(exc, "exit_status", None),
                                         output_tail=getattr(exc, "output_tail", None)))  # fmt: skip
            self.ctx.progress(StepEvent(name, "failed", str(exc), took))
            raise
        took = round(time.monotonic() - started, 3)
        message = value if isinstance(value, str) else ""
        self.steps.append(
            StepResult(name=name, status="ok", duration_s=took, message=message, host=host)
        )
        self.ctx.progress(StepEvent(name, "ok", message, took))
        return value


class _StepFailed(BlueGreenError):
    def __init__(
        self, message: str, *, exit_status: int | None = None, output_tail: str = ""
    ) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.output_tail = output_tail


def execute(
    ctx: Context,
    app_name: str,
    approved_hash: str,
    *,
    emergency: bool = False,
    force: bool = False,
    reason: str | None = None,
    break_lock: bool = False,
) -> SwitchResult:
    """Execute the switch whose plan hash was approved. Refuses if anything changed since."""
    started = time.monotonic()
    run = _Run(ctx)
    with OperationLock(ctx, app_name, "switch", break_lock=break_lock) as lock:
        prepared = run.step("plan", lambda: _replan(ctx, app_name, emergency, approved_hash))
        result = SwitchResult(app=app_name, executed=False, ok=False, plan=prepared.plan,
                              from_live=prepared.from_live, to_live=prepared.to_live,
                              emergency=emergency)  # fmt: skip
        try:
            run.step("target", lambda: _check_target(prepared, emergency, force))
        except BlueGreenError as exc:
            result.error, result.steps = str(exc), run.steps
            result.message = f"nothing changed: {exc}"
            result.duration_s = round(time.monotonic() - started, 3)
            return result
        forced = bool(force and not prepared.plan.target_healthy)
        applied, touched, restored = _apply(ctx, run, prepared.app, prepared.cfg_raw,
                                            prepared.edit.text.encode(), prepared.from_live,
                                            prepared.to_live, emergency, forced)  # fmt: skip
        result.executed = touched
        if applied is not None:
            result.error = applied
            result.rolled_back = touched and restored
            result.message = (f"switch failed and was rolled back: {applied}" if touched and restored
                              else f"SWITCH FAILED AND WAS NOT ROLLED BACK: {applied}" if touched
                              else f"nothing changed: {applied}")  # fmt: skip
        else:
            result.verified = True
            _finish(ctx, run, prepared, emergency, result)
            if not emergency:
                _watch(ctx, run, prepared, result)
        result.steps = run.steps
        # A new LIVE that failed the post-switch watch is not a success, rolled back or not.
        result.ok = result.verified and not result.auto_rollback and result.error is None
        result.duration_s = round(time.monotonic() - started, 3)
        if result.ok:
            outcome = "ok"
        elif result.auto_rollback:
            failed_back = "AUTO-ROLLBACK FAILED" in (result.error or "")
            outcome = "auto-rollback-failed" if failed_back else "auto-rolled-back"
        else:
            outcome = "failed"
        user, host = history.who()
        err = history.append(ctx, HistoryEntry(
            time=ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"), operation="switch", app=app_name,
            user=user, host=host, outcome=outcome, from_live=prepared.from_live,
            to_live=prepared.to_live, emergency=emergency, reason=reason,
            duration_s=result.duration_s, steps=run.steps, error=result.error,
        ))  # fmt: skip
        if err:
            result.message += f" ({err})"
    if lock.release_error:
        result.message += f" ({lock.release_error})"
    if result.ok:
        # What went wrong after the verified switch (state file, history, lock) stays said.
        result.message = (f"{prepared.to_live.upper()} is LIVE; {prepared.from_live.upper()} is "
                          "STANDBY, untouched: switching back is the instant rollback"
                          + result.message)  # fmt: skip
        result.next_step = (f"Watch the app; to roll back, switch_traffic again (emergency=true "
                            f"goes straight back to {prepared.from_live.upper()}).")  # fmt: skip
    return result


def _replan(ctx: Context, app_name: str, emergency: bool, approved_hash: str) -> Prepared:
    prepared = prepare(ctx, app_name, emergency=emergency)
    if prepared.plan.plan_hash != approved_hash:
        raise ApprovalError(
            "haproxy.cfg or the state file changed since this switch was planned and approved",
            hint="ask for a new plan (switch_traffic without confirmToken) and approve that one",
        )
    return prepared


def _check_target(prepared: Prepared, emergency: bool, force: bool) -> str:
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


def _apply(
    ctx: Context, run: _Run, app: AppConfig, old: bytes, new: bytes, from_live: str,
    to_live: str, emergency: bool, forced: bool = False,
) -> tuple[str | None, bool, bool]:  # fmt: skip
    """Put `new` in place and make traffic reach `to_live`.

    Returns (None, True, False) on success, else (the failure, whether haproxy.cfg was touched,
    whether the previous cfg is back and verified); a touched cfg is restored to `old` first
    (retrying while the host cannot be reached), so HAProxy is never left with an unchecked or
    unapplied cfg without the result saying so."""
    hp = ctx.config.haproxy
    runner = ctx.runner
    candidate = check_path(hp.config_path)

    def checked(command_result_ok: bool, what: str, tail: str, status: int) -> None:
        if not command_result_ok:
            raise _StepFailed(f"{what} failed", exit_status=status, output_tail=tail)

    def backup() -> str:
        name = cfg_backup_name(ctx.now(), from_live, to_live)
        r = runner.run(
            hp.ssh, backup_cfg_command(hp.config_path, hp.work_dir, name, hp.cfg_backups, hp.sudo)
        )
        checked(r.ok, "backing up haproxy.cfg", r.tail(), r.exit_status)
        return name

    def validate() -> str:
        runner.write_file_atomic(hp.ssh, candidate, new)
        try:
            r = runner.run(hp.ssh, check_command(hp.check, candidate, hp.sudo), timeout=60)
        finally:
            runner.run(hp.ssh, remove_command(candidate, hp.sudo))
        if r.exit_status == COMMAND_NOT_FOUND:
            raise _StepFailed(
                f"the new cfg could not be checked: {not_found(hp.check[0])}",
                exit_status=r.exit_status,
                output_tail=r.tail(),
            )
        checked(r.ok, "`haproxy -c` on the new cfg", r.tail(), r.exit_status)
        return "the new cfg is valid"

    try:
        saved = run.step("backup-cfg", backup, hp.ssh)
        run.step("check-cfg", validate, hp.ssh)
    except BlueGreenError as exc:
        return f"{exc} (haproxy.cfg untouched)", False, False

    frontend = frontend_url(parse(new.decode(errors="replace")), app.frontend)
    try:
        run.step(
            "replace-cfg", lambda: runner.write_file_atomic(hp.ssh, hp.config_path, new), hp.ssh
        )
        run.step("reload", lambda: _reload(ctx), hp.ssh)
        run.step("verify", lambda: _verify(ctx, app, frontend, to_live, emergency, forced), hp.ssh)
        return None, True, False
    except BlueGreenError as exc:
        failure = str(exc)

    def restore() -> str:
        # Read back first: after a failed or interrupted replace the file may still be the old one.
        if runner.read_file(hp.ssh, hp.config_path) == old:
            return "haproxy.cfg is the previous one"
        runner.write_file_atomic(hp.ssh, hp.config_path, old)
        return "the previous haproxy.cfg is written back"

    deadline = time.monotonic() + RESTORE_RETRY_S
    while True:
        try:
            run.step("restore-cfg", restore, hp.ssh)
            run.step("reload-restored", lambda: _reload(ctx), hp.ssh)
            run.step(
                "verify-restored", lambda: _verify(ctx, app, frontend, from_live, True), hp.ssh
            )
            break
        except TransportError as exc:  # the host cannot be reached (yet): reconnect and retry
            if time.monotonic() >= deadline:
                return _restore_failed(ctx, failure, exc, saved, from_live, to_live), True, False
            ctx.progress(StepEvent("restore-cfg", "info", f"{exc}; retrying"))
            time.sleep(1.0)
        except BlueGreenError as exc:
            return _restore_failed(ctx, failure, exc, saved, from_live, to_live), True, False
    return f"{failure}; the previous haproxy.cfg is back and {from_live.upper()} serves", True, True


def _restore_failed(
    ctx: Context, failure: str, exc: BlueGreenError, backup: str, from_live: str, to_live: str
) -> str:
    hp = ctx.config.haproxy
    return (
        f"{failure}; RESTORING THE PREVIOUS CFG ALSO FAILED: {exc}. haproxy.cfg on {hp.ssh} may "
        f"now be the new one (routing to {to_live.upper()}, checked with `haproxy -c`) while "
        f"HAProxy, not reloaded, may still route to {from_live.upper()}: run status (it reports a "
        f"cfg not reloaded), then put back {backup} from {cfg_backup_dir(hp.work_dir)} or "
        "reload HAProxy"
    )


def _reload(ctx: Context) -> str:
    hp = ctx.config.haproxy
    r = ctx.runner.run(hp.ssh, reload_command(hp.reload, hp.sudo), timeout=60)
    if not r.ok:
        raise _StepFailed(
            "the HAProxy reload failed", exit_status=r.exit_status, output_tail=r.tail()
        )
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "reloaded"


def _verify(
    ctx: Context, app: AppConfig, frontend: str | None, color: str, quick: bool,
    forced: bool = False,
) -> str:  # fmt: skip
    """New requests through the frontend reach `color`: VERIFY_STREAK answers in a row.
    `forced` (an emergency switch to an unhealthy target, by request): any HTTP answer counts,
    since an unhealthy server may not say who it is."""
    if frontend is None:
        return "frontend has no bind address to probe; verified by reload only"
    hp = ctx.config.haproxy
    url = frontend + app.health.path
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    streak, last = 0, ""
    need = 2 if quick else VERIFY_STREAK
    while time.monotonic() < deadline:
        h = http_probe(ctx.runner, hp.ssh, url, 3, app.health.expect_status)
        if forced and h.status_code is not None:
            return f"forced: the frontend answers (HTTP {h.status_code}); health not verified"
        if h.healthy and (h.color is None or h.color == color):
            streak += 1
            if streak >= need:
                seen = f"{need} requests through {url} answered by {color.upper()}"
                return seen + _runtime_view(ctx, app, color)
            continue
        streak = 0
        last = h.error or f"answered by {h.color}"
        time.sleep(0.1)
    raise _StepFailed(f"traffic through {url} did not reach {color.upper()} in "
                      f"{VERIFY_TIMEOUT_S:.0f}s (last: {last})")  # fmt: skip


def _runtime_view(ctx: Context, app: AppConfig, color: str) -> str:
    """The second witness: the running worker's `show stat` has `color`'s server UP. Requests
    already reached it, so a runtime API that cannot be read only weakens the message."""
    hp = ctx.config.haproxy
    try:
        cfg_raw = ctx.runner.read_file(hp.ssh, hp.config_path) or b""
        route = analyze_routing(
            parse(cfg_raw.decode(errors="replace")), app.frontend, server_specs(app)
        ).route(color)
        r = ctx.runner.run(
            hp.ssh, runtime_command(hp.runtime_socket, "show stat", hp.sudo), timeout=15
        )
        rows = parse_show_stat(r.stdout) if r.ok else ()
    except (BlueGreenError, RuntimeOutputError, ValueError) as exc:
        return f"; runtime API not read ({exc})"
    row = next(
        (x for x in rows if x.is_server and x.pxname == route.backend and x.svname == route.server),
        None,
    )
    if row is None:
        return "; runtime API: server not listed"
    if not row.state.startswith(("UP", "no check")):
        raise _StepFailed(
            f"the running HAProxy reports {route.backend}/{route.server} as {row.state}, "
            "although requests reached it"
        )
    return f"; runtime API: {route.backend}/{route.server} {row.state}"


def _finish(
    ctx: Context, run: _Run, prepared: Prepared, emergency: bool, result: SwitchResult
) -> None:
    hp = ctx.config.haproxy
    app = prepared.app
    now = ctx.now()
    if not emergency and app.drain_s > 0:
        run.step("drain", lambda: _drain(ctx, app.drain_s), hp.ssh)

    def write_state() -> str:
        reading = parse_state(prepared.state_raw, list(app.servers))
        data = updated_for_switch(reading.state, prepared.to_live, prepared.from_live, now)
        ctx.runner.write_file_atomic(hp.ssh, app.state_file, data)
        return f"{app.state_file}: live={prepared.to_live}"

    try:
        run.step("state-file", write_state, hp.ssh)
        result.state_file_written = True
    except BlueGreenError as exc:
        result.message += f" state file NOT written ({exc}); the next action repairs it."

    def indicators() -> str:
        roles = {prepared.to_live: "LIVE", prepared.from_live: "STANDBY"}

        def write(color: str, role: str) -> Callable[[], None]:
            path = f"{app.app_dir}/.env.display"
            data = env_display(role, color, now)
            return lambda: ctx.runner.write_file_atomic(app.servers[color].ssh, path, data)

        outcomes = parallel([write(c, r) for c, r in roles.items()])
        failed = [str(o) for o in outcomes if isinstance(o, Exception)]
        return "; ".join(failed) if failed else "both hosts show their new role"

    run.step("indicators", indicators)


def _drain(ctx: Context, drain_s: float) -> str:
    """Requests in flight on the old LIVE finish in the old workers, which exit on their own once
    their connections close. Wait for that (seen through the master CLI) up to drain_s."""
    hp = ctx.config.haproxy
    if hp.master_socket is None:
        time.sleep(drain_s)
        return f"waited {drain_s:g}s for in-flight requests on the old LIVE"
    deadline = time.monotonic() + drain_s
    old: tuple[int, ...] = ()
    while True:
        r = ctx.runner.run(
            hp.ssh, runtime_command(hp.master_socket, "show proc", hp.sudo), timeout=15
        )
        try:
            if not r.ok:
                raise RuntimeOutputError(r.tail(1) or f"socat exited {r.exit_status}")
            old = parse_show_proc(r.stdout).old_worker_pids
        except RuntimeOutputError as exc:
            # Unreadable is not "no old workers": wait the whole drain time instead.
            time.sleep(max(0.0, deadline - time.monotonic()))
            return (f"the master CLI did not answer ({exc}); waited {drain_s:g}s for in-flight "
                    "requests on the old LIVE")  # fmt: skip
        if not old:
            return "old HAProxy workers finished their requests and exited"
        if time.monotonic() >= deadline:
            return (f"{len(old)} old worker(s) still finishing long connections after {drain_s:g}s; "
                    "they close on their own")  # fmt: skip
        time.sleep(0.2)


def _watch(ctx: Context, run: _Run, prepared: Prepared, result: SwitchResult) -> None:
    app = prepared.app
    if app.watch_s <= 0:
        return
    hp = ctx.config.haproxy
    frontend = frontend_url(parse(prepared.edit.text), app.frontend)
    if frontend is None:
        return
    url = frontend + app.health.path

    def watch() -> str:
        deadline = time.monotonic() + app.watch_s
        failures = checks = 0
        while time.monotonic() < deadline:
            h = http_probe(ctx.runner, hp.ssh, url, 3, app.health.expect_status)
            checks += 1
            good = h.healthy and (h.color is None or h.color == prepared.to_live)
            failures = 0 if good else failures + 1
            if failures >= WATCH_FAILURES:
                raise _StepFailed(f"the new LIVE {prepared.to_live.upper()} failed {failures} "
                                  f"checks in a row through HAProxy: {h.error or h.color}")  # fmt: skip
            time.sleep(0.5)
        return f"{checks} checks over {app.watch_s:g}s: {prepared.to_live.upper()} healthy"

    try:
        run.step("watch", watch, hp.ssh)
        return
    except BlueGreenError as exc:
        problem = str(exc)
    if not app.auto_rollback:
        result.error = f"{problem}; autoRollback is off: roll back with switch_traffic"
        return
    back, _, _ = _apply(ctx, run, app, prepared.edit.text.encode(), prepared.cfg_raw,
                        prepared.to_live, prepared.from_live, True)  # fmt: skip
    result.auto_rollback = True
    if back is None:
        now = ctx.now()
        hp_state = ctx.runner.read_file(hp.ssh, app.state_file)
        reading = parse_state(hp_state, list(app.servers))
        data = updated_for_switch(reading.state, prepared.from_live, prepared.to_live, now)
        ctx.runner.write_file_atomic(hp.ssh, app.state_file, data)
        result.error = (
            f"{problem}; rolled back automatically: {prepared.from_live.upper()} is LIVE again"
        )
    else:
        result.error = f"{problem}; AUTO-ROLLBACK FAILED: {back}"
