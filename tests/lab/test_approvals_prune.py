"""Expired confirmation tokens nobody answered are removed from the real HAProxy host (the
users' shared layout): by `bluegreen approvals prune` and whenever a new token is issued; a used
token (its replay still refused as such), an approved one and a valid one stay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bluegreen.domain.approval import list_command, parse_token_record, record_path
from bluegreen.domain.config import load_config
from bluegreen.errors import ApprovalError
from bluegreen.lab.controller import Lab
from bluegreen.service import Service, SwitchRequest

pytestmark = pytest.mark.lab
APP = "theoshift"
BLUEGREEN = str(Path(sys.executable).parent / "bluegreen")
PAST = "2020-01-01T00:00:00Z"


def with_approval(config_path: str, approval: str) -> Service:
    loaded = load_config(config_path)
    app = loaded.apps[APP].model_copy(update={"approval": approval, "watch_s": 1.0, "drain_s": 0.5})
    return Service(loaded.model_copy(update={"apps": {**loaded.apps, APP: app}}))


def expire(service: Service, token: str) -> None:
    """As if its time had passed: the record's `expires` moved into the past, on the host."""
    hp = service.config.haproxy
    path = record_path(hp.work_dir, token)
    raw = service.runner.read_file(hp.ssh, path)
    assert raw is not None and parse_token_record(raw) is not None
    data = json.loads(raw)
    service.runner.write_file_atomic(hp.ssh, path, json.dumps({**data, "expires": PAST}).encode(),
                                     mode=0o600)  # fmt: skip


def records(service: Service) -> set[str]:
    hp = service.config.haproxy
    listed = service.runner.run(hp.ssh, list_command(hp.work_dir))
    assert listed.ok, listed.tail()
    return {n.removesuffix(".json") for n in listed.stdout.split() if n.endswith(".json")}


def test_expired_unanswered_tokens_are_pruned_on_the_haproxy_host(shared_lab: Lab) -> None:
    info = shared_lab.info()
    with with_approval(info.config_path, "token") as tokens, \
            with_approval(info.config_path, "operator") as operator:  # fmt: skip
        used = tokens.plan_switch(APP).confirm_token
        assert used and tokens.switch(APP, SwitchRequest(confirm_token=used)).ok
        approved = operator.plan_switch(APP).confirm_token
        assert approved and "approved" in operator.approve(approved, "ana@lab", lambda _: True)
        unanswered = tokens.plan_switch(APP).confirm_token
        waiting = operator.plan_switch(APP).confirm_token
        assert unanswered and waiting
        assert [p.token for p in operator.pending_approvals(APP)] == [waiting]
        for token in (used, approved, unanswered, waiting):
            expire(tokens, token)
        assert operator.pending_approvals(APP) == []  # the dashboard's list: no expired plan

        pruned = subprocess.run(
            [BLUEGREEN, "--config", info.config_path, "approvals", "prune", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert pruned.returncode == 0, pruned.stderr
        assert sorted(json.loads(pruned.stdout)["removed"]) == sorted([unanswered, waiting])
        assert {used, approved} <= records(tokens)
        assert not {unanswered, waiting} & records(tokens)
        with pytest.raises(ApprovalError, match="already used"):  # its record still tells
            tokens.switch(APP, SwitchRequest(confirm_token=used))

        # Issuing a token prunes too: the expired one goes, the new one stays.
        late = tokens.plan_switch(APP).confirm_token
        assert late
        expire(tokens, late)
        fresh = tokens.plan_switch(APP).confirm_token
        assert fresh and fresh in records(tokens) and late not in records(tokens)
        assert {used, approved} <= records(tokens)
