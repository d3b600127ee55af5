"""keepalived in the lab's HAProxy containers: start it on every node with the addresses the nodes
have now, and find which node holds the virtual IP. What to run is in vrrp.py."""

from __future__ import annotations

import time
from typing import Any

from bluegreen.errors import LabError
from bluegreen.lab.containers import exec_checked, put_file
from bluegreen.lab.host_scripts import START_KEEPALIVED
from bluegreen.lab.vrrp import (
    CONF_PATH,
    INTERFACE,
    NO_NET_ADMIN,
    has_net_admin,
    keepalived_conf,
    virtual_ip,
)

HOLDER_TIMEOUT_S = 30.0


def network_subnet(client: Any, network: str) -> str:
    return str(client.networks.get(network).attrs["IPAM"]["Config"][0]["Subnet"])


def start(nodes: dict[str, Any], subnet: str) -> tuple[str | None, str | None]:
    """(virtual IP, None) once the PRIMARY holds it (it has the highest priority), or (None, why
    not) without NET_ADMIN. `nodes`: the running containers, the PRIMARY first."""
    if not all(
        has_net_admin(exec_checked(c, ["cat", "/proc/self/status"])) for c in nodes.values()
    ):
        return None, NO_NET_ADMIN
    vip = virtual_ip(subnet)
    prefix_len = int(subnet.rsplit("/", 1)[1])
    addresses = {}
    for name, container in nodes.items():
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        addresses[name] = next(iter(networks.values()))["IPAddress"]
    for rank, (name, container) in enumerate(nodes.items()):
        conf = keepalived_conf(name, rank, addresses, vip, prefix_len)
        put_file(container, CONF_PATH, conf.encode(), 0o644)
        exec_checked(container, ["sh", "-c", START_KEEPALIVED])
    wait_for_holder(nodes, vip, next(iter(nodes)))
    return vip, None


def holder(nodes: dict[str, Any], vip: str) -> str | None:
    """The running node whose interface has the virtual IP (VRRP gives it to one at a time)."""
    for name, container in nodes.items():
        container.reload()
        if container.status != "running":
            continue
        code, output = container.exec_run(["ip", "-o", "-4", "addr", "show", "dev", INTERFACE])
        if code == 0 and f" {vip}/" in output.decode(errors="replace"):
            return name
    return None


def wait_for_holder(nodes: dict[str, Any], vip: str, node: str) -> None:
    """Until `node` holds the virtual IP (a node that starts takes it over in a few adverts)."""
    deadline = time.monotonic() + HOLDER_TIMEOUT_S
    while time.monotonic() < deadline:
        if holder(nodes, vip) == node:
            return
        time.sleep(0.2)
    logs = {
        name: container.exec_run(["tail", "-5", "/var/log/keepalived.log"])[1].decode("replace")
        for name, container in nodes.items()
    }
    raise LabError(f"{node} did not take the virtual IP {vip}; keepalived's logs: {logs}")
