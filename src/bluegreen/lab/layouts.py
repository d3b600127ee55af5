"""The lab's layouts, and the bluegreen config each one gets.

`shared` (the default) is the users' production shape (reference/production-topology.md): one
HAProxy frontend `https_frontend` routes two apps by Host ACL, each with a fixed preview host per
colour; requests for no app reach a homepage backend. BLUE and GREEN run both apps, on their own
ports, under one supervisor program per app and colour (`theoshift-blue` on BLUE,
`theoshift-green` on GREEN), so the restart command differs per host. Its haproxy.cfg is
`docker/haproxy/shared.cfg`. `single` is one app behind `default_backend` (`docker/haproxy/
haproxy.cfg`), which most lab tests use. The users' host names are only Host headers here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bluegreen.lab.images import docker_dir

if TYPE_CHECKING:
    from bluegreen.lab.lab_info import LabInfo

# Each colour's app hosts as (role, `host:port` of its sshd), in order.
Servers = dict[str, list[tuple[str, str]]]

LAYOUTS = ("shared", "single")
COLORS = ("blue", "green")
DEFAULT_LAYOUT = "shared"
REPO = "git://origin/jw-attendant.git"  # every lab app is the sample app, each in its own checkout

# The single layout's one app.
APP = "jw-attendant"
APP_DIR = "/opt/jw-attendant"
APP_PORT = 3001

HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
HAPROXY_CONF_D = "/etc/haproxy/conf.d"  # the lab's HAProxy loads it too (its second -f)
# Each layout's haproxy.cfg in the image's build context (docker/haproxy/).
LAYOUT_CFG_FILES = {"shared": "shared.cfg", "single": "haproxy.cfg"}

SHARED_FRONTEND = "https_frontend"
SHARED_HEALTH_PATH = "/api/health"
# What every lab app allows: quick switches for tests and demos, approval by the operator.
APP_POLICY = (
    'approval = "auto"',
    "allow_unapproved = false",
    "allow_emergency_without_approval = true",
    "min_free_disk_mb = 100",
    "drain_s = 1",
    "watch_s = 3",
)


@dataclass(frozen=True)
class LabApp:
    name: str
    port: int
    host: str  # the public Host header; the one rule of the frontend a switch moves selects it
    rule: str
    backend_prefix: str  # backend names drift between apps, as in production

    @property
    def app_dir(self) -> str:
        return f"/opt/{self.name}"

    @property
    def state_file(self) -> str:
        return f"/var/lib/haproxy/{self.name}-deployment-state.json"

    def backend(self, color: str) -> str:
        return f"{self.backend_prefix}{color}"

    def server(self, color: str) -> str:
        return f"{color}1"

    def preview(self, color: str) -> str:
        return f"{color}.{self.host}"

    def program(self, color: str) -> str:
        return f"{self.name}-{color}"

    def log_file(self, color: str) -> str:
        return f"/var/log/{self.program(color)}.log"

    def describe(self) -> dict[str, Any]:
        """The app as `bluegreen lab status --json` shows it."""
        return {
            "host": self.host,
            "preview": {color: self.preview(color) for color in ("blue", "green")},
            "rule": self.rule,
            "port": self.port,
            "backends": {color: self.backend(color) for color in ("blue", "green")},
        }


SHARED_APPS = (
    LabApp("theoshift", 3001, "theoshift.com", "is_theoshift", "theoshift_"),
    LabApp("ldc-tools", 3002, "ldc-tools.com", "is_ldc_tools", "ldc-tools-"),
)


def layout_haproxy_cfg(layout: str) -> str:
    """The haproxy.cfg a layout starts with (the HAProxy image's entrypoint installs the same)."""
    return (docker_dir() / "haproxy" / LAYOUT_CFG_FILES[layout]).read_text()


def supervisor_programs(color: str) -> str:
    """The app host's supervisor programs of the shared layout (the lab starts them after the
    first build; a deploy's restart names the host's own program)."""
    blocks = []
    for app in SHARED_APPS:
        blocks.append(
            f"""[program:{app.program(color)}]
command=/usr/bin/python3 {app.app_dir}/dist/app.py
directory={app.app_dir}
environment=APP_NAME="{app.name}",APP_PORT="{app.port}"
autostart=false
autorestart=true
startsecs=1
startretries=2
stopsignal=TERM
stopwaitsecs=5
redirect_stderr=true
stdout_logfile={app.log_file(color)}
stdout_logfile_maxbytes=5MB
stdout_logfile_backups=1
"""
        )
    return "\n".join(blocks)


def shared_app_sections(servers: Servers, frontend_url: str) -> list[str]:
    """The config of every app of the shared layout; `frontend_url`: where the lab publishes
    HAProxy's frontend."""
    lines: list[str] = []
    for app in SHARED_APPS:
        lines += [
            "",
            f"[apps.{app.name}]",
            f'state_file = "{app.state_file}"',
            f'frontend = "{SHARED_FRONTEND}"',
            f'rule = "{app.rule}"',
            f'hosts = ["{app.host}"]',
            f'frontend_url = "{frontend_url}"',
            f'app_dir = "{app.app_dir}"',
            'branch = "main"',
            'build = "python3 build.py"',
            "# BLUE's program; GREEN names its own below.",
            f'restart = "supervisorctl restart {app.program("blue")}"',
            f'log_file = "{app.log_file("blue")}"',
            *APP_POLICY,
            f'health = {{ path = "{SHARED_HEALTH_PATH}", expect_status = 200, timeout_s = 3, '
            "attempts = 20 }",
        ]
        for color in ("blue", "green"):
            own = []
            if color == "green":
                own = [
                    f'restart = "supervisorctl restart {app.program(color)}"',
                    f'log_file = "{app.log_file(color)}"',
                ]
            lines += colour_section(
                f"apps.{app.name}.servers.{color}",
                servers[color],
                app.port,
                backend=app.backend(color),
                server=app.server(color),
                own=own,
            )
    return lines


def colour_section(
    table: str,
    servers: list[tuple[str, str]],
    port: int,
    *,
    backend: str,
    server: str,
    own: list[str],
) -> list[str]:
    """A colour's servers table: `servers` are its app hosts' (role, ssh target). One server is
    the one-server form (HAProxy server name `server`, address its role's); several are a `pool`,
    each named after its role (schema of issue #14)."""
    if len(servers) == 1:
        role, ssh = servers[0]
        return [
            "",
            f"[{table}]",
            f'ssh = "root@{ssh}"',
            f'address = "{role}:{port}"',
            f'backend = "{backend}"',
            f'server = "{server}"',
            *own,
        ]
    lines = ["", f"[{table}]", f'backend = "{backend}"', *own]
    for role, ssh in servers:
        lines += [
            "",
            f"[[{table}.pool]]",
            f'server = "{role}"',
            f'ssh = "root@{ssh}"',
            f'address = "{role}:{port}"',
        ]
    return lines


def render_config(info: LabInfo) -> str:
    """The bluegreen config for this lab (TOML): one node is `[haproxy] ssh`, several are
    `[haproxy.nodes.<role>]` (the first, `haproxy`, the PRIMARY); one server a colour is the
    one-server form, several a `pool`."""
    state = Path(info.state_dir)
    nodes = info.topology.node_roles()
    lines = [
        f"# bluegreen config for the lab {info.prefix!r}, written by `bluegreen lab up`.",
        "[ssh]",
        f'known_hosts = "{state / "known_hosts"}"',
        f'identity_file = "{state / "id_ed25519"}"',
        "use_agent = false",
        "connect_timeout_s = 10",
        "",
        "[haproxy]",
    ]
    if len(nodes) == 1:
        lines.append(f'ssh = "root@{info.hosts[nodes[0]].ssh}"')
    lines += [
        f'config_path = "{HAPROXY_CFG}"',
        # What the lab's HAProxy runs with (-f haproxy.cfg -f conf.d): the files it loads.
        f'config_files = ["{HAPROXY_CFG}", "{HAPROXY_CONF_D}"]',
        'reload = ["/usr/local/sbin/haproxy-reload"]',
        'master_socket = "/run/haproxy/master.sock"',
        'check = ["haproxy", "-c", "-f"]',
        'runtime_socket = "/run/haproxy/admin.sock"',
        'work_dir = "/var/lib/bluegreen"',
    ]
    if len(nodes) > 1:
        for node in nodes:
            lines += ["", f"[haproxy.nodes.{node}]", f'ssh = "root@{info.hosts[node].ssh}"']
    servers = {
        color: [(role, info.hosts[role].ssh) for role in info.topology.server_roles(color)]
        for color in COLORS
    }
    if info.layout == "shared":
        lines += shared_app_sections(servers, info.frontend)
    else:
        lines += single_app_section(servers, info.frontend)
    return "\n".join(lines) + "\n"


def single_app_section(servers: Servers, frontend_url: str) -> list[str]:
    lines = [
        "",
        f"[apps.{APP}]",
        'state_file = "/var/lib/haproxy/jw-deployment-state.json"',
        'frontend = "http-in"',
        f'frontend_url = "{frontend_url}"',
        f'app_dir = "{APP_DIR}"',
        'branch = "main"',
        'build = "python3 build.py"',
        f'restart = "supervisorctl restart {APP}"',
        f'log_file = "/var/log/{APP}.log"',
        *APP_POLICY,
        f'health = {{ path = "/health", port = {APP_PORT}, expect_status = 200, timeout_s = 3, attempts = 20 }}',
    ]
    for color in COLORS:
        lines += colour_section(
            f"apps.{APP}.servers.{color}",
            servers[color],
            APP_PORT,
            backend=f"bk_{color}",
            server=color,
            own=[],
        )
    return lines
