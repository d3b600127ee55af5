"""Operator-mode plans waiting for a person: listed, approved from the dashboard's channel, and
refused once stale."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.unit.fake_hosts import APP, CONFIG_TOML, HP, WORK, FakeHosts
from tests.unit.test_switch_engine import history_entries, service, token_of

from bluegreen import cli
from bluegreen.domain.approval import (
    approve_command,
    new_token,
    prune_command,
    record_path,
    token_dir,
    unanswered_tokens,
)
from bluegreen.errors import ApprovalError, CommandFailed, ValidationError
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


# ---- expired tokens nobody answered are removed -----------------------------------------------


def put_token(lab: FakeHosts, token: str, *, expired: bool, mode: str = "operator",
              marker: str | None = None) -> None:  # fmt: skip
    """A token record on the HAProxy host, an hour old or fresh, with a .used/.approved marker."""
    now = datetime.now(UTC)
    created = now - timedelta(hours=1) if expired else now
    record = new_token(APP, "h" * 64, mode, created, 600, "blue", "green", emergency=False,
                       target_commit=None, issued_by_cli=False)  # fmt: skip
    lab.runner.put_file(HP, record_path(WORK, token), replace(record, token=token).to_json())
    if marker:
        lab.runner.put_file(HP, f"{token_dir(WORK)}/{token}.{marker}/", b"")


def records(lab: FakeHosts) -> set[str]:
    prefix = token_dir(WORK) + "/"
    return {p[len(prefix) : -len(".json")] for p in lab.runner.paths(HP)
            if p.startswith(prefix) and p.endswith(".json")}  # fmt: skip


D, E = "d" * 20, "e" * 20


def seeded_tokens() -> FakeHosts:
    lab = FakeHosts()
    put_token(lab, A, expired=True)  # nobody answered: goes
    put_token(lab, B, expired=True, marker="approved")  # answered: stays
    put_token(lab, C, expired=True, marker="used")  # used: stays (a replay is refused by it)
    put_token(lab, D, expired=False)  # still valid: stays
    put_token(lab, E, expired=True, mode="token")  # a token-mode plan nobody confirmed: goes
    return lab


def test_prune_removes_only_expired_unanswered_tokens() -> None:
    lab = seeded_tokens()
    svc = service(lab, allow_unapproved=False, approval="operator")
    assert sorted(svc.prune_approvals()) == [A, E]
    assert records(lab) == {B, C, D}
    assert lab.runner.file(HP, f"{token_dir(WORK)}/{B}.approved/") is not None
    assert svc.prune_approvals() == []  # nothing left to prune: no command sent
    assert sum("bluegreen-prune-approvals" in c for c in lab.runner.commands()) == 1


def test_issuing_a_new_token_prunes_the_expired_ones() -> None:
    lab = seeded_tokens()
    svc = service(lab, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))
    assert records(lab) == {B, C, D, token}


def test_the_pending_list_never_shows_an_expired_plan() -> None:
    lab = seeded_tokens()
    svc = service(lab, allow_unapproved=False, approval="operator")
    assert [p.token for p in svc.pending_approvals(APP)] == [D]  # A expired: not listed


def test_the_prune_command_passes_tokens_as_arguments_and_refuses_others() -> None:
    command = prune_command(WORK, [A, B])
    assert command.argv[:2] == ("sh", "-c") and A not in command.argv[2]
    assert command.argv[-3:] == (token_dir(WORK), A, B)
    with pytest.raises(ValidationError):
        prune_command(WORK, ["x; rm -rf /"])


def test_a_failed_prune_is_an_error_naming_the_directory_but_issuing_still_works() -> None:
    lab = seeded_tokens()
    lab.prune_fails = True
    svc = service(lab, allow_unapproved=False, approval="operator")
    with pytest.raises(CommandFailed, match="/var/lib/bluegreen/approvals on root@haproxy"):
        svc.prune_approvals()
    assert token_of(svc.switch(APP))  # the plan stands; the expired records stay for later
    assert A in records(lab)


def test_cli_approvals_prune(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lab = seeded_tokens()
    monkeypatch.setattr(cli, "_service", lambda ctx: service(lab))
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    shown = CliRunner().invoke(cli.main, ["--config", str(path), "approvals", "prune"])
    assert shown.exit_code == 0, shown.output
    assert shown.output == f"removed 2 expired token(s) nobody answered: {A}, {E}\n"
    again = CliRunner().invoke(cli.main, ["--config", str(path), "approvals", "prune", "--json"])
    assert json.loads(again.output) == {"removed": []}


def test_a_record_naming_another_token_than_its_file_is_left_alone() -> None:
    lab = FakeHosts()
    put_token(lab, A, expired=True)
    record = lab.runner.file(HP, record_path(WORK, A)) or b""
    lab.runner.put_file(HP, record_path(WORK, B), record)  # B's file holds A's record
    lab.runner.remove_file(HP, record_path(WORK, A))
    svc = service(lab, allow_unapproved=False, approval="operator")
    assert svc.prune_approvals() == []
    assert records(lab) == {B}
