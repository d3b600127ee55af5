"""What `bluegreen lab up` built (LabInfo, saved as `lab.json`) and where a lab keeps its files."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bluegreen.lab.topology import Topology


@dataclass
class HostInfo:
    container: str
    ssh: str  # 127.0.0.1:PORT
    app: str | None = None  # http://127.0.0.1:PORT of the app, for app hosts
    frontend: str | None = None  # http://127.0.0.1:PORT of HAProxy's frontend, for HAProxy nodes


@dataclass
class LabInfo:
    prefix: str
    network: str
    frontend: str  # the PRIMARY node's
    hosts: dict[str, HostInfo]
    config_path: str
    state_dir: str
    initial_commit: str
    layout: str = "single"
    apps: dict[str, Any] = field(default_factory=dict)  # the shared layout's apps, by name
    haproxy_nodes: int = 1
    servers_per_colour: int = 1
    vip: str | None = None  # the nodes' shared virtual IP (keepalived), on the lab network
    vip_reason: str | None = None  # why there is none

    @property
    def vip_url(self) -> str | None:
        return f"http://{self.vip}" if self.vip else None

    def traffic_urls(self) -> list[str]:
        """Where users' load goes: the virtual IP, or without one every node's frontend."""
        return [self.vip_url] if self.vip_url else list(self.frontends.values())

    @property
    def topology(self) -> Topology:
        return Topology(self.haproxy_nodes, self.servers_per_colour)

    @property
    def frontends(self) -> dict[str, str]:
        """Every HAProxy node's frontend, by node, the PRIMARY first."""
        return {role: host.frontend for role, host in self.hosts.items() if host.frontend}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabInfo:
        hosts = {name: HostInfo(**host) for name, host in data["hosts"].items()}
        return cls(**{**data, "hosts": hosts})


def default_state_dir(prefix: str) -> Path:
    base = os.environ.get("BLUEGREEN_LAB_DIR")
    if base:
        return Path(base).expanduser() / prefix
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "bluegreen" / "lab" / prefix
