"""The deployed-commit read: the real script run by a local sh on a real git checkout, and its
parser on the answers it can give."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bluegreen.domain.deployed_commit import Deployed, deployed_command, parse_deployed


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run(command_line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command_line], capture_output=True, text=True, check=False)


def test_a_checkout_answers_its_head_and_when_head_moved(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    done = run(deployed_command(str(tmp_path)).render())
    deployed = parse_deployed(done.returncode, done.stdout)
    assert deployed.commit == head and deployed.error is None
    assert deployed.since is not None and deployed.since.startswith("20")


def test_a_dir_that_is_no_checkout_says_so(tmp_path: Path) -> None:
    done = run(deployed_command(str(tmp_path)).render())
    assert parse_deployed(done.returncode, done.stdout) == Deployed(
        None, None, "app dir is not a git checkout"
    )


def test_the_parser_reads_the_reflog_line_and_an_empty_answer() -> None:
    sha = "a" * 40
    assert parse_deployed(0, f"{sha} HEAD@{{2026-11-27T10:00:00+00:00}}\n") == Deployed(
        sha, "2026-11-27T10:00:00+00:00"
    )
    assert parse_deployed(0, f"{sha}\n") == Deployed(sha, None)
    assert parse_deployed(0, "\n") == Deployed(None, None)
    assert parse_deployed(1, "") == Deployed(None, None)
