"""The audit log's file on the HAProxy host: where it is, and the command that appends to it.

Appends are single small writes with O_APPEND (`cat >>`), so concurrent writers never interleave
inside a line; a last line cut short (a crash or a full disk mid-write) gets its newline before
the next entry, so it cannot swallow it. The path reaches the script only as "$1".
"""

from __future__ import annotations

import posixpath

from bluegreen.domain.command import Command

_APPEND = (
    'mkdir -p -- "$(dirname -- "$1")" && '
    '{ [ ! -s "$1" ] || [ -z "$(tail -c 1 -- "$1")" ] || echo >> "$1"; } && cat >> "$1"'
)


def history_path(work_dir: str, app: str) -> str:
    return posixpath.join(work_dir, "history", f"{app}.jsonl")


def append_command(path: str, line: bytes, sudo: bool) -> Command:
    return Command.of("sh", "-c", _APPEND, "bluegreen-history", path, stdin=line, sudo=sudo)
