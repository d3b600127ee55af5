"""One definition of the lab, used by the tests, the demo and people (`bluegreen lab ...`).

`up` removes leftovers of an earlier lab with the same prefix, builds missing images, starts
origin, BLUE, GREEN and HAProxy on a private network, publishes ssh, the app ports (single layout)
and the HAProxy frontend on 127.0.0.1 only, installs a fresh key pair, records host keys in a lab
known_hosts, deploys the sample app's first commit to both hosts and waits on real signals (sshd
banners, BLUE answering through HAProxy). It writes a ready-to-use bluegreen config and `lab.json`
describing it. The layout (layouts.py) is the users' shared frontend unless `single` is asked for.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bluegreen.errors import LabError
from bluegreen.lab import images
from bluegreen.lab.keys import generate_keypair, known_hosts_line
from bluegreen.lab.layouts import (
    APP,
    APP_DIR,
    APP_PORT,
    COLORS,
    DEFAULT_LAYOUT,
    LAYOUTS,
    REPO,
    SHARED_APPS,
    SHARED_HEALTH_PATH,
    render_config,
    supervisor_programs,
)

DEFAULT_PREFIX = "bluegreen-lab"
LABEL = "bluegreen.lab"
READY_TIMEOUT_S = 90.0

Progress = Callable[[str], None]


@dataclass
class HostInfo:
    container: str
    ssh: str  # 127.0.0.1:PORT
    app: str | None = None  # http://127.0.0.1:PORT of the app, for app hosts


@dataclass
class LabInfo:
    prefix: str
    network: str
    frontend: str
    hosts: dict[str, HostInfo]
    config_path: str
    state_dir: str
    initial_commit: str
    layout: str = "single"
    apps: dict[str, Any] = field(default_factory=dict)  # the shared layout's apps, by name

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


def docker_sdk() -> Any:
    """The Docker SDK, which only the lab needs: it comes with the `lab` extra, so a lean install
    (the CLI and MCP server against real hosts) gets a LabError that says how to add it."""
    try:
        import docker
    except ModuleNotFoundError as exc:
        raise LabError(
            "the lab needs the Docker SDK for Python, which is not installed",
            hint="install the lab's extra: pip install 'bluegreen-mcp[lab]' (a checkout: make venv)",
        ) from exc
    return docker


def _docker() -> Any:
    docker = docker_sdk()
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise LabError(
            f"no Docker engine answers ({exc})",
            hint="start Docker (or run scripts/ensure-docker.sh as root) and retry",
        ) from exc
    return client


class Lab:
    def __init__(self, prefix: str = DEFAULT_PREFIX, state_dir: Path | None = None) -> None:
        docker_sdk()  # every lab command needs it: say how to install it before doing anything
        self.prefix = prefix
        self.state_dir = state_dir or default_state_dir(prefix)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _docker()
        return self._client

    @property
    def info_path(self) -> Path:
        return self.state_dir / "lab.json"

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    # --- lifecycle -------------------------------------------------------------------------

    def up(self, progress: Progress | None = None, layout: str = DEFAULT_LAYOUT) -> LabInfo:
        import docker.errors

        if layout not in LAYOUTS:
            raise LabError(f"unknown lab layout {layout!r}", hint=f"one of: {', '.join(LAYOUTS)}")
        try:
            return self._up(progress or (lambda _msg: None), layout)
        except docker.errors.DockerException as exc:
            raise LabError(
                f"the lab could not be started: {exc}",
                hint="see `docker ps -a` and the containers' logs; `bluegreen lab down` cleans up",
            ) from exc

    def _up(self, say: Progress, layout: str) -> LabInfo:
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
        initial = self._exec(origin, ["lab-commit", "--init"]).strip().splitlines()[-1]
        say(f"origin holds the sample app at {initial[:12]}")

        shared = layout == "shared"
        app_hosts = {}
        for color in COLORS:
            ports = {"22/tcp": _loopback_port()}
            if not shared:
                ports[f"{APP_PORT}/tcp"] = _loopback_port()
            app_hosts[color] = self._run(
                tags["app-host"],
                color,
                network.name,
                ports=ports,
                environment={"APP_COLOR": color},
                files={"/etc/supervisor/conf.d/apps.conf": supervisor_programs(color)}
                if shared
                else {},
            )
        for color, container in app_hosts.items():
            self._install_key(container, public_key)
            for app_dir, program in _checkouts(layout, color):
                self._exec(container, ["sh", "-c", _FIRST_DEPLOY, "deploy", REPO, app_dir, program])
            say(f"{color.upper()} runs {initial[:12]}")
        haproxy = self._run(
            tags["haproxy"],
            "haproxy",
            network.name,
            ports={"22/tcp": _loopback_port(), "80/tcp": _loopback_port()},
            environment={"LAB_LAYOUT": layout},
        )
        self._install_key(haproxy, public_key)

        containers = {"haproxy": haproxy, **app_hosts, "origin": origin}
        hosts: dict[str, HostInfo] = {}
        known_hosts = []
        for role, container in containers.items():
            container.reload()
            if role == "origin":
                hosts[role] = HostInfo(container=container.name, ssh="")
                continue
            port = _host_port(container, "22/tcp")
            host_key = self._wait_for_file(container, "/etc/ssh/ssh_host_ed25519_key.pub")
            known_hosts.append(known_hosts_line("127.0.0.1", port, host_key))
            app_url = None
            if role in COLORS and not shared:
                app_url = f"http://127.0.0.1:{_host_port(container, f'{APP_PORT}/tcp')}"
            hosts[role] = HostInfo(container=container.name, ssh=f"127.0.0.1:{port}", app=app_url)
        (self.state_dir / "known_hosts").write_text("".join(known_hosts))

        frontend = f"http://127.0.0.1:{_host_port(haproxy, '80/tcp')}"
        for role, host in hosts.items():
            if host.ssh:
                wait_for_ssh_banner(host.ssh, role)
        say("sshd answers on every host")
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
        )
        _wait_until_served(info)
        say(f"HAProxy serves BLUE at {frontend} ({layout} layout)")
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
        by_name = [
            c
            for c in self.client.containers.list(all=True, filters={"name": f"^{self.prefix}-"})
            if c.name.startswith(f"{self.prefix}-")
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
        return {
            "frontend": info.frontend,
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
        return self._exec(self.container("origin"), argv).strip().splitlines()[-1]

    def reset(self) -> None:
        """Back to the state `up` left: every container running, the initial haproxy.cfg loaded,
        no state file, lock, history or backups, BLUE and GREEN on the initial commit."""
        info = self.info()
        for role in ("origin", *COLORS, "haproxy"):
            container = self.container(role)
            if container.status != "running":
                container.start()
        for color in COLORS:
            for app_dir, program in _checkouts(info.layout, color):
                argv = ["sh", "-c", _RESET_APP, "reset", info.initial_commit, app_dir, program]
                self._exec(self.container(color), argv)
        self._exec(self.container("haproxy"), ["sh", "-c", _RESET_HAPROXY])
        _wait_until_served(info)

    def exec(self, role: str, argv: list[str]) -> str:
        return self._exec(self.container(role), argv)

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
    ) -> Any:
        from docker.types import EndpointConfig

        container = self.client.containers.create(
            image,
            name=self.name(role),
            hostname=role,
            labels=self._labels(),
            # A real init as PID 1 reaps every orphan (ssh sessions, killed commands).
            init=True,
            environment=environment or {},
            ports=ports,
            network=network,
            # The short role name is the address the other containers use (e.g. blue:3001).
            networking_config={network: EndpointConfig(self.client.api._version, aliases=[role])},
        )
        for path, text in (files or {}).items():
            _put_file(container, path, text.encode(), 0o644)
        container.start()
        return container

    def _exec(self, container: Any, argv: list[str]) -> str:
        code, output = container.exec_run(argv, demux=False)
        text = output.decode(errors="replace") if output else ""
        if code != 0:
            raise LabError(f"{container.name}: {' '.join(argv)} exited {code}:\n{text[-2000:]}")
        return text

    def _install_key(self, container: Any, public_key: str) -> None:
        _put_file(container, "/root/.ssh/authorized_keys", public_key.encode(), 0o600)

    def _wait_for_file(self, container: Any, path: str) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            code, output = container.exec_run(["cat", path])
            if code == 0 and output.strip():
                return str(output.decode().strip())
            time.sleep(0.1)
        raise LabError(f"{container.name}: {path} did not appear")


def _put_file(container: Any, path: str, data: bytes, mode: int) -> None:
    directory, _, name = path.rpartition("/")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entry = tarfile.TarInfo(name)
        entry.size = len(data)
        entry.mode = mode
        tar.addfile(entry, io.BytesIO(data))
    container.put_archive(directory, buf.getvalue())


def _checkouts(layout: str, color: str) -> list[tuple[str, str]]:
    """(app dir, supervisor program) of every app on a `color` host of the layout."""
    if layout == "shared":
        return [(app.app_dir, app.program(color)) for app in SHARED_APPS]
    return [(APP_DIR, APP)]


def _wait_until_served(info: LabInfo) -> None:
    """Every app answers on each host and, through HAProxy, BLUE serves its users (and each
    preview host its own colour)."""
    if info.layout == "shared":
        url = info.frontend + SHARED_HEALTH_PATH
        for app in SHARED_APPS:
            _wait_for_color(url, "blue", host=app.host)
            for color in COLORS:
                _wait_for_color(url, color, host=app.preview(color))
        return
    for color in COLORS:
        app_url = info.hosts[color].app
        assert app_url is not None
        _wait_for_color(app_url + "/health", color)
    _wait_for_color(info.frontend + "/health", "blue")


# $1 the origin's repository, $2 the app dir, $3 the supervisor program.
_FIRST_DEPLOY = """set -e
git clone -q "$1" "$2"
cd "$2"
python3 build.py >/dev/null
until supervisorctl status >/dev/null 2>&1 || [ $? -eq 3 ]; do sleep 0.1; done
supervisorctl start "$3" >/dev/null
"""


# $1 the initial commit, $2 the app dir, $3 the supervisor program.
_RESET_APP = """set -e
until supervisorctl status >/dev/null 2>&1 || [ $? -eq 3 ]; do sleep 0.1; done
cd "$2"
if [ "$(git rev-parse HEAD)" != "$1" ] || [ ! -f dist/app.py ]; then
  git checkout -q --force "$1" && python3 build.py >/dev/null
