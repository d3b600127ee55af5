"""The switch engine's orchestration on a scripted HAProxy host (fast; the lab tests are in
tests/lab/test_switch.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.fake_hosts import APP, CFG_PATH, HP, LAB_CFG, STATE, FakeHosts, config

from bluegreen.engine.context import Context, StepEvent
from bluegreen.errors import ApprovalError, HAProxyConfigError, LockedError, ValidationError
from bluegreen.models import SwitchPlan, SwitchResult
from bluegreen.service import Approver, Service, SwitchRequest
from bluegreen.transport.fake import Reply


def token_of(result: SwitchResult) -> str:
    assert result.plan is not None and result.plan.confirm_token
    return result.plan.confirm_token


def service(hosts: FakeHosts, **changes: object) -> Service:
    return Service(config(**changes), runner=hosts.runner)


def history_entries(hosts: FakeHosts) -> list[dict[str, Any]]:
    raw = hosts.runner.file(HP, "/var/lib/bluegreen/history/jw-attendant.jsonl") or b""
    return [json.loads(line) for line in raw.decode().splitlines()]


def test_switch_rewrites_cfg_state_history_and_releases_lock() -> None:
    hosts = FakeHosts()
    result = service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert result.ok and result.verified and result.to_live == "green"
    new_cfg = (hosts.runner.file(HP, CFG_PATH) or b"").decode()
    assert new_cfg == LAB_CFG.replace("default_backend bk_blue", "default_backend bk_green")
    state = json.loads(hosts.runner.file(HP, STATE) or b"{}")
    assert state["live"] == "green" and state["standby"] == "blue" and state["switchCount"] == 1
    history = (
        hosts.runner.file(HP, "/var/lib/bluegreen/history/jw-attendant.jsonl") or b""
    ).decode()
    assert json.loads(history)["outcome"] == "ok"
    assert hosts.runner.file(HP, "/var/lib/bluegreen/locks/jw-attendant.lock/") is None
    names = [s.name for s in result.steps]
    assert names.index("backup-cfg") < names.index("check-cfg") < names.index("replace-cfg")
    assert names.index("replace-cfg") < names.index("reload") < names.index("verify")
    for color, role in (("green", "LIVE"), ("blue", "STANDBY")):
        host = f"root@{color}"
        assert (
            f"ROLE={role}"
            in (hosts.runner.file(host, "/opt/jw-attendant/.env.display") or b"").decode()
        )


def test_invalid_candidate_leaves_cfg_untouched() -> None:
    hosts = FakeHosts()
    hosts.check_fails = True
    result = service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert not result.ok and not result.executed and not result.rolled_back
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    failed = [s for s in result.steps if s.status == "failed"]
    assert failed[0].name == "check-cfg" and "bad cfg" in (failed[0].output_tail or "")
    assert not any(c.kind == "write" and c.line == CFG_PATH for c in hosts.runner.calls)


def test_failed_reload_restores_the_previous_cfg() -> None:
    hosts = FakeHosts()
    hosts.reload_fails = 1
    result = service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert not result.ok and result.executed and result.rolled_back
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    assert [s.name for s in result.steps if s.status == "failed"] == ["reload"]
    assert result.steps[-1].name == "verify-restored" and result.steps[-1].status == "ok"
    assert hosts.runner.file(HP, STATE) is None  # the state file is only written after success


def test_unverified_traffic_restores_the_previous_cfg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bluegreen.engine.traffic.VERIFY_TIMEOUT_S", 0.3)
    hosts = FakeHosts()
    hosts.frontend_stuck = True
    result = service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert result.rolled_back and not result.ok
    assert "did not reach GREEN" in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()


def test_unhealthy_target_is_refused_before_any_change() -> None:
    hosts = FakeHosts()
    hosts.healthy["green"] = False
    result = service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert not result.executed and "not healthy" in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    # Emergency does not skip the target check; only force does, and then says so.
    emergency = service(hosts).switch(APP, SwitchRequest(require_approval=False, emergency=True))
    assert not emergency.executed and "force" in (emergency.error or "") + emergency.message
    forced = service(hosts).switch(
        APP, SwitchRequest(require_approval=False, emergency=True, force=True)
    )
    assert forced.ok and not any(s.name == "drain" for s in forced.steps)
    assert "health not verified" in next(s.message for s in forced.steps if s.name == "verify")


def test_a_target_whose_health_is_unknown_is_refused_as_unknown() -> None:
    """Our own path to the probe failed: the switch refuses, and says the health is unknown (not
    that the target is unhealthy)."""
    hosts = FakeHosts()
    hosts.unmeasurable.add("green")
    result = service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert not result.executed
    assert "GREEN health is unknown" in (result.error or "")
    assert "not healthy" not in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()


def test_ambiguous_routing_is_refused() -> None:
    hosts = FakeHosts()
    both = LAB_CFG.replace(
        "default_backend bk_blue", "use_backend bk_green\n    default_backend bk_blue"
    )
    hosts.runner.put_file(HP, CFG_PATH, both)
    with pytest.raises(HAProxyConfigError, match="not certain"):
        service(hosts).switch(APP, SwitchRequest(require_approval=False))


def test_held_lock_refuses_and_changes_nothing() -> None:
    hosts = FakeHosts()
    holder = {"operation": "deploy", "app": APP, "user": "ops", "host": "elsewhere", "pid": 1,
              "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "token": "t"}  # fmt: skip
    lock = "/var/lib/bluegreen/locks/jw-attendant.lock"
    hosts.runner.put_file(HP, lock + "/", b"")
    hosts.runner.put_file(HP, lock + "/holder.json", json.dumps(holder))
    with pytest.raises(LockedError, match="deploy by ops@elsewhere"):
        service(hosts).switch(
            APP, SwitchRequest(require_approval=False, break_lock=True)
        )  # not stale: kept
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()


def test_stale_lock_is_broken_only_when_asked() -> None:
    hosts = FakeHosts()
    old = (datetime.now(UTC) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    holder = {"operation": "switch", "app": APP, "user": "ops", "host": "elsewhere", "pid": 1,
              "since": old, "token": "t"}  # fmt: skip
    lock = "/var/lib/bluegreen/locks/jw-attendant.lock"
    hosts.runner.put_file(HP, lock + "/", b"")
    hosts.runner.put_file(HP, lock + "/holder.json", json.dumps(holder))
    with pytest.raises(LockedError, match="STALE"):
        service(hosts).switch(APP, SwitchRequest(require_approval=False))
    assert service(hosts).switch(APP, SwitchRequest(require_approval=False, break_lock=True)).ok


def test_token_flow_replay_and_mismatch() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False)
    first = svc.switch(APP)
    assert not first.executed and token_of(first)
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    assert svc.switch(APP, SwitchRequest(confirm_token=token_of(first))).ok
    with pytest.raises(ApprovalError, match="already used"):
        svc.switch(APP, SwitchRequest(confirm_token=token_of(first)))
    second = svc.switch(APP)
    hosts.runner.put_file(
        HP, STATE, b'{"live": "green", "note": "edited"}'
    )  # the situation changed
    with pytest.raises(ApprovalError, match="does not match"):
        svc.switch(APP, SwitchRequest(confirm_token=token_of(second)))
    with pytest.raises(ValidationError):
        svc.switch(APP, SwitchRequest(confirm_token="$(reboot)"))
    with pytest.raises(ApprovalError, match="allow_unapproved"):
        svc.switch(APP, SwitchRequest(require_approval=False))


def test_expired_token_is_refused() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False, token_ttl_s=1)
    token = token_of(svc.switch(APP))
    assert token
    later = Service(svc.config, runner=hosts.runner)
    later.context = lambda progress=None: Context(  # type: ignore[method-assign]
        config=svc.config, runner=hosts.runner, now=lambda: datetime.now(UTC) + timedelta(seconds=5)
    )
    with pytest.raises(ApprovalError, match="expired"):
        later.switch(APP, SwitchRequest(confirm_token=token))


def test_operator_mode_needs_a_person_first() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))
    assert token
    with pytest.raises(ApprovalError, match="operator"):
        svc.switch(APP, SwitchRequest(confirm_token=token))
    shown: list[SwitchPlan] = []

    def show(plan: SwitchPlan) -> bool:
        shown.append(plan)
        return True

    assert "approved" in svc.approve(token, "ops@terminal", show)
    assert shown[0].diff and shown[0].target_commit == hosts.commits["green"]
    assert svc.switch(APP, SwitchRequest(confirm_token=token)).ok
    entry = history_entries(hosts)[-1]
    assert entry["approval"] == {"kind": "operator", "by": "ops@terminal", "channel": "terminal"}


def test_elicitation_decides() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False)
    asked: list[SwitchPlan] = []

    def refuse(plan: SwitchPlan) -> bool:
        asked.append(plan)
        return False

    no = svc.switch(APP, approver=Approver(ask=refuse))
    assert not no.executed and asked and asked[0].to_live == "green"
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    assert svc.switch(APP, approver=Approver(ask=lambda plan: True)).ok
    elicit_only = service(hosts, allow_unapproved=False, approval="elicit")
    with pytest.raises(ApprovalError, match="cannot ask"):
        elicit_only.switch(APP)


def test_a_watch_our_own_path_cannot_make_never_rolls_back() -> None:
    """Probes that could not be made (health unknown) during the watch are no evidence against
    the new LIVE: the verified switch stays, and the watch says how many were not made."""
    hosts = FakeHosts()

    def lose_our_path(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.unmeasurable.add("green")

    svc = service(hosts, watch_s=2.0, auto_rollback=True)
    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=lose_our_path)
    assert result.ok and not result.auto_rollback and hosts.live_color() == "green"
    watch = next(step for step in result.steps if step.name == "watch")
    assert "could not be made" in watch.message


@pytest.mark.parametrize("auto_rollback", [True, False])
def test_new_live_failing_the_watch_is_never_reported_ok(auto_rollback: bool) -> None:
    hosts = FakeHosts()

    def break_green(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.healthy["green"] = False

    svc = service(hosts, watch_s=5.0, auto_rollback=auto_rollback)
    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=break_green)
    assert not result.ok and result.verified
    assert result.auto_rollback is auto_rollback
    entry = json.loads(
        (hosts.runner.file(HP, "/var/lib/bluegreen/history/jw-attendant.jsonl") or b"")
        .decode()
        .splitlines()[-1]
    )
    if auto_rollback:
        assert hosts.live_color() == "blue" and entry["outcome"] == "auto-rolled-back"
    else:
        assert hosts.live_color() == "green" and entry["outcome"] == "failed"
        assert "autoRollback is off" in (result.error or "")


def test_an_unreadable_master_cli_is_not_taken_for_drained_workers() -> None:
    hosts = FakeHosts()
    hosts.master_cli_fails = True
    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False)
    )
    assert result.ok, result.message
    drain = next(s for s in result.steps if s.name == "drain")
    assert "did not answer" in drain.message and "Permission denied" in drain.message
    assert "exited" not in drain.message


def test_a_checker_that_is_not_installed_is_not_called_an_invalid_cfg() -> None:
    hosts = FakeHosts()
    hosts.check_missing = True
    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False)
    )
    assert not result.ok
    assert "could not be checked" in result.message and "/usr/sbin/haproxy" in result.message
    assert "does not pass" not in result.message
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()  # haproxy.cfg untouched


# ---- approval binds what goes LIVE (issue 16 items 2, 3, 5) ---------------------------------

NEW_COMMIT = "c3" * 20


def test_a_deploy_after_the_plan_makes_the_token_stale() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False)
    plan = svc.switch(APP).plan
    assert plan and plan.confirm_token and plan.target_commit == hosts.commits["green"]
    hosts.commits["green"] = NEW_COMMIT  # deploy_to_standby ran after the plan
    with pytest.raises(ApprovalError, match="STANDBY GREEN changed since the plan: c3c3c3c was "
                       "deployed"):  # fmt: skip
        svc.switch(APP, SwitchRequest(confirm_token=plan.confirm_token))
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode() and history_entries(hosts) == []


def test_a_deploy_after_the_plan_makes_the_operator_approval_stale() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))
    assert token
    hosts.commits["green"] = NEW_COMMIT
    with pytest.raises(ApprovalError, match="no longer applies: STANDBY GREEN changed since the "
                       "plan: c3c3c3c was deployed"):  # fmt: skip
        svc.approve(token, "ops@terminal", lambda plan: True)
    assert hosts.runner.file(HP, f"/var/lib/bluegreen/approvals/{token}.approved/") is None


def test_a_deploy_while_the_person_is_asked_makes_the_answer_stale() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False)

    def yes_after_a_deploy(plan: SwitchPlan) -> bool:
        hosts.commits["green"] = NEW_COMMIT
        return True

    with pytest.raises(ApprovalError, match="c3c3c3c was deployed"):
        svc.switch(APP, approver=Approver(who="client 1.0", ask=yes_after_a_deploy))
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode() and history_entries(hosts) == []


def test_the_health_answer_is_a_second_witness_of_the_target_commit() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False)
    token = token_of(svc.switch(APP))
    checkout_answer = hosts.curl

    def restarted_on_other_code(url: str) -> Reply:  # same checkout, other code running
        reply = checkout_answer(url)
        return replace(reply, stdout=reply.stdout.replace("b2b2b2b", "c3c3c3c"))

    hosts.curl = restarted_on_other_code  # type: ignore[method-assign]
    plan = svc.switch(APP).plan
    assert plan and "GREEN has b2b2b2b checked out but its health endpoint reports c3c3c3c" in (
        " ".join(plan.warnings)
    )
    with pytest.raises(ApprovalError, match=r"does not match.*health endpoint reports changed"):
        svc.switch(APP, SwitchRequest(confirm_token=token))
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()


def test_a_switch_records_both_commits_and_how_it_was_approved() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False)
    assert svc.switch(APP, approver=Approver(who="claude-code 2.1", ask=lambda plan: True)).ok
    entry = history_entries(hosts)[-1]
    assert entry["from_live"] == "blue" and entry["from_commit"] == hosts.commits["blue"]
    assert entry["to_live"] == "green" and entry["to_commit"] == hosts.commits["green"]
    assert entry["approval"] == {"kind": "elicitation", "by": "claude-code 2.1"}
    cli = Approver(from_cli=True, who="ana@laptop", ask=lambda plan: True)
    assert svc.switch(APP, approver=cli).ok
    assert history_entries(hosts)[-1]["approval"] == {"kind": "terminal", "by": "ana@laptop"}
    token = token_of(svc.switch(APP))
    assert svc.switch(APP, SwitchRequest(confirm_token=token)).ok
    assert history_entries(hosts)[-1]["approval"] == {"kind": "token", "by": None}
    assert service(hosts).switch(APP, SwitchRequest(require_approval=False)).ok
    assert history_entries(hosts)[-1]["approval"]["kind"] == "allowed-unapproved"


def test_emergency_without_approval_only_restores_what_was_live() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False, allow_emergency_without_approval=True)
    assert svc.switch(APP, approver=Approver(ask=lambda plan: True)).ok  # BLUE -> GREEN, approved
    back = SwitchRequest(require_approval=False, emergency=True)
    hosts.commits["blue"] = NEW_COMMIT  # the new STANDBY gets new code
    with pytest.raises(ApprovalError, match="BLUE ran a1a1a1a when it was LIVE and now runs "
                       "c3c3c3c") as refused:  # fmt: skip
        svc.switch(APP, back)
    assert "requireApproval=true" in (refused.value.hint or "")
    assert hosts.live_color() == "green" and len(history_entries(hosts)) == 1
    hosts.commits["blue"] = "a1" * 20  # what BLUE ran when it was LIVE: the rule lets it back
    restored = svc.switch(APP, back)
    assert restored.ok and hosts.live_color() == "blue"
    assert history_entries(hosts)[-1]["approval"] == {"kind": "emergency-rule", "by": None}


def test_an_elicit_app_takes_no_token_from_a_client() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False, approval="elicit")
    plan = svc.plan_switch(APP)  # `bluegreen switch --plan`
    assert plan.confirm_token
    request = SwitchRequest(confirm_token=plan.confirm_token)
    with pytest.raises(ApprovalError, match="not such an answer"):
        svc.switch(APP, request, approver=Approver(who="no-elicitation-client 1.0"))
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    # The same token, confirmed by the person who planned it with the CLI, is theirs to use.
    assert svc.switch(APP, request, approver=Approver(from_cli=True, who="ana@laptop")).ok


def test_an_operator_app_takes_only_an_operator_token() -> None:
    hosts = FakeHosts()
    token = service(hosts, allow_unapproved=False).switch(APP).plan.confirm_token  # type: ignore[union-attr]
    operator = service(hosts, allow_unapproved=False, approval="operator")
    with pytest.raises(ApprovalError, match="issued in token mode"):
        operator.switch(APP, SwitchRequest(confirm_token=token))
    with pytest.raises(ApprovalError, match="needs no operator"):
        operator.approve(token or "", "ops@terminal", lambda plan: True)


def test_operator_approval_is_refused_when_the_person_says_no() -> None:
    hosts = FakeHosts()
    svc = service(hosts, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))
    assert token
    assert svc.approve(token, "ops@terminal", lambda plan: False).startswith("not approved")
    with pytest.raises(ApprovalError, match="operator's approval first"):
        svc.switch(APP, SwitchRequest(confirm_token=token))
