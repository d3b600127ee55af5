"""Run independent host calls concurrently, e.g. status reads on BLUE, GREEN and HAProxy at once.

Results come back in the order of the calls; a call that raised yields its exception instead of
a result, so one unreachable host does not hide what the others said. Only `Exception`s are
captured: KeyboardInterrupt and friends still stop the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bluegreen.domain.command import Command
from bluegreen.transport.base import CommandResult, Runner

T = TypeVar("T")
MAX_WORKERS = 16


def parallel(
    calls: Sequence[Callable[[], T]], *, max_workers: int | None = None
) -> list[T | Exception]:
    """Call every function in its own worker thread; results (or exceptions) in call order."""
    if not calls:
        return []
    workers = max_workers or min(len(calls), MAX_WORKERS)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bluegreen-io") as pool:
        futures = [pool.submit(call) for call in calls]
        outcomes: list[T | Exception] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


def run_parallel(
    runner: Runner,
    calls: Sequence[tuple[str, Command]],
    *,
    timeout: float | None = None,
    max_workers: int | None = None,
) -> list[CommandResult | Exception]:
    """`runner.run(host, command)` for every pair at once; results (or exceptions) in order."""

    def bind(host: str, command: Command) -> Callable[[], CommandResult]:
        return lambda: runner.run(host, command, timeout=timeout)

    return parallel([bind(host, command) for host, command in calls], max_workers=max_workers)
