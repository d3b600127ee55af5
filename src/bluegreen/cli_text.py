"""Text from outside (history, lock holders, command output, errors) for the CLI's Rich markup.

Made safe by domain/display_text (no escape sequence, carriage return or bidi override reaches
the terminal, no field starts a line of its own, capped), then markup-escaped: `[red]` in a
reason is shown, not obeyed.
"""

from __future__ import annotations

from rich.markup import escape

from bluegreen.domain.display_text import FIELD_MAX, LINE_MAX, block, one_line


def safe(text: str | None, limit: int = FIELD_MAX) -> str:
    """One field or message, on one line."""
    return escape(one_line(text, limit))


def safe_block(text: str | None, indent: str = "", line_limit: int = LINE_MAX) -> str:
    """Multi-line text (command output, a diff, an error that lists problems), each line safe."""
    return escape(block(text, line_limit, indent))
