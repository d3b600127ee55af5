"""Switch approval as data: plan hashes and confirmation tokens.

A token is bound to the plan hash, which covers the current haproxy.cfg and state file bytes, so
a token approved for one situation can never execute another. Tokens live on the HAProxy host
(shared by every tool instance and by `bluegreen approve`); using one is an atomic `mkdir`, so a
replay is refused even when two callers race.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from bluegreen.domain.command import Command
from bluegreen.errors import ValidationError

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CONSUME = 'mkdir -- "$1" 2>/dev/null'
_APPROVE = 'mkdir -- "$1" 2>/dev/null && cat > "$1/by"'


def plan_hash(app: str, from_live: str, to_live: str, emergency: bool, cfg: bytes,
              state: bytes | None) -> str:  # fmt: skip
    digest = hashlib.sha256()
    for part in (app, from_live, to_live, "emergency" if emergency else "normal"):
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(cfg).digest())
    digest.update(hashlib.sha256(state or b"<none>").digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    token: str
    app: str
    plan_hash: str
    mode: str  # "token" or "operator"
    created: str
    expires: str
    from_live: str
    to_live: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode() + b"\n"

    def expired(self, now: datetime) -> bool:
        return now >= datetime.fromisoformat(self.expires.replace("Z", "+00:00"))


def new_token(app: str, hash_: str, mode: str, now: datetime, ttl_s: float, from_live: str,
              to_live: str) -> TokenRecord:  # fmt: skip
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return TokenRecord(
        token=secrets.token_urlsafe(18),
        app=app,
        plan_hash=hash_,
        mode=mode,
        created=now.strftime(fmt),
        expires=(now + timedelta(seconds=ttl_s)).strftime(fmt),
        from_live=from_live,
        to_live=to_live,
    )


def parse_token_record(raw: bytes | None) -> TokenRecord | None:
    if raw is None:
        return None
    try:
        return TokenRecord(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def validate_token(token: object) -> str:
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ValidationError(
            "confirmToken is not a token this tool issued (16-64 of A-Z a-z 0-9 _ -)",
            hint="call switch_traffic without confirmToken to get a fresh plan and token",
        )
    return token


def token_dir(work_dir: str) -> str:
    return posixpath.join(work_dir, "approvals")


def record_path(work_dir: str, token: str) -> str:
    return posixpath.join(token_dir(work_dir), f"{token}.json")


def used_marker(work_dir: str, token: str) -> str:
    return posixpath.join(token_dir(work_dir), f"{token}.used")


def approved_marker(work_dir: str, token: str) -> str:
    return posixpath.join(token_dir(work_dir), f"{token}.approved")


def consume_command(work_dir: str, token: str, sudo: bool = False) -> Command:
    """Succeeds exactly once per token, whoever races for it."""
    return Command.of("sh", "-c", _CONSUME, "bluegreen-consume", used_marker(work_dir, token),
                      sudo=sudo)  # fmt: skip


def approve_command(work_dir: str, token: str, who: str, sudo: bool = False) -> Command:
    return Command.of("sh", "-c", _APPROVE, "bluegreen-approve", approved_marker(work_dir, token),
                      stdin=who.encode(), sudo=sudo)  # fmt: skip


def token_dir_command(work_dir: str, sudo: bool = False) -> Command:
    return Command.of("mkdir", "-p", "--", token_dir(work_dir), sudo=sudo)


def used_check_command(work_dir: str, token: str) -> Command:
    """Exits 0 when the token was used already."""
    return Command.of("test", "-d", used_marker(work_dir, token), mutating=False)


def approved_check_command(work_dir: str, token: str) -> Command:
    """Exits 0 when an operator approved the token."""
    return Command.of("test", "-d", approved_marker(work_dir, token), mutating=False)
