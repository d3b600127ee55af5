"""switch_traffic: make STANDBY the new LIVE, atomically, verified, with an instant way back.

The cfg file is the one file HAProxy loads that holds the app's deciding line (haproxy.cfg, or
e.g. a conf.d file); the others are never written. Order of work (each a step event): app lock ->
that file's lock -> re-plan under the locks and compare with what was approved -> target check ->
back up the file -> check the candidate with `haproxy -c` and every other file HAProxy loads ->
compare the file with the bytes the plan read -> atomic replace ->
seamless reload -> verify through the frontend that the new LIVE answers -> release the cfg lock
-> drain -> state file -> environment indicators -> post-switch watch (auto-rollback, under the
cfg lock again) -> history.

Any failure from the replace on puts the previous cfg back, reloads, and verifies the old LIVE,
but never writes over a file that is neither the one this switch read nor the one it wrote. Once
traffic moved, the state file write is attempted and the history line written whatever fails.
The plan and the re-plans are in switch_plan.py; reload, verify and drain in traffic.py.

With several HAProxy nodes the plan holds each node's own edit of the same file (a node that
routes elsewhere or holds the deciding line in another file is refused before anything runs), and
each cfg step runs on every node at once (switch_nodes.py): backup, check and compare on all of
them before any replace, and a failure on any node restores every node. The locks, drain, watch
and history stay on the PRIMARY; the state file is written on every node that changes (every node;
a reconcile: the nodes it moves, with no watch, the PRIMARY's users not having moved).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bluegreen.domain.config import AppConfig
from bluegreen.domain.state_file import parse_state, updated_for_switch
from bluegreen.domain.switch_commands import (
    COMMAND_NOT_FOUND,
    backup_cfg_command,
    cfg_backup_dir,
    cfg_backup_name,
    check_command,
    check_path,
    frontend_url,
    not_found,
    remove_command,
)
from bluegreen.engine import history
from bluegreen.engine.context import Context
from bluegreen.engine.indicators import write_roles
from bluegreen.engine.lock import OperationLock, cfg_lock
from bluegreen.engine.probing import http_probe
from bluegreen.engine.steps import StepRecorder, internal_error
from bluegreen.engine.switch_nodes import on_every_node, spread_ms
from bluegreen.engine.switch_plan import (
    NodeChange,
    Prepared,
    check_target,
    plan_rollback,
    replan,
)
from bluegreen.engine.traffic import drain, reload, verify
from bluegreen.errors import (
    BlueGreenError,
    CfgChanged,
    CommandFailed,
    TrafficCheckFailed,
    TransportError,
)
from bluegreen.models import ApprovalRecord, SwitchPlan, SwitchResult

WATCH_FAILURES = 3  # consecutive failures during the watch that trigger the auto-rollback
# After a failure from the replace on, how long to keep trying to reach the HAProxy host again to
# put the previous cfg back (a dropped connection, sshd restarting): reconnecting is cheap, and an
# unapplied cfg left on disk is what must not happen.
RESTORE_RETRY_S = 30.0


@dataclass(frozen=True)
class Applied:
    """What _apply did: the failure (None: traffic reaches the target, verified), whether
    haproxy.cfg was touched, and whether the previous cfg is back and verified."""

    error: str | None = None
    touched: bool = False
    restored: bool = False
    window_ms: float | None = None  # several nodes: how long they routed to different colours


def execute(
    ctx: Context,
    app_name: str,
    approved: SwitchPlan,
    approval: ApprovalRecord,
    *,
    emergency: bool = False,
    force: bool = False,
    reason: str | None = None,
    break_lock: bool = False,
) -> SwitchResult:
    """Execute the plan that was approved (`approval` says how, for the history). Refuses if
    anything changed since, the target's deployed commit included."""
    started = time.monotonic()
    steps = StepRecorder(ctx)
    with OperationLock(ctx, app_name, "switch", break_lock=break_lock) as lock:
        path = approved.cfg_file or ctx.config.haproxy.config_path  # the file the plan replaces
        cfg = cfg_lock(ctx, app_name, "switch", path, break_lock=break_lock)
        with cfg:
            prepared = steps.run("plan", lambda: replan(ctx, app_name, emergency, approved))
            result = SwitchResult(app=app_name, executed=False, ok=False, plan=prepared.plan,
                                  from_live=prepared.from_live, to_live=prepared.to_live,
                                  emergency=emergency)  # fmt: skip
            try:
                steps.run("target", lambda: check_target(prepared, emergency, force))
            except BlueGreenError as exc:
                result.error, result.steps = str(exc), steps.steps
                result.message = f"nothing changed: {exc}"
                result.duration_s = round(time.monotonic() - started, 3)
                return result
            forced = bool(force and not prepared.plan.target_healthy)
            applied = _apply(ctx, steps, prepared.app, prepared.changes, prepared.from_live,
                             prepared.to_live, emergency, forced)  # fmt: skip
        # The cfg lock is released here: other apps switch during this one's drain and watch.
        result.executed = applied.touched
        result.split_window_ms = applied.window_ms
        rollback: Applied | None = None
        if applied.error is not None:
            result.error = applied.error
            result.rolled_back = applied.touched and applied.restored
            result.message = (f"switch failed and was rolled back: {applied.error}"
                              if result.rolled_back
                              else f"SWITCH FAILED AND WAS NOT ROLLED BACK: {applied.error}"
                              if applied.touched else f"nothing changed: {applied.error}")  # fmt: skip
        else:
            result.verified = True
            try:
                _finish(ctx, steps, prepared, emergency, result)
                # A reconcile moves no user of the primary: its LIVE was already the target.
                if not emergency and not prepared.plan.reconcile:
                    rollback = _watch(ctx, steps, prepared, break_lock, result)
            except Exception as exc:  # traffic moved: the state file and history line still come
                error = (
                    exc if isinstance(exc, BlueGreenError) else internal_error("the switch", exc)
                )
                result.error = (
                    f"traffic moved to {prepared.to_live.upper()} (verified), then {error}"
                )
                if not any(s.name == "state-file" for s in steps.steps):
                    _write_state(ctx, steps, prepared, prepared.to_live, result, reread=False)
        result.steps = steps.steps
        # A new LIVE that failed the post-switch watch is not a success, rolled back or not.
        result.ok = result.verified and not result.auto_rollback and result.error is None
        result.duration_s = round(time.monotonic() - started, 3)
        err = history.record(
            ctx, "switch", app_name, _outcome(result, rollback), from_live=prepared.from_live,
            to_live=prepared.to_live, from_commit=prepared.plan.live_commit,
            to_commit=prepared.plan.target_commit, approval=approval, emergency=emergency,
            reconcile=prepared.plan.reconcile,
            reason=reason, duration_s=result.duration_s, steps=steps.steps, error=result.error,
            split_window_ms=result.split_window_ms,
        )  # fmt: skip
        if err:
            result.message += f" ({err})"
        if cfg.release_error:
            result.message += f" ({cfg.release_error})"
    if lock.release_error:
        result.message += f" ({lock.release_error})"
    if result.ok:
        # What went wrong after the verified switch (state file, history, lock) stays said.
        window = result.split_window_ms
        apart = ("" if window is None else f" (the {len(prepared.nodes)} HAProxy nodes routed "
                 f"to different colours for {window:g} ms)")  # fmt: skip
        head = (f"{prepared.to_live.upper()} is LIVE; {prepared.from_live.upper()} is STANDBY, "
                "untouched: switching back is the instant rollback")  # fmt: skip
        if prepared.plan.reconcile:
            changed = ", ".join(n.name for n in prepared.nodes)
            head = f"every HAProxy node routes to {prepared.to_live.upper()} ({changed} changed)"
        result.message = head + apart + result.message
        result.next_step = (f"Watch the app; to roll back, switch_traffic again (emergency=true "
                            f"goes straight back to {prepared.from_live.upper()}).")  # fmt: skip
    return result


