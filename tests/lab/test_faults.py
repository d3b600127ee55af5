"""Fault injection against the real lab: dropped SSH connections, an unreachable HAProxy host, full
disks, hand-broken files and many callers at once. After every fault: LIVE still answers through
the frontend, haproxy.cfg passes `haproxy -c`, the state file and the history agree with it, the
result says what happened, and the next operation works. docs/GUARANTEES.md lists what each test
proves. (Killing the tool itself with SIGKILL: test_kill.py.)"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

from bluegreen.engine import switch as switch_engine
from bluegreen.engine.context import StepEvent
from bluegreen.errors import LockedError, TransportError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.service import Service, SwitchRequest
from bluegreen.transport import ssh as ssh_transport

from .fault_tools import (
    APP,
    CFG,
    HISTORY,
    LOCK_DIR,
    SLOW_BUILD,
    STATE,
    assert_production_ok,
    cfg_live,
    cfg_valid,
    cli,
    config_file,
    fails_nothing,
    head,
    history_lines,
    kill_sessions,
    kill_sshd,
    later,
    reset_haproxy,
    restore_lab,
    service_with,
    sh,
    start_sshd,
    wait_for_ssh,
    wait_serving,
)

pytestmark = pytest.mark.lab


class Quick(TypedDict):
    allow_unapproved: bool
    watch_s: float
    drain_s: float


QUICK: Quick = {"allow_unapproved": True, "watch_s": 0.0, "drain_s": 0.3}


@pytest.fixture(scope="module", autouse=True)
def leave_the_lab_as_found(lab: Lab) -> Iterator[None]:
    yield
    restore_lab(lab)


@pytest.fixture
def hp_lab(lab: Lab) -> Iterator[Lab]:
    """The HAProxy host as `up` left it (BLUE LIVE, no state file, lock or history); the app hosts
    are left as they are (faster than `fresh_lab`, for tests that only touch the HAProxy host)."""
    reset_haproxy(lab)
    yield lab
    start_sshd(lab)  # whatever the test did, leave the host reachable for the next one


# ---- 1. SSH connections dropping in the middle of a step ---------------------------------------


def test_ssh_to_standby_drops_during_the_build(fresh_lab: Lab, lab_info: LabInfo) -> None:
    new = fresh_lab.commit()

    def inject(event: StepEvent) -> None:
        if event.step == "build" and event.status == "start":
            later(1.0, kill_sessions, fresh_lab, "green")  # mid `sleep 3 && python3 build.py`

    with fails_nothing(lab_info), service_with(lab_info, build=SLOW_BUILD) as service:
        result = service.deploy(APP, progress=inject)
    assert not result.ok and result.failed_step == "build", result.error
    assert result.error_type == "TransportError"
    assert result.error and "dropped" in result.error and "may or may not" in result.error
    # The backup went back over a new connection, and GREEN runs the old commit again.
    assert result.restored is True, result.standby_state
    assert result.standby_state and "healthy again" in result.standby_state
    assert result.live_healthy_after is True
    assert head(fresh_lab, "green") == lab_info.initial_commit
    assert history_lines(fresh_lab)[-1]["outcome"] == "failed"
    with service_with(lab_info) as service:
        assert_production_ok(fresh_lab, lab_info, service, live="blue")
        again = service.deploy(APP)  # the next operation works
        assert again.ok and again.commit_after == new, again.error


def _switch_with(
    lab: Lab, info: LabInfo, inject: Any, **changes: Any
) -> tuple[Any, list[StepEvent]]:
    events: list[StepEvent] = []

    def progress(event: StepEvent) -> None:
        events.append(event)
        inject(event)

    with fails_nothing(info), service_with(info, **{**QUICK, **changes}) as service:
        result = service.switch(APP, SwitchRequest(require_approval=False), progress=progress)
    return result, events


@pytest.mark.parametrize(
    ("phase", "delay"),
    [("replace-cfg", None), ("reload", 0.1), ("state-file", None)],
    ids=["before-replace", "during-reload", "after-reload"],
)
def test_ssh_to_haproxy_drops_during_a_switch(
    hp_lab: Lab, lab_info: LabInfo, phase: str, delay: float | None
) -> None:
    def inject(event: StepEvent) -> None:
        if event.step == phase and event.status == "start":
            if delay is None:
                kill_sessions(hp_lab, "haproxy")  # before the step's first byte goes out
            else:
                later(delay, kill_sessions, hp_lab, "haproxy")  # while the step runs

    result, _ = _switch_with(hp_lab, lab_info, inject)
    served = wait_serving(lab_info)
    print(f"{phase}: ok={result.ok} rolled_back={result.rolled_back} error={result.error}")
    # Truthful either way: what the result claims is what the frontend and haproxy.cfg show.
    if result.ok:
        assert result.verified and served == "green" == cfg_live(hp_lab)
    else:
        assert result.rolled_back and served == "blue" == cfg_live(hp_lab), result.error
        assert result.error and "dropped" in result.error
        assert "previous haproxy.cfg" in result.error
    assert history_lines(hp_lab)[-1]["outcome"] == ("ok" if result.ok else "failed")
    with Service.from_path(lab_info.config_path) as service:
        status = assert_production_ok(hp_lab, lab_info, service, live=served)
        if result.ok and not result.state_file_written:
            assert "state file NOT written" in result.message
            assert status.drift  # reported, and repaired by the next switch below
    with service_with(lab_info, **QUICK) as service:
        back = service.switch(
            APP, SwitchRequest(require_approval=False)
        )  # the next operation works
        assert back.ok, back.error
        assert_production_ok(hp_lab, lab_info, service, live=back.to_live)
        assert service.status(APP).drift == []


@pytest.fixture
def no_handshake_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker's port proxy accepts a connection and then closes it when sshd is gone, which looks
    like sshd dropping it under load (MaxStartups), and that is retried for a few seconds. These
    tests are about what happens when the host stays unreachable: no such retry."""
    monkeypatch.setattr(ssh_transport, "HANDSHAKE_RETRIES", 0)


