"""Public-key authentication: key files and ssh-agent, never passwords.

Order: the configured identity files that load without a passphrase, then agent keys (those
matching a configured identity first). With `IdentitiesOnly yes` only agent keys matching a
configured identity are offered, which keeps servers' MaxAuthTries from being used up.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress

import paramiko
from paramiko.pkey import PublicBlob, UnknownKeyType

from bluegreen.errors import AuthenticationError
from bluegreen.transport.ssh_config import DEFAULT_IDENTITIES, Endpoint

log = logging.getLogger("bluegreen.transport")


def authenticate(transport: paramiko.Transport, endpoint: Endpoint, *, use_agent: bool) -> None:
    """Authenticate `transport` as endpoint.user or raise AuthenticationError."""
    notes: list[str] = []
    candidates: list[tuple[str, paramiko.PKey]] = []
    wanted: set[bytes] = set()  # public blobs of configured identities, to pick agent keys
    for path in endpoint.identity_files:
        key = _load_identity(path, wanted, notes)
        if key is not None:
            candidates.append((path, key))
    agent = _open_agent(notes) if use_agent else None
    try:
        if agent is not None:
            agent_keys = list(agent.get_keys())
            preferred = [k for k in agent_keys if k.asbytes() in wanted]
            others = (
                [] if endpoint.identities_only else [k for k in agent_keys if k not in preferred]
            )
            candidates += [(f"agent key {k.fingerprint}", k) for k in preferred + others]
        _try_keys(transport, endpoint, candidates, notes)
    finally:
        if agent is not None:
            agent.close()


def _try_keys(
    transport: paramiko.Transport,
    endpoint: Endpoint,
    candidates: list[tuple[str, paramiko.PKey]],
    notes: list[str],
) -> None:
    tried: list[str] = []
    for label, key in candidates:
        try:
            remaining = transport.auth_publickey(endpoint.user, key)
        except paramiko.BadAuthenticationType as exc:
            raise AuthenticationError(
                f"{endpoint.target} ({endpoint.address}) does not accept public-key "
                f"authentication (it allows: {', '.join(exc.allowed_types) or 'nothing'})",
                host=endpoint.target,
                hint="bluegreen only uses keys; enable PubkeyAuthentication for this user",
            ) from exc
        except paramiko.AuthenticationException:
            tried.append(label)
            continue
        if transport.is_authenticated():
            log.debug("%s: authenticated as %s with %s", endpoint.target, endpoint.user, label)
            return
        raise AuthenticationError(
            f"{endpoint.target} asks for a second authentication step ({', '.join(remaining)})",
            host=endpoint.target,
            hint="bluegreen cannot answer interactive prompts; use a key-only account",
        )
    what = f"tried {', '.join(tried)}" if tried else "no usable key was found"
    raise AuthenticationError(
        f"{endpoint.target}: no key was accepted for {endpoint.address} ({what})",
        host=endpoint.target,
        hint="; ".join(
            [
                *notes,
                "load the right key into ssh-agent (ssh-add) or name it with IdentityFile in "
                "~/.ssh/config, and check the user and the host's authorized_keys",
            ]
        ),
    )


def _load_identity(path: str, wanted: set[bytes], notes: list[str]) -> paramiko.PKey | None:
    if not os.path.exists(path):
        if path not in {os.path.expanduser(p) for p in DEFAULT_IDENTITIES}:
            notes.append(f"identity file {path} does not exist")
        return None
    try:
        key = paramiko.PKey.from_path(path)
    except (TypeError, paramiko.PasswordRequiredException):
        # Encrypted: usable only through the agent, matched by its .pub file.
        with suppress(OSError, ValueError):
            wanted.add(PublicBlob.from_file(path + ".pub").key_blob)
        notes.append(f"{path} is passphrase-protected: add it to ssh-agent with `ssh-add {path}`")
        return None
    except (OSError, ValueError, UnknownKeyType, paramiko.SSHException) as exc:
        notes.append(f"cannot load identity file {path}: {exc}")
        return None
    wanted.add(key.asbytes())
    return key


def _open_agent(notes: list[str]) -> paramiko.Agent | None:
    try:
        return paramiko.Agent()
    except paramiko.SSHException as exc:
        notes.append(f"ssh-agent unusable: {exc}")
        return None
