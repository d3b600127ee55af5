"""The config file's field types: strict scalars with bounds, and the checked strings.

Each type validates one kind of value (an ssh target, a remote path, an HAProxy name...) and says
what it expects in words the config errors (config_errors.py) pass on to the user unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StrictStr

from bluegreen.domain.validate import NAME_RULE, show, validate_name, validate_ref
from bluegreen.errors import BlueGreenError

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
# Where people reach a frontend: scheme, host (DNS name, IPv4 or [IPv6]) and optional port.
_FRONTEND_URL = re.compile(
    r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?/?"
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


def _check_frontend_url(value: str) -> str:
    match = _FRONTEND_URL.fullmatch(value)
    if not match or not _port_ok(match.group("port")):
        raise ValueError(
            f"expected http://host[:port] or https://host[:port] (no path), got {show(value)}"
        )
    return value.rstrip("/")


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
        raise ValueError(f"expected a path string, got {value_kind(value)}")
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


_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _check_node_name(value: str) -> str:
    if not _NODE_NAME.fullmatch(value):
        raise ValueError(
            "expected a node name (letters, digits, '-', '_', '.', starting with a letter or "
            f"digit, at most 63 characters), got {show(value)}"
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
NodeName = Annotated[StrictStr, AfterValidator(_check_node_name)]
HostHeader = Annotated[StrictStr, AfterValidator(_check_host_header)]
FrontendUrl = Annotated[StrictStr, AfterValidator(_check_frontend_url)]
Snippet = Annotated[StrictStr, AfterValidator(_check_snippet)]
Argv = Annotated[tuple[StrictStr, ...], Field(min_length=1), AfterValidator(_check_argv)]
AppName = Annotated[StrictStr, _name_check("app name")]
ServerName = Annotated[StrictStr, _name_check("server name")]
GitRef = Annotated[StrictStr, AfterValidator(_check_ref)]

Approval = Literal["auto", "elicit", "token", "operator"]
# What MCP clients may do with an app (domain/mcp_policy); people at the CLI are not bound by it.
McpLevel = Literal["read-only", "deploy", "full"]


def value_kind(value: object) -> str:
    """A TOML value as a config error names it: its kind, or the string itself."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    return show(value)
