"""Several HAProxy nodes ([haproxy.nodes]) on the scripted hosts: status reads every node and is
uncertain, naming the node, when they do not agree; a switch changes every node or none (the lab
tests are in tests/lab/test_haproxy_pair.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console
from tests.unit.fake_hosts import (
    APP,
    CFG_PATH,
    CONF_D,
    HP,
    HP2,
    LAB_CFG,
    STATE,
    FakeHosts,
    config,
    config_nodes,
    nodes_toml,
)
from tests.unit.test_config_files import APP_LINES, MAIN

from bluegreen.cli_render import print_status
from bluegreen.domain.config import parse_config
from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import (
    HAProxyConfigError,
    TransportError,
    UnsafeOperationError,
    ValidationError,
)
from bluegreen.mcp_text import plan_text, status_text
from bluegreen.models import SwitchResult
from bluegreen.service import Service, SwitchRequest

GREEN_CFG = LAB_CFG.replace("default_backend bk_blue", "default_backend bk_green")
HISTORY = "/var/lib/bluegreen/history/jw-attendant.jsonl"


def pair(**changes: Any) -> tuple[FakeHosts, Service]:
    hosts = FakeHosts(nodes=2)
    return hosts, Service(config_nodes(2, **changes), runner=hosts.runner)


def switch(svc: Service) -> SwitchResult:
    return svc.switch(APP, SwitchRequest(require_approval=False))


def cfg_writes(hosts: FakeHosts) -> list[str]:
    return [c.host for c in hosts.runner.calls if c.kind == "write" and c.line == CFG_PATH]


def assert_nothing_changed(hosts: FakeHosts) -> None:
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == LAB_CFG.encode()
        assert hosts.live_color(node) == "blue"
    assert cfg_writes(hosts) == []


# ---- status -----------------------------------------------------------------------------------


def test_status_reads_every_node_once_and_reports_each_nodes_live() -> None:
    hosts, svc = pair()
    status = svc.status(APP)
    assert status.certain, status.problems
    assert [(n.name, n.ssh, n.primary, n.live, n.certain) for n in status.nodes] == [
        ("haproxy", HP, True, "blue", True),
        ("haproxy2", HP2, False, "blue", True),
    ]
    for node in (HP, HP2):  # the one read per host stays
        snapshots = [c for c in hosts.runner.calls_to(node) if "bluegreen-snapshot" in c.line]
        assert len(snapshots) == 1


def test_each_nodes_line_and_its_state_file(capsys: pytest.CaptureFixture[str]) -> None:
    hosts, svc = pair()
    assert switch(svc).ok
    hosts.runner.put_file(HP2, STATE, b'{"live": "blue", "standby": "green"}')
    status = svc.status(APP)
    assert status.certain  # the state file is a witness: reported, repaired by the next switch
    assert status.nodes[1].state_file_live == "blue"
    assert (
        "HAProxy node haproxy2's state file says BLUE is LIVE but its haproxy.cfg routes to GREEN"
        in status.problems
    )
    text = status_text(status)
    assert f"HAProxy node haproxy (primary) {HP}: routes to GREEN; state file says GREEN" in text
    assert f"HAProxy node haproxy2 {HP2}: routes to GREEN; state file says BLUE" in text
    print_status(Console(width=200), status)
    assert f"HAProxy node haproxy2 {HP2}: routes to GREEN" in capsys.readouterr().out


def test_one_node_status_lists_no_nodes() -> None:
    hosts = FakeHosts()
    hosts.snapshots = True
    status = Service(config(), runner=hosts.runner).status(APP)
    assert status.certain and status.nodes == []


def test_nodes_that_disagree_make_status_uncertain_naming_them_and_deploy_refuses() -> None:
    hosts, svc = pair()
    hosts.runner.put_file(HP2, CFG_PATH, GREEN_CFG)
    hosts.running[HP2] = GREEN_CFG
    status = svc.status(APP)
    assert not status.certain
    assert [n.live for n in status.nodes] == ["blue", "green"]
    said = " ".join(status.problems)
    assert "haproxy routes to BLUE, haproxy2 routes to GREEN" in said and "--reconcile" in said
    with pytest.raises(UnsafeOperationError, match="haproxy2 routes to GREEN"):
        svc.deploy(APP, DeployOptions())
    assert not any(c.host.endswith(("blue", "green")) and c.mutating for c in hosts.runner.calls)


def test_a_dry_run_says_a_real_deploy_refuses_while_the_nodes_disagree() -> None:
    hosts, svc = pair()
    hosts.runner.put_file(HP2, CFG_PATH, GREEN_CFG)
    hosts.running[HP2] = GREEN_CFG
    plan = svc.deploy(APP, DeployOptions(dry_run=True))
    assert plan.ok and plan.dry_run
    assert any(
        w.startswith("a real deploy refuses now") and "haproxy2 routes to GREEN" in w
        for w in plan.warnings
    )


def test_a_node_with_a_cfg_edited_and_not_reloaded_is_named() -> None:
    hosts, svc = pair()
    hosts.runner.put_file(HP2, CFG_PATH, LAB_CFG + "# edited by hand\n")
    status = svc.status(APP)
    assert not status.certain
    node = status.nodes[1]
    assert node.not_reloaded and not node.certain and node.live == "blue"
    assert any(
        p.startswith("HAProxy node haproxy2") and "not reloaded" in p for p in status.problems
    )
    with pytest.raises(UnsafeOperationError, match=r"haproxy2.*not reloaded"):
        svc.deploy(APP, DeployOptions())


def test_a_node_that_cannot_be_read_is_named_and_deploy_refuses() -> None:
    hosts, svc = pair()
    hosts.take_down(HP2)
    status = svc.status(APP)
    assert not status.certain
    assert not status.nodes[1].reachable and status.nodes[0].reachable
    assert any("haproxy2" in p and "cannot be read" in p for p in status.problems)
    with pytest.raises(UnsafeOperationError, match=r"haproxy2.*cannot be read"):
        svc.deploy(APP, DeployOptions())


# ---- switch -----------------------------------------------------------------------------------


def test_switch_changes_every_node_and_measures_the_window() -> None:
    hosts, svc = pair()
    events: list[StepEvent] = []
    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=events.append)
    assert result.ok and result.verified, result.error
    said = [e.message for e in events if e.step == "reload" and e.status == "info"]
    assert said == [f"the nodes routed to different colours for {result.split_window_ms:g} ms"]
    assert "the 2 HAProxy nodes routed to different colours" in result.message
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == GREEN_CFG.encode()
        assert hosts.live_color(node) == "green"
        assert json.loads(hosts.runner.file(node, STATE) or b"{}")["live"] == "green"
    assert result.split_window_ms is not None and result.split_window_ms >= 0
    entry = json.loads(hosts.runner.file(HP, HISTORY) or b"{}")
    assert entry["split_window_ms"] == result.split_window_ms
    # The primary keeps the history and the locks.
    assert hosts.runner.file(HP2, HISTORY) is None
    assert not [c for c in hosts.runner.calls_to(HP2) if "bluegreen-lock" in c.line]
    verify = next(s for s in result.steps if s.name == "verify")
    assert "haproxy:" in verify.message and "haproxy2:" in verify.message


def test_an_auto_rollback_puts_every_node_back() -> None:
    hosts, svc = pair(watch_s=5.0, auto_rollback=True)

    def break_green(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.healthy["green"] = False

    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=break_green)
    assert not result.ok and result.auto_rollback, result.error
    assert "rolled back automatically" in (result.error or "")
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == LAB_CFG.encode()
        assert hosts.live_color(node) == "blue"
        assert json.loads(hosts.runner.file(node, STATE) or b"{}")["live"] == "blue"


def test_the_plan_shows_and_binds_every_nodes_lines() -> None:
    hosts, svc = pair(allow_unapproved=False)
    plan = svc.switch(APP).plan
    assert plan is not None
    assert f"# HAProxy node haproxy ({HP})" in plan.diff
    assert f"# HAProxy node haproxy2 ({HP2})" in plan.diff
    assert plan.diff.count("+    default_backend bk_green") == 2
    # The app's lines on the second node are part of what is approved.
    hosts.runner.put_file(
        HP2, CFG_PATH, LAB_CFG.replace("green:3001 check", "green:3001 check weight 5")
    )
    again = svc.switch(APP).plan
    assert again is not None and again.plan_hash != plan.plan_hash


def test_second_node_unreachable_before_the_change_changes_nothing() -> None:
    hosts, svc = pair()
    hosts.take_down(HP2)
    with pytest.raises(TransportError, match=r"haproxy2.*no node is changed"):
        switch(svc)
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    assert cfg_writes(hosts) == []


def test_second_node_lost_after_the_plan_changes_nothing() -> None:
    hosts, svc = pair()

    def lose_haproxy2(event: StepEvent) -> None:
        if event.step == "backup-cfg" and event.status == "start":
            hosts.take_down(HP2)

    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=lose_haproxy2)
    assert not result.ok and not result.executed and not result.rolled_back
    assert result.error and "node haproxy2" in result.error and "untouched" in result.error
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode() and hosts.live_color() == "blue"
    assert cfg_writes(hosts) == []


def test_candidate_failing_on_one_node_changes_no_node() -> None:
    hosts, svc = pair()
    hosts.check_fails_on = {HP2}
    result = switch(svc)
    assert not result.ok and not result.executed and not result.rolled_back
    assert result.error and "node haproxy2" in result.error and "untouched" in result.error
    assert_nothing_changed(hosts)


def test_failure_during_second_nodes_replace_restores_and_verifies_both() -> None:
    hosts, svc = pair()
    dropped = TransportError("the SSH connection dropped", host=HP2)
    hosts.runner.fail_file(HP2, CFG_PATH, dropped, kind="write", times=1)
    result = switch(svc)
    assert not result.ok and result.executed and result.rolled_back, result.error
    assert "every node" in result.message
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == LAB_CFG.encode()
        assert hosts.live_color(node) == "blue"
    assert HP in cfg_writes(hosts)  # the first node had changed and was put back
    status = {s.name: s.status for s in result.steps}
    assert status["replace-cfg"] == "failed"
    for name in ("restore-cfg", "reload-restored", "verify-restored"):
        assert status[name] == "ok"
    verified = next(s for s in result.steps if s.name == "verify-restored")
    assert "haproxy:" in verified.message and "haproxy2:" in verified.message
    assert hosts.runner.file(HP, STATE) is None and hosts.runner.file(HP2, STATE) is None


def test_failed_reload_on_one_node_restores_every_node() -> None:
    hosts, svc = pair()
    hosts.reload_fails = 1  # the first reload to arrive fails, whichever node it is
    result = switch(svc)
    assert not result.ok and result.rolled_back
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == LAB_CFG.encode()
        assert hosts.live_color(node) == "blue"


def test_switch_refuses_nodes_that_disagree_pointing_at_reconcile() -> None:
    hosts, svc = pair()
    hosts.runner.put_file(HP2, CFG_PATH, GREEN_CFG)
    hosts.running[HP2] = GREEN_CFG
    with pytest.raises(UnsafeOperationError, match="nodes disagree") as caught:
        switch(svc)
    assert "haproxy2 routes to GREEN" in str(caught.value) and "--reconcile" in str(caught.value)
    assert cfg_writes(hosts) == []


def files_pair() -> tuple[FakeHosts, Service]:
    """A pair loading haproxy.cfg and conf.d; on both nodes the app's lines in haproxy.cfg."""
    hosts = FakeHosts(nodes=2)
    listed = f'[haproxy]\nconfig_files = ["{CFG_PATH}", "{CONF_D}"]\n'
    cfg = parse_config(nodes_toml(2).replace("[haproxy]\n", listed), "test")
    hosts.running_args = ("haproxy", "-f", CFG_PATH, "-f", CONF_D)
    for node in (HP, HP2):
        hosts.runner.put_file(node, CFG_PATH, MAIN + APP_LINES)
        hosts.runner.put_file(node, CONF_D + "/", b"")  # an empty directory
        hosts.running[node] = hosts.loaded_text(node)
    return hosts, Service(cfg, runner=hosts.runner)


