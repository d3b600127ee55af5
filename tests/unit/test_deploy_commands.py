"""The deploy's command builders and output readers. The shell scripts (backup with pruning,
restore swap, ref resolution) are run for real here, locally, against a throwaway git repo."""

from __future__ import annotations

import os
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.command import Command
from bluegreen.domain.config import config_from_dict
from bluegreen.domain.probe import HealthResult

WHEN = datetime(2025, 12, 21, 9, 30, 5, tzinfo=UTC)
SHA = "0123456789abcdef0123456789abcdef01234567"


def sh(command: Command, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Command's rendered line locally, the way a remote shell would."""
    return subprocess.run(
        ["sh", "-c", command.render()], capture_output=True, text=True, cwd=cwd, check=False
    )


# ---- names and paths -----------------------------------------------------------------------------


def test_backup_path_is_beside_the_app_dir_with_time_and_commit() -> None:
    assert dc.backup_dir("/opt/shop/") == "/opt/shop.bluegreen-backups"
    assert (
        dc.backup_path("/opt/shop", "shop", WHEN, SHA)
        == "/opt/shop.bluegreen-backups/shop-20251221T093005Z-0123456789ab.tar.gz"
    )


def test_probe_address_uses_the_health_port() -> None:
    config = config_from_dict(
        {
            "haproxy": {"ssh": "haproxy"},
            "apps": {
                "shop": {
                    "state_file": "/s.json",
                    "frontend": "http-in",
                    "app_dir": "/opt/shop",
                    "restart": "true",
                    "health": {"port": 9000},
                    "servers": {
                        "blue": {"ssh": "blue", "address": "10.0.0.1:3001"},
                        "green": {"ssh": "green", "address": "10.0.0.2:3001"},
                    },
                }
            },
        }
    )
    app = config.app("shop")
    (green,) = app.members("green")
    assert dc.probe_address(app, green) == "10.0.0.2:9000"
    assert dc.server_health_url(app, green) == "http://10.0.0.2:9000/health"
    assert dc.probe_plan_line(app, green).startswith("GET http://10.0.0.2:9000/health ")


# ---- commands ------------------------------------------------------------------------------------


def test_read_only_commands_are_marked_so() -> None:
    for command in (
        dc.head_command("/a"),
        dc.dirty_command("/a"),
        dc.disk_command("/a"),
        dc.resolve_command("/a", "main"),
        dc.log_tail_command("/var/log/a.log"),
    ):
        assert not command.mutating, command
    for command in (
        dc.backup_command("/a", "/a.b/x.tar.gz", "a", 3),
        dc.fetch_command("/a"),
        dc.checkout_command("/a", SHA),
        dc.clean_command("/a"),
        dc.snippet_command("make", "/a"),
        dc.restore_command("/a", "/a.b/x.tar.gz"),
    ):
        assert command.mutating, command


def test_git_command_lines() -> None:
    assert dc.fetch_command("/opt/shop").render() == "git -C /opt/shop fetch --prune --tags origin"
    assert (
        dc.checkout_command("/opt/shop", SHA).render()
        == f"git -C /opt/shop checkout --force --detach {SHA}"
    )
    assert dc.clean_command("/opt/shop").render() == "git -C /opt/shop clean -fd"
    assert dc.disk_command("/opt/my app").render() == "df -Pm -- '/opt/my app'"


def test_ref_reaches_the_shell_only_as_a_positional_argument() -> None:
    # Even a ref validation would refuse stays one quoted word: never part of the script.
    evil = "x'; touch /tmp/pwned; echo '"
    line = dc.resolve_command("/opt/shop", evil).render()
    script, _, _ = line.partition(" bluegreen-resolve ")
    assert evil not in script
    assert "touch" not in script


def test_snippets_run_in_the_app_dir_with_optional_sudo() -> None:
    command = dc.snippet_command("npm ci && npm run build", "/opt/shop", sudo=True)
    assert command.render() == "sudo -n sh -c 'cd /opt/shop && npm ci && npm run build'"


def test_plan_line_unquotes_the_placeholder_only() -> None:
    line = dc.plan_line(dc.checkout_command("/opt/shop", dc.UNRESOLVED))
    assert line == f"git -C /opt/shop checkout --force --detach {dc.UNRESOLVED}"


def test_sudo_applies_to_reads_too() -> None:
    assert dc.head_command("/a", sudo=True).render().startswith("sudo -n ")


# ---- output readers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "Filesystem     1048576-blocks  Used Available Capacity Mounted on\n"
            "overlay                 100000 25000     75000      25% /\n",
            75000,
        ),
        (
            "Filesystem 1048576-blocks Used Available Capacity Mounted on\n"
            "/dev/my disk 2000 1500 420 79% /mnt/with space\n",
            420,
        ),
        (
            "Filesystem 1048576-blocks Used Available Capacity Mounted on\n"
            "very-long-device-name-wrapped\n   2000 1500 420 79% /srv\n",
            420,
        ),
        ("", None),
        ("Filesystem ...\ngarbage\n", None),
    ],
)
def test_parse_available_mb(output: str, expected: int | None) -> None:
    assert dc.parse_available_mb(output) == expected


