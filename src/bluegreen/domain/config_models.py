"""The config file's models: frozen pydantic sections, one per TOML table.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Self

import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bluegreen.domain.config_fields import (
    Address,
    AppName,
    Approval,
    Argv,
    FrontendUrl,
    GitRef,
    HostHeader,
    Ident,
    LocalPath,
    McpLevel,
    NodeName,
    NonNegativeInt,
    NonNegativeNumber,
    Port,
    PositiveInt,
    PositiveNumber,
    RemotePath,
    ServerName,
    Snippet,
    SshTarget,
)
from bluegreen.domain.validate import show
from bluegreen.errors import ConfigError

# Bounds the HAProxy host's read (every file, in one command) and a mistyped long list.
MAX_CONFIG_FILES: Final = 64


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SshSettings(_Model):
    """How to reach every host. Paths here are local and `~` is expanded."""

    known_hosts: LocalPath = Path("~/.ssh/known_hosts").expanduser()
    identity_file: LocalPath | None = None
    ssh_config: LocalPath | None = Path("~/.ssh/config").expanduser()
    use_agent: StrictBool = True
    connect_timeout_s: Annotated[PositiveNumber, Field(le=300)] = 10.0
    command_timeout_s: Annotated[PositiveNumber, Field(le=86400)] = 600.0  # a long build


MAX_HAPROXY_NODES: Final = 16
_SSH_TARGET: Final = TypeAdapter(SshTarget)


class HAProxyNode(_Model):
    """One HAProxy host of several that route the same apps (e.g. a VRRP pair)."""

    ssh: SshTarget


class HAProxySettings(_Model):
    """The HAProxy host(s): `ssh` names one, `[haproxy.nodes.<name>]` several, the first listed
    being the PRIMARY (it keeps the locks, the history and the approvals). Every other setting is
    shared by all nodes. Paths are remote (on those hosts), so `~` is not expanded."""

    ssh: SshTarget  # the PRIMARY's target: the first node's when `nodes` is given
    nodes: Annotated[dict[NodeName, HAProxyNode], Field(min_length=1)] = {}
    config_path: RemotePath = "/etc/haproxy/haproxy.cfg"
    # HAProxy's `-f` arguments, in order (files, or directories: their *.cfg files); None: just
    # config_path. Status compares them with the running HAProxy's own arguments.
    config_files: (
        Annotated[tuple[RemotePath, ...], Field(min_length=1, max_length=MAX_CONFIG_FILES)] | None
    ) = None
    reload: Argv = ("systemctl", "reload", "haproxy")
    check: Argv = ("haproxy", "-c", "-f")  # the cfg path to check is appended
    runtime_socket: RemotePath = "/run/haproxy/admin.sock"
    master_socket: RemotePath | None = None  # master CLI (`haproxy -S`), for `show proc`
    sudo: StrictBool = False
    work_dir: RemotePath = "/var/lib/bluegreen"
    cfg_backups: Annotated[PositiveInt, Field(le=1000)] = 10

    @model_validator(mode="before")
    @classmethod
    def _primary_from_nodes(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "nodes" not in data:
            return data
        if "ssh" in data:
            raise ValueError(
                "both haproxy.ssh and haproxy.nodes are given: use ssh for one node or "
                "[haproxy.nodes.<name>] tables for several, not both"
            )
        nodes = data["nodes"]
        first = next(iter(nodes.values()), None) if isinstance(nodes, dict) else None
        primary = first.get("ssh") if isinstance(first, dict) else None
        try:
            primary = _SSH_TARGET.validate_python(primary)
        except ValidationError:
            # Reported at its own key (nodes.<name>.ssh), which fails the whole config; the
            # stand-in only keeps a second error off `ssh`, a key the user did not write.
            primary = "unset"
        return {**data, "ssh": primary}

    @field_validator("nodes")
    @classmethod
    def _distinct_nodes(cls, nodes: dict[str, HAProxyNode]) -> dict[str, HAProxyNode]:
        if len(nodes) > MAX_HAPROXY_NODES:
            raise ValueError(f"at most {MAX_HAPROXY_NODES} nodes, got {len(nodes)}")
        owners: dict[str, str] = {}
        for name, node in nodes.items():
            if node.ssh in owners:
                raise ValueError(f"nodes {owners[node.ssh]} and {name} share ssh {node.ssh}")
            owners[node.ssh] = name
        return nodes

    @property
    def node_targets(self) -> dict[str, str]:
        """Every node, name -> ssh target, the PRIMARY first. A lone `ssh` is one node named
        after its host."""
        if self.nodes:
            return {name: node.ssh for name, node in self.nodes.items()}
        host = self.ssh.rsplit("@", 1)[-1]
        return {host.rsplit(":", 1)[0] if host.count(":") == 1 else host: self.ssh}

    @property
    def several_nodes(self) -> bool:
        return len(self.nodes) > 1

    @field_validator("config_files")
    @classmethod
    def _distinct_files(cls, paths: tuple[str, ...] | None) -> tuple[str, ...] | None:
        seen = [posixpath.normpath(p) for p in paths or ()]
        double = next((p for i, p in enumerate(seen) if p in seen[:i]), None)
        if double is not None:
            raise ValueError(f"{show(double)} is listed twice: HAProxy would load it twice")
        return paths

    @property
    def files(self) -> tuple[str, ...]:
        """What HAProxy loads (its `-f` arguments, in order): config_files, else config_path."""
        return self.config_files or (self.config_path,)


class HealthCheck(_Model):
    path: StrictStr = "/health"
    port: Port | None = None  # None: the port of each server's `address`
    expect_status: Annotated[int, Strict(), Field(ge=100, le=599)] = 200
    timeout_s: Annotated[PositiveNumber, Field(le=300)] = 5.0
    attempts: Annotated[PositiveInt, Field(le=1000)] = 10
    interval_s: Annotated[NonNegativeNumber, Field(le=600)] = 2.0

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(f"expected a URL path starting with '/', got {show(value)}")
        return value


POOL_MAX: Final = 32


@dataclass(frozen=True)
class Member:
    """One server of a colour as the engine reaches it: the colour's only server, or one of its
    pool. `server` is the HAProxy server name (always set in a pool)."""

    color: str
    ssh: str
    address: str
    server: str | None = None
    in_pool: bool = False

    @property
    def label(self) -> str:
        """How messages name it: `GREEN`, or `GREEN green1` in a pool."""
        return f"{self.color.upper()} {self.server}" if self.in_pool else self.color.upper()

    @property
    def host(self) -> str:
        """The host part of `address` (IPv6 keeps its brackets, ready for a URL)."""
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


class PoolServer(_Model):
    """One server of a colour's pool."""

    server: Ident  # its name in the colour's HAProxy backend
    ssh: SshTarget
    address: Address