def _outcome(result: SwitchResult, rollback: Applied | None) -> str:
    if result.ok:
        return "ok"
    if rollback is not None:
        return "auto-rolled-back" if rollback.error is None else "auto-rollback-failed"
    return "failed"


def _apply(
    ctx: Context, steps: StepRecorder, app: AppConfig, changes: Sequence[NodeChange],
    from_live: str, to_live: str, emergency: bool, forced: bool = False,
) -> Applied:  # fmt: skip
    """On each node, put `swap.new` in place of `swap.old` (the one file `swap.path`) and make
    traffic reach `to_live` through every node. Runs under the cfg lock of that file. Every node
    is backed up, checked and compared before any node changes; then each step runs on every
    node at once.

    A touched cfg is restored to `old` on failure (retrying while a node cannot be reached), on
    every node, so HAProxy is never left with an unchecked or unapplied cfg without the result
    saying so."""
    hp = ctx.config.haproxy
    runner = ctx.runner
    path = changes[0].swap.path  # the same file on every node (the plan refuses otherwise)
    saved = cfg_backup_name(ctx.now(), from_live, to_live, path)

    def backup(change: NodeChange) -> str:
        swap = change.swap
        command = backup_cfg_command(swap.path, hp.work_dir, saved, hp.cfg_backups, hp.sudo)
        r = runner.run(change.host, command)
        if not r.ok:
            raise CommandFailed(f"backing up {swap.path} failed", host=change.host,
                                exit_status=r.exit_status, output_tail=r.tail())  # fmt: skip
        return saved

    def validate(change: NodeChange) -> str:
        swap = change.swap
        candidate = check_path(swap.path)
        runner.write_file_atomic(change.host, candidate, swap.new)
        try:
            # Every file HAProxy loads, the candidate in place of the one it replaces.
            check = check_command(hp.check, swap.check_paths, hp.sudo)
            r = runner.run(change.host, check, timeout=60)
        finally:
            runner.run(change.host, remove_command(candidate, hp.sudo))
        what = ("the new cfg could not be checked: " + not_found(hp.check[0])
                if r.exit_status == COMMAND_NOT_FOUND else "`haproxy -c` on the new cfg failed")  # fmt: skip
        if not r.ok:
            raise CommandFailed(what, host=change.host, exit_status=r.exit_status,
                                output_tail=r.tail())  # fmt: skip
        return "the new cfg is valid"

    def compare(change: NodeChange) -> str:
        # The compare-and-swap: under the cfg lock, so no bluegreen writer comes in between.
        if runner.read_file(change.host, change.swap.path) != change.swap.old:
            raise CfgChanged(f"{change.swap.path} changed since the plan",
                             hint="another writer came in between: ask for a new plan")  # fmt: skip
        return f"{change.swap.path} is the file the plan read"

    try:
        on_every_node(steps, "backup-cfg", changes, backup)
        on_every_node(steps, "check-cfg", changes, validate)
        on_every_node(steps, "compare-cfg", changes, compare)
    except BlueGreenError as exc:
        return Applied(f"{exc} ({path} untouched)")

    def replace(change: NodeChange) -> str:
        runner.write_file_atomic(change.host, change.swap.path, change.swap.new)
        return ""

    try:
        on_every_node(steps, "replace-cfg", changes, replace)
        reloaded = on_every_node(steps, "reload", changes, lambda c: reload(ctx, c.host))
        window = spread_ms(reloaded)
        if window is not None:
            steps.info("reload", f"the nodes routed to different colours for {window:g} ms")
        on_every_node(steps, "verify", changes,
                      lambda c: verify(ctx, app, c.swap.after, to_live, emergency, forced, c.host))  # fmt: skip
        return Applied(touched=True, window_ms=window)
    except BlueGreenError as exc:
        failure = str(exc)

    def restore(change: NodeChange) -> str:
        # Read back first: after a failed or interrupted replace the file may still be the old one.
        now = runner.read_file(change.host, change.swap.path)
        if now == change.swap.old:
            return "haproxy.cfg is the previous one"
        if now != change.swap.new:
            raise CfgChanged(
                "haproxy.cfg is neither the file this switch read nor the one it wrote: another "
                "writer changed it, so it is left as it is and not reloaded by this switch",
                hint="run status and decide by hand",
            )
        runner.write_file_atomic(change.host, change.swap.path, change.swap.old)
        return "the previous haproxy.cfg is written back"

    deadline = time.monotonic() + RESTORE_RETRY_S
    while True:
        try:
            on_every_node(steps, "restore-cfg", changes, restore)
            on_every_node(steps, "reload-restored", changes, lambda c: reload(ctx, c.host))
            on_every_node(steps, "verify-restored", changes,
                          lambda c: verify(ctx, app, c.swap.files, from_live, True, node=c.host))  # fmt: skip
            break
        except TransportError as exc:  # a node cannot be reached (yet): reconnect and retry
            if time.monotonic() >= deadline:
                return Applied(_restore_failed(ctx, changes, failure, exc, saved, from_live, to_live), True)  # fmt: skip
            steps.info("restore-cfg", f"{exc}; retrying")
            time.sleep(1.0)
        except CfgChanged as exc:
            return Applied(f"{failure}; {exc}", touched=True)
        except BlueGreenError as exc:
            return Applied(_restore_failed(ctx, changes, failure, exc, saved, from_live, to_live), True)  # fmt: skip
    where = "haproxy.cfg is" if len(changes) == 1 else "haproxy.cfg of every node is"
    return Applied(
        f"{failure}; the previous {where} back and {from_live.upper()} serves", True, True
    )


