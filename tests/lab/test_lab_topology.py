"""`bluegreen lab up --haproxy-nodes 2 --servers-per-colour 2` (issue #14) in both layouts: every
container runs, each publishes its ports on 127.0.0.1 only, every node runs the same cfg with each
pool member in its colour's backend, every node's frontend serves every app and spreads it over
every member of the pool; reset brings a stopped member back and `down` removes everything. With
two nodes keepalived gives them a virtual IP on the lab network, which moves to the backup when the
master stops and keeps answering."""

from __future__ import annotations

import ipaddress
import time

import httpx
import pytest

from bluegreen.lab.controller import LABEL, Lab, LabInfo
from bluegreen.lab.layouts import APP, LAYOUTS, SHARED_APPS, SHARED_HEALTH_PATH
from bluegreen.lab.load import Load
from bluegreen.lab.readiness import SHOW_STAT, servers_not_up
from bluegreen.lab.topology import Topology
from bluegreen.service import Service
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

        apps = [app.name for app in SHARED_APPS] if layout == "shared" else [APP]
        with Service.from_path(info.config_path) as service:  # nodes and pools: accepted
            for app in apps:
                app_status = service.status(app)
                assert app_status.certain, (app, app_status.problems)

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


def test_the_virtual_ip_moves_to_the_backup_when_the_master_stops(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    lab = own_lab(tmp_path_factory, "vip")
    try:
        info = lab.up(layout="single", topology=Topology(haproxy_nodes=2))
        vip = lab.status()["vip"]
        assert vip is not None, lab.status()["vip_reason"]
        subnet = lab.client.networks.get(info.network).attrs["IPAM"]["Config"][0]["Subnet"]
        address = ipaddress.ip_address(vip["address"])
        assert address in ipaddress.ip_network(subnet)  # inside the lab's own network
        assert address not in ipaddress.ip_network("10.92.3.0/24")  # never the users' addresses
        assert vip["holder"] == "haproxy"
        assert info.traffic_urls() == [vip["url"]]
        with Service.from_path(info.config_path) as service:  # the config names both nodes
            status = service.status(APP)
        assert status.certain, status.problems
        assert [(n.name, n.live) for n in status.nodes] == [
            ("haproxy", "blue"),
            ("haproxy2", "blue"),
        ]

        # without a virtual IP the load goes to both frontends: every request answered by BLUE
        frontends = [url + "/health" for url in info.frontends.values()]
        with Load(frontends[0], threads=4, more_urls=tuple(frontends[1:])) as spread:
            while len({s.url for s in spread.snapshot()}) < 2 or len(spread.snapshot()) < 40:
                time.sleep(0.1)
        assert spread.failures == []
        assert {s.color for s in spread.snapshot()} == {"blue"}

        with Load(vip["url"] + "/health", threads=2) as load:
            lab.container("haproxy").stop(timeout=1)
            while lab.status()["vip"]["holder"] != "haproxy2":
                time.sleep(0.1)
            moved = time.monotonic()
            while len([s for s in load.snapshot() if s.sent > moved and s.color]) < 40:
                time.sleep(0.1)
        samples = load.snapshot()
        back = min(s.sent for s in samples if s.sent > moved and s.color == "blue")
        # from its first answer on the backup, the address keeps answering, as BLUE
        assert [s for s in samples if s.sent >= back and s.color != "blue"] == []
        lost = [s for s in samples if s.error]
        window = back - min((s.sent for s in lost), default=back)
        print(f"failover: {len(lost)} requests failed in {window:.1f} s ({lost[:1]})")

        lab.reset()  # the master runs again, and takes its address back
        assert lab.status()["vip"]["holder"] == "haproxy"
        assert httpx.get(vip["url"] + "/health", timeout=5).json()["color"] == "blue"
    finally:
        lab.down()
