"""The CLI's offline behaviour: help, inspect-cfg, clear errors and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.unit.fake_hosts import CONFIG_TOML

import bluegreen.mcp_server
from bluegreen.cli import main, mcp_main

DATA = Path(__file__).parents[1] / "data" / "haproxy"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    return path


@pytest.mark.parametrize(
    "command",
    [[], ["status"], ["deploy"], ["switch"], ["approve"], ["history"], ["inspect-cfg"],
     ["serve"], ["watch"], ["dashboard"], ["prompt"], ["lab"], ["lab", "up"], ["lab", "commit"], ["demo"],
     ["approvals"], ["approvals", "prune"]],
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


SHARED_FRONT = """\
frontend http-in
    bind *:80
    acl is_jw       hdr(host) -i jw.example.org
    acl is_jw_green hdr(host) -i green.jw.example.org
    use_backend jw_green if is_jw_green
    use_backend jw_blue if is_jw
    default_backend homepage
"""
SHARED_BACKENDS = """\
backend jw_blue
    server blue blue:3001
backend jw_green
    server green green:3001
backend homepage
    server web 192.0.2.40:80
"""


def test_inspect_cfg_reads_every_file_and_the_apps_rule(config_file: Path, tmp_path: Path) -> None:
    (tmp_path / "haproxy.cfg").write_text(SHARED_FRONT)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-jw.cfg").write_text(SHARED_BACKENDS)
    files = [str(tmp_path / "haproxy.cfg"), str(tmp_path / "conf.d")]
    base = ["--config", str(config_file), "inspect-cfg", *files, "--app", "jw-attendant"]
    without = CliRunner().invoke(main, base)
    assert without.exit_code == 12, without.output
    result = CliRunner().invoke(main, [*base, "--rule", "is_jw"])
    assert result.exit_code == 0, result.output
    assert "routes to backend jw_blue" in result.output and "BLUE is LIVE" in result.output
    assert "= preview, line 5 of " in result.output and "use_backend jw_green if is_jw_green" in (
        result.output
    )
    by_host = CliRunner().invoke(main, [*base, "--host", "jw.example.org", "--json"])
    assert by_host.exit_code == 0, by_host.output
    assert json.loads(by_host.output)["deciding_lines"] == [6]


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


def test_bluegreen_mcp_is_bluegreen_serve_with_the_config_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `bluegreen-mcp` console script (what `uvx bluegreen-mcp` runs)."""
    served: list[tuple[str | None, dict[str, object]]] = []
    monkeypatch.setattr(
        bluegreen.mcp_server, "serve", lambda config, **options: served.append((config, options))
    )
    monkeypatch.setenv("BLUEGREEN_CONFIG", "/etc/bluegreen/prod.toml")
    monkeypatch.setattr(sys, "argv", ["bluegreen-mcp"])
    with pytest.raises(SystemExit) as done:
        mcp_main()
    assert done.value.code == 0
    monkeypatch.setattr(sys, "argv", ["bluegreen-mcp", "--transport", "http", "--port", "9000"])
    with pytest.raises(SystemExit):
        mcp_main()
    [(config, stdio), (_, http)] = served
    assert config == "/etc/bluegreen/prod.toml"
    assert (stdio["transport"], http["transport"], http["port"]) == ("stdio", "http", 9000)
