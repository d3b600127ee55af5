"""Strict host-key checking against OpenSSH known_hosts files.

Our own small reader instead of paramiko.HostKeys, which has no wildcard or negated patterns and
chokes on `@revoked` / `@cert-authority` lines. Supported: plain, comma-separated, wildcard (`*`,
`?`), negated (`!`) and hashed (`|1|salt|hash`) host names, the `[host]:port` form, `@revoked`.
`@cert-authority` lines are skipped (paramiko cannot verify host certificates), so a host trusted
only through a CA is reported as unknown.

An unknown key, a changed key and a revoked key are all errors: nothing is ever added or accepted
silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import paramiko
from paramiko.pkey import UnknownKeyType

from bluegreen.errors import HostKeyError
from bluegreen.transport.ssh_config import Endpoint

log = logging.getLogger("bluegreen.transport")

_RSA_ALGORITHMS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


@dataclass(frozen=True)
class KnownHost:
    file: str
    line: int
    patterns: tuple[str, ...]
    key: paramiko.PKey
    revoked: bool = False

    def matches(self, name: str) -> bool:
        name = name.lower()
        positive = False
        for pattern in self.patterns:
            if pattern.startswith("|1|"):
                positive = positive or _hashed_match(pattern, name)
            elif pattern.startswith("!"):
                if _glob_match(pattern[1:], name):
                    return False  # a negated match vetoes the whole line
            elif _glob_match(pattern, name):
                positive = True
        return positive


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's `SHA256:...` fingerprint (what `ssh-keygen -lf` prints)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load(files: Iterable[str]) -> list[KnownHost]:
    """Entries of every readable file; missing files are skipped, bad lines logged and skipped."""
    entries: list[KnownHost] = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot read known_hosts file %s: %s", path, exc)
            continue
        for number, line in enumerate(lines, 1):
            entry = _parse_line(path, number, line)
            if entry is not None:
                entries.append(entry)
    return entries


def _parse_line(path: str, number: int, line: str) -> KnownHost | None:
    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = fields[0] if fields[0].startswith("@") else None
    if marker is not None:
        fields = fields[1:]
    if marker == "@cert-authority" or len(fields) < 3:
        return None
    names, key_type, blob = fields[:3]
    try:
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError, paramiko.SSHException, UnknownKeyType) as exc:
        log.debug("skipping %s:%d (%s key): %s", path, number, key_type, exc)
        return None
    return KnownHost(path, number, tuple(names.split(",")), key, revoked=marker == "@revoked")


def _glob_match(pattern: str, name: str) -> bool:
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()
    )
    return re.fullmatch(regex, name) is not None


def _hashed_match(entry: str, name: str) -> bool:
    try:
        _, _, salt, digest = entry.split("|", 3)
        expected = base64.b64decode(digest)
        mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(mac, expected)


def preferred_algorithms(
    entries: Sequence[KnownHost], name: str, offered: Sequence[str]
) -> list[str]:
    """`offered` reordered so the key types known for `name` come first (as OpenSSH does), so
    the server shows us the key we can check rather than another one of its keys."""
    known: set[str] = set()
    for entry in entries:
        if not entry.revoked and entry.matches(name):
            key_type = entry.key.get_name()
            known.update(_RSA_ALGORITHMS if key_type == "ssh-rsa" else (key_type,))
    return [a for a in offered if a in known] + [a for a in offered if a not in known]


def verify(endpoint: Endpoint, key: paramiko.PKey, entries: Sequence[KnownHost]) -> None:
    """Return when known_hosts vouches for `key`; raise HostKeyError otherwise."""
    name = endpoint.known_hosts_name
    matching = [e for e in entries if e.matches(name)]
    blob = key.asbytes()
    offered = f"{key.get_name()} key {fingerprint(key)}"
    for entry in matching:
        if entry.revoked and entry.key.asbytes() == blob:
            raise HostKeyError(
                f"{endpoint.target} ({endpoint.address}) offered a REVOKED host key: {offered} "
                f"(marked @revoked in {entry.file}:{entry.line})",
                host=endpoint.target,
                hint="do not connect; find out why the host presents a revoked key",
            )
    trusted = [e for e in matching if not e.revoked]
    if any(e.key.asbytes() == blob for e in trusted):
        return
    same_type = [e for e in trusted if e.key.get_name() == key.get_name()]
    if same_type:
        old = same_type[0]
        raise HostKeyError(
            f"host key for {endpoint.target} ({endpoint.address}) has CHANGED: "
            f"{old.file}:{old.line} expects {fingerprint(old.key)}, the host offered {offered}. "
            "This is either a reinstalled host or someone intercepting the connection",
            host=endpoint.target,
            hint=(
                "verify the new fingerprint out of band (on the host: ssh-keygen -lf "
                f"/etc/ssh/ssh_host_*_key.pub), then: ssh-keygen -R '{name}' -f {old.file} "
                f"&& {_keyscan(endpoint, key)} >> {old.file}"
            ),
        )
    other = sorted({e.key.get_name() for e in trusted})
    also = f"; known_hosts only has {', '.join(other)} keys for it" if other else ""
    files = endpoint.known_hosts_files
    target_file = files[0] if files else "~/.ssh/known_hosts"
    raise HostKeyError(
        f"host key for {endpoint.target} ({endpoint.address}) is not known: the host offered "
        f"{offered}{also}",
        host=endpoint.target,
        hint=(
            "verify that fingerprint out of band (on the host: ssh-keygen -lf "
            f"/etc/ssh/ssh_host_*_key.pub), then: {_keyscan(endpoint, key)} >> {target_file}"
        ),
    )


def _keyscan(endpoint: Endpoint, key: paramiko.PKey) -> str:
    key_type = key.get_name()
    short = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}.get(key_type, key_type)
    short = "ecdsa" if short.startswith("ecdsa-") else short
    return f"ssh-keyscan -p {endpoint.port} -t {short} {endpoint.hostname}"
