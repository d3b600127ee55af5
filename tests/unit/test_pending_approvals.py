"""Operator-mode plans waiting for a person: listed, approved from the dashboard's channel, and
refused once stale."""

from __future__ import annotations

import pytest
from tests.unit.fake_hosts import APP, FakeHosts
from tests.unit.test_switch_engine import history_entries, service, token_of

from bluegreen.domain.approval import approve_command, unanswered_tokens
from bluegreen.errors import ApprovalError
from bluegreen.service import SwitchRequest

A, B, C = "a" * 20, "b" * 20, "c" * 20


def test_unanswered_tokens_have_a_record_and_no_marker() -> None:
    listing = f"{A}.json\n{B}.json\n{B}.approved\n{C}.json\n{C}.used\nnot-a-token!.json\nREADME\n"
    assert unanswered_tokens(listing) == (A,)
    assert unanswered_tokens("") == ()


def test_the_channel_is_one_this_tool_knows() -> None:
    assert approve_command("/w", A, "ana", "dashboard").argv[-1] == "dashboard"
    with pytest.raises(ValueError, match="channel"):
        approve_command("/w", A, "ana", "carrier pigeon")


def test_pending_lists_operator_plans_until_approved() -> None:
    lab = FakeHosts()
    svc = service(lab, allow_unapproved=False, approval="operator")
    assert svc.pending_approvals(APP) == []  # no approvals directory yet
    token = token_of(svc.switch(APP))
    (pending,) = svc.pending_approvals(APP)
    assert (pending.token, pending.from_live, pending.to_live) == (token, "blue", "green")
    assert pending.target_commit == lab.commits["green"]
    assert "approved" in svc.approve(token, "ana@laptop", lambda plan: True, channel="dashboard")
    assert svc.pending_approvals(APP) == []
    assert svc.switch(APP, SwitchRequest(confirm_token=token)).ok
    assert history_entries(lab)[-1]["approval"] == {
        "kind": "operator", "by": "ana@laptop", "channel": "dashboard"
    }  # fmt: skip


def test_token_mode_plans_are_not_an_operators_to_approve() -> None:
    lab = FakeHosts()
    svc = service(lab, allow_unapproved=False, approval="token")
    token_of(svc.switch(APP))
    assert svc.pending_approvals(APP) == []


def test_a_stale_plan_cannot_be_approved_from_the_dashboard() -> None:
    lab = FakeHosts()
    svc = service(lab, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))
    lab.commits["green"] = "c3" * 20  # a deploy to the target after the plan
    asked: list[object] = []
    with pytest.raises(ApprovalError, match="no longer applies"):
        svc.approve(token, "ana@laptop", asked.append, channel="dashboard")  # type: ignore[arg-type]
    assert asked == []
    assert len(svc.pending_approvals(APP)) == 1  # still unapproved
