"""Text from outside made safe for its reader (issue 16 item 6): the pure functions, and a forged
history entry, lock holder and command output through the CLI, the MCP text and the `-v` log."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import Client
from rich.console import Console
from tests.unit.fake_hosts import APP, CONFIG_TOML, HP, FakeHosts, config

from bluegreen import cli, mcp_text
from bluegreen.cli_render import print_history, print_status, print_steps
from bluegreen.domain.display_text import FIELD_MAX, block, is_unsafe, one_line
from bluegreen.errors import LockedError
from bluegreen.log_format import SafeFormatter
from bluegreen.mcp_server import build_server
from bluegreen.models import (
    AppStatus,
    Health,
    History,
    HistoryEntry,
    LockHolder,
    PreviewRoute,
    Role,
    Routing,
    ServerStatus,
    StateFileView,
    StepResult,
    SwitchResult,
)
from bluegreen.service import Service, SwitchRequest

HISTORY = f"/var/lib/bluegreen/history/{APP}.jsonl"
# What a line of ours looks like in the MCP history text and in the CLI's history table.
FORGED = "2026-06-06T06:06:06Z switch GREEN -> BLUE: ok by root@prod"
HOSTILE = {
    "crlf": f"ok\r\n- {FORGED}",
    "cr": f"ok\r- {FORGED}",
    "line separator": f"ok\u2028- {FORGED}",
    "next line": f"ok\x85- {FORGED}",
    "clear screen": "ok\x1b[2J\x1b[H- " + FORGED,
    "bidi override": "ok \u202e" + FORGED[::-1],
    "osc hyperlink": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
}
RAW = ("\x1b", "\r", "\u2028", "\x85", "\u202e", "\x07")


def assert_safe(text: str) -> None:
    assert not any(ch in text for ch in RAW), repr(text)
    assert not re.search(r"(?m)^\W*" + re.escape(FORGED[:20]), text), text


# ---- the pure functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [("a\x1b[2Jb", "a\\x1b[2Jb"), ("a\rb", "a\\rb"), ("a\nb", "a\\nb"), ("a\tb", "a\\tb"),
     ("a\x85b", "a\\x85b"), ("a\u2028b", "a\\u2028b"), ("a\u2029b", "a\\u2029b"),
     ("a\u202eb", "a\\u202eb"), ("a\u2066b", "a\\u2066b"), ("a\u200bb", "a\\u200bb"),
     ("a\x7fb", "a\\x7fb"), ("a\x00b", "a\\x00b"), ("a\x9bb", "a\\x9bb"),
     ("a\udcffb", "a\\udcffb"), ("Grüße, 回滚 ✓ [red]", "Grüße, 回滚 ✓ [red]"), ("", "")],
)  # fmt: skip
def test_one_line_escapes_every_unsafe_character_and_keeps_the_rest(raw: str, shown: str) -> None:
    assert one_line(raw) == shown


def test_one_line_caps_and_says_what_was_cut() -> None:
    assert (
        one_line("x" * 1_000_000)
        == "x" * FIELD_MAX + f" … ({1_000_000 - FIELD_MAX} more characters)"
    )
    assert one_line("abcdef", 3) == "abc … (3 more characters)"
    assert one_line(None) == ""


def test_block_keeps_line_breaks_escapes_the_rest_and_indents() -> None:
    assert block("one\r\ntwo\rthree\x1b[2J\u2028four", indent="  ") == (
        "  one\n  two\\rthree\\x1b[2J\\u2028four"
    )
    assert block("a" * 10 + "\nb", line_limit=4) == "aaaa … (6 more characters)\nb"


def test_the_unsafe_set_is_what_reason_validation_refuses() -> None:
    for char in "\x1b\r\n\t\x85\u2028\u2029\u202a\u202e\u2066\u2069\u200e\u061c\x00\x7f":
        assert is_unsafe(char), repr(char)
    for char in "aZ9 _-.,:;'\"[]()/\\äß回✓€":
        assert not is_unsafe(char), repr(char)


# ---- a forged history entry in every reader ------------------------------------------------------


def hostile_history() -> History:
    def switch(i: int, text: str) -> HistoryEntry:
        return HistoryEntry(
            time=f"2026-01-0{i + 1}T00:00:00Z", operation="switch", app=APP, user="ops",
            host="laptop", outcome="ok", from_live="blue", to_live="green", reason=text,
            error=text,
        )  # fmt: skip

    every_field = HistoryEntry(
        time=HOSTILE["crlf"], operation=HOSTILE["cr"], app=APP, user=HOSTILE["clear screen"],
        host=HOSTILE["line separator"], outcome=HOSTILE["next line"], color="green",
        commit_before=HOSTILE["bidi override"], commit_after="\x1b[2J" + "a" * 40,
    )  # fmt: skip
    entries = [switch(i, text) for i, text in enumerate(HOSTILE.values())]
    return History(app=APP, entries=[*entries, every_field])


def test_mcp_history_text_shows_one_line_per_entry_and_no_forged_line() -> None:
    history = hostile_history()
    text = mcp_text.history_text(history)
    assert_safe(text)
    assert len(text.split("\n")) == 1 + len(history.entries)
    assert "ok\\r\\n- 2026-06-06T06:06:06Z switch" in text  # shown, escaped, in its own entry


def cli_console(width: int = 400) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=width, force_terminal=True, color_system=None), buffer


@pytest.mark.parametrize("width", [400, 80, 40])
def test_cli_history_table_shows_no_forged_line(width: int) -> None:
    console, buffer = cli_console(width)
    history = hostile_history()
    print_history(console, history)
    assert_safe(buffer.getvalue())
    header_lines = 2  # titles, rule
    assert len(buffer.getvalue().rstrip("\n").split("\n")) == header_lines + len(history.entries)


def hostile_status() -> AppStatus:
    def server(color: str, role: Role) -> ServerStatus:
        return ServerStatus(
            color=color, role=role, ssh=f"root@{color}", address=f"{color}:3001",
            reachable=True, healthy=False,
            health=Health(url=f"http://{color}:3001/health", healthy=False,
                          error=HOSTILE["crlf"]),
            commit=HOSTILE["clear screen"], deployed_at=HOSTILE["cr"],
            runtime_state=HOSTILE["line separator"], error=HOSTILE["next line"],
            preview=[PreviewRoute(hosts=[f"{color}.theoshift.com", HOSTILE["crlf"]],
                                  line="/etc/haproxy/haproxy.cfg:9",
                                  text=HOSTILE["bidi override"])],
            preview_command=f"curl -H 'Host: {color}.theoshift.com' http://10.92.3.33:80/",
            preview_note="through the frontend with its preview Host (/etc/haproxy/haproxy.cfg:9)",
        )  # fmt: skip

    live, standby = server("blue", "LIVE"), server("green", "STANDBY")
    return AppStatus(
        app=APP, certain=True, live=live, standby=standby, servers=[live, standby],
        routing=Routing(certain=True, frontend="http-in", summary=HOSTILE["bidi override"],
                        notes=[HOSTILE["osc hyperlink"]]),
        state_file=StateFileView(path="/s.json", present=True, valid=True),
        lock=LockHolder(operation="switch", user=HOSTILE["crlf"], host=HOSTILE["clear screen"],
                        since=HOSTILE["bidi override"], pid=1),
        last_switch=HOSTILE["cr"], problems=list(HOSTILE.values()),
        next_step=HOSTILE["osc hyperlink"], checked_at="now", duration_ms=1.0,
    )  # fmt: skip


def test_cli_and_mcp_status_show_outside_fields_safely() -> None:
    console, buffer = cli_console()
    print_status(console, hostile_status())
    print_steps(console, [StepResult(name="build", status="failed", duration_s=1.0,
                                     message=HOSTILE["cr"])])  # fmt: skip
    assert_safe(buffer.getvalue())
    assert "lock: switch by ok\\r\\n- 2026-06-06" in buffer.getvalue()
    text = mcp_text.status_text(hostile_status())
    assert_safe(text)
    assert "Locked: switch by ok\\r\\n- 2026-06-06" in text


def test_output_tails_are_escaped_and_indented_under_their_step() -> None:
    """Output is shown line by line (CRLF is a line break there), each line indented under the
    step it belongs to, with everything else escaped."""
    tail = "\n".join(HOSTILE.values())
    step = StepResult(name="build", status="failed", duration_s=1.0, message="build failed",
                      output_tail=tail)  # fmt: skip
    console, buffer = cli_console()
    print_steps(console, [step])
    result = SwitchResult(app=APP, executed=True, ok=False, steps=[step], error="x")
    for text, first in ((buffer.getvalue(), "✗ build"), (mcp_text.switch_text(result), "")):
        assert not any(ch in text for ch in RAW), repr(text)
        output = text.split("\n")
        start = next(i for i, line in enumerate(output) if line.startswith("  ok"))
        assert all(line.startswith("  ") for line in output[start : start + 8]), output
        assert first in text


def seeded_lab() -> FakeHosts:
    hosts = FakeHosts()
    lines = [e.model_dump_json() for e in hostile_history().entries]
    hosts.runner.put_file(HP, HISTORY, "\n".join(lines) + "\n")
    return hosts


def test_cli_history_shows_it_safely_and_json_keeps_the_exact_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    hosts = seeded_lab()
    monkeypatch.setattr(cli, "_service", lambda ctx: Service(config(), runner=hosts.runner))
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    shown = CliRunner().invoke(cli.main, ["--config", str(path), "history", APP, "--limit", "50"])
    assert shown.exit_code == 0, shown.output
    assert_safe(shown.output)
    as_json = CliRunner().invoke(cli.main, ["--config", str(path), "history", APP, "--json"])
    reasons = [e["reason"] for e in json.loads(as_json.output)["entries"]]
    assert reasons[-len(HOSTILE) :] == list(HOSTILE.values())[::-1]


def test_mcp_history_text_is_safe_and_structured_content_exact() -> None:
    hosts = seeded_lab()
    server, _ = build_server(lambda: Service(config(), runner=hosts.runner))

    async def call() -> Any:
        async with Client(server) as client:
            return await client.call_tool("get_deployment_history", {"app": APP, "limit": 50})

    result = anyio.run(call)
    text = "\n".join(c.text for c in result.content if hasattr(c, "text"))
    assert_safe(text)
    reasons = [e["reason"] for e in result.structured_content["entries"]]
    assert reasons[-len(HOSTILE) :] == list(HOSTILE.values())[::-1]


# ---- the -v stream -------------------------------------------------------------------------------


def test_streamed_remote_output_reaches_the_terminal_escaped() -> None:
    """`deploy -v` logs each line of remote output; a commit subject with a clear-screen sequence
    is shown escaped."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(SafeFormatter("%(name)s: %(message)s"))
    log = logging.getLogger("bluegreen.remote.test")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("%s %s| %s", "root@green", " ", "abc1234 " + HOSTILE["clear screen"])
        log.debug("%s %s| %s", "root@green", "!", HOSTILE["crlf"])
    finally:
        log.removeHandler(handler)
    assert_safe(buffer.getvalue())
    assert buffer.getvalue().count("\n") == 2


