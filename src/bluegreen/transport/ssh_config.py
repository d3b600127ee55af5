"""Turn a config's ssh target string into a concrete endpoint, the way OpenSSH would.

A target is an alias from ~/.ssh/config, `host`, `user@host`, `user@host:port`, `[v6addr]:port` or a
bare IPv6 address. Values written in the target win over ~/.ssh/config (like `ssh -p`/`user@` on
the command line); HostName, User, Port, IdentityFile, IdentitiesOnly, ProxyJump, HostKeyAlias,
UserKnownHostsFile and GlobalKnownHostsFile are honoured. paramiko's SSHConfig has no `Include`,
so includes are expanded here before parsing.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
from dataclasses import dataclass, replace
from typing import cast

import paramiko

from bluegreen.errors import ConfigError

DEFAULT_PORT = 22
MAX_JUMPS = 8
_INCLUDE = re.compile(r"^\s*include(?:\s*=\s*|\s+)(.+)$", re.IGNORECASE)
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


@dataclass(frozen=True)
class SshDestination:
    """An ssh target string (config's `ssh = ...`) split into its parts; None means "not
    written, ask ~/.ssh/config"."""

    host: str
    user: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class Endpoint:
    """Everything needed to open one SSH connection (and the hop in front of it, if any)."""

    target: str  # as written in the config, used to name the host in errors
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    known_hosts_files: tuple[str, ...] = ()
    host_key_alias: str | None = None
    via: Endpoint | None = None  # the jump host this endpoint is reached through

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH looks up in known_hosts: `host`, or `[host]:port` off port 22."""
        if self.host_key_alias:
            return self.host_key_alias
        if self.port == DEFAULT_PORT:
            return self.hostname
        return f"[{self.hostname}]:{self.port}"

    @property
    def address(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.user}@{host}:{self.port}"

    def chain(self) -> list[Endpoint]:
        """Hops in connection order, ending with this endpoint."""
        hops: list[Endpoint] = []
        node: Endpoint | None = self
        while node is not None:
            hops.append(node)
            node = node.via
        return hops[::-1]


def parse_target(text: str) -> SshDestination:
    """Split `user@host:port` and friends. Raises ConfigError for malformed targets."""
    raw = text.strip()
    if raw.startswith("ssh://"):
        raw = raw[len("ssh://") :].rstrip("/")
    if not raw or any(c.isspace() for c in raw):
        raise ConfigError(
            f"invalid ssh target {text!r}", hint="write host, user@host or user@host:port"
        )
    user: str | None = None
    if "@" in raw:
        user, _, raw = raw.rpartition("@")
        if not user:
            raise ConfigError(f"invalid ssh target {text!r}: empty user name")
    port_text: str | None = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"invalid ssh target {text!r}", hint="write IPv6 as [addr]:port")
        port_text = rest[1:] if rest else None
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    else:
        host = raw  # a name, or a bare IPv6 address (more than one colon, no port)
    if not host:
        raise ConfigError(f"invalid ssh target {text!r}: empty host name")
    port = _parse_port(port_text, text) if port_text is not None else None
    return SshDestination(host=host, user=user, port=port)


def _parse_port(value: str, where: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"invalid port {value!r} in ssh target {where!r}")
    return int(value)


def load_ssh_config(path: str | None) -> paramiko.SSHConfig:
    """Parse an ssh_config file (Includes expanded); an empty config when path is None."""
    if path is None:
        return paramiko.SSHConfig()
    try:
        text = _expand_includes(os.path.expanduser(path), depth=0)
        return paramiko.SSHConfig.from_text(text)
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigError(
            f"cannot read ssh config {path}: {exc}",
            hint="fix the file or point ssh_config elsewhere",
        ) from exc


def default_ssh_config_path() -> str | None:
    path = os.path.expanduser("~/.ssh/config")
    return path if os.path.isfile(path) else None


def _expand_includes(path: str, depth: int) -> str:
    if depth > 16:
        raise ConfigError(f"ssh config Include nesting too deep at {path}")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    out: list[str] = []
    for line in lines:
        match = _INCLUDE.match(line)
        if not match:
            out.append(line)
            continue
        for pattern in match.group(1).split():
            pattern = os.path.expanduser(pattern.strip('"'))
            if not os.path.isabs(pattern):  # relative includes are relative to ~/.ssh
                pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
            for included in sorted(glob.glob(pattern)):
                if os.path.isfile(included):
                    out.append(_expand_includes(included, depth + 1))
    return "\n".join(out) + "\n"


def resolve(
    target: str,
    config: paramiko.SSHConfig,
    *,
    identity_file: str | None = None,
    known_hosts: str | None = None,
) -> Endpoint:
    """Resolve a target (and its ProxyJump chain) against an ssh config."""
    return _resolve(target, config, identity_file, known_hosts, depth=0, honour_jump=True)


def _resolve(
    target: str,
    config: paramiko.SSHConfig,
    identity_file: str | None,
    known_hosts: str | None,
    *,
    depth: int,
    honour_jump: bool,
) -> Endpoint:
    if depth > MAX_JUMPS:
        raise ConfigError(
            f"ProxyJump chain for {target!r} is longer than {MAX_JUMPS} hops",
            hint="check ~/.ssh/config for a ProxyJump loop",
        )
    parts = parse_target(target)
    options = config.lookup(parts.host)
    user = parts.user or options.get("user") or getpass.getuser()
    port = parts.port or _parse_port(options.get("port", str(DEFAULT_PORT)), target)
    endpoint = Endpoint(
        target=target,
        hostname=options.get("hostname", parts.host),
        port=port,
        user=user,
        identity_files=_identity_files(options, identity_file),
        identities_only=options.get("identitiesonly", "no").lower() == "yes",
        known_hosts_files=_known_hosts_files(options, known_hosts),
        host_key_alias=options.get("hostkeyalias"),
    )
    jump = options.get("proxyjump") if honour_jump else None
    if jump is None or jump.lower() == "none":
        if options.get("proxycommand"):
            raise ConfigError(
                f"ssh config gives {target!r} a ProxyCommand, which bluegreen does not run",
                hint="use ProxyJump instead, or add 'ProxyCommand none' for this host",
            )
        return endpoint
    # `ProxyJump a,b`: a is reached with its own config (and its own ProxyJump), b through a,
    # the target through b; like OpenSSH, b's own ProxyJump is overridden by the chain.
    via: Endpoint | None = None
    for index, hop in enumerate(h.strip() for h in jump.split(",")):
        if not hop:
            raise ConfigError(f"empty hop in ProxyJump {jump!r} for {target!r}")
        resolved = _resolve(
            hop,
            config,
            identity_file,
            known_hosts,
            depth=depth + 1 + index,
            honour_jump=via is None,
        )
        via = resolved if via is None else replace(resolved, via=via)
    return replace(endpoint, via=via)


def _identity_files(options: paramiko.SSHConfigDict, explicit: str | None) -> tuple[str, ...]:
    configured = cast(list[str], options.get("identityfile") or [])
    # OpenSSH only falls back to the default key names when nothing names a key.
    files = [explicit] if explicit else []
    files += configured or ([] if explicit else list(DEFAULT_IDENTITIES))
    seen: dict[str, None] = {os.path.expanduser(f): None for f in files}
    return tuple(seen)


def _known_hosts_files(options: paramiko.SSHConfigDict, explicit: str | None) -> tuple[str, ...]:
    if explicit:
        return (os.path.expanduser(explicit),)
    user = options.get("userknownhostsfile")
    system = options.get("globalknownhostsfile")
    files = (user.split() if user else list(DEFAULT_USER_KNOWN_HOSTS)) + (
        system.split() if system else list(DEFAULT_GLOBAL_KNOWN_HOSTS)
    )
    return tuple(os.path.expanduser(f) for f in files if f.lower() != "none")
