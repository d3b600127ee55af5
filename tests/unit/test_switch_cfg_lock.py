"""One writer of haproxy.cfg at a time: the cfg lock shared by every app, the compare-and-swap
against the bytes the plan read, and restores and rollbacks that never write over a file that is
neither the one they read nor the one they wrote (the hosts test with two real apps is in
tests/lab/test_cfg_lock.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from tests.unit.fake_hosts import APP, CFG_PATH, HP, LAB_CFG, WORK, FakeHosts, config

from bluegreen.domain import lock as dlock
from bluegreen.engine.context import StepEvent
from bluegreen.errors import ApprovalError, LockedError
from bluegreen.service import Service, SwitchRequest

CFG_LOCK = f"{WORK}/locks/{dlock.cfg_lock_key(CFG_PATH)}.lock"
HISTORY = f"{WORK}/history/{APP}.jsonl"
OTHER_APP = "\nbackend bk_shop\n    server shop shop:3002 check\n"  # another app's switch


def hold_cfg_lock(hosts: FakeHosts, app: str = "shop") -> None:
    holder = dlock.new_holder("switch", app, datetime.now(UTC))
    hosts.runner.put_file(HP, CFG_LOCK + "/", b"")
    hosts.runner.put_file(HP, CFG_LOCK + "/holder.json", holder.to_json())


def entries(hosts: FakeHosts) -> list[dict[str, object]]:
    lines = (hosts.runner.file(HP, HISTORY) or b"").decode().splitlines()
    return [json.loads(line) for line in lines]


def last_history(hosts: FakeHosts) -> dict[str, object]:
    return entries(hosts)[-1]


def test_cfg_lock_key_is_per_file_and_never_an_app_lock() -> None:
    key = dlock.cfg_lock_key("/etc/haproxy/haproxy.cfg")
    assert key != dlock.cfg_lock_key("/etc/haproxy/other.cfg")
    assert dlock.lock_dir(WORK, key) == f"{WORK}/locks/cfg/etc_haproxy_haproxy.cfg.lock"
    assert "/" not in APP  # app names cannot reach into locks/cfg/


def test_the_cfg_lock_is_held_from_the_replan_to_the_verify_only() -> None:
    hosts = FakeHosts()
    held: dict[str, bool] = {}

    def look(event: StepEvent) -> None:
        if event.status == "start":
            held[event.step] = hosts.runner.file(HP, CFG_LOCK + "/") is not None

    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False), progress=look
    )
    assert result.ok, result.message
    assert all(held[s] for s in ("plan", "compare-cfg", "replace-cfg", "reload", "verify"))
    assert not held["drain"] and not held["state-file"]  # released before the slow part
    assert hosts.runner.file(HP, CFG_LOCK + "/") is None


def test_a_switch_waits_for_another_apps_cfg_lock_and_says_so() -> None:
    hosts = FakeHosts()
    hold_cfg_lock(hosts)
    said: list[str] = []

    def release_when_waiting(event: StepEvent) -> None:
        if event.step == "lock" and event.status == "info":
            said.append(event.message)
            hosts.runner.remove_file(HP, CFG_LOCK + "/")  # the other app's switch ends
            hosts.runner.remove_file(HP, CFG_LOCK + "/holder.json")

    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False), progress=release_when_waiting
    )
    assert result.ok, result.message
    assert said and "waiting" in said[0] and "haproxy.cfg" in said[0] and "shop" in said[0]


def test_a_cfg_lock_left_by_a_killed_switch_of_the_same_app_is_broken() -> None:
    """Killed between the replace and the reload: the app lock was broken (e.g. by a deploy with
    breakLock) and the cfg lock was left. Holding the app's lock proves that one is left over."""
    hosts = FakeHosts()
    hold_cfg_lock(hosts, app=APP)  # fresh and from another machine: not stale by age or pid
    said: list[str] = []
    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False), progress=lambda e: said.append(e.message)
    )
    assert result.ok, result.message
    assert any("breaking stale lock of switch by" in m for m in said), said
    assert hosts.runner.file(HP, CFG_LOCK + "/") is None
    assert [e["outcome"] for e in entries(hosts)] == ["ok"]  # its app lock records interruptions


def test_a_cfg_lock_held_past_the_wait_refuses_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bluegreen.engine.lock.CFG_LOCK_WAIT_S", 0.2)
    hosts = FakeHosts()
    hold_cfg_lock(hosts)
    with pytest.raises(LockedError, match=r"haproxy.cfg \(/etc/haproxy/haproxy.cfg\) is locked"):
        Service(config(), runner=hosts.runner).switch(APP, SwitchRequest(require_approval=False))
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    # The app's own lock was released on the way out.
    assert hosts.runner.file(HP, f"{WORK}/locks/{APP}.lock/") is None


def test_a_cfg_changed_after_the_plan_is_never_replaced() -> None:
    hosts = FakeHosts()
    edited = LAB_CFG + OTHER_APP

    def edit_before_replace(event: StepEvent) -> None:
        if event.step == "check-cfg" and event.status == "ok":
            hosts.runner.put_file(HP, CFG_PATH, edited)  # a writer that does not take the lock

    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False), progress=edit_before_replace
    )
    assert not result.ok and not result.executed
    assert "haproxy.cfg changed since the plan" in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == edited.encode()
    assert not any(s.name == "replace-cfg" for s in result.steps)
    assert last_history(hosts)["outcome"] == "failed"