class ServerConfig(_Model):
    """One colour: one server (`ssh` + `address`) or a `pool` of servers. The other keys are the
    colour's, shared by every server of a pool."""

    ssh: SshTarget | None = None
    address: Address | None = None
    pool: tuple[PoolServer, ...] | None = None  # 1 to POOL_MAX servers
    backend: Ident | None = None  # explicit HAProxy backend, when detection needs help
    server: Ident | None = None  # explicit HAProxy server name (one-server form)
    sudo: StrictBool = False
    # Where this host differs from the app's values (e.g. one process name per colour).
    app_dir: RemotePath | None = None
    branch: GitRef | None = None
    restart: Snippet | None = None
    log_file: RemotePath | None = None

    @model_validator(mode="after")
    def _one_server_or_pool(self) -> Self:
        if self.pool is None:
            missing = [key for key in ("ssh", "address") if getattr(self, key) is None]
            if missing:
                raise _key_errors([(key, "missing", None) for key in missing])
            return self
        if not 1 <= len(self.pool) <= POOL_MAX:
            raise _key_errors(
                [("pool", "value_error", f"needs 1 to {POOL_MAX} servers, got {len(self.pool)}")]
            )
        both = [key for key in ("ssh", "address", "server") if getattr(self, key) is not None]
        if both:
            keys = " and ".join(f"`{key}`" for key in both)
            raise _key_errors(
                [("pool", "value_error",
                  f"a colour has `ssh` + `address` (one server) or `pool`, never both: remove "
                  f"{keys} here (each pool entry has its own ssh, address and server)")]
            )  # fmt: skip
        return self

    def members(self, color: str) -> tuple[Member, ...]:
        """Every server of this colour, in config order."""
        if self.pool is None:
            assert self.ssh is not None and self.address is not None
            return (Member(color, self.ssh, self.address, self.server),)
        return tuple(Member(color, p.ssh, p.address, p.server, in_pool=True) for p in self.pool)


def _key_errors(problems: list[tuple[str, str, str | None]]) -> pydantic_core.ValidationError:
    """Problems at keys of the table being validated, each naming its own key path
    (`apps.web.servers.blue.ssh`)."""
    return pydantic_core.ValidationError.from_exception_data(
        "config",
        [
            {"type": kind, "loc": (key,), "input": None}
            if message is None
            else {"type": kind, "loc": (key,), "input": None, "ctx": {"error": ValueError(message)}}
            for key, kind, message in problems
        ],
    )


