"""What every engine operation gets: the config, a Runner, a clock and a progress callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bluegreen.domain.config import Config
from bluegreen.transport.base import Runner


@dataclass(frozen=True)
class StepEvent:
    """Progress of a long operation: a step started, finished or failed."""

    step: str
    status: str  # "start" | "ok" | "failed" | "skipped" | "info"
    message: str = ""
    duration_s: float | None = None
    index: int | None = None
    total: int | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ignore(_event: StepEvent) -> None:
    return None


@dataclass(frozen=True)
class Context:
    config: Config
    runner: Runner
    now: Callable[[], datetime] = utcnow
    progress: Callable[[StepEvent], None] = field(default=_ignore)
