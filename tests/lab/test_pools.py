"""Server pools against the real lab (`bluegreen lab up --servers-per-colour 2`, single layout):
a deploy reaches both STANDBY servers, one server's failing build restores the whole pool, a pool
server down during the switch's target check refuses the switch, and a switch under load loses
no request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bluegreen.domain.config import load_config
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import APP_DIR, SHARED_APPS
from bluegreen.lab.load import Load
from bluegreen.lab.topology import Topology
from bluegreen.service import Service, SwitchRequest
from tests.lab.fault_tools import own_lab, running_lab
from tests.lab.test_lab_topology import sessions_by_server

pytestmark = pytest.mark.lab

APP = "jw-attendant"
GREENS = ("green1", "green2")
BLUES = ("blue1", "blue2")
FAIL_MARK = "/tmp/bluegreen-test-fail-build"  # outside the app dir: the restore does not touch it


@pytest.fixture(scope="module")
def pool_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    topology = Topology(servers_per_colour=2)
    with running_lab(tmp_path_factory, "pool", layout="single", topology=topology) as lab:
        yield lab


@pytest.fixture
def fresh_pool(pool_lab: Lab) -> Lab:
    pool_lab.reset()
    return pool_lab


def service_with(info: LabInfo, **app: Any) -> Service:
    config = load_config(info.config_path)
    changed = config.apps[APP].model_copy(update=app)
    return Service(config.model_copy(update={"apps": {APP: changed}}))


def head(lab: Lab, role: str) -> str:
    return lab.exec(role, ["git", "-C", APP_DIR, "rev-parse", "HEAD"]).strip()


def served(info: LabInfo, role: str) -> dict[str, Any]:
    url = info.hosts[role].app
    assert url
    answer: dict[str, Any] = httpx.get(url + "/health", timeout=5).json()
    return answer


def test_deploy_reaches_both_standby_servers(fresh_pool: Lab) -> None:
    info = fresh_pool.info()
    new = fresh_pool.commit()
    with Service.from_path(info.config_path) as service:
        result = service.deploy(APP)
        status = service.status(APP)
    assert result.ok, (result.error, result.output_tail)
    assert (result.color, result.commit_after) == ("green", new)
    assert [(s.server, s.ok, s.commit_after) for s in result.servers] == [
        (name, True, new) for name in GREENS
    ]
    steps = [s.name for s in result.steps if s.status == "ok"]
    for name in GREENS:
        assert head(fresh_pool, name) == new and served(info, name)["commit"] == new
        assert f"build {name}" in steps and f"health {name}" in steps
    for name in BLUES:  # LIVE untouched
        assert head(fresh_pool, name) == info.initial_commit
    assert status.standby is not None and status.standby.commit == new
    assert (status.standby.pool_healthy, status.standby.healthy) == (2, True)
    print(f"deploy to a pool of 2: {result.duration_s:.1f}s")


def test_one_servers_failing_build_restores_the_whole_pool(fresh_pool: Lab) -> None:
    info = fresh_pool.info()
    fresh_pool.commit()
    fresh_pool.exec("green2", ["touch", FAIL_MARK])
    try:
        build = f"test ! -e {FAIL_MARK} && python3 build.py"
        with service_with(info, build=build) as service:
            result = service.deploy(APP)
            status = service.status(APP)
    finally:
        fresh_pool.exec("green2", ["rm", "-f", FAIL_MARK])
    assert not result.ok
    assert (result.failed_step, result.failed_server) == ("build", "green2"), result.error
    assert result.restored is True, result.standby_state
    for name in GREENS:
        # Back on the commit it ran before, restarted and serving it.
        assert head(fresh_pool, name) == info.initial_commit
        assert served(info, name)["commit"] == info.initial_commit
    assert status.standby is not None and status.standby.commit == info.initial_commit
    assert status.standby.healthy is True


def test_a_pool_server_down_refuses_the_switch(fresh_pool: Lab) -> None:
    info = fresh_pool.info()
    fresh_pool.exec("green2", ["supervisorctl", "stop", APP])
    with service_with(info, allow_unapproved=True) as service:
        result = service.switch(APP, SwitchRequest(require_approval=False))
        relaxed = service_with(info, allow_unapproved=True, min_healthy=1)
        with relaxed:
            allowed = relaxed.switch(APP, SwitchRequest(require_approval=False))
    assert not result.executed
    assert "1 of 2 GREEN servers healthy" in (result.error or "")
    assert "green2 not healthy" in (result.error or "")
    # With min_healthy = 1 the same switch goes on (HAProxy's checks keep users off green2).
    assert allowed.ok, allowed.error
    assert httpx.get(info.frontend + "/health", timeout=5).json()["color"] == "green"


def test_switch_of_pools_under_load_loses_no_request(fresh_pool: Lab) -> None:
    info = fresh_pool.info()
    reached: set[str] = set()  # pool servers that served users while their colour was LIVE
    with (
        service_with(info, allow_unapproved=True, watch_s=0.5, drain_s=2.0) as service,
        Load(info.frontend + "/health", threads=4) as load,
    ):
        time.sleep(1)
        for expected in ("green", "blue", "green", "blue"):
            result = service.switch(APP, SwitchRequest(require_approval=False))
            assert result.ok, (result.error, [s for s in result.steps if s.status == "failed"])
            assert result.to_live == expected
            time.sleep(0.5)
            # A reload starts a worker with fresh counters: read them before the next switch.
            served_now = sessions_by_server(fresh_pool, "haproxy")
            reached |= {key for key, total in served_now.items() if total > 0}
        rate = load.rate()
    samples = load.snapshot()
    assert load.failures == [], load.failures[:5]
    assert len(samples) > 100
    # Both servers of each pool served users.
    assert reached >= {f"bk_green/{n}" for n in GREENS} | {f"bk_blue/{n}" for n in BLUES}
    print(f"4 pool switches: {len(samples)} requests at {rate:.0f}/s, 0 failed")


def test_pools_in_the_users_shared_frontend(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The users' shape (one frontend, two apps by Host, preview hosts) with a pool a colour:
    both apps' routing is certain with every server found, and a deploy of one app reaches both
    of its STANDBY servers while the other app's STANDBY keeps its commit."""
    lab = own_lab(tmp_path_factory, "pool-shared")
    try:
        info = lab.up(topology=Topology(servers_per_colour=2))
        new = lab.commit()
        with Service.from_path(info.config_path) as service:
            statuses = service.status_many([app.name for app in SHARED_APPS])
            result = service.deploy("theoshift")
            other = service.status("ldc-tools")
        for status in statuses:
            assert status.certain, (status.app, status.problems)
            assert status.live is not None and [m.server for m in status.live.pool] == [*BLUES]
            assert status.standby is not None and status.standby.pool_healthy == 2
        assert result.ok, (result.error, result.output_tail)
        assert [(s.server, s.commit_after) for s in result.servers] == [(n, new) for n in GREENS]
        assert other.standby is not None and other.standby.commit == info.initial_commit
    finally:
        lab.down()