class AppConfig(_Model):
    state_file: RemotePath
    frontend: Ident
    # In a frontend shared by several apps: the ACL whose use_backend line decides this app's
    # LIVE, and the Host header(s) of its users (probes through the frontend send the first).
    rule: Ident | None = None
    hosts: tuple[HostHeader, ...] = ()
    # Where people reach that frontend (e.g. the HAProxy VIP): the preview commands status shows
    # use it; unset, the frontend's bind on the HAProxy host.
    frontend_url: FrontendUrl | None = None
    app_dir: RemotePath
    branch: GitRef = "main"
    build: Snippet | None = None
    restart: Snippet
    migrate: Snippet | None = None
    log_file: RemotePath | None = None
    approval: Approval = "auto"
    mcp: McpLevel = "full"
    allow_unapproved: StrictBool = False
    allow_emergency_without_approval: StrictBool = False
    min_free_disk_mb: Annotated[NonNegativeInt, Field(le=100_000_000)] = 500
    backups_kept: Annotated[NonNegativeInt, Field(le=1000)] = 5
    drain_s: Annotated[NonNegativeNumber, Field(le=600)] = 2.0
    watch_s: Annotated[NonNegativeNumber, Field(le=3600)] = 10.0
    auto_rollback: StrictBool = True
    # How long a switch confirmation token stays valid.
    token_ttl_s: Annotated[PositiveNumber, Field(le=86400)] = 600.0
    # How many servers of the target colour must be healthy for a switch (None: every one).
    min_healthy: PositiveInt | None = None
    health: HealthCheck = HealthCheck()
    servers: dict[ServerName, ServerConfig]

    @field_validator("servers")
    @classmethod
    def _two_distinct_servers(cls, servers: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        if len(servers) != 2:
            names = ", ".join(servers) or "none"
            raise ValueError(f"expected exactly two servers (e.g. blue and green), got {names}")
        members = [m for color, server in servers.items() for m in server.members(color)]
        for key, what in (("address", "address"), ("server", "HAProxy server name")):
            seen: dict[str, Member] = {}
            for member in members:
                value = getattr(member, key)
                if value is None:
                    continue
                if value in seen:
                    first = seen[value]
                    if not (first.in_pool or member.in_pool):  # the one-server form's words
                        raise ValueError(f"both servers have {what} {value}: each needs its own")
                    raise ValueError(
                        f"{first.label} and {member.label} both have {what} {value}: each "
                        "server needs its own"
                    )
                seen[value] = member
        return servers

    @model_validator(mode="after")
    def _min_healthy_fits(self) -> Self:
        if self.min_healthy is None:
            return self
        for color, server in self.servers.items():
            size = len(server.members(color))
            if self.min_healthy > size:
                raise _key_errors(
                    [("min_healthy", "value_error",
                      f"is {self.min_healthy} but {color.upper()} has {size} server(s): at most "
                      f"{size}")]
                )  # fmt: skip
        return self

    @property
    def server_names(self) -> tuple[str, str]:
        first, second = self.servers
        return first, second

    def server(self, name: str) -> ServerConfig:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers)
            raise ConfigError(f"no server {show(name)} in this app (servers: {known})") from None

    def other(self, name: str) -> str:
        """The name of the other server of the pair."""
        self.server(name)
        first, second = self.server_names
        return second if name == first else first

    def members(self, name: str) -> tuple[Member, ...]:
        """Every server of colour `name` (one, or its pool)."""
        return self.server(name).members(name)

    def is_pool(self, name: str) -> bool:
        return self.server(name).pool is not None

    def health_port(self, member: Member) -> int:
        """The port the health probe of `member` uses."""
        return self.health.port or member.port

    def on(self, name: str) -> AppConfig:
        """The app as it runs on server `name`: that server's own app_dir, branch, restart and
        log_file where it sets them, the app's values elsewhere."""
        server = self.server(name)
        own = {key: getattr(server, key) for key in _PER_SERVER if getattr(server, key) is not None}
        return self.model_copy(update=own) if own else self

    @property
    def host_header(self) -> str | None:
        """The Host header a request through the frontend carries to reach this app."""
        return self.hosts[0] if self.hosts else None


_PER_SERVER: Final = ("app_dir", "branch", "restart", "log_file")


class Config(_Model):
    ssh: SshSettings = SshSettings()
    haproxy: HAProxySettings
    apps: dict[AppName, AppConfig] = Field(min_length=1)

    @field_validator("apps")
    @classmethod
    def _own_state_files(cls, apps: dict[str, AppConfig]) -> dict[str, AppConfig]:
        owners: dict[str, str] = {}
        for name, app in apps.items():
            if app.state_file in owners:
                raise ValueError(
                    f"apps {owners[app.state_file]} and {name} share state_file "
                    f"{app.state_file}: each app needs its own"
                )
            owners[app.state_file] = name
        return apps

    def app(self, name: str) -> AppConfig:
        try:
            return self.apps[name]
        except KeyError:
            known = ", ".join(sorted(self.apps))
            raise ConfigError(
                f"unknown app {show(name)}; configured apps: {known}",
                hint="pass one of those names, or add the app under [apps.<name>]",
            ) from None
