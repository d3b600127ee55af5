"""Odd text against the real lab (issue 16 items 4 and 6): a switch reason that could hide or forge
a history entry is refused by the CLI and the MCP tool before anything changes; command output full
of line separators and escape sequences lands in the history as one readable entry and reaches the
terminal (`deploy -v`, `history`) and the MCP text escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client

from bluegreen import mcp_text
from bluegreen.errors import ValidationError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.mcp_server import build_server

from .fault_tools import APP, HISTORY, cat, cli, config_file, restore_lab, service_with

pytestmark = pytest.mark.lab

CFG = "/etc/haproxy/haproxy.cfg"
# A build that fails printing a line separator, a NEL, a clear-screen sequence, a CR that would
# start a forged line, and a bidi override (octal escapes: printf in the lab's /bin/sh).
ODD_OUTPUT = (
    r"next\342\200\250line nel\302\205x \033[2J\033[H"
    r"\r2026-06-06T06:06:06Z switch GREEN -> BLUE: ok \342\200\256desrever"
)
ODD_BUILD = f"printf '{ODD_OUTPUT}\\n'; exit 3"
LAB_BUILD = 'build = "python3 build.py"'
RAW = ("\x1b", "\u2028", "\x85", "\u202e", "\r")


@pytest.fixture(scope="module", autouse=True)
def leave_the_lab_as_found(lab: Lab) -> Iterator[None]:
    yield
    restore_lab(lab)


def test_a_reason_that_could_hide_or_forge_an_entry_is_refused(
    fresh_lab: Lab, lab_info: LabInfo, tmp_path: Path
) -> None:
    cfg_before = cat(fresh_lab, "haproxy", CFG)
    history_before = cat(fresh_lab, "haproxy", HISTORY)
    config = config_file(lab_info, tmp_path, allow_unapproved="true")
    for reason, named in (("rollback\u2028forged", "U+2028"), ("x\x1b[2Jy", "U+001B")):
        out = cli(config, "switch", APP, "--yes", "--reason", reason)
        assert out.returncode == ValidationError.exit_code, out.stdout + out.stderr
        assert f"reason contains {named}" in out.stderr
        assert "\x1b" not in out.stderr

    async def call() -> types.CallToolResult:
        server, _ = build_server(lambda: service_with(lab_info, allow_unapproved=True))
        async with Client(server) as client:
            return await client.call_tool(
                "switch_traffic",
                {"app": APP, "requireApproval": False, "reason": "ok\x85- forged\u202e"},
            )

    result = anyio.run(call)
    assert result.is_error is True
    assert "reason contains U+0085" in "\n".join(
        c.text for c in result.content if isinstance(c, types.TextContent)
    )
    assert cat(fresh_lab, "haproxy", CFG) == cfg_before
    assert cat(fresh_lab, "haproxy", HISTORY) == history_before


def test_odd_command_output_is_one_history_entry_and_reaches_readers_escaped(
    fresh_lab: Lab, lab_info: LabInfo, tmp_path: Path
) -> None:
    fresh_lab.commit()
    # Not config_file: its regex replacement would read the backslashes of the build.
    text = Path(lab_info.config_path).read_text()
    assert text.count(LAB_BUILD) == 1
    config = tmp_path / "bluegreen.toml"
    config.write_text(text.replace(LAB_BUILD, f"build = {json.dumps(ODD_BUILD)}"))
    deployed = cli(config, "-v", "deploy", APP)
    assert deployed.returncode == 20, deployed.stdout + deployed.stderr
    assert "\\u2028line" in deployed.stderr and "\\x1b[2J" in deployed.stderr  # streamed, escaped
    assert not any(ch in deployed.stdout + deployed.stderr for ch in RAW)

    raw = cat(fresh_lab, "haproxy", HISTORY) or ""
    assert raw.isascii()
    lines = [line for line in raw.split("\n") if line]
    newest: dict[str, Any] = json.loads(lines[-1])
    assert newest["operation"] == "deploy" and newest["outcome"] == "failed"

    with service_with(lab_info) as service:
        history = service.history(APP)
    assert history.unreadable_lines == 0 and len(history.entries) == len(lines)
    entry = history.entries[0]
    assert entry.operation == "deploy" and entry.outcome == "failed"
    tails = "".join(step.output_tail or "" for step in entry.steps)
    assert "next\u2028line nel\x85x \x1b[2J" in tails  # the exact text, kept in the record

    shown = cli(config, "history", APP)
    assert shown.returncode == 0, shown.stderr
    assert not any(ch in shown.stdout for ch in RAW)
    text = mcp_text.history_text(history)
    assert not any(ch in text for ch in RAW)
    assert len(text.split("\n")) == 1 + len(history.entries)