def test_pools_behind_a_pair_of_haproxy_nodes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`lab up --haproxy-nodes 2 --servers-per-colour 2`: status is certain on both nodes with
    every pool server, a deploy reaches both STANDBY servers, and the switch moves both nodes."""
    lab = own_lab(tmp_path_factory, "pool-pair")
    try:
        info = lab.up(layout="single", topology=Topology(haproxy_nodes=2, servers_per_colour=2))
        new = lab.commit()
        with service_with(info, allow_unapproved=True) as service:
            before = service.status(APP)
            deployed = service.deploy(APP)
            switched = service.switch(APP, SwitchRequest(require_approval=False))
            after = service.status(APP)
        assert before.certain, before.problems
        assert before.standby is not None and [m.server for m in before.standby.pool] == [*GREENS]
        assert deployed.ok, (deployed.error, deployed.output_tail)
        assert [(s.server, s.commit_after) for s in deployed.servers] == [(n, new) for n in GREENS]
        assert switched.ok, (switched.error, [s for s in switched.steps if s.status == "failed"])
        assert after.certain and after.live is not None and after.live.color == "green"
        assert after.live.commit == new and after.live.pool_healthy == 2
        for frontend in lab.status()["frontends"].values():
            assert httpx.get(f"{frontend}/health", timeout=5).json()["color"] == "green"
    finally:
        lab.down()
