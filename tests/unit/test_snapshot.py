"""The HAProxy-host snapshot: the real script run by a local sh on real files, and its parser."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bluegreen.domain.snapshot import (
    RUNTIME_QUERIES,
    SnapshotError,
    parse_snapshot,
    snapshot_command,
)

INFO = "Name: HAProxy\nVersion: 2.6.12\nPid: {pid}\nUptime_sec: 5"
STAT = "# pxname,svname,status\nbk_blue,blue,UP"
STATE = "1\n# be_id be_name srv_id srv_name\n3 bk_blue 1 blue"


def run_locally(
    command_line: str, path_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_dir is not None:
        env["PATH"] = f"{path_dir}:{env['PATH']}"
    return subprocess.run(
        ["sh", "-c", command_line], capture_output=True, text=True, timeout=30, env=env
    )


def fake_socat(tmp_path: Path, answer: str, status: int = 0) -> Path:
    """A `socat` that checks the query it is sent and answers like HAProxy's CLI: each answer
    followed by an empty line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "socat"
    (tmp_path / "answer").write_text(answer)
    script.write_text(
        "#!/bin/sh\n"
        f'read -r q; [ "$q" = "{";".join(RUNTIME_QUERIES)}" ] || {{ echo "bad query: $q"; exit 9; }}\n'
        f'[ "$4" = "unix-connect:{tmp_path}/admin.sock" ] || {{ echo "bad socket: $4"; exit 9; }}\n'
        f"cat {tmp_path}/answer\nexit {status}\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_the_script_reads_exact_bytes_missing_files_and_directories(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_bytes(b"global\n  daemon\n\n\n")  # trailing newlines are kept
    binary = tmp_path / "state.json"
    binary.write_bytes(bytes(range(1, 256)) + b"\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    odd = tmp_path / "a file with 'quotes' and $(x)"
    odd.write_bytes(b"{}")
    files = [str(cfg), str(binary), str(empty), str(tmp_path / "missing"), str(tmp_path), str(odd)]
    answer = "\n\n".join([INFO.format(pid=os.getpid()), STAT, STATE]) + "\n\n"
    bin_dir = fake_socat(tmp_path, answer)
    command = snapshot_command([str(cfg)], str(tmp_path / "admin.sock"), files)
    done = run_locally(command.render(), bin_dir)
    assert done.returncode == 0, done.stderr
    keys = [line.split(" ")[0] for line in done.stdout.splitlines()[:8]]
    # Uptime before the clock: a slow `date` can then only make the worker look younger, never
    # make a cfg look edited after the worker started (a false "not reloaded").
    assert keys.index("uptime") < keys.index("now")
    snap = parse_snapshot(done.stdout, files)
    assert snap.files[str(cfg)].data == b"global\n  daemon\n\n\n"
    assert snap.files[str(binary)].data == bytes(range(1, 256)) + b"\n"
    assert snap.files[str(empty)].data == b""
    assert snap.files[str(odd)].data == b"{}"
    missing = snap.files[str(tmp_path / "missing")]
    assert missing.data is None and missing.error is None
    # A directory is read as HAProxy reads one: its *.cfg regular files (no dot-file).
    listing = snap.files[str(tmp_path)].entries
    assert listing is not None and [name for name, _ in listing] == ["haproxy.cfg"]
    assert listing[0][1].data == b"global\n  daemon\n\n\n"
    assert snap.runtime_problem() is None
    assert snap.runtime_answer("show stat") == STAT
    assert snap.runtime_answer("show servers state") == STATE
    assert snap.runtime_answer("show info") == INFO.format(pid=os.getpid())
    # The worker's start comes from /proc/<Pid>/stat (here: this test process, started before
    # the cfg was written), the cfg's age from its mtime.
    ages = snap.ages()
    assert ages is not None
    cfg_age, proc_age = ages
    assert 0 <= cfg_age < 30
    assert proc_age > cfg_age
    assert abs(snap.now - time.time()) < 30  # type: ignore[operator]


def test_a_cfg_written_after_the_worker_started_is_younger_than_it(tmp_path: Path) -> None:
    worker = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.3)
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text("global\n")
        bin_dir = fake_socat(tmp_path, f"{INFO.format(pid=worker.pid)}\n\n{STAT}\n\n{STATE}\n\n")
        command = snapshot_command([str(cfg)], str(tmp_path / "admin.sock"), [])
        snap = parse_snapshot(run_locally(command.render(), bin_dir).stdout, [])
        ages = snap.ages()
        assert ages is not None
        cfg_age, proc_age = ages
        assert cfg_age < proc_age - 0.1  # edited after the start: "not reloaded"
        assert proc_age < 10
    finally:
        worker.kill()
        worker.wait()


def test_socat_failing_is_a_runtime_problem_not_a_crash(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("global\n")
    bin_dir = fake_socat(tmp_path, "2024/01/01 E connect(5, AF=1 x): No such file\n", status=1)
    command = snapshot_command([str(cfg)], str(tmp_path / "admin.sock"), [str(cfg)])
    snap = parse_snapshot(run_locally(command.render(), bin_dir).stdout, [str(cfg)])
    assert snap.files[str(cfg)].data == b"global\n"
    assert snap.runtime_answer("show stat") is None
    assert snap.runtime_problem() == "socat exited 1: 2024/01/01 E connect(5, AF=1 x): No such file"
    assert snap.worker_start_ticks is None and snap.ages() is None


def test_no_socat_at_all(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "base64", "stat", "date", "getconf"):
        (bin_dir / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    command = snapshot_command(["/nonexistent.cfg"], "/nonexistent.sock", [])
    done = subprocess.run(
        ["/bin/sh", "-c", command.render()],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir)},
        timeout=30,
    )
    snap = parse_snapshot(done.stdout, [])
    assert snap.runtime_exit == 127
    assert snap.cfg_mtime is None and snap.ages() is None
    problem = snap.runtime_problem()
    assert problem is not None and problem.startswith("socat exited 127")


def make(lines: list[str], runtime: str = "0\nA\n\nB\n\nC\n") -> str:
    return "\n".join(["bluegreen-snapshot 1", *lines, "runtime " + runtime])


@pytest.mark.parametrize(
    ("text", "files", "message"),
    [
        ("", [], "not a bluegreen snapshot"),
        ("garbage\nruntime 0\n", [], "not a bluegreen snapshot"),
        (make(["file -"]), [], "expected 0 files, got 1"),
        (make([]), ["/x"], "expected 1 files, got 0"),
        (make(["file !!!@@"]), ["/x"], None),  # an error line: read as an error, below
        (make(["file not*base64"]), ["/x"], "bad file data"),
        (make(["bogus 1"]), [], "unexpected line"),
        (make([], runtime="x\n"), [], "bad runtime exit status"),
    ],
)
def test_the_parser_refuses_what_the_script_does_not_print(
    text: str, files: list[str], message: str | None
) -> None:
    if message is None:
        assert parse_snapshot(text, files).files["/x"].error == "!!@@"
        return
    with pytest.raises(SnapshotError, match=message):
        parse_snapshot(text, files)


def test_unknown_clocks_give_no_age_rather_than_a_guess() -> None:
    snap = parse_snapshot(
        make(["now 1700000000.%N", "uptime 100.5", "ticks 100", "cfgmtime -", "workerstart 50"]),
        [],
    )
    assert snap.now is None and snap.cfg_mtime is None and snap.ages() is None
    snap = parse_snapshot(
        make(["now 1000.0", "uptime 100.5", "ticks 100", "cfgmtime 990.0", "workerstart 5000"]),
        [],
    )
    assert snap.ages() == (10.0, 50.5)


def test_an_answer_with_the_wrong_number_of_sections_is_a_problem() -> None:
    snap = parse_snapshot(make([], runtime="0\nUnknown command\n\n"), [])
    assert snap.runtime_answer("show stat") is None
    assert "unexpected answer" in (snap.runtime_problem() or "")
