"""Step events -> lines on the terminal: a spinner while a step runs, a line when it ends."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.status import Status

from bluegreen.cli_text import safe
from bluegreen.domain.display_text import MESSAGE_MAX
from bluegreen.engine.context import StepEvent


class StepPrinter:
    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self._status: Status | None = None

    def __call__(self, event: StepEvent) -> None:
        if not self.enabled:
            return
        if event.status == "start":
            self._stop()
            self._status = self.console.status(f"{safe(event.step)} ...")
            self._status.start()
            return
        self._stop()
        marks = {"ok": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}
        mark = marks.get(event.status, "[blue]i[/]")
        took = f"{event.duration_s:7.2f}s" if event.duration_s is not None else " " * 8
        self.console.print(
            f"{mark} {safe(event.step):<16} {took}  {safe(event.message, MESSAGE_MAX)}"
        )

    def _stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __enter__(self) -> StepPrinter:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()
