"""Short plain-text summaries of results and errors, for the MCP tools' text content.

The structured content carries every field; this text is what a person (or an assistant reading
quickly) needs: who is LIVE, what changed, what went wrong, and what to do next. Text from outside
(history, lock holders, command output, errors) goes through domain/display_text first: one line
per field, no control, bidi or line-separator characters, capped; output lines indented.
"""

from __future__ import annotations

import json

from bluegreen.domain.display_text import FIELD_MAX, MESSAGE_MAX, TEXT_MAX, block, one_line
from bluegreen.engine.context import StepEvent
from bluegreen.errors import BlueGreenError, CommandFailed, TransportError
from bluegreen.models import (
    AppStatus,
    AppSummary,
    DeployResult,
    Health,
    History,
    ServerStatus,
    StepResult,
    SwitchPlan,
    SwitchResult,
)

TAIL_LINES = 15


def as_json(data: object) -> str:
    """Structured content as text for the model: ASCII JSON, so control, bidi and line-separator
    characters from hosts arrive as escapes (the exact text once decoded)."""
    return json.dumps(data, ensure_ascii=True, indent=2)


def _c(color: str | None) -> str:
    return one_line((color or "?").upper())


def _short(commit: str | None) -> str:
    return one_line(commit[:12]) if commit else "?"


def _f(text: str | None) -> str:
    """A short field from outside: a name, a host, a time."""
    return one_line(text, FIELD_MAX)


def _m(text: str | None) -> str:
    """A message or error (ours, quoting outside text)."""
    return one_line(text, MESSAGE_MAX)


def _health(health: Health | None, healthy: bool | None = None) -> str:
    if health is None:
        return "health unknown" if healthy is None else ("healthy" if healthy else "UNHEALTHY")
    if health.healthy:
        latency = f", {health.latency_ms:.0f}ms" if health.latency_ms is not None else ""
        return f"healthy ({health.status_code}{latency})"
    if health.unknown:  # our path could not make the probe: its reason follows on its own line
        return "health unknown"
    return f"UNHEALTHY ({f'HTTP {health.status_code}' if health.status_code else 'no answer'})"


def _probe_said(color: str | None, health: Health | None) -> list[str]:
    """What a failed probe got back (or its error): the host's words, on a line of their own,
    labelled, escaped and capped, never inside a sentence of ours."""
    if health is None or health.healthy or not health.error:
        return []
    return [f"  health probe of {_c(color)} said: {one_line(health.error, TEXT_MAX)}"]


def _server_lines(role: str, server: ServerStatus) -> list[str]:
    if server.pool:  # the pool's line, then each server's
        healthy = f"{server.pool_healthy} of {len(server.pool)} servers healthy"
        commit = (
            f"commit {_short(server.commit)}" if server.commit else "servers on different commits"
        )
        lines = [f"{role}: {_c(server.color)} (a pool) - {healthy}, {commit}"]
        for member in server.pool:
            line = _server_line(f"  server {_f(member.server)}", member)
            lines += [line, *_probe_said(member.color, member.health)]
        return lines
    return [_server_line(role, server), *_probe_said(server.color, server.health)]


def _server_line(role: str, server: ServerStatus) -> str:
    if server.reachable is False:
        parts = ["SSH unreachable (see the problems below)"]
    else:
        parts = [_health(server.health, server.healthy), f"commit {_short(server.commit)}"]
        if server.deployed_at:
            parts[-1] += f" since {_f(server.deployed_at)}"
        if server.error:
            parts.append(_m(server.error))
    if server.runtime_state:
        parts.append(f"HAProxy runtime {_f(server.runtime_state)}")
    return f"{role}: {_c(server.color)} at {_f(server.address)} - " + ", ".join(parts)


def status_text(status: AppStatus) -> str:
    lines: list[str] = []
    if status.certain and status.live and status.standby:
        lines.append(
            f"{status.app}: LIVE is {_c(status.live.color)}, STANDBY is "
            f"{_c(status.standby.color)} (from haproxy.cfg)."
        )
        lines += _server_lines("LIVE", status.live) + _server_lines("STANDBY", status.standby)
        standby = status.standby
        lines.append(
            f"Test STANDBY {_c(standby.color)} before switching with "
            f"`{_m(standby.preview_command)}` ({_m(standby.preview_note)}); "
            f"LIVE {_c(status.live.color)} serves the users."
        )
    else:
        lines.append(
            f"{status.app}: LIVE/STANDBY is UNCERTAIN - {_m(status.routing.summary)}. "
            "Do not deploy or switch until the routing is fixed."
        )
        for server in status.servers:
            lines += _server_lines(server.role or "role unknown", server)
    if status.certain:
        lines.append(f"Routing: {_m(status.routing.summary)}")
    for server in status.servers:
        rules = ", ".join(f"{_f(', '.join(p.hosts) or '(no exact Host)')} ({_f(p.line)})"
                          for p in server.preview)  # fmt: skip
        lines.append(f"Preview {_c(server.color)}: {rules or 'no preview rule in haproxy.cfg'}")
    lines.extend(f"Routing note: {_m(note)}" for note in status.routing.notes)
    lines.extend(_m(node.summary()) for node in status.nodes)
    if status.lock:
        stale = " (STALE: breakLock=true can clear it)" if status.lock.stale else ""
        lines.append(
            f"Locked: {_f(status.lock.operation)} by {_f(status.lock.user)}@{_f(status.lock.host)} "
            f"since {_f(status.lock.since)}{stale}"
        )
    lines.append(
        f"Switches: {status.switch_count or 0}, last {_f(status.last_switch) or 'never'}; "
        f"state file {'ok' if status.state_file.valid else 'missing or invalid'}."
    )
    lines.extend(
        f"Problem: {_m(problem)}"
        for problem in status.problems
        if problem != status.routing.summary
    )
    if status.next_step:
        lines.append(f"Next: {_m(status.next_step)}")
    return "\n".join(lines)