def test_a_node_holding_the_deciding_line_in_another_file_is_refused_naming_both() -> None:
    """The switch locks, backs up and names one file for every node: a node whose app lines
    live elsewhere is refused before any node changes, never edited under the wrong file."""
    hosts, svc = files_pair()
    hosts.runner.put_file(HP2, CFG_PATH, MAIN)
    hosts.runner.put_file(HP2, f"{CONF_D}/50-jw.cfg", APP_LINES)
    hosts.running[HP2] = hosts.loaded_text(HP2)
    status = svc.status(APP)  # LIVE agrees, so certain; the file apart is said before a switch
    assert status.certain, status.problems
    assert [n.cfg_file for n in status.nodes] == [CFG_PATH, f"{CONF_D}/50-jw.cfg"]
    assert any(
        p.startswith("HAProxy node haproxy2") and "a switch refuses until" in p
        for p in status.problems
    ), status.problems
    with pytest.raises(HAProxyConfigError) as caught:
        switch(svc)
    assert (
        f"HAProxy node haproxy2 ({HP2}) holds this app's deciding line in {CONF_D}/50-jw.cfg, "
        f"the primary haproxy in {CFG_PATH}: no node is changed"
    ) in str(caught.value)
    assert [c for c in hosts.runner.calls if c.kind == "write"] == []
    assert all("bluegreen-cfg-backup" not in c.line for c in hosts.runner.calls)