def test_parse_commit_accepts_only_a_full_sha() -> None:
    assert dc.parse_commit(SHA + "\n") == SHA
    assert dc.parse_commit("a" * 64) == "a" * 64
    assert dc.parse_commit("0123456") is None
    assert dc.parse_commit("") is None
    assert dc.parse_commit(f"{SHA}\n{SHA}\n") is None
    assert dc.parse_commit("fatal: not a git repository") is None


def test_same_commit_allows_abbreviations_of_seven_or_more() -> None:
    assert dc.same_commit(SHA[:7], SHA)
    assert dc.same_commit(SHA, SHA[:12].upper())
    assert not dc.same_commit(SHA[:6], SHA)
    assert not dc.same_commit("fedcba9", SHA)


def test_backoff_grows_by_half_and_is_capped() -> None:
    assert dc.backoff_delays(1, 2.0) == []
    assert dc.backoff_delays(4, 1.0) == [1.0, 1.5, 2.25]
    assert dc.backoff_delays(3, 0.0) == [0.5, 0.75]
    assert dc.backoff_delays(8, 2.0)[-3:] == [5.0, 5.0, 5.0]
    assert max(dc.backoff_delays(5, 8.0)) == 8.0  # a long interval is its own cap


def _health(code: int | None, commit: str | None = None, error: str | None = None) -> HealthResult:
    return HealthResult(
        "http://green:3001/health", code == 200, code, 1.0, commit=commit, error=error
    )


def test_judge_health_says_why() -> None:
    ok = dc.judge_health(_health(200, SHA), "GREEN", 200, SHA)
    assert ok.healthy and ok.kind == "ok"
    down = dc.judge_health(_health(None, error="curl: (7) Failed to connect"), "GREEN", 200, SHA)
    assert down.kind == "unreachable"
    assert down.sentence == (
        "GREEN did not answer http://green:3001/health: curl: (7) Failed to connect"
    )
    bad = dc.judge_health(_health(503, SHA), "GREEN", 200, SHA)
    assert (bad.kind, bad.sentence) == ("status", "GREEN answered HTTP 503 (expected 200)")
    old = "f" * 40
    stale = dc.judge_health(_health(200, old), "GREEN", 200, SHA)
    assert stale.kind == "commit"
    assert stale.sentence == (
        "GREEN still reports commit ffffffffffff (expected 0123456789ab): the restart did not take"
    )
    # A body without a commit, or no expectation: the status decides.
    assert dc.judge_health(_health(200, None), "GREEN", 200, SHA).healthy
    assert dc.judge_health(_health(200, old), "BLUE", 200, None).healthy


# ---- the scripts, run for real -------------------------------------------------------------------


def _app_dir(tmp_path: Path) -> Path:
    app = tmp_path / "opt" / "shop"
    (app / "dist").mkdir(parents=True)
    (app / "dist" / "app.js").write_text("v1\n")
    (app / ".env").write_text("SECRET=1\n")
    return app


def test_backup_archives_the_app_dir_and_keeps_the_newest(tmp_path: Path) -> None:
    app = _app_dir(tmp_path)
    backups = Path(dc.backup_dir(str(app)))
    backups.mkdir()
    older = [f"shop-2025010{i}T000000Z-{'a' * 12}.tar.gz" for i in range(1, 5)]
    for name in [*older, "other-20250101T000000Z-aaaaaaaaaaaa.tar.gz", "notes.txt"]:
        (backups / name).write_text("old")
    archive = dc.backup_path(str(app), "shop", WHEN, SHA)
    result = sh(dc.backup_command(str(app), archive, "shop", 3))
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in backups.iterdir())
    # The two newest older ones plus the new one; other apps' files and strangers are left alone.
    assert kept == sorted(
        [*older[-2:], Path(archive).name, "other-20250101T000000Z-aaaaaaaaaaaa.tar.gz", "notes.txt"]
    )
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"./shop/.env", "./shop/dist/app.js"} <= names
    assert not list(backups.glob("*.partial"))


