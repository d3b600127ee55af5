"""An HAProxy pair in the lab (`bluegreen lab up --haproxy-nodes 2`, issue #14): status reads both
nodes; a switch moves both under load spread over both frontends with no failed request; SSH to
the second node dropping during its replace restores and verifies both; the second node stopped
before a switch refuses it with the first node unchanged; one node's cfg changed by hand makes
status uncertain naming that node, deploy refuses, and the approved reconcile plan repairs it.
(The same rules on the scripted hosts: tests/unit/test_haproxy_nodes.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from bluegreen.engine.context import StepEvent
from bluegreen.errors import TransportError, UnsafeOperationError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.load import Load
from bluegreen.lab.topology import Topology
from bluegreen.service import SwitchRequest
from bluegreen.transport import ssh as ssh_transport

from .fault_tools import (
    APP,
    CFG,
    RESET_HAPROXY,
    STATE,
    cat,
    kill_sshd,
    later,
    running_lab,
    service_with,
    sh,
    start_sshd,
    wait_serving,
)

pytestmark = pytest.mark.lab

NODES = ("haproxy", "haproxy2")
QUICK: dict[str, Any] = {"allow_unapproved": True, "watch_s": 0.0, "drain_s": 0.3}


@pytest.fixture(scope="module")
def pair_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(
        tmp_path_factory, "pair", layout="single", topology=Topology(haproxy_nodes=2)
    ) as lab:
        yield lab


@pytest.fixture
def pair(pair_lab: Lab) -> Iterator[LabInfo]:
    """Both nodes as `up` left them (BLUE LIVE, no state file, lock or history); whatever the
    test did, both nodes run and are reachable afterwards."""
    info = pair_lab.info()
    for node in NODES:
        reset_node(pair_lab, info, node)
    yield info
    for node in NODES:
        reset_node(pair_lab, info, node)


def reset_node(lab: Lab, info: LabInfo, node: str) -> None:
    container = lab.container(node)
    if container.status != "running":
        container.start()
    code, out = sh(lab, node, "pgrep -x sshd >/dev/null || /usr/sbin/sshd -e")
    assert code == 0, out
    start_sshd(lab, node)
    code, out = sh(lab, node, RESET_HAPROXY)
    assert code == 0, out
    serving(info, node, "blue")


def serving(info: LabInfo, node: str, color: str | None = None) -> str:
    """Wait until `node`'s own frontend answers 200 (from `color`, when given)."""
    return wait_serving(info, color, at=info.frontends[node])


def cfg_live(lab: Lab, node: str) -> str:
    match = re.search(r"^\s*default_backend bk_(\w+)\s*$", cat(lab, node, CFG) or "", re.M)
    assert match
    return match.group(1)


def assert_both(lab: Lab, info: LabInfo, color: str) -> None:
    """Both nodes' cfg route to `color`, and both frontends serve it."""
    for node in NODES:
        assert cfg_live(lab, node) == color
        assert serving(info, node, color) == color


