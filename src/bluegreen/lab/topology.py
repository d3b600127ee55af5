"""How many HAProxy nodes and app servers a lab runs, and the names each one gets.

The default (one node, one server a colour) is the lab as it always was: roles `haproxy`, `blue`,
`green`, and the layout's own haproxy.cfg. With several nodes (the users' VRRP pair) the first node
keeps the role `haproxy` (the PRIMARY of the bluegreen config) and the others are `haproxy2`,
`haproxy3`...; every node runs the same haproxy.cfg. With several servers a colour (a pool) the app
hosts are `blue1`, `blue2`..., each the HAProxy server of that name in its colour's backend, at the
address of its own container name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bluegreen.errors import LabError

# The lab runs on one machine: a pair or a small cluster, and pools big enough to show parallelism.
MAX_HAPROXY_NODES = 4
MAX_SERVERS_PER_COLOUR = 4
PRIMARY_NODE = "haproxy"

# A colour's one server line in a layout's haproxy.cfg, e.g. `    server blue1 blue:3001 check ...`.
_SERVER_LINE = re.compile(
    r"^(?P<indent>\s+)server \S+ (?P<color>blue|green):(?P<port>\d+)(?P<rest>.*)$"
)


@dataclass(frozen=True)
class Topology:
    haproxy_nodes: int = 1
    servers_per_colour: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.haproxy_nodes <= MAX_HAPROXY_NODES:
            raise LabError(
                f"--haproxy-nodes {self.haproxy_nodes} is out of range",
                hint=f"the lab runs 1 to {MAX_HAPROXY_NODES} HAProxy nodes",
            )
        if not 1 <= self.servers_per_colour <= MAX_SERVERS_PER_COLOUR:
            raise LabError(
                f"--servers-per-colour {self.servers_per_colour} is out of range",
                hint=f"the lab runs 1 to {MAX_SERVERS_PER_COLOUR} servers a colour",
            )

    @property
    def pooled(self) -> bool:
        return self.servers_per_colour > 1

    def node_roles(self) -> list[str]:
        """Every HAProxy node, the PRIMARY first."""
        return [PRIMARY_NODE] + [f"{PRIMARY_NODE}{i}" for i in range(2, self.haproxy_nodes + 1)]

    def server_roles(self, color: str) -> list[str]:
        """The app hosts of a colour; in a pool, each one's name is its HAProxy server name."""
        if not self.pooled:
            return [color]
        return [f"{color}{i}" for i in range(1, self.servers_per_colour + 1)]

    def pool_cfg(self, cfg: str) -> str:
        """A layout's haproxy.cfg with each colour's one server line replaced by the pool's lines
        (same port and options, one server per app host); unchanged without a pool."""
        if not self.pooled:
            return cfg
        lines = []
        for line in cfg.splitlines():
            match = _SERVER_LINE.match(line)
            if match is None:
                lines.append(line)
                continue
            indent, port, rest = match["indent"], match["port"], match["rest"]
            lines += [
                f"{indent}server {role} {role}:{port}{rest}"
                for role in self.server_roles(match["color"])
            ]
        return "\n".join(lines) + "\n"