def test_nodes_whose_files_differ_elsewhere_each_get_their_own_edit() -> None:
    hosts, svc = files_pair()
    node2 = "# haproxy2's own comment\n" + MAIN + APP_LINES  # its lines one further down
    hosts.runner.put_file(HP2, CFG_PATH, node2)
    hosts.running[HP2] = hosts.loaded_text(HP2)
    result = switch(svc)
    assert result.ok and result.verified, result.error
    flip = ("default_backend bk_blue", "default_backend bk_green")
    assert hosts.runner.file(HP, CFG_PATH) == (MAIN + APP_LINES).replace(*flip).encode()
    assert hosts.runner.file(HP2, CFG_PATH) == node2.replace(*flip).encode()


# ---- reconcile ----------------------------------------------------------------------------------


def disagreeing_pair(**changes: Any) -> tuple[FakeHosts, Service]:
    hosts, svc = pair(**changes)
    hosts.runner.put_file(HP2, CFG_PATH, GREEN_CFG)
    hosts.running[HP2] = GREEN_CFG
    return hosts, svc


def test_status_points_at_the_reconcile_plan() -> None:
    _, svc = disagreeing_pair()
    assert f"bluegreen switch {APP} --reconcile" in svc.status(APP).next_step


def test_reconcile_is_an_approved_plan_showing_the_nodes_it_changes() -> None:
    hosts, svc = disagreeing_pair(allow_unapproved=False)
    first = svc.switch(APP, SwitchRequest(reconcile=True))
    plan = first.plan
    assert not first.executed and plan is not None and plan.confirm_token and plan.reconcile
    assert (plan.from_live, plan.to_live) == ("green", "blue")  # the primary's LIVE is the answer
    assert f"# HAProxy node haproxy2 ({HP2})" in plan.diff and "haproxy (" not in plan.diff
    assert "+    default_backend bk_blue" in plan.diff
    assert any("RECONCILE: only haproxy2 change" in w for w in plan.warnings)
    assert plan_text(plan).startswith(f"Reconcile {APP}: the HAProxy nodes that route to GREEN")
    assert cfg_writes(hosts) == []  # nothing changes before the approval
    # The token of a reconcile plan does not execute a normal switch, nor the other way round.
    result = svc.switch(APP, SwitchRequest(reconcile=True, confirm_token=plan.confirm_token))
    assert result.ok and result.verified, result.error
    assert "every HAProxy node routes to BLUE (haproxy2 changed)" in result.message
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == LAB_CFG.encode()
        assert hosts.live_color(node) == "blue"
    assert cfg_writes(hosts) == [HP2]  # the primary is not touched
    assert json.loads(hosts.runner.file(HP2, STATE) or b"{}")["live"] == "blue"
    entry = json.loads((hosts.runner.file(HP, HISTORY) or b"").decode().splitlines()[-1])
    assert entry["reconcile"] is True
    assert svc.status(APP).certain


