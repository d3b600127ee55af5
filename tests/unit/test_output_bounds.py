"""Whatever a remote command prints, what the tool keeps and shows of it stays bounded."""

from __future__ import annotations

import logging

import pytest

from bluegreen.transport.base import TAIL_MAX_CHARS, CommandResult
from bluegreen.transport.ssh_channel import LineStreamer


def result(stdout: str, stderr: str = "") -> CommandResult:
    return CommandResult("h", "cmd", 1, stdout, stderr, 0.1)


def test_a_tail_is_its_last_lines() -> None:
    out = "\n".join(f"line {i}" for i in range(100))
    assert result(out, "boom").tail(3) == "line 98\nline 99\nboom"


def test_a_tail_keeps_the_exact_text_of_its_lines() -> None:
    """Only `\n` ends a line: a CR, U+2028 or U+0085 stays in the text the history records."""
    out = "first\nprogress 10%\rprogress 99%\r\nsep\u2028nel\x85end"
    assert result(out).tail(2) == "progress 10%\rprogress 99%\r\nsep\u2028nel\x85end"
    assert result(out).tail(1) == "sep\u2028nel\x85end"


def test_a_huge_line_cannot_bloat_a_tail() -> None:
    tail = result("x" * 3_000_000 + "END", "error: build failed").tail()
    assert len(tail) <= TAIL_MAX_CHARS
    assert tail.startswith("…") and tail.endswith("END\nerror: build failed")


def test_streaming_a_huge_line_stays_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bluegreen.remote")
    streamer = LineStreamer("blue", ())
    streamer.feed("out", b"before\n")
    blob = b"o" * 3_000_000
    for i in range(0, len(blob), 32768):
        streamer.feed("out", blob[i : i + 32768])
        assert len(streamer.partial["out"]) <= LineStreamer.LONG_LINE_BYTES + 32768
    streamer.feed("out", b"ooo\nafter\n")
    streamer.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "blue  | before" and lines[-1] == "blue  | after"
    assert len(lines) == 3  # the long line shown once, cut
    assert "cut)" in lines[1] and len(lines[1]) < 2 * LineStreamer.SHOWN_LINE_CHARS
