"""The lab's topologies (issue #14): several HAProxy nodes and server pools give the config shape
of the agreed schema (`[haproxy.nodes.*]`, `pool`), each pool member its own server line in every
node's cfg; the default lab's config stays byte for byte what it was; a pair's keepalived config
and virtual IP."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bluegreen.domain.haproxy_cfg import parse, server_line
from bluegreen.errors import LabError
from bluegreen.lab import keepalived
from bluegreen.lab.lab_info import HostInfo, LabInfo
from bluegreen.lab.layouts import LAYOUTS, SHARED_APPS, layout_haproxy_cfg, render_config
from bluegreen.lab.readiness import servers_not_up
from bluegreen.lab.topology import Topology
from bluegreen.lab.vrrp import has_net_admin, keepalived_conf, virtual_ip

DATA = Path(__file__).resolve().parents[1] / "data" / "lab"


def lab_info(layout: str, topology: Topology) -> LabInfo:
    """A LabInfo as `up` records it, with a distinct sshd port per host."""
    roles = [
        *topology.node_roles(),
        *topology.server_roles("blue"),
        *topology.server_roles("green"),
    ]
    hosts = {
        role: HostInfo(
            f"c-{role}",
            f"127.0.0.1:{1001 + i}",
            frontend=f"http://127.0.0.1:{2001 + i}" if role.startswith("haproxy") else None,
        )
        for i, role in enumerate(roles)
    }
    hosts["origin"] = HostInfo("c-o", "")
    return LabInfo(
        "p",
        "p-net",
        "http://127.0.0.1:1",
        hosts,
        "/s/bluegreen.toml",
        "/s",
        "abc",
        layout=layout,
        haproxy_nodes=topology.haproxy_nodes,
        servers_per_colour=topology.servers_per_colour,
    )


def servers_table(config: dict[str, Any], layout: str) -> dict[str, Any]:
    app = SHARED_APPS[0].name if layout == "shared" else "jw-attendant"
    servers: dict[str, Any] = config["apps"][app]["servers"]
    return servers


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_default_lab_config_is_byte_for_byte_what_it_was(layout: str) -> None:
    info = lab_info(layout, Topology())
    info.hosts = {  # the hosts the golden file was written with
        "haproxy": HostInfo("c-h", "127.0.0.1:1001"),
        "blue": HostInfo("c-b", "127.0.0.1:1002"),
        "green": HostInfo("c-g", "127.0.0.1:1003"),
        "origin": HostInfo("c-o", ""),
    }
    assert render_config(info) == (DATA / f"default-{layout}.toml").read_text()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_several_nodes_are_haproxy_nodes_the_primary_first(layout: str) -> None:
    info = lab_info(layout, Topology(haproxy_nodes=3))
    config = tomllib.loads(render_config(info))
    haproxy = config["haproxy"]
    assert "ssh" not in haproxy  # `ssh` and `nodes` together are an error in the schema
    assert list(haproxy["nodes"]) == ["haproxy", "haproxy2", "haproxy3"]
    assert haproxy["nodes"]["haproxy2"] == {"ssh": f"root@{info.hosts['haproxy2'].ssh}"}
    assert haproxy["config_path"] == "/etc/haproxy/haproxy.cfg"  # shared keys stay on [haproxy]
    assert list(info.frontends) == ["haproxy", "haproxy2", "haproxy3"]
    assert len(set(info.frontends.values())) == 3


@pytest.mark.parametrize("layout", LAYOUTS)
def test_several_servers_a_colour_are_a_pool_named_like_the_cfg_servers(layout: str) -> None:
    info = lab_info(layout, Topology(servers_per_colour=3))
    config = tomllib.loads(render_config(info))
    port = 3001
    for color in ("blue", "green"):
        colour = servers_table(config, layout)[color]
        assert "ssh" not in colour and "address" not in colour
        assert colour["backend"] in (f"bk_{color}", f"theoshift_{color}")
        assert colour["pool"] == [
            {
                "server": f"{color}{i}",
                "ssh": f"root@{info.hosts[f'{color}{i}'].ssh}",
                "address": f"{color}{i}:{port}",
            }
            for i in (1, 2, 3)
        ]
    assert config["haproxy"]["ssh"] == f"root@{info.hosts['haproxy'].ssh}"


def test_a_pool_keeps_its_colour_level_keys_on_the_colour() -> None:
    config = tomllib.loads(render_config(lab_info("shared", Topology(2, 2))))
    green = config["apps"]["ldc-tools"]["servers"]["green"]
    assert green["restart"] == "supervisorctl restart ldc-tools-green"
    assert green["log_file"] == "/var/log/ldc-tools-green.log"
    assert [member["address"] for member in green["pool"]] == ["green1:3002", "green2:3002"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_pool_cfg_has_every_member_in_its_colours_backend(layout: str) -> None:
    original = layout_haproxy_cfg(layout)
    pooled = Topology(servers_per_colour=2).pool_cfg(original)
    servers = {
        (section.name, parsed.name, parsed.address, tuple(p.name.value for p in parsed.params))
        for section in parse(pooled).sections
        for line in section.lines
        if (parsed := server_line(line)) is not None and line.keyword == "server"
    }
    backends = {name for name, *_ in servers}
    assert backends  # every layout has colour backends
    for backend in backends:
        color = "blue" if "blue" in str(backend) else "green"
        members = sorted((str(n), str(address)) for b, n, address, _ in servers if b == backend)
        (port,) = {address.rsplit(":", 1)[1] for _, address in members}
        assert members == [(f"{color}{i}", f"{color}{i}:{port}") for i in (1, 2)]
    # the same health-check options on every member, and nothing else changed
    assert {params for *_, params in servers} == {("check", "inter", "fall", "rise")}
    kept = [line for line in original.splitlines() if " server " not in line]
    assert [line for line in pooled.splitlines() if " server " not in line] == kept


def test_without_a_pool_the_cfg_is_the_layouts_own() -> None:
    cfg = layout_haproxy_cfg("shared")
    assert Topology(haproxy_nodes=2).pool_cfg(cfg) is cfg


@pytest.mark.parametrize(
    ("nodes", "servers", "option"),
    [(0, 1, "--haproxy-nodes 0"), (5, 1, "--haproxy-nodes 5"), (1, 0, "--servers-per-colour 0")],
)
def test_a_topology_out_of_range_names_the_option(nodes: int, servers: int, option: str) -> None:
    with pytest.raises(LabError, match=option):
        Topology(nodes, servers)


def test_a_lab_json_of_before_pools_reads_as_the_default_topology() -> None:
    data = lab_info("single", Topology()).to_json()
    del data["haproxy_nodes"], data["servers_per_colour"]
    for host in data["hosts"].values():
        del host["frontend"]
    info = LabInfo.from_json(data)
    assert info.topology == Topology()
    assert info.topology.server_roles("blue") == ["blue"]


STAT_HEADER = "# pxname,svname,qcur,status,weight\n"


def test_servers_not_up_names_each_server_not_up() -> None:
    stat = STAT_HEADER + (
        "https_frontend,FRONTEND,,OPEN,\n"
        "theoshift_blue,blue1,0,UP,1\n"
        "theoshift_blue,blue2,0,DOWN,1\n"
        "theoshift_green,green1,0,UP 1/2,1\n"
        "theoshift_green,green2,0,MAINT,1\n"
        "theoshift_green,BACKEND,0,UP,2\n"
    )
    assert servers_not_up(stat) == ["theoshift_blue/blue2", "theoshift_green/green2"]
    assert servers_not_up(STAT_HEADER + "b,blue1,0,UP,1\n") == []
    assert servers_not_up("Unknown command.\n") == ["(no stats)"]


def test_the_virtual_ip_is_the_lab_networks_last_host_address() -> None:
    assert virtual_ip("172.24.0.0/16") == "172.24.255.254"
    assert virtual_ip("192.168.48.0/20") == "192.168.63.254"
    with pytest.raises(LabError, match=r"overlaps the users' 10\.92\.3\.0/24"):
        virtual_ip("10.92.3.0/24")
    with pytest.raises(LabError, match="no room"):
        virtual_ip("172.30.0.0/30")


def test_net_admin_is_read_from_the_effective_capabilities() -> None:
    docker_default = "Name:\tcat\nCapEff:\t00000000a80425fb\n"  # Docker's default set
    assert not has_net_admin(docker_default)
    assert has_net_admin(docker_default.replace("a80425fb", "a80435fb"))  # + NET_ADMIN (bit 12)
    assert not has_net_admin("Name:\tcat\n")


def test_keepalived_conf_unicasts_to_the_other_nodes_the_primary_first() -> None:
    addresses = {"haproxy": "172.24.0.5", "haproxy2": "172.24.0.6", "haproxy3": "172.24.0.7"}
    primary = keepalived_conf("haproxy", 0, addresses, "172.24.255.254", 16)
    backup = keepalived_conf("haproxy3", 2, addresses, "172.24.255.254", 16)
    assert "state MASTER" in primary and "priority 150" in primary
    assert "state BACKUP" in backup and "priority 130" in backup
    assert "unicast_src_ip 172.24.0.7" in backup
    peers = backup.split("unicast_peer {")[1].split("}")[0].split()
    assert peers == ["172.24.0.5", "172.24.0.6"]
    assert "172.24.255.254/16 dev eth0" in backup


def test_load_goes_to_the_virtual_ip_or_else_to_every_frontend() -> None:
    info = lab_info("single", Topology(haproxy_nodes=2))
    assert info.traffic_urls() == list(info.frontends.values())
    assert len(info.traffic_urls()) == 2
    info.vip = "172.24.255.254"
    assert info.traffic_urls() == ["http://172.24.255.254"]


class NoNetAdminNode:
    """A container whose processes lack NET_ADMIN; anything written to it fails the test."""

    name = "lab-haproxy"

    def exec_run(self, argv: list[str], demux: bool = False) -> tuple[int, bytes]:
        assert argv == ["cat", "/proc/self/status"], argv  # only the capability is read
        return 0, b"Name:\tcat\nCapEff:\t00000000a80425fb\n"

    def put_archive(self, *_args: object) -> None:
        raise AssertionError("nothing is written where keepalived cannot run")


def test_without_net_admin_there_is_no_virtual_ip_and_the_reason_says_why() -> None:
    nodes = {"haproxy": NoNetAdminNode(), "haproxy2": NoNetAdminNode()}
    vip, reason = keepalived.start(nodes, "172.24.0.0/16")
    assert vip is None
    assert reason is not None and "NET_ADMIN" in reason and "every node's frontend" in reason