@pytest.mark.usefixtures("no_handshake_retry")
def test_haproxy_host_gone_after_the_replace_is_restored_on_reconnect(
    hp_lab: Lab, lab_info: LabInfo
) -> None:
    """sshd disappears right after the new cfg was put in place and before the reload; it is
    back 2 s later. The tool reconnects, puts the previous cfg back and reloads."""

    def inject(event: StepEvent) -> None:
        if event.step == "reload" and event.status == "start":
            kill_sshd(hp_lab)
            later(2.0, start_sshd, hp_lab)

    result, events = _switch_with(hp_lab, lab_info, inject)
    assert not result.ok and result.executed and result.rolled_back, result.error
    assert result.error and "previous haproxy.cfg is back" in result.error, result.error
    assert any(e.step == "restore-cfg" and e.status == "info" for e in events), events
    names = [(s.name, s.status) for s in result.steps]
    assert ("reload", "failed") in names and ("verify-restored", "ok") in names, names
    with Service.from_path(lab_info.config_path) as service:
        assert_production_ok(hp_lab, lab_info, service, live="blue")
        assert service.history(APP).entries[0].outcome == "failed"


@pytest.mark.usefixtures("no_handshake_retry")
def test_haproxy_host_gone_for_good_after_the_replace_is_reported(
    hp_lab: Lab, lab_info: LabInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, but sshd stays away longer than the tool retries: the result says the new cfg
    may be on disk without a reload, status shows it (and is not certain), and the way back is a
    switch with breakLock, which reloads and verifies."""
    monkeypatch.setattr(switch_engine, "RESTORE_RETRY_S", 1.0)

    def inject(event: StepEvent) -> None:
        if event.step == "reload" and event.status == "start":
            kill_sshd(hp_lab)

    result, _ = _switch_with(hp_lab, lab_info, inject)
    assert not result.ok and result.executed
    error = result.error or ""
    assert "RESTORING THE PREVIOUS CFG ALSO FAILED" in error, error
    assert "not reloaded" in error and "haproxy.cfg.20" in error, error  # names the backup
    assert "lock" in result.message and "history not written" in result.message, result.message
    # HAProxy still runs the previous cfg: users never noticed.
    assert wait_serving(lab_info) == "blue"
    start_sshd(hp_lab)
    assert cfg_live(hp_lab) == "green" and cfg_valid(hp_lab)[0]
    with service_with(lab_info, **QUICK) as service:
        status = service.status(APP)
        assert not status.certain
        assert any("not reloaded" in p for p in status.problems), status.problems
        assert status.lock and status.lock.operation == "switch" and status.lock.stale
        with pytest.raises(LockedError, match="STALE"):
            service.deploy(APP)
        fixed = service.switch(APP, SwitchRequest(require_approval=False, break_lock=True))
        assert fixed.ok and fixed.to_live == "blue", fixed.error
        assert_production_ok(hp_lab, lab_info, service, live="blue")


# ---- 3. the HAProxy host unreachable -----------------------------------------------------------


def test_haproxy_host_down(hp_lab: Lab, lab_info: LabInfo) -> None:
    container = hp_lab.container("haproxy")
    container.stop(timeout=2)
    try:
        with Service.from_path(lab_info.config_path) as service:
            started = time.monotonic()
            status = service.status(APP)
            took = time.monotonic() - started
            assert not status.certain and status.live is None
            assert any("cannot read haproxy.cfg" in p for p in status.problems), status.problems
            for attempt in (
                lambda: service.deploy(APP),
                lambda: service.switch(APP, SwitchRequest(require_approval=False)),
            ):
                with pytest.raises(TransportError, match="connection refused"):
                    attempt()
        out = cli(config_file(lab_info, _tmp(hp_lab)), "status", APP)
        assert out.returncode == 12, out.stderr
        assert "UNCERTAIN" in out.stdout and "Traceback" not in out.stdout + out.stderr
        assert took < 15, took
    finally:
        container.start()
    wait_for_ssh(lab_info, "haproxy")
    wait_serving(lab_info, "blue")
    with Service.from_path(lab_info.config_path) as service:
        assert_production_ok(hp_lab, lab_info, service, live="blue")


def _tmp(lab: Lab) -> Any:
    from pathlib import Path

    path = Path(lab.state_dir) / "faults"
    path.mkdir(exist_ok=True)
    return path


# ---- 4. full disks -------------------------------------------------------------------------


def test_standby_with_too_little_disk_is_refused_before_any_change(
    lab: Lab, lab_info: LabInfo
) -> None:
    reset_haproxy(lab)
    before = head(lab, "green")
    with service_with(lab_info, min_free_disk_mb=10_000_000) as service:
        result = service.deploy(APP)
    assert not result.ok and result.failed_step == "preflight"
    assert result.error_type == "PreflightFailed"
    assert result.error and "MB free" in result.error and "min_free_disk_mb" in result.error
    assert result.restored is None and result.standby_state
    assert "was not changed" in result.standby_state
    assert head(lab, "green") == before
    with Service.from_path(lab_info.config_path) as service:
        assert_production_ok(lab, lab_info, service, live="blue")


def test_standby_disk_full_during_the_build(fresh_lab: Lab, lab_info: LabInfo) -> None:
    """A real ENOSPC: GREEN's /dev/shm (a 64 MB tmpfs) is filled, and the build writes an
    artifact there, as a build writing to a full disk does."""
    new = fresh_lab.commit()
    _, out = sh(fresh_lab, "green", "dd if=/dev/zero of=/dev/shm/bluegreen-fill bs=1M; df /dev/shm")
    assert "100%" in out, out
    build = "python3 build.py && cp dist/app.py /dev/shm/bluegreen-artifact.py"
    try:
        with fails_nothing(lab_info), service_with(lab_info, build=build) as service:
            result = service.deploy(APP)
    finally:
        sh(fresh_lab, "green", "rm -f /dev/shm/bluegreen-*")
    assert not result.ok and result.failed_step == "build"
    assert result.output_tail and "No space left on device" in result.output_tail
    assert result.restored is True and head(fresh_lab, "green") == lab_info.initial_commit
    with Service.from_path(lab_info.config_path) as service:
        assert_production_ok(fresh_lab, lab_info, service, live="blue")
        again = service.deploy(APP)
        assert again.ok and again.commit_after == new, again.error


def test_haproxy_host_disk_full_while_replacing_the_cfg(hp_lab: Lab, lab_info: LabInfo) -> None:
    """/etc/haproxy lives on a 64 MB tmpfs (moved to /dev/shm behind a symlink) that fills up
    between the check of the new cfg and its replace: the write fails with ENOSPC."""
    code, out = sh(hp_lab, "haproxy", "mv /etc/haproxy /dev/shm/etc-haproxy && "
                   "ln -s /dev/shm/etc-haproxy /etc/haproxy")  # fmt: skip
    assert code == 0, out

    def inject(event: StepEvent) -> None:
        if event.step == "replace-cfg" and event.status == "start":
            sh(hp_lab, "haproxy", "dd if=/dev/zero of=/dev/shm/bluegreen-fill bs=1M")

    try:
        result, _ = _switch_with(hp_lab, lab_info, inject)
    finally:
        sh(hp_lab, "haproxy", "rm -f /dev/shm/bluegreen-fill")
    assert not result.ok, result
    failed = [s for s in result.steps if s.status == "failed"]
    assert failed and failed[0].name == "replace-cfg", result.steps
    assert result.error and "previous haproxy.cfg" in result.error, result.error
    assert cfg_live(hp_lab) == "blue" and cfg_valid(hp_lab)[0]
    assert sh(hp_lab, "haproxy", "ls -a /etc/haproxy/ | grep -c bluegreen")[1].strip() == "0"
    with service_with(lab_info, **QUICK) as service:
        assert_production_ok(hp_lab, lab_info, service, live="blue")
        again = service.switch(APP, SwitchRequest(require_approval=False))
        assert again.ok, again.error


# ---- 5. files broken by hand -------------------------------------------------------------------


def test_invalid_cfg_by_hand_is_reported_and_refused(hp_lab: Lab, lab_info: LabInfo) -> None:
    sh(hp_lab, "haproxy", f"printf '    bogus-directive on\\n' >> {CFG}")
    with fails_nothing(lab_info), service_with(lab_info, **QUICK) as service:
        status = service.status(APP)
        assert any("haproxy -c" in p for p in status.problems), status.problems
        assert not status.certain
        result = service.switch(APP, SwitchRequest(require_approval=False))
        assert not result.executed and "untouched" in (result.error or "")
    assert wait_serving(lab_info) == "blue"
    # Fixed by hand (and reloaded): the next switch works.
    sh(hp_lab, "haproxy", f"sed -i '/bogus-directive/d' {CFG} && haproxy-reload")
    with service_with(lab_info, **QUICK) as service:
        assert service.switch(APP, SwitchRequest(require_approval=False)).ok
        assert_production_ok(hp_lab, lab_info, service, live="green")


def test_corrupt_state_and_history_files(hp_lab: Lab, lab_info: LabInfo) -> None:
    with service_with(lab_info, **QUICK) as service:
        assert service.switch(APP, SwitchRequest(require_approval=False)).ok
    sh(hp_lab, "haproxy", f"printf '{{not json' > {STATE}")
    # A garbage line, and a last line cut short by a crash (no newline at its end).
    sh(hp_lab, "haproxy", f'printf \'garbage\\n{{"time": "2025\' >> {HISTORY}')
    with service_with(lab_info, **QUICK) as service:
        status = service.status(APP)
        assert status.certain and status.live and status.live.color == "green"
        assert not status.state_file.valid and [d.field for d in status.drift] == ["file"]
        history = service.history(APP)
        assert history.unreadable_lines == 2 and len(history.entries) == 1
        back = service.switch(APP, SwitchRequest(require_approval=False))
        assert back.ok, back.error
        status = service.status(APP)
        assert status.state_file.valid and status.drift == []
        assert status.state_file.contents and status.state_file.contents["live"] == "blue"
        history = service.history(APP)
        assert history.unreadable_lines == 2, "the next append must not be glued to a cut line"
        assert [e.to_live for e in history.entries] == ["blue", "green"]
    assert sh(hp_lab, "haproxy", f"test -e {LOCK_DIR}")[0] != 0


# ---- 6. many callers at once -------------------------------------------------------------------


@pytest.mark.parametrize("sharing", ["one-service", "a-service-each"])
def test_50_concurrent_status_calls(hp_lab: Lab, lab_info: LabInfo, sharing: str) -> None:
    """50 threads ask for status at once: sharing one Service (the MCP server: one SSH connection
    per host), or each with its own (50 separate clients: 150 SSH handshakes at once, beyond
    sshd's MaxStartups)."""
    with service_with(lab_info, **QUICK) as setup:
        assert setup.switch(
            APP, SwitchRequest(require_approval=False)
        ).ok  # a state file, GREEN LIVE
    latencies: list[float] = []
    answers: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)
    shared = Service.from_path(lab_info.config_path) if sharing == "one-service" else None

    def call() -> None:
        service = shared or Service.from_path(lab_info.config_path)
        barrier.wait()
        started = time.monotonic()
        try:
            answer: Any = service.status(APP)
        except Exception as exc:
            answer = exc
        with lock:
            latencies.append(time.monotonic() - started)
            answers.append(answer)
        if shared is None:
            service.close()

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if shared is not None:
        shared.close()
    bad = [a for a in answers if isinstance(a, Exception) or not a.certain or a.problems]
    assert bad == [], [a if isinstance(a, Exception) else a.problems for a in bad][:3]
    assert {a.live.color for a in answers} == {"green"}
    median, worst = statistics.median(latencies), max(latencies)
    print(f"50 concurrent status calls ({sharing}): median {median:.2f}s, max {worst:.2f}s")
    assert worst < 30
