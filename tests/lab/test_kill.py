"""The tool's own process killed with SIGKILL in the middle of a deploy or a switch, and several
processes trying to deploy and switch at once: the lock is found stale, reported, broken only on
request, and production serves throughout. Runs the CLI as users do (`python -m bluegreen`)."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.service import Service

from .fault_tools import (
    APP,
    LOCK_DIR,
    SLOW_BUILD,
    assert_production_ok,
    cat,
    cfg_live,
    cfg_valid,
    cli,
    config_file,
    fails_nothing,
    history_lines,
    reset_haproxy,
    restore_lab,
    wait_serving,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module", autouse=True)
def leave_the_lab_as_found(lab: Lab) -> Iterator[None]:
    yield
    restore_lab(lab)


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def killed_when(
    lab: Lab, config: Path, args: list[str], pattern: str, timeout: float = 60
) -> list[str]:
    """Run the CLI and SIGKILL it as soon as a progress line on stderr matches `pattern`; the
    lines seen. Fails when the pattern never showed up."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bluegreen", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(timeout, process.kill)
    guard.start()
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if re.search(pattern, line):
                os.kill(process.pid, signal.SIGKILL)
                break
        process.wait()
    finally:
        guard.cancel()
    assert process.returncode == -signal.SIGKILL, lines
    holder = cat(lab, "haproxy", f"{LOCK_DIR}/holder.json")
    assert holder and f'"pid": {process.pid}' in holder, holder
    return lines


def test_deploy_killed_mid_build(fresh_lab: Lab, lab_info: LabInfo, tmp_path: Path) -> None:
    new = fresh_lab.commit()
    config = config_file(lab_info, tmp_path, build=f'"{SLOW_BUILD}"')
    with fails_nothing(lab_info):
        killed_when(fresh_lab, config, ["deploy", APP], r"✓ fetch")
    with Service.from_path(str(config)) as service:
        status = service.status(APP)
        assert status.lock and status.lock.operation == "deploy" and status.lock.stale
        assert status.lock.host == socket.gethostname()
        assert any("STALE" in p for p in status.problems), status.problems
        assert status.certain and status.live and status.live.color == "blue"
    refused = cli(config, "deploy", APP)
    assert refused.returncode == 8, refused.stderr
    assert "STALE deploy by" in flat(refused.stderr), refused.stderr
    with fails_nothing(lab_info):
        recovered = cli(config, "deploy", APP, "--break-lock", "--json")
    assert recovered.returncode == 0, recovered.stderr + recovered.stdout
    lines = history_lines(fresh_lab)
    assert [(e["operation"], e["outcome"]) for e in lines] == [
        ("deploy", "interrupted"),
        ("deploy", "ok"),
    ], lines
    assert lines[-1]["commit_after"] == new
    with Service.from_path(str(config)) as service:
        assert_production_ok(fresh_lab, lab_info, service, live="blue")


@pytest.mark.parametrize("after", ["replace-cfg", "verify"])
def test_switch_killed(lab: Lab, lab_info: LabInfo, tmp_path: Path, after: str) -> None:
    reset_haproxy(lab)
    config = config_file(lab_info, tmp_path, allow_unapproved="true", watch_s="0")
    with fails_nothing(lab_info):
        killed_when(lab, config, ["switch", APP, "--yes"], rf"✓ {after}\b")
        # haproxy.cfg is the old one or the new one, and valid; users are served either way.
        on_disk = cfg_live(lab)
        assert on_disk in ("blue", "green") and cfg_valid(lab)[0]
        served = wait_serving(lab_info)
        with Service.from_path(str(config)) as service:
            status = service.status(APP)
        assert status.lock and status.lock.operation == "switch" and status.lock.stale
        print(f"killed after {after}: cfg routes to {on_disk}, {served} serves, {status.problems}")
        refused = cli(config, "switch", APP, "--yes")
        assert refused.returncode == 8 and "STALE switch by" in flat(refused.stderr), refused.stderr
        if status.certain:
            assert status.live and status.live.color == served == on_disk
            recovered = cli(config, "switch", APP, "--yes", "--break-lock", "--json")
        else:  # killed between the replace and the reload: said so, and not trusted
            assert any("not reloaded" in p for p in status.problems), status.problems
            # The file's STANDBY may be what users reach: a deploy there is refused.
            unsafe = cli(config, "deploy", APP, "--break-lock")
            assert unsafe.returncode == 10, unsafe.stderr
            assert "changed and not reloaded" in flat(unsafe.stderr), unsafe.stderr
            recovered = cli(config, "switch", APP, "--yes", "--json")  # reloads and verifies
        assert recovered.returncode == 0, recovered.stderr + recovered.stdout
    with Service.from_path(str(config)) as service:
        final = assert_production_ok(lab, lab_info, service)
        assert final.drift == []
    outcomes = [(e["operation"], e["outcome"]) for e in history_lines(lab)]
    assert outcomes == [("switch", "interrupted"), ("switch", "ok")], outcomes


def test_five_processes_at_once_exactly_one_runs(
    lab: Lab, lab_info: LabInfo, tmp_path: Path
) -> None:
    """Three deploys and two switches started at the same moment: one takes the lock, the others
    are refused naming it. (A process slow enough to start after the winner finished may take
    the lock next: then it runs after, never alongside; the history shows no overlap.)"""
    reset_haproxy(lab)
    config = config_file(
        lab_info, tmp_path, build='"sleep 5 && python3 build.py"', allow_unapproved="true"
    )
    commands = [["deploy", APP, "--json"]] * 3 + [["switch", APP, "--yes", "--json"]] * 2
    with fails_nothing(lab_info):
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bluegreen", "--config", str(config), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        outputs = [p.communicate(timeout=120) for p in processes]
    seen = [(args[0], p.returncode, out[-600:], err[-600:]) for args, p, (out, err) in zip(commands, processes, outputs, strict=True)]  # fmt: skip
    ran = [p for p in processes if p.returncode != 8]
    assert all(p.returncode == 0 for p in ran), seen  # whoever ran, succeeded
    assert len(ran) <= 2 and len(processes) - len(ran) >= 3, seen  # a real race, mostly refused
    holders = "|".join(str(p.pid) for p in ran)
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        if process.returncode == 8:
            pattern = rf"is locked: (deploy|switch) by \S+ \(pid ({holders})\)"
            assert re.search(pattern, flat(stderr)), stderr
    entries = history_lines(lab)
    assert len(entries) == len(ran), entries
    spans = sorted((end - e["duration_s"], end) for e in entries for end in [_epoch(e["time"])])
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert second_start >= first_end - 1.0, spans  # `time` has whole seconds
    print(
        f"{len(ran)} ran, {len(processes) - len(ran)} refused: {[p.returncode for p in processes]}"
    )
    with Service.from_path(str(config)) as service:
        assert_production_ok(lab, lab_info, service)


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
