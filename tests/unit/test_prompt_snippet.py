"""The prompt that knows its role: the snippet as bash runs it, the status read that says which
hosts have it, and its installation on both app hosts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.unit.fake_hosts import BLUE, GREEN, FakeHosts, config

from bluegreen.domain.deployed_commit import PROMPT_ABSENT, PROMPT_PRESENT, parse_deployed
from bluegreen.domain.prompt_snippet import snippet, snippet_path
from bluegreen.engine.context import Context
from bluegreen.engine.indicators import install_prompt

SHA = "ab" * 20


def prompt_of(tmp_path: Path, display: str | None, sourced: int = 1) -> str:
    """The prompt a login shell shows: bash expands PS1 (`${PS1@P}`) after the snippet ran."""
    if display is not None:
        (tmp_path / ".env.display").write_text(display)
    script = tmp_path / "snippet.sh"
    script.write_bytes(snippet(str(tmp_path)))
    run = f'PS1="$ "; {". ./snippet.sh; " * sourced}printf %s "${{PS1@P}}"'
    out = subprocess.run(["bash", "-c", run], cwd=tmp_path, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return out.stdout.replace("\x01", "").replace("\x02", "")


def test_the_prompt_shows_colour_and_role(tmp_path: Path) -> None:
    live = prompt_of(tmp_path, "# written by bluegreen\nROLE=LIVE\nCOLOR=blue\nSINCE=x\n")
    assert live == "\x1b[1;34m[BLUE LIVE]\x1b[0m $ "
    standby = prompt_of(tmp_path, "ROLE=STANDBY\nCOLOR=green\n", sourced=2)
    assert standby == "\x1b[32m[GREEN STANDBY]\x1b[0m $ "  # sourced twice, shown once


@pytest.mark.parametrize(
    "display",
    [None, "ROLE=LIVE\n", "ROLE=PROD\nCOLOR=blue\n", "ROLE=LIVE\nCOLOR=$(touch pwned)\x1b[2J\n"],
)
def test_anything_else_shows_nothing(tmp_path: Path, display: str | None) -> None:
    assert prompt_of(tmp_path, display) == "$ "
    assert not (tmp_path / "pwned").exists()


def test_one_snippet_per_app_dir() -> None:
    assert snippet_path("/opt/jw-attendant") == "/etc/profile.d/bluegreen-opt-jw-attendant.sh"
    assert b"'/opt/it'\"'\"'s/.env.display'" in snippet("/opt/it's")  # quoted, never spliced


def test_the_deployed_read_says_whether_the_prompt_is_installed() -> None:
    with_prompt = parse_deployed(0, f"{SHA} HEAD@{{2026-01-01T00:00:00+00:00}}\n{PROMPT_PRESENT}\n")
    assert (with_prompt.commit, with_prompt.prompt) == (SHA, True)
    assert parse_deployed(0, f"{SHA} HEAD@{{t}}\n{PROMPT_ABSENT}\n").prompt is False
    assert parse_deployed(0, f"{SHA} HEAD@{{t}}\n").prompt is None  # not asked
    broken = parse_deployed(128, f"{PROMPT_PRESENT}\n")
    assert broken.error == "app dir is not a git checkout" and broken.prompt is True


def test_install_writes_the_snippet_on_both_hosts_readable_by_logins() -> None:
    hosts = FakeHosts()
    cfg = config()
    app = next(iter(cfg.apps.values()))
    where = install_prompt(Context(config=cfg, runner=hosts.runner), app)
    path = snippet_path(app.app_dir)
    assert where == [f"{BLUE}:{path}", f"{GREEN}:{path}"]
    for host in (BLUE, GREEN):
        assert hosts.runner.file(host, path) == snippet(app.app_dir)
        assert hosts.runner.file_mode(host, path) == 0o644