fi
rm -f .env.display
rm -rf "$2.bluegreen-backups"
supervisorctl restart "$3" >/dev/null
"""

_RESET_HAPROXY = """set -e
rm -rf /var/lib/bluegreen /var/lib/haproxy/*.json
cp /etc/haproxy/haproxy.cfg.lab-initial /etc/haproxy/haproxy.cfg
# A reload starts a new worker from the file: runtime changes made by hand are gone with it.
haproxy-reload >/dev/null
"""


def _loopback_port() -> tuple[str, int]:
    """A free port on 127.0.0.1, fixed at creation so it survives a container restart (Docker
    picks a new random port on every start when left to choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return ("127.0.0.1", int(probe.getsockname()[1]))


def _host_port(container: Any, port: str) -> int:
    bindings = container.attrs["NetworkSettings"]["Ports"].get(port) or []
    for binding in bindings:
        if binding.get("HostIp") in ("127.0.0.1", ""):
            return int(binding["HostPort"])
    raise LabError(f"{container.name}: port {port} is not published on 127.0.0.1")


def wait_for_ssh_banner(target: str, role: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until sshd at `[user@]host:port` sends its banner: a real signal, not a fixed sleep."""
    host, port = target.rpartition("@")[2].rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=2) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise LabError(f"sshd of {role} at {target} did not answer: {last}")


def _wait_for_color(url: str, color: str, host: str | None = None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    headers = {"Host": host} if host else {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2, headers=headers)
            if response.status_code == 200 and response.json().get("color") == color:
                return
            last = f"HTTP {response.status_code} {response.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    via = f" (Host: {host})" if host else ""
    raise LabError(f"{url}{via} never answered as {color.upper()}: {last}")