def test_cli_verbose_logs_through_the_safe_formatter(tmp_path: Any) -> None:
    root = logging.getLogger("bluegreen")
    before = list(root.handlers)
    try:
        CliRunner().invoke(cli.main, ["-v", "history", "--help"])
        added = [h for h in root.handlers if h not in before]
        assert added and all(isinstance(h.formatter, SafeFormatter) for h in added)
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)


# ---- a forged lock holder in an error ------------------------------------------------------------


def test_a_forged_lock_holder_cannot_add_lines_to_the_locked_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The holder file is on the HAProxy host; its fields are quoted in LockedError, which the CLI
    and the MCP text show as a message that may have lines of its own."""
    hosts = FakeHosts()
    holder = {"operation": "deploy", "app": APP, "user": HOSTILE["crlf"],
              "host": HOSTILE["clear screen"], "pid": 1, "since": "2099-01-01T00:00:00Z",
              "token": "t"}  # fmt: skip
    lock = f"/var/lib/bluegreen/locks/{APP}.lock"
    hosts.runner.put_file(HP, lock + "/", b"")
    hosts.runner.put_file(HP, lock + "/holder.json", json.dumps(holder))
    with pytest.raises(LockedError) as caught:
        Service(config(), runner=hosts.runner).switch(APP, SwitchRequest(require_approval=False))
    assert "\n" not in caught.value.message
    assert_safe(mcp_text.error_text(caught.value))
    monkeypatch.setattr(cli, "_service", lambda ctx: Service(config(), runner=hosts.runner))
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    shown = CliRunner().invoke(cli.main, ["--config", str(path), "switch", APP, "--yes"])
    assert shown.exit_code == LockedError.exit_code, shown.output
    assert "is locked: deploy by ok\\r\\n- 2026-06-06" in shown.output
    assert_safe(shown.output)
