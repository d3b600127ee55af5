"""The lab's shared virtual IP: keepalived on every HAProxy node of a lab with several, as the users
run their pair (reference/production-topology.md), in VRRP unicast between the nodes.

The address is the last host address of the lab's own Docker network (Docker hands addresses out
from the start of it, and a lab has a dozen containers), never one of the users' 10.92.3.x. The
PRIMARY node has the highest priority, so it holds the address whenever it runs. keepalived can
only add the address where the container has NET_ADMIN; without it there is no virtual IP and the
lab's load goes to every node's frontend instead. Pure: the lab runs what this module renders.
"""

from __future__ import annotations

import ipaddress

from bluegreen.errors import LabError

CONF_PATH = "/etc/keepalived/keepalived.conf"
INTERFACE = "eth0"  # the lab network is each HAProxy container's only one
USERS_NETWORK = ipaddress.ip_network("10.92.3.0/24")
CAP_NET_ADMIN = 12  # its bit in /proc/<pid>/status CapEff
ROUTER_ID = 51  # VRRP router id: with unicast, only this lab's nodes hear it
PRIMARY_PRIORITY = 150

NO_NET_ADMIN = (
    "the HAProxy containers did not get NET_ADMIN, which keepalived needs to add the address; "
    "load goes to every node's frontend"
)
ONE_NODE = "one HAProxy node: no VRRP pair"


def virtual_ip(subnet: str) -> str:
    """The lab network's last host address, refused inside the users' network."""
    network = ipaddress.ip_network(subnet, strict=False)
    if network.version != 4 or network.num_addresses < 16:
        raise LabError(f"the lab network {subnet} has no room for a virtual IP")
    address = network.broadcast_address - 1
    if address in USERS_NETWORK:
        raise LabError(
            f"the lab network {subnet} overlaps the users' {USERS_NETWORK}",
            hint="give Docker another default address pool (daemon.json default-address-pools)",
        )
    return str(address)


def has_net_admin(proc_status: str) -> bool:
    """Whether a process's /proc/<pid>/status shows CAP_NET_ADMIN among its effective ones."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def keepalived_conf(
    node: str, rank: int, addresses: dict[str, str], vip: str, prefix_len: int
) -> str:
    """keepalived.conf for `node` (rank 0 is the PRIMARY); `addresses`: every node's own address
    on the lab network. Unicast to the other nodes; the VIP on the lab network's interface."""
    peers = "\n".join(f"        {ip}" for name, ip in addresses.items() if name != node)
    return f"""# Written by `bluegreen lab up`: the lab's virtual IP, VRRP unicast between its nodes.
global_defs {{
    router_id {node}
}}

vrrp_instance lab_vip {{
    state {"MASTER" if rank == 0 else "BACKUP"}
    interface {INTERFACE}
    virtual_router_id {ROUTER_ID}
    priority {PRIMARY_PRIORITY - 10 * rank}
    advert_int 1
    unicast_src_ip {addresses[node]}
    unicast_peer {{
{peers}
    }}
    virtual_ipaddress {{
        {vip}/{prefix_len} dev {INTERFACE}
    }}
}}
"""