def test_a_normal_token_does_not_execute_a_reconcile() -> None:
    hosts, svc = disagreeing_pair(allow_unapproved=False)
    token = svc.switch(APP, SwitchRequest(reconcile=True)).plan
    assert token is not None and token.confirm_token
    with pytest.raises(UnsafeOperationError, match="nodes disagree"):
        svc.switch(APP, SwitchRequest(confirm_token=token.confirm_token))
    assert cfg_writes(hosts) == []


def test_reconcile_refuses_when_nothing_disagrees_or_a_node_is_down() -> None:
    hosts, svc = pair()
    with pytest.raises(UnsafeOperationError, match="nothing to reconcile"):
        svc.switch(APP, SwitchRequest(require_approval=False, reconcile=True))
    hosts.take_down(HP2)
    with pytest.raises(TransportError, match="haproxy2"):
        svc.switch(APP, SwitchRequest(require_approval=False, reconcile=True))
    assert cfg_writes(hosts) == []


def test_reconcile_needs_several_nodes() -> None:
    hosts = FakeHosts()
    svc = Service(config(), runner=hosts.runner)
    with pytest.raises(ValidationError, match="several HAProxy nodes"):
        svc.switch(APP, SwitchRequest(require_approval=False, reconcile=True))


def test_verify_reads_no_nodes_files_again_and_still_checks_the_runtime_api() -> None:
    # The route the runtime API must show comes from the cfg the switch just wrote under the
    # cfg lock: re-reading every file on every node there was one round trip per node for nothing.
    hosts, svc = pair()
    seen: dict[str, int] = {}

    def mark(event: StepEvent) -> None:
        if event.step == "replace-cfg" and event.status == "ok":
            seen["replaced"] = len(hosts.runner.calls)

    result = svc.switch(APP, SwitchRequest(require_approval=False), progress=mark)
    assert result.ok, result.error
    after = hosts.runner.calls[seen["replaced"] :]
    assert not [c for c in after if "bluegreen-cfg-read" in c.line]
    assert not [c for c in after if c.kind == "read" and c.line == CFG_PATH]
    verify = next(s for s in result.steps if s.name == "verify")
    for node in ("haproxy", "haproxy2"):
        assert f"{node}: " in verify.message
    assert verify.message.count("runtime API: bk_green/green UP") == 2, verify.message
