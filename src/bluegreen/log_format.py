"""Log records made safe for the terminal they end up on (`bluegreen -v`, the MCP server's stderr).

`-v` streams remote output line by line: whatever a command printed (a commit subject with a
clear-screen sequence, a build tool's progress bar with `\r`) would reach the terminal as is.
"""

from __future__ import annotations

import logging
from typing import Any

from bluegreen.domain.display_text import block, one_line

LOG_LINE_MAX = 4000  # above the streamer's own cut of a remote line


class SafeFormatter(logging.Formatter):
    """A record's message on one line, made safe by display_text; a traceback keeps its lines,
    each made safe."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record), LOG_LINE_MAX)

    def formatException(self, ei: Any) -> str:
        return block(super().formatException(ei), LOG_LINE_MAX)

    def formatStack(self, stack_info: str) -> str:
        return block(super().formatStack(stack_info), LOG_LINE_MAX)
