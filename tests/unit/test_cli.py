"""The CLI's offline behaviour: help, inspect-cfg, clear errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.unit.fake_hosts import CONFIG_TOML

from bluegreen.cli import main

DATA = Path(__file__).parents[1] / "data" / "haproxy"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    return path


@pytest.mark.parametrize(
    "command",
    [[], ["status"], ["deploy"], ["switch"], ["approve"], ["history"], ["inspect-cfg"],
     ["serve"], ["lab"], ["lab", "up"], ["lab", "commit"], ["demo"]],
)  # fmt: skip
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_inspect_cfg_certain(config_file: Path) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(config_file), "inspect-cfg", str(DATA / "lab_style1.cfg"),
               "--app", "jw-attendant", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["certain"] is True and data["live"] == "blue" and data["standby"] == "green"


def test_inspect_cfg_ambiguous_exits_12(config_file: Path, tmp_path: Path) -> None:
    cfg = (
        (DATA / "lab_style1.cfg")
        .read_text()
        .replace("default_backend bk_blue", "use_backend bk_green\n    default_backend bk_blue")
    )
    path = tmp_path / "both.cfg"
    path.write_text(cfg)
    result = CliRunner().invoke(
        main, ["--config", str(config_file), "inspect-cfg", str(path), "--app", "jw-attendant"]
    )
    assert result.exit_code == 12
    assert "!" in result.output


def test_missing_config_is_one_clear_sentence(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "status"])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "nope.toml" in result.output


def test_unknown_app_names_the_configured_ones(config_file: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--config", str(config_file), "inspect-cfg", str(DATA / "lab_style1.cfg"), "--app", "web"],
    )
    assert result.exit_code == 3
    assert "jw-attendant" in result.output


def test_switch_without_a_terminal_says_how(config_file: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config_file), "switch", "jw-attendant"])
    assert result.exit_code == 1
    assert "--plan" in result.output and "--confirm" in result.output


def test_approve_needs_a_terminal(config_file: Path) -> None:
    """An agent's shell (stdin not a terminal) cannot approve; nothing is read or written."""
    token = "t" * 24
    result = CliRunner().invoke(main, ["--config", str(config_file), "approve", token])
    assert result.exit_code == 9  # approval refused
    assert "bluegreen approve needs a terminal" in result.output
    assert "stdin is not a terminal" in result.output


def test_bad_ref_is_refused_before_anything(config_file: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(config_file),
            "deploy",
            "jw-attendant",
            "--ref",
            "--upload-pack=touch /tmp/x",
        ],
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_lab_status_without_a_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUEGREEN_LAB_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["lab", "--prefix", "nolab", "status"])
    assert result.exit_code == 11
    assert "bluegreen lab up" in result.output


def test_paramiko_tracebacks_only_with_debug(tmp_path: Path) -> None:
    """A dropped handshake that the transport retries must not print paramiko's ERROR traceback
    (Python's last-resort handler would): silenced unless --debug."""
    import logging

    paramiko_log = logging.getLogger("paramiko")
    ours = logging.getLogger("bluegreen")  # --debug adds a handler and DEBUG: put both back
    before = (paramiko_log.level, ours.level, list(ours.handlers))
    try:
        CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "status"])
        assert not paramiko_log.isEnabledFor(logging.ERROR)
        CliRunner().invoke(main, ["--debug", "--config", str(tmp_path / "nope.toml"), "status"])
        assert paramiko_log.isEnabledFor(logging.WARNING)
    finally:
        paramiko_log.setLevel(before[0])
        ours.setLevel(before[1])
        ours.handlers[:] = before[2]


def test_history_shows_how_a_switch_was_approved_as_plain_text() -> None:
    from rich.console import Console

    from bluegreen.cli_render import print_history
    from bluegreen.models import ApprovalRecord, History, HistoryEntry

    entry = HistoryEntry(time="2026-01-01T00:00:00Z", operation="switch", app="shop", user="ana",
                         host="laptop", outcome="ok", from_live="blue", to_live="green",
                         approval=ApprovalRecord(kind="elicitation", by="[bold]evil[/] 1.0"))  # fmt: skip
    console = Console(record=True, width=300)
    print_history(console, History(app="shop", entries=[entry]))
    # The client's self-chosen name is shown as written, never as console markup.
    assert "BLUE -> GREEN, approved by elicitation ([bold]evil[/] 1.0)" in console.export_text()
