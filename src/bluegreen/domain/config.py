"""The bluegreen config file: TOML -> frozen pydantic models, and the loader that finds it.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
Scalars are strict (TOML has real types: `port = "3001"` is refused, not coerced). Validation
problems are gathered into one ConfigError that names each key path and what it expects; pydantic's
own wording never reaches the user.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import pydantic
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    field_validator,
)

from bluegreen.domain.validate import NAME_RULE, show, validate_name, validate_ref
from bluegreen.errors import BlueGreenError, ConfigError

ENV_VAR: Final = "BLUEGREEN_CONFIG"


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/bluegreen/config.toml`, else `~/.config/bluegreen/config.toml`.

    XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path("~/.config").expanduser()
    return base / "bluegreen" / "config.toml"


DEFAULT_CONFIG_PATH: Final[Path] = default_config_path()

# ---- field types ---------------------------------------------------------------------------

# Strict: TOML has real types, so "10" for a number is a mistake, not something to coerce.
# (A strict float still accepts a TOML integer.) Numbers are finite (TOML has `inf` and `nan`),
# and each field also sets a maximum: `drain_s = 1e300` overflowed after traffic moved,
# `watch_s = inf` held the lock forever.
PositiveInt = Annotated[int, Strict(), Field(ge=1)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
PositiveNumber = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegativeNumber = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]

_SSH_TARGET = re.compile(
    r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?"  # user@ (optional)
    r"(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])"  # alias, host, IPv4 or [IPv6]
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_ADDRESS = re.compile(
    r"(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])"  # host, IPv4 or [IPv6]
    r":(?P<port>[0-9]{1,5})"
)
_HAPROXY_IDENT = re.compile(r"[A-Za-z0-9_.:-]+")  # HAProxy's own rule for proxy/server names
# A Host header value: a DNS name or IPv4, with an optional port (sent as a header, never resolved).
_HOST_HEADER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")


def _check_ssh_target(value: str) -> str:
    match = _SSH_TARGET.fullmatch(value)
    if not match or not _port_ok(match.group("port")):
        raise ValueError(f"expected an ssh alias or user@host[:port], got {show(value)}")
    return value


def _check_address(value: str) -> str:
    match = _ADDRESS.fullmatch(value)
    if not match or not _port_ok(match.group("port")):
        raise ValueError(f"expected host:port as HAProxy sees it (port 1-65535), got {show(value)}")
    return value


def _port_ok(port: str | None) -> bool:
    return port is None or 1 <= int(port) <= 65535


def _check_remote_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected an absolute path (starting with '/'), got {show(value)}")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError(f"path contains control characters: {show(value)}")
    if ".." in value.split("/"):
        raise ValueError(f"path must not contain '..' components: {show(value)}")
    return value


def _expand_local_path(value: object) -> Path:
    """Local files (ssh section): expand `~`, then insist on an absolute path."""
    if not isinstance(value, str):
        raise ValueError(f"expected a path string, got {_kind(value)}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ValueError(f"expected an absolute path or one starting with '~', got {show(value)}")
    return path


def _check_ident(value: str) -> str:
    if not _HAPROXY_IDENT.fullmatch(value):
        raise ValueError(
            f"expected an HAProxy name (letters, digits, '_', '.', ':', '-'), got {show(value)}"
        )
    return value


def _check_host_header(value: str) -> str:
    if not _HOST_HEADER.fullmatch(value):
        raise ValueError(f"expected a host name as the Host header carries it, got {show(value)}")
    return value


def _check_snippet(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a shell command, got an empty string")
    if "\x00" in value:
        raise ValueError("shell command contains a NUL byte")
    return value


def _check_argv(value: tuple[str, ...]) -> tuple[str, ...]:
    if any(not word for word in value):
        raise ValueError("argv words must not be empty strings")
    return value


def _name_check(what: str) -> AfterValidator:
    def check(value: str) -> str:
        try:
            return validate_name(value, what)
        except BlueGreenError as exc:
            raise ValueError(f"{exc.message} ({NAME_RULE})") from None

    return AfterValidator(check)


def _check_ref(value: str) -> str:
    try:
        return validate_ref(value)
    except BlueGreenError as exc:
        raise ValueError(exc.message) from None


SshTarget = Annotated[StrictStr, AfterValidator(_check_ssh_target)]
Address = Annotated[StrictStr, AfterValidator(_check_address)]
RemotePath = Annotated[StrictStr, AfterValidator(_check_remote_path)]
LocalPath = Annotated[Path, BeforeValidator(_expand_local_path)]
Ident = Annotated[StrictStr, AfterValidator(_check_ident)]
HostHeader = Annotated[StrictStr, AfterValidator(_check_host_header)]
Snippet = Annotated[StrictStr, AfterValidator(_check_snippet)]
Argv = Annotated[tuple[StrictStr, ...], Field(min_length=1), AfterValidator(_check_argv)]
AppName = Annotated[StrictStr, _name_check("app name")]
ServerName = Annotated[StrictStr, _name_check("server name")]
GitRef = Annotated[StrictStr, AfterValidator(_check_ref)]

Approval = Literal["auto", "elicit", "token", "operator"]
# What MCP clients may do with an app (domain/mcp_policy); people at the CLI are not bound by it.
McpLevel = Literal["read-only", "deploy", "full"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- sections ------------------------------------------------------------------------------


class SshSettings(_Model):
    """How to reach every host. Paths here are local and `~` is expanded."""

    known_hosts: LocalPath = Path("~/.ssh/known_hosts").expanduser()
    identity_file: LocalPath | None = None
    ssh_config: LocalPath | None = Path("~/.ssh/config").expanduser()
    use_agent: StrictBool = True
    connect_timeout_s: Annotated[PositiveNumber, Field(le=300)] = 10.0
    command_timeout_s: Annotated[PositiveNumber, Field(le=86400)] = 600.0  # a long build


class HAProxySettings(_Model):
    """The HAProxy host. Paths are remote (on that host), so `~` is not expanded."""

    ssh: SshTarget
    config_path: RemotePath = "/etc/haproxy/haproxy.cfg"
    reload: Argv = ("systemctl", "reload", "haproxy")
    check: Argv = ("haproxy", "-c", "-f")  # the cfg path to check is appended
    runtime_socket: RemotePath = "/run/haproxy/admin.sock"
    master_socket: RemotePath | None = None  # master CLI (`haproxy -S`), for `show proc`
    sudo: StrictBool = False
    work_dir: RemotePath = "/var/lib/bluegreen"
    cfg_backups: Annotated[PositiveInt, Field(le=1000)] = 10


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


class ServerConfig(_Model):
    ssh: SshTarget
    address: Address
    backend: Ident | None = None  # explicit HAProxy backend, when detection needs help
    server: Ident | None = None  # explicit HAProxy server name
    sudo: StrictBool = False
    # Where this host differs from the app's values (e.g. one process name per colour).
    app_dir: RemotePath | None = None
    branch: GitRef | None = None
    restart: Snippet | None = None
    log_file: RemotePath | None = None

    @property
    def host(self) -> str:
        """The host part of `address` (IPv6 keeps its brackets, ready for a URL)."""
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


class AppConfig(_Model):
    state_file: RemotePath
    frontend: Ident
    # In a frontend shared by several apps: the ACL whose use_backend line decides this app's
    # LIVE, and the Host header(s) of its users (probes through the frontend send the first).
    rule: Ident | None = None
    hosts: tuple[HostHeader, ...] = ()
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
    health: HealthCheck = HealthCheck()
    servers: dict[ServerName, ServerConfig]

    @field_validator("servers")
    @classmethod
    def _two_distinct_servers(cls, servers: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        if len(servers) != 2:
            names = ", ".join(servers) or "none"
            raise ValueError(f"expected exactly two servers (e.g. blue and green), got {names}")
        first, second = servers.values()
        if first.address == second.address:
            raise ValueError(f"both servers have address {first.address}: each needs its own")
        return servers

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

    def health_port(self, name: str) -> int:
        return self.health.port or self.server(name).port

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


# ---- loading -------------------------------------------------------------------------------


def load_config(path: str | None = None) -> Config:
    """Find, read and validate the config: explicit path, then $BLUEGREEN_CONFIG, then default."""
    resolved, origin = resolve_config_path(path)
    if not resolved.is_file():
        what = "is not a file" if resolved.exists() else "does not exist"
        raise ConfigError(
            f"config file {resolved} ({origin}) {what}",
            hint=f"pass --config PATH, set {ENV_VAR}, or create {default_config_path()}",
        )
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {resolved}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {resolved} is not UTF-8 (byte {exc.start})") from None
    return parse_config(text, source=str(resolved))


def resolve_config_path(path: str | None, env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """Where the config is, and a few words on how that was decided (for error messages)."""
    env = os.environ if env is None else env
    if path:
        return Path(path).expanduser(), "given explicitly"
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR]).expanduser(), f"from ${ENV_VAR}"
    return default_config_path(env), f"the default; ${ENV_VAR} is not set"


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
    return config_from_dict(data, source)


def config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = describe_errors(exc)
    noun = "problem" if len(problems) == 1 else "problems"
    lines = "\n".join(f"  - {p}" for p in problems)
    raise ConfigError(f"invalid config {source}: {len(problems)} {noun}:\n{lines}")


# ---- pydantic errors -> "key.path: what is expected" ---------------------------------------

_TYPE_WORDS = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "path_type": "expected a path string",
}


def describe_errors(exc: pydantic.ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        where = key_path(loc) or "(top level)"
        line = f"{where}: {_describe(error, loc)}"
        if line not in lines:
            lines.append(line)
    return lines


def key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            word = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{word}" if out else word
    return out


def _describe(error: Any, loc: tuple[int | str, ...]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, got {_kind(value)}"
    if kind == "finite_number":
        return f"must be a finite number{_got(value)}{_allowed(loc)}"
    if kind == "greater_than":
        return f"must be greater than {_num(ctx['gt'])}{_got(value)}{_allowed(loc)}"
    if kind == "greater_than_equal":
        return f"must be at least {_num(ctx['ge'])}{_got(value)}{_allowed(loc)}"
    if kind == "less_than_equal":
        return f"must be at most {_num(ctx['le'])}{_got(value)}{_allowed(loc)}"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"needs at least {ctx.get('min_length')} entries"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}{_got(value)}"
    return f"{error['msg']}{_got(value)}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{guess}; expected one of: {', '.join(known)}"


def _allowed(loc: tuple[int | str, ...]) -> str:
    """`; allowed: 0 to 600`, from the bounds the field declares (empty when it has none)."""
    model = _model_at(loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model and loc else None
    if field is None:
        return ""
    bounds = {k: getattr(m, k) for m in field.metadata for k in ("gt", "ge", "le") if hasattr(m, k)}
    if "le" not in bounds:
        return ""
    low = f"{_num(bounds['ge'])}" if "ge" in bounds else f"above {_num(bounds.get('gt', 0))} up"
    return f"; allowed: {low} to {_num(bounds['le'])}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Walk the model tree along a key path, to list the keys allowed where a typo was found."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    return annotation


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    return show(value)


def _got(value: object) -> str:
    plain = isinstance(value, int | float) and not isinstance(value, bool)
    return f" (got {value if plain else _kind(value)})"


def _num(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_VAR",
    "AppConfig",
    "Config",
    "HAProxySettings",
    "HealthCheck",
    "ServerConfig",
    "SshSettings",
    "config_from_dict",
    "default_config_path",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
