"""The audit log: one JSON line per deploy or switch, appended on the HAProxy host.

Appends are single small writes with O_APPEND (`cat >>`), so concurrent writers never interleave
inside a line. A corrupt line is skipped and counted, never fatal; a last line cut short (a crash
or a full disk mid-write) gets its newline before the next entry, so it cannot swallow it.
Lines are ASCII (JSON escapes the rest) and split on `\n` only: text holding U+2028 or U+0085,
which str.splitlines() takes as line breaks, stays inside its own entry.
"""

from __future__ import annotations

import json
import posixpath
import socket
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from bluegreen.domain import lock as dlock
from bluegreen.domain.command import Command
from bluegreen.engine.context import Context
from bluegreen.models import History, HistoryEntry

_APPEND = (
    'mkdir -p -- "$(dirname -- "$1")" && '
    '{ [ ! -s "$1" ] || [ -z "$(tail -c 1 -- "$1")" ] || echo >> "$1"; } && cat >> "$1"'
)


def history_path(work_dir: str, app: str) -> str:
    return posixpath.join(work_dir, "history", f"{app}.jsonl")


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
    command = Command.of(
        "sh", "-c", _APPEND, "bluegreen-history", history_path(hp.work_dir, entry.app),
        stdin=line.encode(), sudo=hp.sudo,
    )  # fmt: skip
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
