"""How the CLI shows results to people: colours for BLUE/GREEN and LIVE/STANDBY, short tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bluegreen.models import AppStatus, ServerStatus

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
    return f"[red]FAIL[/] {h.status_code or ''}"


def print_status(console: Console, status: AppStatus) -> None:
    verdict = "[green]certain[/]" if status.certain else "[bold red]UNCERTAIN[/]"
    console.print(f"[bold]{status.app}[/]  routing {verdict}: {status.routing.summary}")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("role", "server", "ssh", "address", "health", "commit", "deployed", "haproxy"):
        table.add_column(column)
    for server in sorted(status.servers, key=lambda s: (s.role != "LIVE", s.color)):
        table.add_row(
            role_text(server.role),
            color_text(server.color),
            server.ssh + ("" if server.reachable is not False else " [red](down)[/]"),
            server.address,
            _health(server),
            (server.commit or "-")[:12],
            server.deployed_at or "-",
            server.runtime_state or "-",
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