@pytest.fixture
def no_handshake_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node whose sshd is gone stays unreachable: no retry of the handshake (test_faults.py)."""
    monkeypatch.setattr(ssh_transport, "HANDSHAKE_RETRIES", 0)


def test_status_reads_both_nodes(pair: LabInfo) -> None:
    with service_with(pair) as svc:
        status = svc.status(APP)
    assert status.certain, status.problems
    assert [(n.name, n.live, n.reachable, n.certain) for n in status.nodes] == [
        ("haproxy", "blue", True, True),
        ("haproxy2", "blue", True, True),
    ]


def test_switch_under_load_over_both_frontends_fails_no_request(
    pair_lab: Lab, pair: LabInfo
) -> None:
    with ExitStack() as stack:
        loads = [
            stack.enter_context(Load(pair.frontends[node] + "/health", threads=2)) for node in NODES
        ]
        time.sleep(1.0)
        with service_with(pair, **QUICK) as svc:
            result = svc.switch(APP, SwitchRequest(require_approval=False))
        time.sleep(1.0)
    assert result.ok and result.verified, result.error
    assert result.split_window_ms is not None
    print(f"the nodes routed to different colours for {result.split_window_ms} ms")
    for node, load in zip(NODES, loads, strict=True):
        samples = load.snapshot()
        assert load.failures == [], (node, load.failures[:5])
        assert samples[-1].color == "green", node
    assert_both(pair_lab, pair, "green")
    for node in NODES:  # the state file is written on every node
        assert '"live": "green"' in (cat(pair_lab, node, STATE) or "")
    with service_with(pair) as svc:
        entry = svc.history(APP).entries[0]
        assert entry.split_window_ms == result.split_window_ms


@pytest.mark.usefixtures("no_handshake_retry")
def test_ssh_to_second_node_drops_during_its_replace(pair_lab: Lab, pair: LabInfo) -> None:
    """sshd on haproxy2 goes away as the replace starts (the first node is replaced) and comes
    back 2 s later: both nodes get the previous cfg back, reloaded and verified."""
    events: list[StepEvent] = []

    def inject(event: StepEvent) -> None:
        events.append(event)
        if event.step == "replace-cfg" and event.status == "start":
            kill_sshd(pair_lab, "haproxy2")
            later(2.0, start_sshd, pair_lab, "haproxy2")

    with service_with(pair, **QUICK) as svc:
        result = svc.switch(APP, SwitchRequest(require_approval=False), progress=inject)
    assert not result.ok and result.executed and result.rolled_back, result.error
    assert result.error and "haproxy2" in result.error and "every node is back" in result.error
    steps = {s.name: s for s in result.steps}
    assert steps["replace-cfg"].status == "failed"
    assert steps["verify-restored"].status == "ok"
    assert "haproxy:" in steps["verify-restored"].message
    assert "haproxy2:" in steps["verify-restored"].message
    assert any(e.step == "restore-cfg" and e.status == "info" for e in events)
    assert_both(pair_lab, pair, "blue")
    with service_with(pair) as svc:
        assert svc.status(APP).certain


@pytest.mark.usefixtures("no_handshake_retry")
def test_second_node_stopped_before_a_switch_is_refused(pair_lab: Lab, pair: LabInfo) -> None:
    pair_lab.container("haproxy2").stop(timeout=2)
    before = cat(pair_lab, "haproxy", CFG)
    with (
        service_with(pair, **QUICK) as svc,
        pytest.raises(TransportError, match=r"haproxy2.*no node is changed"),
    ):
        svc.switch(APP, SwitchRequest(require_approval=False))
    assert cat(pair_lab, "haproxy", CFG) == before
    assert serving(pair, "haproxy", "blue") == "blue"
    with service_with(pair) as svc:
        status = svc.status(APP)
    assert not status.certain and not status.nodes[1].reachable
    assert any("haproxy2" in p and "cannot be read" in p for p in status.problems)


def test_cfg_of_one_node_edited_by_hand(pair_lab: Lab, pair: LabInfo) -> None:
    """Edited and not reloaded: status uncertain naming the node, deploy refuses. Then routed to
    GREEN and reloaded: the nodes disagree, and only the approved reconcile plan repairs it."""
    code, out = sh(pair_lab, "haproxy2", f"echo '# edited by hand' >> {CFG}")
    assert code == 0, out
    with service_with(pair) as svc:
        status = svc.status(APP)
        assert not status.certain and status.nodes[1].not_reloaded
        assert any(p.startswith("HAProxy node haproxy2") for p in status.problems)
        with pytest.raises(UnsafeOperationError, match=r"haproxy2.*not reloaded"):
            svc.deploy(APP)

    script = f"sed -i 's/default_backend bk_blue/default_backend bk_green/' {CFG} && haproxy-reload"
    code, out = sh(pair_lab, "haproxy2", script)
    assert code == 0, out
    assert serving(pair, "haproxy2", "green") == "green"
    with service_with(pair, allow_unapproved=False) as svc:
        status = svc.status(APP)
        assert not status.certain and "--reconcile" in status.next_step
        assert any("haproxy2 routes to GREEN" in p for p in status.problems)
        with pytest.raises(UnsafeOperationError, match="haproxy2 routes to GREEN"):
            svc.deploy(APP)
        with pytest.raises(UnsafeOperationError, match="nodes disagree"):
            svc.switch(APP, SwitchRequest(require_approval=False))
        plan = svc.switch(APP, SwitchRequest(reconcile=True)).plan
        assert plan is not None and plan.confirm_token and "haproxy2" in plan.diff
        assert serving(pair, "haproxy2", "green") == "green"  # nothing changed before the yes
        done = svc.switch(APP, SwitchRequest(reconcile=True, confirm_token=plan.confirm_token))
        assert done.ok, done.error
        assert svc.status(APP).certain
    assert cfg_live(pair_lab, "haproxy") == "blue"
    assert serving(pair, "haproxy2", "blue") == "blue"
