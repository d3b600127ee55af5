"""How the CLI shows results to people: colours for BLUE/GREEN and LIVE/STANDBY, short tables."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bluegreen.models import AppStatus, History, ServerStatus, StepResult, SwitchPlan

COLOR_STYLE = {"blue": "bold blue", "green": "bold green"}
ROLE_STYLE = {"LIVE": "bold white on red", "STANDBY": "bold black on yellow"}


def color_text(color: str) -> str:
    return f"[{COLOR_STYLE.get(color, 'bold')}]{color.upper()}[/]"


def role_text(role: str | None) -> str:
    return f"[{ROLE_STYLE[role]}] {role} [/]" if role else "[bold red] ? [/]"


def _health(server: ServerStatus) -> str:
    h = server.health
    if h is None:
        return "-"
    if h.healthy:
        return f"[green]ok[/] {h.status_code} {h.latency_ms or 0:.0f}ms"
    return "[yellow]unknown[/]" if h.unknown else f"[red]FAIL[/] {h.status_code or ''}"


def print_status(console: Console, status: AppStatus) -> None:
    verdict = "[green]certain[/]" if status.certain else "[bold red]UNCERTAIN[/]"
    console.print(f"[bold]{status.app}[/]  routing {verdict}: {status.routing.summary}")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("role", "server", "health", "commit", "deployed", "haproxy", "ssh"):
        table.add_column(column, no_wrap=column != "ssh")
    for server in sorted(status.servers, key=lambda s: (s.role != "LIVE", s.color)):
        table.add_row(
            role_text(server.role),
            color_text(server.color),
            _health(server),
            (server.commit or "-")[:10],
            (server.deployed_at or "-")[:16].replace("T", " "),
            server.runtime_state or "-",
            server.ssh + ("" if server.reachable is not False else " [red](down)[/]"),
        )
    console.print(table)
    sf = status.state_file
    state = "missing" if not sf.present else ("ok" if sf.valid else "[red]invalid[/]")
    console.print(
        f"state file {sf.path}: {state}; switches {status.switch_count or 0}, "
        f"last {status.last_switch or 'never'}"
    )
    if status.lock:
        stale = " [red](STALE)[/]" if status.lock.stale else ""
        console.print(
            f"lock: {status.lock.operation} by {status.lock.user}@{status.lock.host} "
            f"since {status.lock.since}{stale}"
        )
    for problem in status.problems:
        console.print(f"[yellow]![/] {problem}")
    if status.next_step:
        console.print(f"[dim]next:[/] {status.next_step}")


def print_plan(console: Console, plan: SwitchPlan) -> None:
    console.print(
        f"[bold]{plan.app}[/]: switch LIVE {color_text(plan.from_live)} -> "
        f"{color_text(plan.to_live)}" + (" [bold red]EMERGENCY[/]" if plan.emergency else "")
    )
    health = plan.target_health
    if health:
        verdict = "[green]healthy[/]" if health.healthy else f"[red]NOT healthy[/] ({health.error})"
        if health.unknown:
            verdict = f"[yellow]health unknown[/] ({health.error})"
        console.print(
            f"target {plan.to_live.upper()}: {verdict}, commit {(plan.target_commit or '?')[:12]}"
        )
    console.print("haproxy.cfg change:")
    for line in plan.diff.splitlines():
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        console.print(f"[{style}]{escape(line)}[/]", highlight=False)
    for warning in plan.warnings:
        console.print(f"[yellow]![/] {warning}")


def print_steps(console: Console, steps: list[StepResult]) -> None:
    for step in steps:
        mark = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}[step.status]
        console.print(f"{mark} {step.name:<16} {step.duration_s:7.2f}s  {escape(step.message)}")
        if step.status == "failed" and step.output_tail:
            console.print(f"[dim]{escape(step.output_tail)}[/]")


def print_history(console: Console, history: History) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("time", "operation", "outcome", "change", "who", "took"):
        table.add_column(column)
    for e in history.entries:
        if e.operation == "switch":
            change = f"{(e.from_live or '?').upper()} -> {(e.to_live or '?').upper()}"
            change += " EMERGENCY" if e.emergency else ""
        else:
            change = f"{(e.color or '?').upper()} {(e.commit_before or '?')[:8]} -> {(e.commit_after or '?')[:8]}"
        outcome = f"[green]{e.outcome}[/]" if e.outcome == "ok" else f"[red]{e.outcome}[/]"
        took = f"{e.duration_s:.1f}s" if e.duration_s is not None else "-"
        table.add_row(e.time, e.operation, outcome, change, f"{e.user}@{e.host}", took)
    console.print(table)
    if history.unreadable_lines:
        console.print(f"[yellow]![/] {history.unreadable_lines} unreadable history lines skipped")
