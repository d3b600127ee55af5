"""MCP progress notifications reach the client from every thread a tool's work starts."""

from __future__ import annotations

import threading
from typing import Any, cast

import anyio
import anyio.to_thread

from bluegreen.engine.context import StepEvent
from bluegreen.mcp_server import progress_bridge


class _Ctx:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str | None]] = []

    async def report_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        self.sent.append((progress, message))


def test_events_from_threads_the_worker_starts_are_delivered() -> None:
    """A pool deploy runs its servers in threads of its own (not anyio's worker thread): their
    step events must still become notifications (they were silently lost)."""
    ctx = _Ctx()

    async def main() -> None:
        on_event = progress_bridge(cast(Any, ctx), "deploy_to_standby")

        def work() -> None:
            on_event(StepEvent("build green1", "start"))
            inner = [
                threading.Thread(target=on_event, args=(StepEvent(f"build green{i}", "ok"),))
                for i in (2, 3)
            ]
            for thread in inner:
                thread.start()
            for thread in inner:
                thread.join()

        await anyio.to_thread.run_sync(work)

    anyio.run(main)
    assert sorted(progress for progress, _ in ctx.sent) == [1.0, 2.0, 3.0]
    messages = " ".join(message or "" for _, message in ctx.sent)
    assert all(f"green{i}" in messages for i in (1, 2, 3)), messages