def apps_text(apps: list[AppSummary]) -> str:
    if not apps:
        return "No apps are configured."
    lines = [f"{len(apps)} app(s) configured (call get_deployment_status for LIVE/STANDBY):"]
    for app in apps:
        servers = ", ".join(f"{_c(color)} {address}" for color, address in app.servers.items())
        lines.append(f"- {app.app}: frontend {app.frontend}; {servers}")
    return "\n".join(lines)


def history_text(history: History) -> str:
    if not history.entries:
        text = f"{history.app}: no deploys or switches recorded yet."
    else:
        lines = [f"{history.app}: last {len(history.entries)} operation(s), newest first:"]
        for entry in history.entries:
            if entry.operation == "switch":
                what = f"switch {_c(entry.from_live)} -> {_c(entry.to_live)}"
                if entry.emergency:
                    what += " (emergency)"
                if entry.approval:
                    what += f", approved by {entry.approval.describe()}"
            else:
                what = f"{_f(entry.operation)} {_c(entry.color) if entry.color else ''}".rstrip()
                if entry.commit_after:
                    what += f" {_short(entry.commit_before)} -> {_short(entry.commit_after)}"
            line = (
                f"- {_f(entry.time)} {what}: {_f(entry.outcome)} by "
                f"{_f(entry.user)}@{_f(entry.host)}"
            )
            if entry.reason:
                line += f" ({one_line(entry.reason, TEXT_MAX)})"
            if entry.error:
                line += f" - {one_line(entry.error, TEXT_MAX)}"
            lines.append(line)
        text = "\n".join(lines)
    if history.unreadable_lines:
        text += f"\n({history.unreadable_lines} unreadable history line(s) skipped)"
    return text


def _tail(text: str | None) -> str:
    """The last lines of command output, indented so none of them passes for a line of ours."""
    if not text:
        return ""
    return "\n".join(block(text.rstrip(), indent="  ").split("\n")[-TAIL_LINES:])


def _failed_steps(steps: list[StepResult]) -> list[str]:
    lines: list[str] = []
    for step in steps:
        if step.status != "failed":
            continue
        where = f" on {_f(step.host)}" if step.host else ""
        code = f" (exit {step.exit_status})" if step.exit_status is not None else ""
        lines.append(f"Failed step {step.name}{where}{code}: {_m(step.message)}".rstrip(": "))
        tail = _tail(step.output_tail)
        if tail:
            lines.append("Output (last lines):\n" + tail)
    return lines


def _steps_line(steps: list[StepResult]) -> str:
    return "Steps: " + ", ".join(f"{s.name} {s.status} {s.duration_s:.1f}s" for s in steps)


def deploy_text(result: DeployResult) -> str:
    target = f"STANDBY {_c(result.color)} ({result.address})"
    lines: list[str] = []
    if result.dry_run:
        lines.append(
            f"Dry run, nothing changed: deploy {result.ref or '(current checkout)'} to {target}; "
            f"LIVE {_c(result.live_color)} would not be touched. Commands:"
        )
        lines.extend(f"- [{p.step}] {_f(p.host)}: {_m(p.command)}" for p in result.plan)
    elif result.ok:
        lines.append(
            f"Deployed {result.app} to {target}: {_short(result.commit_before)} -> "
            f"{_short(result.commit_after)} in {result.duration_s:.1f}s. "
            f"LIVE {_c(result.live_color)} was not touched"
            + (
                f" and is {'healthy' if result.live_healthy_after else 'UNHEALTHY'}."
                if result.live_healthy_after is not None
                else "."
            )
        )
        if result.backup_path:
            lines.append(f"Backup of the previous version: {_m(result.backup_path)}")
        if result.servers:
            lines.append("Servers: " + ", ".join(_f(s.server) for s in result.servers))
    else:
        lines.append(
            f"Deploy of {result.app} to {target} FAILED"
            + (f" at step {result.failed_step}" if result.failed_step else "")
            + (f" on server {_f(result.failed_server)}" if result.failed_server else "")
            + (f": {_m(result.error)}" if result.error else ".")
        )
        every = " (every server of the pool it changed)" if result.servers else ""
        if result.restored is not None:
            lines.append(
                f"STANDBY was restored from the backup and restarted{every}."
                if result.restored
                else "STANDBY was NOT restored: it may be down until the next deploy."
            )
        lines.extend(f"- {_m(s.state)}" for s in result.servers if s.state)
        lines.append(f"LIVE {_c(result.live_color)} was not touched; users are unaffected.")
        lines.extend(_failed_steps(result.steps))
    if result.steps and not result.dry_run:
        lines.append(_steps_line(result.steps))
    lines.extend(f"Warning: {_m(warning)}" for warning in result.warnings)
    if result.next_step:
        lines.append(f"Next: {_m(result.next_step)}")
    return "\n".join(lines)


