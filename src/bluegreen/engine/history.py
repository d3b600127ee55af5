"""The audit log: one JSON line per deploy or switch, appended on the HAProxy host (the file and
its append command: domain/history_file.py). A corrupt line is skipped and counted, never fatal.
Lines are ASCII (JSON escapes the rest) and split on `\n` only: text holding U+2028 or U+0085,
which str.splitlines() takes as line breaks, stays inside its own entry.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from bluegreen.domain import lock as dlock
from bluegreen.domain.history_file import append_command, history_path
from bluegreen.engine.context import Context
from bluegreen.models import History, HistoryEntry


def who() -> tuple[str, str]:
    return dlock.current_user(), socket.gethostname()


def record(
    ctx: Context,
    operation: str,
    app: str,
    outcome: str,
    *,
    by: tuple[str, str] | None = None,
    **details: Any,
) -> str | None:
    """Write one history line: who (this process's user and host unless `by` says otherwise),
    when, what. Returns an error sentence instead of raising, like append."""
    user, host = by or who()
    known: dict[str, Any] = {"time": ctx.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "operation": operation, "app": app, "user": user, "host": host,
                             "outcome": outcome}  # fmt: skip
    try:
        entry = HistoryEntry(**known, **details)
    except PydanticValidationError as exc:  # a bad detail must not cost the line
        entry = HistoryEntry(**known, error=f"history details not kept: {exc}")
    return append(ctx, entry)


def append(ctx: Context, entry: HistoryEntry) -> str | None:
    """Append an entry; returns an error sentence instead of raising (history never undoes work)."""
    hp = ctx.config.haproxy
    line = json.dumps(entry.model_dump(mode="json"), ensure_ascii=True, separators=(",", ":"))
    line += "\n"
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
    for raw_line in (raw or b"").split(b"\n"):
        line = raw_line.decode(errors="replace")
        if not line.strip():
            continue
        try:
            entries.append(HistoryEntry.model_validate(json.loads(line)))
        except (ValueError, PydanticValidationError):
            bad += 1
    return History(app=app, entries=entries[-limit:][::-1], unreadable_lines=bad)
