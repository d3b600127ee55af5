"""`bluegreen lab up --haproxy-nodes 2 --servers-per-colour 2` (issue #14) in both layouts: every
container runs, each publishes its ports on 127.0.0.1 only, every node runs the same cfg with each
pool member in its colour's backend, every node's frontend serves every app and spreads it over
every member of the pool; reset brings a stopped member back and `down` removes everything."""

from __future__ import annotations

import httpx
import pytest

from bluegreen.lab.controller import LABEL, Lab, LabInfo
from bluegreen.lab.layouts import LAYOUTS, SHARED_APPS, SHARED_HEALTH_PATH
from bluegreen.lab.readiness import SHOW_STAT, servers_not_up
from bluegreen.lab.topology import Topology
from tests.lab.fault_tools import own_lab

pytestmark = pytest.mark.lab

TOPOLOGY = Topology(haproxy_nodes=2, servers_per_colour=2)
ROLES = ["haproxy", "haproxy2", "blue1", "blue2", "green1", "green2", "origin"]


def sessions_by_server(lab: Lab, node: str) -> dict[str, int]:
    """`backend/server` -> total sessions, from the node's `show stat`."""
    lines = lab.exec(node, ["sh", "-c", SHOW_STAT]).strip().splitlines()
    columns = lines[0][2:].split(",")
    name, server, total = (columns.index(c) for c in ("pxname", "svname", "stot"))
    rows = [line.split(",") for line in lines[1:]]
    return {
        f"{row[name]}/{row[server]}": int(row[total])
        for row in rows
        if row[server] not in ("FRONTEND", "BACKEND")
    }


def requests_per_app(info: LabInfo) -> list[tuple[str, dict[str, str], str]]:
    """(path, headers, colour expected) for every app, its public host and its previews."""
    if info.layout == "single":
        return [("/health", {}, "blue")]
    return [
        (SHARED_HEALTH_PATH, {"Host": host}, color)
        for app in SHARED_APPS
        for host, color in [
            (app.host, "blue"),
            (app.preview("blue"), "blue"),
            (app.preview("green"), "green"),
        ]
    ]


def published_on_loopback(lab: Lab, role: str) -> set[str]:
    ports = lab.container(role).attrs["NetworkSettings"]["Ports"]
    published = {port for port, bindings in ports.items() if bindings}
    assert all(b["HostIp"] == "127.0.0.1" for port in published for b in ports[port]), ports
    return published


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_pair_with_pools_serves_every_app_on_every_node(
    layout: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lab = own_lab(tmp_path_factory, f"topo-{layout}")
    try:
        info = lab.up(layout=layout, topology=TOPOLOGY)
        status = lab.status()
        assert list(status["hosts"]) == ROLES
        assert {host["state"] for host in status["hosts"].values()} == {"running"}
        assert list(status["frontends"]) == ["haproxy", "haproxy2"]
        assert status["frontend"] == status["frontends"]["haproxy"]
        assert len(set(status["frontends"].values())) == 2
        for node in TOPOLOGY.node_roles():
            assert published_on_loopback(lab, node) == {"22/tcp", "80/tcp"}
        app_ports = {"22/tcp"} if layout == "shared" else {"22/tcp", "3001/tcp"}
        for role in ("blue1", "blue2", "green1", "green2"):
            assert published_on_loopback(lab, role) == app_ports

        cfg = lab.exec("haproxy", ["cat", "/etc/haproxy/haproxy.cfg"])
        assert lab.exec("haproxy2", ["cat", "/etc/haproxy/haproxy.cfg"]) == cfg
        port = 3001
        for color in ("blue", "green"):
            for i in (1, 2):
                assert f"server {color}{i} {color}{i}:{port} check" in cfg

        for node, frontend in info.frontends.items():
            before = sessions_by_server(lab, node)
            for path, headers, color in requests_per_app(info):
                for _ in range(4):  # round robin: 4 requests reach both members of the pool
                    answer = httpx.get(frontend + path, headers=headers, timeout=5)
                    assert answer.status_code == 200, (node, headers, answer.text)
                    assert answer.json()["color"] == color, (node, headers)
            after = sessions_by_server(lab, node)
            served = {server for server, total in after.items() if total > before[server]}
            # every member of every backend a request routes to (the single layout has no preview
            # hosts: GREEN's backend gets none) got requests through this node's frontend
            routed = {s for s in after if layout == "shared" or s.startswith("bk_blue/")}
            assert served == routed, (node, sorted(routed - served))
        if layout == "single":  # each app host also answers as its colour on its own port
            for role in ("blue1", "blue2", "green1", "green2"):
                answer = httpx.get(f"{info.hosts[role].app}/health", timeout=5)
                assert answer.json()["color"] == role[:-1]

        lab.container("blue2").stop(timeout=1)
        lab.reset()
        assert lab.container("blue2").status == "running"
        for node in TOPOLOGY.node_roles():  # reset waited until each node sees blue2 UP again
            assert servers_not_up(lab.exec(node, ["sh", "-c", SHOW_STAT])) == []
    finally:
        lab.down()
    assert lab.client.containers.list(all=True, filters={"label": f"{LABEL}={lab.prefix}"}) == []
    assert lab.client.networks.list(names=[lab.name("net")]) == []