def test_a_restore_never_writes_over_a_file_it_neither_read_nor_wrote() -> None:
    hosts = FakeHosts()
    hosts.reload_fails = 1
    foreign = LAB_CFG.replace("default_backend bk_blue", "default_backend bk_green") + OTHER_APP

    def someone_writes(event: StepEvent) -> None:
        if event.step == "reload" and event.status == "start":
            hosts.runner.put_file(HP, CFG_PATH, foreign)

    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False), progress=someone_writes
    )
    assert not result.ok and result.executed and not result.rolled_back
    assert "neither the file this switch read nor the one it wrote" in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == foreign.encode()  # left as it is
    assert not any(s.name == "reload-restored" for s in result.steps)


def break_green_after_the_switch(hosts: FakeHosts, then: str) -> Callable[[StepEvent], None]:
    def hook(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.healthy["green"] = False
            hosts.runner.put_file(HP, CFG_PATH, then)

    return hook


def test_an_auto_rollback_keeps_another_apps_switch_made_during_the_watch() -> None:
    hosts = FakeHosts()
    switched = LAB_CFG.replace("default_backend bk_blue", "default_backend bk_green")
    svc = Service(config(watch_s=5.0, auto_rollback=True), runner=hosts.runner)
    result = svc.switch(
        APP,
        SwitchRequest(require_approval=False),
        progress=break_green_after_the_switch(hosts, switched + OTHER_APP),
    )
    assert result.auto_rollback and "rolled back automatically" in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == (LAB_CFG + OTHER_APP).encode()  # only our line back
    assert hosts.live_color() == "blue"
    assert last_history(hosts)["outcome"] == "auto-rolled-back"
    assert hosts.runner.file(HP, CFG_LOCK + "/") is None


def test_an_auto_rollback_leaves_a_cfg_that_no_longer_routes_to_the_new_live() -> None:
    hosts = FakeHosts()
    svc = Service(config(watch_s=5.0, auto_rollback=True), runner=hosts.runner)
    by_hand = LAB_CFG + OTHER_APP  # someone already put BLUE back by hand, differently
    result = svc.switch(
        APP,
        SwitchRequest(require_approval=False),
        progress=break_green_after_the_switch(hosts, by_hand),
    )
    assert result.auto_rollback and not result.ok
    assert "AUTO-ROLLBACK FAILED" in (result.error or "") and "left as it is" in (
        result.error or ""
    )
    assert hosts.runner.file(HP, CFG_PATH) == by_hand.encode()
    assert last_history(hosts)["outcome"] == "auto-rollback-failed"


def test_an_auto_rollback_waits_for_the_cfg_lock_and_refuses_past_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bluegreen.engine.lock.CFG_LOCK_WAIT_S", 0.2)
    hosts = FakeHosts()

    def hook(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.healthy["green"] = False
            hold_cfg_lock(hosts)  # another app's switch holds haproxy.cfg through the rollback

    svc = Service(config(watch_s=5.0, auto_rollback=True), runner=hosts.runner)
    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=hook)
    assert "AUTO-ROLLBACK FAILED" in (result.error or "") and "is locked" in (result.error or "")
    assert hosts.live_color() == "green"  # nothing written without the lock
    assert last_history(hosts)["outcome"] == "auto-rollback-failed"


def test_another_apps_change_after_the_plan_leaves_the_approval_valid() -> None:
    """The approval binds this app's routing lines, not the whole file: another app's switch
    between plan and confirm keeps the token good, and its line survives this switch."""
    hosts = FakeHosts()
    svc = Service(config(allow_unapproved=False), runner=hosts.runner)
    planned = svc.switch(APP)
    assert planned.plan is not None and planned.plan.confirm_token
    hosts.runner.put_file(HP, CFG_PATH, LAB_CFG + OTHER_APP)  # another app's switch, meanwhile
    result = svc.switch(APP, SwitchRequest(confirm_token=planned.plan.confirm_token))
    assert result.ok, result.message
    switched = LAB_CFG.replace("default_backend bk_blue", "default_backend bk_green")
    assert hosts.runner.file(HP, CFG_PATH) == (switched + OTHER_APP).encode()


def test_a_change_to_this_apps_routing_after_the_plan_makes_the_approval_stale() -> None:
    hosts = FakeHosts()
    svc = Service(config(allow_unapproved=False), runner=hosts.runner)
    planned = svc.switch(APP)
    assert planned.plan is not None and planned.plan.confirm_token
    # The server line of this app's STANDBY changed (another address): what was approved is gone.
    moved = LAB_CFG.replace("server green green:3001", "server green green:3009")
    assert moved != LAB_CFG
    hosts.runner.put_file(HP, CFG_PATH, moved)
    with pytest.raises(ApprovalError, match="does not match the current plan"):
        svc.switch(APP, SwitchRequest(confirm_token=planned.plan.confirm_token))
    assert hosts.runner.file(HP, CFG_PATH) == moved.encode()
