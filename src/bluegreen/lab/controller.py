"""One definition of the lab, used by the tests, the demo and people (`bluegreen lab ...`).

`up` removes leftovers of an earlier lab with the same prefix, builds missing images, starts
origin, BLUE, GREEN and HAProxy on a private network, publishes ssh, the app ports (single layout)
and the HAProxy frontend on 127.0.0.1 only, installs a fresh key pair, records host keys in a lab
known_hosts, deploys the sample app's first commit to both hosts and waits on real signals (sshd
banners, BLUE answering through HAProxy). It writes a ready-to-use bluegreen config and `lab.json`
describing it. The layout (layouts.py) is the users' shared frontend unless `single` is asked for;
the topology (topology.py) is one HAProxy node and one server a colour unless more are asked for.
This module is the Lab's lifecycle; the Docker plumbing is in containers.py, the waits in
readiness.py, the in-container scripts in host_scripts.py and what `up` built in lab_info.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bluegreen.errors import LabError
from bluegreen.lab import images, keepalived
from bluegreen.lab.containers import (
    docker_client,
    docker_sdk,
    exec_checked,
    host_port,
    install_key,
    loopback_port,
    put_file,
)
from bluegreen.lab.host_scripts import FIRST_DEPLOY, RESET_APP, RESET_HAPROXY, checkouts
from bluegreen.lab.keys import generate_keypair, known_hosts_line
from bluegreen.lab.lab_info import HostInfo, LabInfo, default_state_dir
from bluegreen.lab.layouts import (
    APP_PORT,
    COLORS,
    DEFAULT_LAYOUT,
    HAPROXY_CFG,
    LAYOUTS,
    REPO,
    SHARED_APPS,
    layout_haproxy_cfg,
    render_config,
    supervisor_programs,
)
from bluegreen.lab.readiness import (
    wait_for_file,
    wait_for_servers_up,
    wait_for_ssh_banner,
    wait_until_served,
)
from bluegreen.lab.topology import PRIMARY_NODE, Topology
from bluegreen.lab.vrrp import ONE_NODE

DEFAULT_PREFIX = "bluegreen-lab"
LABEL = "bluegreen.lab"

Progress = Callable[[str], None]


class Lab:
    def __init__(self, prefix: str = DEFAULT_PREFIX, state_dir: Path | None = None) -> None:
        docker_sdk()  # every lab command needs it: say how to install it before doing anything
        self.prefix = prefix
        self.state_dir = state_dir or default_state_dir(prefix)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    @property
    def info_path(self) -> Path:
        return self.state_dir / "lab.json"

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    # --- lifecycle -------------------------------------------------------------------------

    def up(
        self,
        progress: Progress | None = None,
        layout: str = DEFAULT_LAYOUT,
        topology: Topology | None = None,
    ) -> LabInfo:
        import docker.errors

        if layout not in LAYOUTS:
            raise LabError(f"unknown lab layout {layout!r}", hint=f"one of: {', '.join(LAYOUTS)}")
        try:
            return self._up(progress or (lambda _msg: None), layout, topology or Topology())
        except docker.errors.DockerException as exc:
            raise LabError(
                f"the lab could not be started: {exc}",
                hint="see `docker ps -a` and the containers' logs; `bluegreen lab down` cleans up",
            ) from exc

    def _up(self, say: Progress, layout: str, topology: Topology) -> LabInfo:
        self.remove_leftovers(say)
        tags = images.ensure_images(self.client, say)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        key_path = self.state_dir / "id_ed25519"
        public_key = generate_keypair(key_path)

        network = self.client.networks.create(
            self.name("net"), driver="bridge", labels=self._labels()
        )
        say(f"network {network.name}")
        origin = self._run(tags["origin"], "origin", network.name, ports={})
        initial = exec_checked(origin, ["lab-commit", "--init"]).strip().splitlines()[-1]
        say(f"origin holds the sample app at {initial[:12]}")

        shared = layout == "shared"
        app_hosts = {}
        for color in COLORS:
            for role in topology.server_roles(color):
                ports = {"22/tcp": loopback_port()}
                if not shared:
                    ports[f"{APP_PORT}/tcp"] = loopback_port()
                app_hosts[role] = self._run(
                    tags["app-host"],
                    role,
                    network.name,
                    ports=ports,
                    environment={"APP_COLOR": color},
                    files={"/etc/supervisor/conf.d/apps.conf": supervisor_programs(color)}
                    if shared
                    else {},
                )
        for color in COLORS:
            for role in topology.server_roles(color):
                container = app_hosts[role]
                install_key(container, public_key)
                for app_dir, program in checkouts(layout, color):
                    exec_checked(
                        container, ["sh", "-c", FIRST_DEPLOY, "deploy", REPO, app_dir, program]
                    )
                say(f"{role.upper()} runs {initial[:12]}")
        # A pool's cfg is written before the first start, so the entrypoint keeps it as initial.
        cfg = topology.pool_cfg(layout_haproxy_cfg(layout)) if topology.pooled else None
        cfg_files = (
            {path: cfg for path in (HAPROXY_CFG, HAPROXY_CFG + ".lab-initial")} if cfg else {}
        )
        nodes = {}
        for role in topology.node_roles():
            nodes[role] = self._run(
                tags["haproxy"],
                role,
                network.name,
                ports={"22/tcp": loopback_port(), "80/tcp": loopback_port()},
                environment={"LAB_LAYOUT": layout},
                files=cfg_files,
                # keepalived adds the nodes' virtual IP to the interface
                cap_add=["NET_ADMIN"] if len(topology.node_roles()) > 1 else [],
            )
            install_key(nodes[role], public_key)

        containers = {**nodes, **app_hosts, "origin": origin}
        hosts: dict[str, HostInfo] = {}
        known_hosts = []
        for role, container in containers.items():
            container.reload()
            if role == "origin":
                hosts[role] = HostInfo(container=container.name, ssh="")
                continue
            port = host_port(container, "22/tcp")
            host_key = wait_for_file(container, "/etc/ssh/ssh_host_ed25519_key.pub")
            known_hosts.append(known_hosts_line("127.0.0.1", port, host_key))
            app_url = frontend = None
            if role in app_hosts and not shared:
                app_url = f"http://127.0.0.1:{host_port(container, f'{APP_PORT}/tcp')}"
            if role in nodes:
                frontend = f"http://127.0.0.1:{host_port(container, '80/tcp')}"
            hosts[role] = HostInfo(
                container=container.name, ssh=f"127.0.0.1:{port}", app=app_url, frontend=frontend
            )
        (self.state_dir / "known_hosts").write_text("".join(known_hosts))

        frontend = str(hosts[PRIMARY_NODE].frontend)
        for role, host in hosts.items():
            if host.ssh:
                wait_for_ssh_banner(host.ssh, role)
        say("sshd answers on every host")
        vip: str | None = None
        vip_reason: str | None = ONE_NODE
        if len(nodes) > 1:
            vip, vip_reason = keepalived.start(
                nodes, keepalived.network_subnet(self.client, network.name)
            )
            say(f"virtual IP {vip} on {keepalived.holder(nodes, vip)}" if vip else str(vip_reason))
        info = LabInfo(
            prefix=self.prefix,
            network=network.name,
            frontend=frontend,
            hosts=hosts,
            config_path=str(self.state_dir / "bluegreen.toml"),
            state_dir=str(self.state_dir),
            initial_commit=initial,
            layout=layout,
            apps={app.name: app.describe() for app in SHARED_APPS} if shared else {},
            haproxy_nodes=topology.haproxy_nodes,
            servers_per_colour=topology.servers_per_colour,
            vip=vip,
            vip_reason=vip_reason,
        )
        self._wait_until_served(info)
        say(f"HAProxy serves BLUE at {', '.join(info.frontends.values())} ({layout} layout)")
        Path(info.config_path).write_text(render_config(info))
        self.info_path.write_text(json.dumps(info.to_json(), indent=2) + "\n")
        return info

    def down(self, progress: Progress | None = None) -> int:
        """Remove every container and network of this prefix, and the lab's files. Returns count."""
        removed = self.remove_leftovers(progress or (lambda _msg: None))
        for name in ("lab.json", "bluegreen.toml", "known_hosts", "id_ed25519", "id_ed25519.pub"):
            (self.state_dir / name).unlink(missing_ok=True)
        return removed

    def remove_leftovers(self, say: Progress) -> int:
        import docker.errors

        count = 0
        by_label = self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={self.prefix}"}
        )
        # By name: leftovers without the label; another lab whose prefix starts with this one
        # (`bg` and `bg-shared`) carries its own label and is not ours to remove.
        by_name = [
            c
            for c in self.client.containers.list(all=True, filters={"name": f"^{self.prefix}-"})
            if c.name.startswith(f"{self.prefix}-")
            and (c.labels or {}).get(LABEL, self.prefix) == self.prefix
        ]
        for container in {c.id: c for c in [*by_label, *by_name]}.values():
            try:
                container.remove(force=True, v=True)
                count += 1
                say(f"removed container {container.name}")
            except docker.errors.NotFound:
                pass
        for network in self.client.networks.list(names=[self.name("net")]):
            try:
                network.remove()
                count += 1
                say(f"removed network {network.name}")
            except docker.errors.NotFound:
                pass
        return count

    # --- queries and actions ---------------------------------------------------------------

    def info(self) -> LabInfo:
        if not self.info_path.exists():
            raise LabError(
                f"no lab is up for prefix {self.prefix!r} ({self.info_path} missing)",
                hint="run `bluegreen lab up`",
            )
        return LabInfo.from_json(json.loads(self.info_path.read_text()))

    def status(self) -> dict[str, Any]:
        info = self.info()
        hosts: dict[str, Any] = {}
        for role, host in info.hosts.items():
            entry: dict[str, Any] = {"container": host.container, "ssh": host.ssh}
            if host.app:
                entry["app"] = host.app
            entry["state"] = self.container_state(host.container)
            hosts[role] = entry
        vip = None
        if info.vip:
            holder = keepalived.holder(self._nodes(info), info.vip)
            vip = {"address": info.vip, "url": info.vip_url, "holder": holder}
        return {
            "frontend": info.frontend,
            "frontends": info.frontends,
            "vip": vip,
            "vip_reason": info.vip_reason,
            "config": info.config_path,
            "layout": info.layout,
            "apps": info.apps,
            "hosts": hosts,
        }

    def container_state(self, name: str) -> str:
        import docker.errors

        try:
            return str(self.client.containers.get(name).status)
        except docker.errors.NotFound:
            return "missing"

    def container(self, role: str) -> Any:
        return self.client.containers.get(self.name(role))

    def commit(self, breakage: str | None = None) -> str:
        """A new commit of the sample app on the origin (good, or breaking build/health); its sha."""
        argv = ["lab-commit"] + (["--break", breakage] if breakage else [])
        return exec_checked(self.container("origin"), argv).strip().splitlines()[-1]

    def reset(self) -> None:
        """Back to the state `up` left: every container running, the initial haproxy.cfg loaded
        on every node, no state file, lock, history or backups, every BLUE and GREEN server on
        the initial commit, the virtual IP (if any) on the PRIMARY."""
        info = self.info()
        topology = info.topology
        servers = [role for color in COLORS for role in topology.server_roles(color)]
        for role in ("origin", *servers, *topology.node_roles()):
            container = self.container(role)
            if container.status != "running":
                container.start()
        for color in COLORS:
            for role in topology.server_roles(color):
                for app_dir, program in checkouts(info.layout, color):
                    argv = ["sh", "-c", RESET_APP, "reset", info.initial_commit, app_dir, program]
                    exec_checked(self.container(role), argv)
        for node in topology.node_roles():
            exec_checked(self.container(node), ["sh", "-c", RESET_HAPROXY])
        if info.vip:  # a node restarted above runs no keepalived, maybe at a new address
            subnet = keepalived.network_subnet(self.client, info.network)
            keepalived.start(self._nodes(info), subnet)
        self._wait_until_served(info)

    def exec(self, role: str, argv: list[str]) -> str:
        return exec_checked(self.container(role), argv)

    def _nodes(self, info: LabInfo) -> dict[str, Any]:
        return {node: self.container(node) for node in info.topology.node_roles()}

    def _wait_until_served(self, info: LabInfo) -> None:
        """Every node's HAProxy sees every server of its backends UP, and serves every app."""
        for node in info.topology.node_roles():
            wait_for_servers_up(self.container(node))
        wait_until_served(info)

    # --- helpers ---------------------------------------------------------------------------

    def _labels(self) -> dict[str, str]:
        return {LABEL: self.prefix}

    def _run(
        self,
        image: str,
        role: str,
        network: str,
        *,
        ports: dict[str, Any],
        environment: dict[str, str] | None = None,
        files: dict[str, str] | None = None,
        cap_add: list[str] | None = None,
    ) -> Any:
        from docker.types import EndpointConfig

        container = self.client.containers.create(
            image,
            name=self.name(role),
            hostname=role,
            labels=self._labels(),
            # A real init as PID 1 reaps every orphan (ssh sessions, killed commands).
            init=True,
            cap_add=cap_add or None,
            environment=environment or {},
            ports=ports,
            network=network,
            # The short role name is the address the other containers use (e.g. blue:3001).
            networking_config={network: EndpointConfig(self.client.api._version, aliases=[role])},
        )
        for path, text in (files or {}).items():
            put_file(container, path, text.encode(), 0o644)
        container.start()
        return container


# LabInfo and HostInfo are what `up` returns: the lab's callers import them from here.
__all__ = ["DEFAULT_PREFIX", "LABEL", "HostInfo", "Lab", "LabInfo", "Progress"]
