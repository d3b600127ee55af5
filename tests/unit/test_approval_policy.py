"""The approval policy as pure functions: which mode asks whom, what a token proves, and what the
emergency rule lets through without approval."""

from __future__ import annotations

import pytest

from bluegreen.domain.approval import (
    LastLive,
    TokenRecord,
    approval_mode,
    same_commit,
    stale_plan_reason,
    token_refusal,
    unapproved_basis,
)
from bluegreen.errors import ApprovalError

OLD, NEW = "a1" * 20, "c3" * 20
BLUE_WAS_LIVE = LastLive("blue", OLD)


@pytest.mark.parametrize(
    ("configured", "can_elicit", "mode"),
    [("auto", True, "elicit"), ("auto", False, "token"), ("token", True, "token"),
     ("operator", True, "operator"), ("elicit", False, "elicit")],
)  # fmt: skip
def test_approval_mode(configured: str, can_elicit: bool, mode: str) -> None:
    assert approval_mode(configured, can_elicit) == mode


def basis(*, emergency: bool = True, target: str = "blue", commit: str | None = OLD,
          last: LastLive | None = BLUE_WAS_LIVE, allow_unapproved: bool = False) -> str:  # fmt: skip
    return unapproved_basis(
        "shop", allow_unapproved=allow_unapproved, allow_emergency=True, emergency=emergency,
        target=target, target_commit=commit, last_live=lambda: last,
    )  # fmt: skip


def test_the_emergency_rule_restores_the_same_server_on_the_same_commit() -> None:
    assert basis() == "emergency-rule"
    assert basis(commit=OLD[:7]) == "emergency-rule"  # an abbreviated sha is the same commit
    assert basis(allow_unapproved=True, emergency=False) == "allowed-unapproved"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"commit": NEW}, "BLUE ran a1a1a1a when it was LIVE and now runs c3c3c3c"),
        ({"commit": None}, "its commit cannot be read"),
        ({"target": "green"}, "GREEN was not"),
        ({"last": None}, "BLUE was not"),
        ({"last": LastLive("blue", None)}, "the history does not record which commit"),
        ({"emergency": False}, "allow_unapproved = false"),
    ],
)
def test_anything_else_needs_approval_and_says_why(changes: dict[str, object], says: str) -> None:
    with pytest.raises(ApprovalError, match=says) as refused:
        basis(**changes)  # type: ignore[arg-type]
    assert refused.value.hint and "requireApproval=true" in refused.value.hint


def test_the_history_is_read_only_when_the_emergency_rule_applies() -> None:
    def unread() -> LastLive | None:
        raise AssertionError("history read")

    assert unapproved_basis("shop", allow_unapproved=True, allow_emergency=True, emergency=True,
                            target="blue", target_commit=OLD, last_live=unread) == "allowed-unapproved"  # fmt: skip


def token(mode: str = "token", by_cli: bool = False) -> TokenRecord:
    return TokenRecord(token="t" * 24, app="shop", plan_hash="h", mode=mode, created="",
                       expires="", from_live="blue", to_live="green",
                       issued_by_cli=by_cli)  # fmt: skip


def test_a_token_proves_only_what_issued_it() -> None:
    refusal = token_refusal("shop", "elicit", token(by_cli=True), from_cli=False)
    assert refusal and "`bluegreen switch --plan`" in refusal and "not such an answer" in refusal
    assert token_refusal("shop", "elicit", token(by_cli=True), from_cli=True) is None
    assert "operator" in (token_refusal("shop", "operator", token("token"), from_cli=True) or "")
    assert token_refusal("shop", "operator", token("operator"), from_cli=False) is None
    for configured in ("auto", "token"):
        assert token_refusal("shop", configured, token(), from_cli=False) is None


def test_a_stale_plan_names_the_commit_that_was_deployed() -> None:
    assert stale_plan_reason("green", OLD, NEW) == (
        "STANDBY GREEN changed since the plan: c3c3c3c was deployed (the plan was approved for "
        "a1a1a1a)"
    )
    assert (
        "the app's lines in haproxy.cfg, its state file or the commit GREEN's health"
        in stale_plan_reason("green", OLD, OLD)
    )


def test_same_commit_needs_both_sides() -> None:
    assert same_commit(OLD, OLD[:7]) and same_commit(OLD[:7], OLD)
    assert not same_commit(None, None) and not same_commit(OLD, None) and not same_commit(OLD, NEW)