def plan_text(plan: SwitchPlan) -> str:
    kind = "EMERGENCY switch" if plan.emergency else "Switch"
    headline = (
        f"{kind} {plan.app}: LIVE {_c(plan.from_live)} -> {_c(plan.to_live)}; "
        f"{_c(plan.from_live)} becomes STANDBY, untouched (switching back is the rollback)."
    )
    if plan.reconcile:
        headline = (
            f"Reconcile {plan.app}: the HAProxy nodes that route to {_c(plan.from_live)} are "
            f"routed to {_c(plan.to_live)}, the primary's LIVE (each node's diff below)."
        )
    lines = [
        headline,
        f"Target {_c(plan.to_live)}: {_health(plan.target_health, plan.target_healthy)}, "
        f"commit {_short(plan.target_commit)}.",
        *_probe_said(plan.to_live, plan.target_health),
        *(
            f"  server {_f(s.server)} at {_f(s.address)}: "
            + ("ready" if s.ready else f"NOT ready: {_m(s.problem)}")
            for s in plan.target_servers
        ),
    ]
    lines.extend(f"Warning: {_m(warning)}" for warning in plan.warnings)
    if plan.diff:  # every line starts with a diff marker: no indent needed
        changed = _m(plan.cfg_file or "haproxy.cfg")
        lines.append(f"{changed} change (the only file replaced):\n" + block(plan.diff.rstrip()))
    return "\n".join(lines)


def approval_prompt(plan: SwitchPlan) -> str:
    """The question shown to the person asked to approve a switch (elicitation)."""
    return plan_text(plan) + "\n\nApprove this traffic switch now?"


def switch_text(result: SwitchResult) -> str:
    lines: list[str] = []
    if not result.executed:
        plan = result.plan
        if plan is not None and plan.confirm_token:
            lines.append(f"Approval needed - nothing changed yet. {result.message}".rstrip())
            lines.append(plan_text(plan))
            if plan.approval == "operator":
                lines.append(
                    f"This app needs an operator's approval: a person runs `bluegreen approve "
                    f"{plan.confirm_token}` on a terminal; then call switch_traffic again with "
                    f'confirmToken="{plan.confirm_token}".'
                )
            else:
                lines.append(
                    "Show this plan to the user. Only after they explicitly agree, call "
                    f'switch_traffic again with the same arguments plus confirmToken="'
                    f'{plan.confirm_token}".'
                )
            if plan.token_expires_at:
                lines.append(
                    f"The token is valid until {plan.token_expires_at}, for this plan only."
                )
        else:
            lines.append(
                f"Not switched: {_m(result.message or result.error) or 'nothing changed'}."
            )
            if plan is not None:
                lines.append(plan_text(plan))
    elif result.ok:
        lines.append(
            f"Switched {result.app}: {_c(result.to_live)} is now LIVE, {_c(result.from_live)} is "
            f"STANDBY (verified: {'yes' if result.verified else 'no'}) in {result.duration_s:.1f}s."
        )
        if result.message:
            lines.append(_m(result.message))
    else:
        lines.append(
            f"Switch of {result.app} FAILED: {_m(result.error or result.message) or 'see steps'}."
        )
        if result.rolled_back:
            how = " automatically (post-switch watch)" if result.auto_rollback else ""
            lines.append(f"Traffic was rolled back{how}: {_c(result.from_live)} is LIVE again.")
        lines.extend(_failed_steps(result.steps))
    if result.executed and result.steps:
        lines.append(_steps_line(result.steps))
    if result.next_step:
        lines.append(f"Next: {_m(result.next_step)}")
    return "\n".join(lines)


def error_text(exc: BlueGreenError) -> str:
    # A message may have lines of its own (a config error lists its problems).
    lines = [f"{type(exc).__name__}: {block(exc.message, MESSAGE_MAX)}"]
    if isinstance(exc, TransportError | CommandFailed):
        lines[0] += f" [host {_f(exc.host)}]"
    if exc.hint:
        lines.append(f"What to do: {_m(exc.hint)}")
    if isinstance(exc, CommandFailed):
        tail = _tail(exc.output_tail)
        if tail:
            lines.append(f"Output (exit {exc.exit_status}, last lines):\n{tail}")
    return "\n".join(lines)


def event_text(event: StepEvent) -> str:
    where = f"[{event.index}/{event.total}] " if event.index and event.total else ""
    took = f" ({event.duration_s:.1f}s)" if event.duration_s is not None else ""
    text = f"{where}{event.step}: {event.status}{took}"
    return f"{text} - {_m(event.message)}" if event.message else text
