"""Once traffic moved, the state file write is attempted and the history line written, whatever
fails after the reload: an unexpected exception (a bug), or a state file that cannot be written
after an auto-rollback."""

from __future__ import annotations

import json

import pytest
from tests.unit.fake_hosts import APP, HP, STATE, WORK, FakeHosts, config

from bluegreen.engine import history
from bluegreen.engine.context import Context, StepEvent
from bluegreen.errors import TransportError
from bluegreen.service import Service, SwitchRequest

HISTORY = f"{WORK}/history/{APP}.jsonl"


def entries(hosts: FakeHosts) -> list[dict[str, object]]:
    lines = (hosts.runner.file(HP, HISTORY) or b"").decode().splitlines()
    return [json.loads(line) for line in lines]


def boom(*_args: object, **_kwargs: object) -> str:
    raise OverflowError("cannot convert float infinity to integer")


@pytest.mark.parametrize("where", ["drain", "_finish", "_watch"])
def test_an_internal_error_after_the_reload_still_writes_state_and_history(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`drain` fails inside a step; `_finish` before the state file; `_watch` after it."""
    monkeypatch.setattr(f"bluegreen.engine.switch.{where}", boom)
    hosts = FakeHosts()
    result = Service(config(watch_s=1.0), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False)
    )
    assert result.executed and result.verified and not result.ok
    assert "OverflowError" in (result.error or "") and "moved to GREEN" in (result.error or "")
    assert hosts.live_color() == "green"
    assert json.loads(hosts.runner.file(HP, STATE) or b"{}")["live"] == "green"
    assert result.state_file_written
    entry = entries(hosts)[-1]
    assert entry["outcome"] == "failed" and "OverflowError" in str(entry["error"])
    assert hosts.runner.file(HP, f"{WORK}/locks/{APP}.lock/") is None


def test_an_internal_error_writing_the_state_file_is_reported_not_raised() -> None:
    hosts = FakeHosts()
    hosts.runner.fail_file(HP, STATE, OverflowError("boom"), kind="write")
    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False)
    )
    assert result.verified and hosts.live_color() == "green"
    assert not result.state_file_written and "state file NOT written" in result.message
    assert "OverflowError" in result.message
    assert entries(hosts)[-1]["to_live"] == "green"


def test_a_failed_state_write_after_an_auto_rollback_keeps_the_result_and_history() -> None:
    hosts = FakeHosts()

    def break_green(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.healthy["green"] = False
            # The first state file write (GREEN LIVE) went through; the rollback's one fails.
            hosts.runner.fail_file(HP, STATE, TransportError("sftp gone", host=HP), kind="write")

    svc = Service(config(watch_s=5.0, auto_rollback=True), runner=hosts.runner)
    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=break_green)
    assert result.auto_rollback and not result.ok
    assert "rolled back automatically" in (result.error or "") and hosts.live_color() == "blue"
    assert not result.state_file_written
    assert "state file NOT written (sftp gone)" in result.message
    states = [s for s in result.steps if s.name == "state-file"]
    assert [s.status for s in states] == ["ok", "failed"]
    assert entries(hosts)[-1]["outcome"] == "auto-rolled-back"
    assert hosts.runner.file(HP, f"{WORK}/locks/{APP}.lock/") is None


def test_a_history_detail_that_does_not_fit_still_leaves_the_line() -> None:
    hosts = FakeHosts()
    ctx = Context(config=config(), runner=hosts.runner)
    problem = history.record(ctx, "switch", APP, "ok", by=("ops", "box"), duration_s="soon")
    assert problem is None
    entry = entries(hosts)[-1]
    assert (entry["operation"], entry["outcome"], entry["user"], entry["host"]) == (
        "switch", "ok", "ops", "box",
    )  # fmt: skip
    assert "history details not kept" in str(entry["error"]) and "duration_s" in str(entry["error"])