def _restore_failed(
    ctx: Context, changes: Sequence[NodeChange], failure: str, exc: BlueGreenError, backup: str,
    from_live: str, to_live: str,
) -> str:  # fmt: skip
    hp = ctx.config.haproxy
    path = changes[0].swap.path
    hosts = ", ".join(c.host for c in changes)
    return (
        f"{failure}; RESTORING THE PREVIOUS CFG ALSO FAILED: {exc}. {path} on {hosts} may "
        f"now be the new one (routing to {to_live.upper()}, checked with `haproxy -c`) while "
        f"HAProxy, not reloaded, may still route to {from_live.upper()}: run status (it reports a "
        f"cfg not reloaded), then put back {backup} from {cfg_backup_dir(hp.work_dir)} as {path} "
        "or reload HAProxy"
    )


def _finish(
    ctx: Context, steps: StepRecorder, prepared: Prepared, emergency: bool, result: SwitchResult
) -> None:
    hp = ctx.config.haproxy
    app = prepared.app
    now = ctx.now()
    if not emergency and app.drain_s > 0:
        steps.run("drain", lambda: drain(ctx, app.drain_s), hp.ssh)
    _write_state(ctx, steps, prepared, prepared.to_live, result, reread=False)

    roles = {prepared.to_live: "LIVE", prepared.from_live: "STANDBY"}
    steps.run("indicators", lambda: write_roles(ctx, app, roles, now))


