"""The step recorder deploy and switch share: each step is a progress event when it starts and
when it ends, and a StepResult in the operation's report.

A step that fails raises its BlueGreenError on, after recording it. An unexpected exception (a bug)
is recorded and raised on as an InternalError, so the operation's own recovery and reporting (a
restore, the state file, the history line) still run instead of being skipped by a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from bluegreen.engine.context import Context, StepEvent
from bluegreen.errors import BlueGreenError, InternalError
from bluegreen.models import StepResult

T = TypeVar("T")


class StepRecorder:
    def __init__(self, ctx: Context, total: int | None = None) -> None:
        self.ctx = ctx
        self.total = total  # numbered steps report "index of total" (deploy's progress bar)
        self.steps: list[StepResult] = []

    def run(
        self,
        name: str,
        action: Callable[[], T],
        host: str | None = None,
        index: int | None = None,
    ) -> T:
        """Run `action` as step `name`; a str it returns is the step's message."""
        total = self.total if index else None
        self.ctx.progress(StepEvent(name, "start", index=index, total=total))
        began = time.monotonic()
        try:
            value = action()
        except Exception as exc:
            error = exc if isinstance(exc, BlueGreenError) else internal_error(name, exc)
            took = round(time.monotonic() - began, 3)
            self.steps.append(
                StepResult(
                    name=name,
                    status="failed",
                    duration_s=took,
                    message=str(error),
                    host=getattr(error, "host", None) or host,
                    exit_status=getattr(error, "exit_status", None),
                    output_tail=getattr(error, "output_tail", None),
                )
            )
            self.ctx.progress(StepEvent(name, "failed", str(error), took, index, total))
            if error is exc:
                raise
            raise error from exc
        took = round(time.monotonic() - began, 3)
        message = value if isinstance(value, str) else ""
        self.steps.append(
            StepResult(name=name, status="ok", duration_s=took, message=message, host=host)
        )
        self.ctx.progress(StepEvent(name, "ok", message, took, index, total))
        return value

    def skip(self, name: str, reason: str, index: int | None = None) -> None:
        self.steps.append(StepResult(name=name, status="skipped", duration_s=0.0, message=reason))
        total = self.total if index else None
        self.ctx.progress(StepEvent(name, "skipped", reason, 0.0, index, total))

    def info(self, name: str, message: str) -> None:
        self.ctx.progress(StepEvent(name, "info", message))


def internal_error(where: str, exc: BaseException) -> InternalError:
    return InternalError(
        f"internal error in {where}: {type(exc).__name__}: {exc}",
        hint="this is a bug: report it with the steps above",
    )