def test_backup_keeps_at_least_the_new_archive(tmp_path: Path) -> None:
    app = _app_dir(tmp_path)
    archive = dc.backup_path(str(app), "shop", WHEN, SHA)
    assert sh(dc.backup_command(str(app), archive, "shop", 0)).returncode == 0
    assert Path(archive).exists()


def test_restore_swaps_the_backup_in(tmp_path: Path) -> None:
    app = _app_dir(tmp_path)
    archive = dc.backup_path(str(app), "shop", WHEN, SHA)
    assert sh(dc.backup_command(str(app), archive, "shop", 3)).returncode == 0
    (app / "dist" / "app.js").write_text("v2 broken\n")
    (app / "new-file").write_text("x")
    result = sh(dc.restore_command(str(app), archive))
    assert result.returncode == 0, result.stderr
    assert (app / "dist" / "app.js").read_text() == "v1\n"
    assert (app / ".env").read_text() == "SECRET=1\n"
    assert not (app / "new-file").exists()
    assert sorted(p.name for p in app.parent.iterdir()) == ["shop", "shop.bluegreen-backups"]


def test_restore_of_a_bad_archive_leaves_the_app_dir_in_place(tmp_path: Path) -> None:
    app = _app_dir(tmp_path)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    assert sh(dc.restore_command(str(app), str(bad))).returncode != 0
    assert (app / "dist" / "app.js").read_text() == "v1\n"


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A clone whose local `main` is one commit behind origin's, and a tag on the first commit."""
    who = {
        f"GIT_{role}_{key}": "t" for role in ("AUTHOR", "COMMITTER") for key in ("NAME", "EMAIL")
    }
    env = {**os.environ, **who, "GIT_CONFIG_GLOBAL": "/dev/null"}

    def git(*args: str, cwd: Path) -> str:
        out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    origin = tmp_path / "origin"
    origin.mkdir()
    git("init", "-q", "-b", "main", cwd=origin)
    (origin / "f").write_text("1")
    git("add", "f", cwd=origin)
    git("commit", "-q", "-m", "one", cwd=origin)
    git("tag", "v1", cwd=origin)
    first = git("rev-parse", "HEAD", cwd=origin)
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    (origin / "f").write_text("2")
    git("commit", "-q", "-am", "two", cwd=origin)
    second = git("rev-parse", "HEAD", cwd=origin)
    return clone, {"first": first, "second": second}


def test_fetch_resolve_checkout_clean_for_real(repo: tuple[Path, dict[str, str]]) -> None:
    clone, commits = repo
    d = str(clone)
    (clone / "untracked").write_text("x")
    (clone / ".git" / "info" / "exclude").write_text("ignored\n")
    (clone / "ignored").write_text("kept")
    assert sh(dc.fetch_command(d)).returncode == 0
    # The local branch `main` is behind: origin/main wins.
    resolved = sh(dc.resolve_command(d, "main"))
    assert dc.parse_commit(resolved.stdout) == commits["second"]
    assert dc.parse_commit(sh(dc.resolve_command(d, "v1")).stdout) == commits["first"]
    assert dc.parse_commit(sh(dc.resolve_command(d, commits["first"])).stdout) == commits["first"]
    missing = sh(dc.resolve_command(d, "no-such-branch"))
    assert missing.returncode != 0 and missing.stdout == ""
    assert sh(dc.checkout_command(d, commits["second"])).returncode == 0
    assert sh(dc.clean_command(d)).returncode == 0
    assert (clone / "f").read_text() == "2"
    assert not (clone / "untracked").exists()
    assert (clone / "ignored").read_text() == "kept"
    head = sh(dc.head_command(d))
    assert dc.parse_commit(head.stdout) == commits["second"]
    assert sh(dc.dirty_command(d)).stdout == ""
    (clone / "f").write_text("local edit")
    assert sh(dc.dirty_command(d)).stdout.strip() == "M f"


@pytest.mark.parametrize("ref", ["$(touch {p})", "`touch {p}`", "x; touch {p}", "x' ; touch {p} '"])
def test_a_hostile_ref_stays_a_word_even_without_validation(
    repo: tuple[Path, dict[str, str]], tmp_path: Path, ref: str
) -> None:
    clone, _ = repo
    target = tmp_path / "pwned"
    result = sh(dc.resolve_command(str(clone), ref.format(p=target)))
    assert result.returncode != 0 and result.stdout == ""
    assert not target.exists()