def _write_state(
    ctx: Context, steps: StepRecorder, prepared: Prepared, live: str, result: SwitchResult, *,
    reread: bool,
) -> None:  # fmt: skip
    """Record `live` in the app's state file on every HAProxy node, starting from the file the
    plan read on the primary or (`reread`, after the switch's own write; other nodes) from the
    file as it is now. Never raises: traffic already moved, and the result and the history line
    must still be written; a failure is said."""
    hp = ctx.config.haproxy
    app = prepared.app
    standby = prepared.from_live if live == prepared.to_live else prepared.to_live

    def write(node: NodeChange) -> str:
        fresh = reread or node.host != hp.ssh
        raw = ctx.runner.read_file(node.host, app.state_file) if fresh else prepared.state_raw
        reading = parse_state(raw, list(app.servers))
        data = updated_for_switch(reading.state, live, standby, ctx.now())
        ctx.runner.write_file_atomic(node.host, app.state_file, data)
        return f"{app.state_file}: live={live}"

    try:
        on_every_node(steps, "state-file", prepared.changes, write)
        result.state_file_written = True
    except BlueGreenError as exc:
        result.state_file_written = False
        result.message += f" state file NOT written ({exc}); the next action repairs it."


def _watch(
    ctx: Context, steps: StepRecorder, prepared: Prepared, break_lock: bool, result: SwitchResult
) -> Applied | None:
    """Watch the new LIVE through HAProxy for watch_s; on WATCH_FAILURES failures in a row, roll
    back (when autoRollback). Returns what the rollback did, or None when there was none."""
    app = prepared.app
    if app.watch_s <= 0:
        return None
    hp = ctx.config.haproxy
    frontend = frontend_url(prepared.swap.after.loaded().cfg, app.frontend)
    if frontend is None:
        return None
    url = frontend + app.health.path

    def watch() -> str:
        deadline = time.monotonic() + app.watch_s
        failures = checks = unmeasured = 0
        while time.monotonic() < deadline:
            h = http_probe(ctx.runner, hp.ssh, url, 3, app.health.expect_status, app.host_header)
            checks += 1
            if h.unknown:
                # Our own path failed, not the new LIVE: no evidence either way, never a reason
                # to roll back a switch that was verified.
                unmeasured += 1
                time.sleep(0.5)
                continue
            good = h.healthy and (h.color is None or h.color == prepared.to_live)
            failures = 0 if good else failures + 1
            if failures >= WATCH_FAILURES:
                raise TrafficCheckFailed(f"the new LIVE {prepared.to_live.upper()} failed {failures} "
                                         f"checks in a row through HAProxy: {h.error or h.color}")  # fmt: skip
            time.sleep(0.5)
        seen = f"{checks} checks over {app.watch_s:g}s: {prepared.to_live.upper()} healthy"
        if unmeasured:
            seen += f" ({unmeasured} could not be made: our SSH path to the HAProxy host)"
        return seen

    try:
        steps.run("watch", watch, hp.ssh)
        return None
    except BlueGreenError as exc:
        problem = str(exc)
    if not app.auto_rollback:
        result.error = f"{problem}; autoRollback is off: roll back with switch_traffic"
        return None
    result.auto_rollback = True
    back = _roll_back(ctx, steps, prepared, break_lock, result)
    if back.error is None:
        _write_state(ctx, steps, prepared, prepared.from_live, result, reread=True)
        result.error = (
            f"{problem}; rolled back automatically: {prepared.from_live.upper()} is LIVE again"
        )
    else:
        result.error = f"{problem}; AUTO-ROLLBACK FAILED: {back.error}"
    return back


def _roll_back(
    ctx: Context, steps: StepRecorder, prepared: Prepared, break_lock: bool, result: SwitchResult
) -> Applied:
    """Route the app back to its previous LIVE, under the cfg lock taken again."""
    hp = ctx.config.haproxy
    try:
        path = prepared.swap.path
        with cfg_lock(ctx, prepared.app_name, "auto-rollback", path, break_lock=break_lock) as lock:
            back = steps.run("rollback-plan", lambda: plan_rollback(ctx, prepared), hp.ssh)
            applied = _apply(ctx, steps, prepared.app, back, prepared.to_live,
                             prepared.from_live, True)  # fmt: skip
    except BlueGreenError as exc:  # the cfg lock not had, or a cfg that is no longer ours
        return Applied(str(exc))
    if lock.release_error:
        result.message += f" ({lock.release_error})"
    return applied
