"""History integrity (issue 16 item 4): one entry per line whatever its text, and a switch
`reason` refused at the boundary when it holds characters that could hide or forge an entry."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from mcp import Client
from tests.unit.fake_hosts import APP, CFG_PATH, CONFIG_TOML, HP, LAB_CFG, FakeHosts, config

from bluegreen.cli import main
from bluegreen.domain.validate import REASON_MAX, validate_reason
from bluegreen.engine import history
from bluegreen.errors import ValidationError
from bluegreen.mcp_server import build_server
from bluegreen.models import HistoryEntry
from bluegreen.service import Service, SwitchRequest

HISTORY = f"/var/lib/bluegreen/history/{APP}.jsonl"
ODD_TEXTS = {
    "line separator U+2028": "rollback\u2028forged",
    "next line U+0085": "rollback\x85forged",
    "paragraph separator U+2029": "rollback\u2029forged",
    "escape sequence": "rollback \x1b[2J\x1b[H cleared",
    "carriage return": "rollback\r2026-01-01T00:00:00Z switch ok",
    "newline": "rollback\n{}",
    "bidi override": "rollback \u202e kcab",
    "1 MB": "x" * 1_000_000,
}


def _entry(time: str, reason: str | None = None) -> HistoryEntry:
    return HistoryEntry(
        time=time, operation="switch", app=APP, user="ops", host="laptop", outcome="ok",
        from_live="blue", to_live="green", reason=reason,
    )  # fmt: skip


@pytest.mark.parametrize("text", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_an_entry_with_odd_text_reads_back_as_one_entry_and_stays_the_newest(text: str) -> None:
    """Text that reaches the history unvalidated (a deploy error, a commit subject) or from an
    older version: it neither splits its line nor lets an older entry pass for the newest."""
    hosts = FakeHosts()
    ctx = Service(config(), runner=hosts.runner).context()
    assert history.append(ctx, _entry("2026-01-01T00:00:00Z", reason="older")) is None
    assert history.append(ctx, _entry("2026-01-02T00:00:00Z", reason=text)) is None
    raw = hosts.runner.file(HP, HISTORY) or b""
    assert raw.isascii() and raw.count(b"\n") == 2
    read = history.read(ctx, APP)
    assert read.unreadable_lines == 0
    assert [e.reason for e in read.entries] == [text, "older"]


def test_a_raw_line_separator_written_by_an_older_version_does_not_split_its_entry() -> None:
    hosts = FakeHosts()
    ctx = Service(config(), runner=hosts.runner).context()
    older = _entry("2026-01-01T00:00:00Z", reason="older").model_dump_json()
    newest = _entry("2026-01-02T00:00:00Z", reason="a\u2028b\x85c").model_dump_json()
    assert "\u2028" in newest  # pydantic writes it raw: what versions before the fix wrote
    hosts.runner.put_file(HP, HISTORY, f"{older}\n{newest}\n")
    read = history.read(ctx, APP)
    assert read.unreadable_lines == 0
    assert [e.reason for e in read.entries] == ["a\u2028b\x85c", "older"]


@pytest.mark.parametrize(
    ("reason", "named"),
    [("a\u2028b", "U+2028"), ("a\x85b", "U+0085"), ("a\x1b[2Jb", "U+001B"), ("a\rb", "U+000D"),
     ("a\nb", "U+000A"), ("a\u202eb", "U+202E"), ("a\u2066b", "U+2066"), ("a\x00b", "U+0000")],
)  # fmt: skip
def test_reason_with_control_separator_or_bidi_characters_is_refused(
    reason: str, named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_reason(reason)
    assert caught.value.message.startswith(f"reason contains {named} (")
    assert "one line" in (caught.value.hint or "")


def test_reason_longer_than_the_cap_is_refused() -> None:
    assert validate_reason("x" * REASON_MAX) == "x" * REASON_MAX
    with pytest.raises(ValidationError) as caught:
        validate_reason("x" * 1_000_000)
    assert caught.value.message == f"reason is 1000000 characters long, longer than {REASON_MAX}"


@pytest.mark.parametrize("reason", [None, "", "rollback: checkout broken", "Grüße, 回滚 ✓"])
def test_plain_reasons_are_accepted_unchanged(reason: str | None) -> None:
    assert validate_reason(reason) == reason


def test_reason_must_be_a_string() -> None:
    with pytest.raises(ValidationError, match="reason must be a string, got int"):
        validate_reason(42)


def test_service_refuses_a_bad_reason_before_anything_changes() -> None:
    hosts = FakeHosts()
    with pytest.raises(ValidationError, match="reason contains U\\+2028"):
        Service(config(), runner=hosts.runner).switch(
            APP, SwitchRequest(require_approval=False, reason="ok\u2028forged")
        )
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    assert hosts.runner.file(HP, HISTORY) is None


def test_cli_refuses_a_bad_reason(tmp_path: Any) -> None:
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    result = CliRunner().invoke(
        main, ["--config", str(path), "switch", APP, "--yes", "--reason", "x\x1b[2Jy"]
    )
    assert result.exit_code == ValidationError.exit_code, result.output
    assert "reason contains U+001B" in result.output
    assert "\x1b[2J" not in result.output


def test_mcp_refuses_a_bad_reason_before_anything_changes() -> None:
    hosts = FakeHosts()
    server, _ = build_server(lambda: Service(config(), runner=hosts.runner))

    async def call() -> Any:
        async with Client(server) as client:
            return await client.call_tool(
                "switch_traffic", {"app": APP, "requireApproval": False, "reason": "a\x85b"}
            )

    result = anyio.run(call)
    assert result.is_error is True
    text = "\n".join(c.text for c in result.content if hasattr(c, "text"))
    assert "reason contains U+0085" in text
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
