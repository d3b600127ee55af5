"""Switch approval as data and policy: plan hashes, confirmation tokens, and who may approve how.

A token is bound to the plan hash, which covers the current haproxy.cfg and state file bytes and
the commit the target runs (what goes LIVE), so a token approved for one situation can never
execute another. Tokens live on the HAProxy host
(shared by every tool instance and by `bluegreen approve`); using one is an atomic `mkdir`, so a
replay is refused even when two callers race.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Literal

from bluegreen.domain.command import Command
from bluegreen.errors import ApprovalError, ValidationError

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CONSUME = 'mkdir -- "$1" 2>/dev/null'
_APPROVE = 'mkdir -- "$1" 2>/dev/null && cat > "$1/by" && printf %s "$2" > "$1/channel"'
# Each token's record goes only while it is still unanswered (no marker appeared since it was
# listed); the names removed are printed, one a line.
_PRUNE = (
    'd=$1; shift; for t; do [ -e "$d/$t.used" ] || [ -e "$d/$t.approved" ] || '
    '{ rm -f -- "$d/$t.json" && echo "$t"; }; done'
)
CHANNELS = ("terminal", "dashboard")  # where a person approves an operator-mode plan


def plan_hash(app: str, from_live: str, to_live: str, emergency: bool, routing: bytes,
              state: bytes | None, target_commits: tuple[str | None, ...]) -> str:  # fmt: skip
    """What an approval binds: the move, the app's own routing lines and the change to them
    (`routing`: routing.app_lines, not other apps' lines), its state file, and the witnesses of
    the code that goes LIVE (`target_commits`: checkout, health answer)."""
    digest = hashlib.sha256()
    for part in (app, from_live, to_live, "emergency" if emergency else "normal",
                 *(commit or "<unknown>" for commit in target_commits)):  # fmt: skip
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(routing).digest())
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
    # Defaults keep records written by earlier versions readable (a token lives minutes).
    emergency: bool = False
    target_commit: str | None = None
    issued_by_cli: bool = False  # by `bluegreen switch --plan`, not by an MCP client
    reconcile: bool = False  # a plan that brings HAProxy nodes that disagree back to one answer

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode() + b"\n"

    def expired(self, now: datetime) -> bool:
        return now >= datetime.fromisoformat(self.expires.replace("Z", "+00:00"))


def new_token(app: str, hash_: str, mode: str, now: datetime, ttl_s: float, from_live: str,
              to_live: str, *, emergency: bool, target_commit: str | None,
              issued_by_cli: bool, reconcile: bool = False) -> TokenRecord:  # fmt: skip
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
        emergency=emergency,
        target_commit=target_commit,
        issued_by_cli=issued_by_cli,
        reconcile=reconcile,
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


def approver_path(work_dir: str, token: str) -> str:
    """Who ran `bluegreen approve` (written by approve_command)."""
    return posixpath.join(approved_marker(work_dir, token), "by")


def consume_command(work_dir: str, token: str, sudo: bool = False) -> Command:
    """Succeeds exactly once per token, whoever races for it."""
    return Command.of("sh", "-c", _CONSUME, "bluegreen-consume", used_marker(work_dir, token),
                      sudo=sudo)  # fmt: skip


def channel_path(work_dir: str, token: str) -> str:
    """Where the person approved (written by approve_command)."""
    return posixpath.join(approved_marker(work_dir, token), "channel")


def parse_channel(raw: bytes | None) -> str | None:
    """Only a channel this tool writes; anything else on the host is not trusted as one."""
    text = (raw or b"").decode(errors="replace").strip()
    return text if text in CHANNELS else None


def approve_command(
    work_dir: str, token: str, who: str, channel: str = "terminal", sudo: bool = False
) -> Command:
    if channel not in CHANNELS:
        raise ValueError(f"unknown approval channel {channel!r}")
    return Command.of("sh", "-c", _APPROVE, "bluegreen-approve", approved_marker(work_dir, token),
                      channel, stdin=who.encode(), sudo=sudo)  # fmt: skip


def list_command(work_dir: str, sudo: bool = False) -> Command:
    """The approvals directory's entries, one a line (records, .used and .approved markers)."""
    return Command.of("ls", "-1A", "--", token_dir(work_dir), mutating=False, sudo=sudo)


def unanswered_tokens(listing: str) -> tuple[str, ...]:
    """Tokens in an `ls -1A` of the approvals directory that have a record and were neither
    approved nor used (the candidates for an operator's approval)."""
    names = set(listing.split())
    tokens = sorted(n[: -len(".json")] for n in names if n.endswith(".json"))
    return tuple(
        t for t in tokens
        if TOKEN_RE.fullmatch(t) and f"{t}.used" not in names and f"{t}.approved" not in names
    )  # fmt: skip


def prune_command(work_dir: str, tokens: Sequence[str], sudo: bool = False) -> Command:
    """Removes the records of these (expired, unanswered) tokens, unless one was used or
    approved meanwhile; prints each token removed."""
    for token in tokens:
        validate_token(token)
    return Command.of("sh", "-c", _PRUNE, "bluegreen-prune-approvals", token_dir(work_dir),
                      *tokens, sudo=sudo)  # fmt: skip


def awaits_operator(record: TokenRecord, app: str, now: datetime) -> bool:
    return record.app == app and record.mode == "operator" and not record.expired(now)


def token_dir_command(work_dir: str, sudo: bool = False) -> Command:
    return Command.of("mkdir", "-p", "--", token_dir(work_dir), sudo=sudo)


def used_check_command(work_dir: str, token: str) -> Command:
    """Exits 0 when the token was used already."""
    return Command.of("test", "-d", used_marker(work_dir, token), mutating=False)


def approved_check_command(work_dir: str, token: str) -> Command:
    """Exits 0 when an operator approved the token."""
    return Command.of("test", "-d", approved_marker(work_dir, token), mutating=False)


# ---- policy: which approval a switch needs, and what counts as one ---------------------------


def approval_mode(configured: str, client_can_elicit: bool) -> str:
    """`auto`: ask a person in the client when it can, else the two-step token."""
    if configured == "auto":
        return "elicit" if client_can_elicit else "token"
    return configured


def short(commit: str | None) -> str:
    return commit[:7] if commit else "an unknown commit"


def same_commit(a: str | None, b: str | None) -> bool:
    """Both known and equal; one side may be abbreviated (a health answer's short sha)."""
    if not a or not b:
        return False
    return a.startswith(b) or b.startswith(a)


def stale_plan_reason(target: str, approved_commit: str | None, current_commit: str | None) -> str:
    """Why an approved plan no longer applies, naming the new code when that is what changed."""
    if approved_commit != current_commit:
        return (
            f"STANDBY {target.upper()} changed since the plan: {short(current_commit)} was "
            f"deployed (the plan was approved for {short(approved_commit)})"
        )
    return (
        f"the app's lines in haproxy.cfg, its state file or the commit {target.upper()}'s health "
        "endpoint reports changed since this switch was planned and approved"
    )


def token_refusal(app: str, configured: str, token: TokenRecord, from_cli: bool) -> str | None:
    """A token proves only what issued it: an `elicit` app takes no token from an MCP client
    (only an elicitation answer; a person using the CLI may confirm a `--plan` token), and an
    `operator` app only an operator-mode token."""
    if configured == "elicit" and not from_cli:
        issuer = "`bluegreen switch --plan`" if token.issued_by_cli else "an earlier call"
        return (
            f"{app} is approved only by a person answering the MCP client's question "
            f'(approval = "elicit"); a confirmToken (issued by {issuer}) is not such an answer'
        )
    if configured == "operator" and token.mode != "operator":
        return (
            f'{app} needs an operator\'s approval (approval = "operator") and this token was '
            f"issued in {token.mode} mode"
        )
    return None


@dataclass(frozen=True)
class LastLive:
    """The server that was LIVE before the last successful switch, and the commit it ran then."""

    color: str
    commit: str | None


def unapproved_basis(
    app: str,
    *,
    allow_unapproved: bool,
    allow_emergency: bool,
    emergency: bool,
    target: str,
    target_commit: str | None,
    last_live: Callable[[], LastLive | None],
) -> Literal["allowed-unapproved", "emergency-rule"]:
    """What allows this switch without approval ("allowed-unapproved" or "emergency-rule"), or
    ApprovalError saying why nothing does. The emergency rule only restores what was LIVE: the
    same server running the same commit it ran then; anything else is a release and needs a yes.
    """
    if allow_unapproved:
        return "allowed-unapproved"
    if not (emergency and allow_emergency):
        raise _unapproved(
            f"{app} does not allow switches without approval (allow_unapproved = false)"
        )
    last = last_live()
    rule = (
        "an emergency switch without approval only goes back to what was LIVE before the last "
        "switch"
    )
    if last is None or last.color != target:
        raise _unapproved(f"{rule}, and {target.upper()} was not")
    if last.commit is None:
        raise _unapproved(
            f"{rule}: the history does not record which commit {target.upper()} ran then"
        )
    if not same_commit(target_commit, last.commit):
        now = f"now runs {short(target_commit)}" if target_commit else "its commit cannot be read"
        raise _unapproved(
            f"{rule}: {target.upper()} ran {short(last.commit)} when it was LIVE and {now}; "
            "new code needs approval"
        )
    return "emergency-rule"


def _unapproved(message: str) -> ApprovalError:
    return ApprovalError(message, hint="call with requireApproval=true and approve the plan")
