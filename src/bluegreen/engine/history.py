"""The audit log: one JSON line per deploy or switch, appended on the HAProxy host (the file and
its append command: domain/history_file.py). A corrupt line is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import socket

from pydantic import ValidationError as PydanticValidationError

from bluegreen.domain import lock as dlock
from bluegreen.domain.history_file import append_command, history_path
from bluegreen.engine.context import Context
from bluegreen.models import History, HistoryEntry


def who() -> tuple[str, str]:
    return dlock.current_user(), socket.gethostname()


def append(ctx: Context, entry: HistoryEntry) -> str | None:
    """Append an entry; returns an error sentence instead of raising (history never undoes work)."""
    hp = ctx.config.haproxy
    line = entry.model_dump_json(exclude_defaults=False) + "\n"
    command = append_command(history_path(hp.work_dir, entry.app), line.encode(), hp.sudo)
    try:
        result = ctx.runner.run(hp.ssh, command, timeout=30)
    except Exception as exc:  # the operation is done; report, don't mask its outcome
        return f"history not written: {exc}"
    return None if result.ok else f"history not written: {result.tail(3)}"


def read(ctx: Context, app: str, limit: int = 20) -> History:
    hp = ctx.config.haproxy
    raw = ctx.runner.read_file(hp.ssh, history_path(hp.work_dir, app))
    entries: list[HistoryEntry] = []
    bad = 0
    for line in (raw or b"").decode(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entries.append(HistoryEntry.model_validate(json.loads(line)))
        except (ValueError, PydanticValidationError):
            bad += 1
    return History(app=app, entries=entries[-limit:][::-1], unreadable_lines=bad)
