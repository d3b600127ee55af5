"""Deploys and switches started from this dashboard process, run in threads, with their step
events kept for the page that follows them."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bluegreen.engine.context import StepEvent
from bluegreen.errors import BlueGreenError

KEEP_JOBS = 50  # finished jobs kept for pages that still follow them


@dataclass
class Job:
    id: str
    app: str
    kind: str  # "deploy" | "switch"
    detail: str = ""  # what was asked, e.g. "ref v1.2" for a deploy
    events: list[StepEvent] = field(default_factory=list)
    done: bool = False
    ok: bool | None = None
    message: str = ""

    def view(self) -> dict[str, object]:
        return {
            "id": self.id, "app": self.app, "kind": self.kind, "detail": self.detail,
            "done": self.done, "ok": self.ok,
            "message": self.message,
            "steps": [{"step": e.step, "status": e.status, "message": e.message,
                       "duration_s": e.duration_s} for e in self.events],
        }  # fmt: skip


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> dict[str, object] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.view() if job else None

    def start(
        self,
        app: str,
        kind: str,
        work: Callable[[Callable[[StepEvent], None]], tuple[bool, str]],
        detail: str = "",
    ) -> str:
        """Run `work(progress)` in a thread; it returns (ok, message)."""
        job = Job(id=secrets.token_urlsafe(12), app=app, kind=kind, detail=detail)
        with self._lock:
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP_JOBS]:
                self._jobs.pop(old)

        def progress(event: StepEvent) -> None:
            with self._lock:
                job.events.append(event)

        def run() -> None:
            try:
                ok, message = work(progress)
            except BlueGreenError as exc:
                ok, message = False, exc.message
            except Exception as exc:  # the page must learn that the job ended, however it ended
                ok, message = False, f"internal error: {type(exc).__name__}: {exc}"
            with self._lock:
                job.done, job.ok, job.message = True, ok, message

        threading.Thread(target=run, name=f"dashboard-{kind}-{app}", daemon=True).start()
        return job.id
