"""How the CLI shows results to people: colours for BLUE/GREEN and LIVE/STANDBY, short tables.

Text from outside (history, lock holders, command output, errors) goes through cli_text first.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bluegreen.cli_text import safe, safe_block
from bluegreen.domain.display_text import MESSAGE_MAX, TEXT_MAX, block, one_line
from bluegreen.domain.routing import RoutingAnalysis, describe
from bluegreen.models import AppStatus, History, ServerStatus, StepResult, SwitchPlan

COLOR_STYLE = {"blue": "bold blue", "green": "bold green"}
ROLE_STYLE = {"LIVE": "bold white on red", "STANDBY": "bold black on yellow"}


def color_text(color: str) -> str:
    return f"[{COLOR_STYLE.get(color, 'bold')}]{safe(color.upper())}[/]"


def role_text(role: str | None) -> str:
    return f"[{ROLE_STYLE[role]}] {role} [/]" if role else "[bold red] ? [/]"


def _health(server: ServerStatus) -> str:
    h = server.health
    if server.pool:
        count = f"{server.pool_healthy}/{len(server.pool)} ok"
        return f"[green]{count}[/]" if server.healthy else f"[red]{count}[/]"
    if h is None:
        return "-"
    if h.healthy:
        return f"[green]ok[/] {h.status_code} {h.latency_ms or 0:.0f}ms"
    return "[yellow]unknown[/]" if h.unknown else f"[red]FAIL[/] {h.status_code or ''}"


def print_status(console: Console, status: AppStatus) -> None:
    verdict = "[green]certain[/]" if status.certain else "[bold red]UNCERTAIN[/]"
    console.print(
        f"[bold]{status.app}[/]  routing {verdict}: {safe(status.routing.summary, MESSAGE_MAX)}"
    )
    table = Table(show_edge=False, pad_edge=False)
    for column in ("role", "server", "health", "commit", "deployed", "haproxy", "ssh"):
        table.add_column(column, no_wrap=column != "ssh")
    for colour in sorted(status.servers, key=lambda s: (s.role != "LIVE", s.color)):
        # A pool: the colour's row sums it up, a row per server follows.
        for server in (colour, *colour.pool):
            pooled = server is not colour
            table.add_row(
                "" if pooled else role_text(server.role),
                f"  {safe(server.server or '')}" if pooled else color_text(server.color),
                _health(server),
                safe((server.commit or ("drift" if colour.pool else "-"))[:10]),
                safe((server.deployed_at or "-")[:16].replace("T", " ")),
                safe(server.runtime_state or "-"),
                ("" if colour.pool and not pooled else safe(server.ssh))
                + ("" if server.reachable is not False else " [red](down)[/]"),
            )
    console.print(table)
    for node in status.nodes:
        console.print(safe(node.summary(), MESSAGE_MAX))
    prompts = [
        (s.color, s.prompt_installed) for s in status.servers if s.prompt_installed is not None
    ]
    if prompts:
        shown = ", ".join(f"{color_text(c)} {'yes' if has else 'no'}" for c, has in prompts)
        console.print(f"role prompt (`bluegreen prompt`): {shown}")
    for server in sorted(status.servers, key=lambda s: (s.role != "LIVE", s.color)):
        rules = ", ".join(f"{safe(', '.join(p.hosts) or '(no exact Host)')} ({safe(p.line)})"
                          for p in server.preview)  # fmt: skip
        console.print(f"preview {color_text(server.color)}: {rules or 'none in haproxy.cfg'}",
                      highlight=False)  # fmt: skip
        if server.preview_command:
            console.print(
                f"test {color_text(server.color)} now: {safe(server.preview_command)}  "
                f"[dim]{safe(server.preview_note, MESSAGE_MAX)}[/]",
                highlight=False,
            )
    for note in status.routing.notes:
        console.print(f"[dim]i[/] {safe(note, MESSAGE_MAX)}")
    sf = status.state_file
    state = "missing" if not sf.present else ("ok" if sf.valid else "[red]invalid[/]")
    console.print(
        f"state file {safe(sf.path)}: {state}; switches {status.switch_count or 0}, "
        f"last {safe(status.last_switch) or 'never'}"
    )
    if status.lock:
        stale = " [red](STALE)[/]" if status.lock.stale else ""
        console.print(
            f"lock: {safe(status.lock.operation)} by {safe(status.lock.user)}@"
            f"{safe(status.lock.host)} since {safe(status.lock.since)}{stale}"
        )
    for problem in status.problems:
        console.print(f"[yellow]![/] {safe(problem, MESSAGE_MAX)}")
    if status.next_step:
        console.print(f"[dim]next:[/] {safe(status.next_step, MESSAGE_MAX)}")


def print_plan(console: Console, plan: SwitchPlan) -> None:
    what = "reconcile the HAProxy nodes" if plan.reconcile else "switch LIVE"
    console.print(
        f"[bold]{plan.app}[/]: {what} {color_text(plan.from_live)} -> "
        f"{color_text(plan.to_live)}" + (" [bold red]EMERGENCY[/]" if plan.emergency else "")
    )
    health = plan.target_health
    if health:
        verdict = (
            "[green]healthy[/]"
            if health.healthy
            else f"[red]NOT healthy[/] ({safe(health.error, TEXT_MAX)})"
        )
        if health.unknown:
            verdict = f"[yellow]health unknown[/] ({safe(health.error, TEXT_MAX)})"
        console.print(
            f"target {safe(plan.to_live.upper())}: {verdict}, "
            f"commit {safe((plan.target_commit or '?')[:12])}"
        )
    for server in plan.target_servers:
        ready = "[green]ready[/]" if server.ready else f"[red]{safe(server.problem, TEXT_MAX)}[/]"
        console.print(f"  {safe(server.server)} {safe(server.address)}: {ready}")
    console.print(f"{safe(plan.cfg_file or 'haproxy.cfg')} change (the only file replaced):")
    for line in safe_block(plan.diff.rstrip()).splitlines():  # only \n is left to split on
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        console.print(f"[{style}]{line}[/]", highlight=False)
    for warning in plan.warnings:
        console.print(f"[yellow]![/] {safe(warning, MESSAGE_MAX)}")


def print_steps(console: Console, steps: list[StepResult]) -> None:
    for step in steps:
        mark = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}[step.status]
        message = safe(step.message, MESSAGE_MAX)
        console.print(f"{mark} {step.name:<16} {step.duration_s:7.2f}s  {message}")
        if step.status == "failed" and step.output_tail:
            console.print(f"[dim]{safe_block(step.output_tail, indent='  ')}[/]")


def print_history(console: Console, history: History) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("time", "operation", "outcome", "change", "who", "took"):
        # One row, one line: a long field wrapped inside its cell could pass for an entry.
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for e in history.entries:
        if e.operation == "switch":
            change = f"{(e.from_live or '?').upper()} -> {(e.to_live or '?').upper()}"
            change += " EMERGENCY" if e.emergency else ""
            change += f", approved by {e.approval.describe()}" if e.approval else ""
        else:
            change = f"{(e.color or '?').upper()} {(e.commit_before or '?')[:8]} -> {(e.commit_after or '?')[:8]}"
        outcome = (
            f"[green]{safe(e.outcome)}[/]" if e.outcome == "ok" else f"[red]{safe(e.outcome)}[/]"
        )
        took = f"{e.duration_s:.1f}s" if e.duration_s is not None else "-"
        table.add_row(
            safe(e.time), safe(e.operation), outcome, safe(change), f"{safe(e.user)}@{safe(e.host)}",
            took,
        )  # fmt: skip
    console.print(table)
    if history.unreadable_lines:
        console.print(f"[yellow]![/] {history.unreadable_lines} unreadable history lines skipped")


def inspection_lines(analysis: RoutingAnalysis) -> list[str]:
    """inspect-cfg's answer: the summary, then problems (!), preview lines kept (=), notes (i)."""
    lines = [block(describe(analysis), MESSAGE_MAX)]
    lines += [f"! {one_line(problem, MESSAGE_MAX)}" for problem in analysis.problems]
    lines += [
        f"= preview, {analysis.where(kept.line)}: {one_line(kept.text, MESSAGE_MAX)}"
        for kept in analysis.preview
    ]
    lines += [f"i {one_line(note, MESSAGE_MAX)}" for note in analysis.notes]
    return lines
