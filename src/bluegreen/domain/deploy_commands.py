"""Every remote command of deploy_to_standby, built as data, and the pure reading of their output.

Builders are kept apart from execution (the idea Kamal uses): the engine runs exactly what these
return, and a dry run shows exactly the same lines. User values (refs, paths) reach a shell only as
argv words or as positional arguments ("$1") of a fixed script, never inside the script text.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from bluegreen.domain.command import Command
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.probe import HealthResult, health_url
from bluegreen.domain.secrets import snippet_secrets

TAIL_LINES = 30  # of a failing command's output
LOG_TAIL_LINES = 50  # of the app's log after a failed restart or health check
# Shown in a dry run's checkout line: the commit is only known after `git fetch`.
UNRESOLVED = "<commit-of-ref>"
BACKOFF_FACTOR = 1.5
BACKOFF_CAP_S = 5.0

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # sha-1 or sha-256
_DF_AVAILABLE = re.compile(r"\s(\d+)\s+\d+%\s")

# Archive the app dir (ignored files like .env and dist/ included) into a temp name, then rename,
# so a half-written archive never looks like a backup; then keep the newest $3 of this app's.
# GNU tar exits 1 when a file changed while read (a running app's log): still a usable backup.
_BACKUP = r"""set -eu
parent=$(dirname -- "$1"); base=$(basename -- "$1"); dir=$(dirname -- "$2")
mkdir -p -- "$dir"
tar -czf "$2.partial" -C "$parent" "./$base" || [ "$?" -eq 1 ]
mv -f -- "$2.partial" "$2"
ls -1 -- "$dir" | grep -E "^$4-[0-9]{8}T[0-9]{6}Z-[0-9a-f]+\.tar\.gz\$" | sort -r \
  | tail -n +"$(($3 + 1))" | while read -r old; do rm -f -- "$dir/$old"; done
"""

# Extract into a fresh sibling dir (same file system, so the swap is two renames), swap it with the
# app dir and put the original back if the second rename fails: the app dir never goes missing.
_RESTORE = r"""set -eu
parent=$(dirname -- "$1"); base=$(basename -- "$1")
fresh="$parent/.$base.bluegreen-restore"; old="$parent/.$base.bluegreen-failed"
rm -rf -- "$fresh" "$old"
mkdir -- "$fresh"
tar -xzf "$2" -C "$fresh"
[ -d "$fresh/$base" ] || { echo "archive $2 holds no $base/" >&2; exit 1; }
mv -- "$1" "$old"
mv -- "$fresh/$base" "$1" || { mv -- "$old" "$1"; exit 1; }
rm -rf -- "$old" "$fresh"
"""

# A branch on origin first (what was just fetched), then a tag or commit sha.
_RESOLVE = (
    'git -C "$1" rev-parse --verify --quiet "origin/$2^{commit}"'
    ' || git -C "$1" rev-parse --verify --quiet "$2^{commit}"'
)


# ---- where things go ---------------------------------------------------------------------------


def backup_dir(app_dir: str) -> str:
    """Beside the app dir (same file system, never inside what is archived)."""
    return posixpath.normpath(app_dir) + ".bluegreen-backups"


def backup_path(app_dir: str, app: str, when: datetime, commit: str) -> str:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return posixpath.join(backup_dir(app_dir), f"{app}-{stamp}-{commit[:12]}.tar.gz")


def probe_address(app: AppConfig, member: Member) -> str:
    """host:port the HAProxy host probes (the server's host, the health port)."""
    return f"{member.host}:{app.health_port(member)}"


# ---- read-only commands --------------------------------------------------------------------------


def head_command(app_dir: str, sudo: bool = False) -> Command:
    return Command.of(
        "git", "-C", app_dir, "rev-parse", "--verify", "HEAD", mutating=False, sudo=sudo
    )


def dirty_command(app_dir: str, sudo: bool = False) -> Command:
    """Local changes a clean checkout would discard (no index refresh: truly read-only)."""
    return Command.of(
        "git", "--no-optional-locks", "-C", app_dir, "status", "--porcelain",
        mutating=False, sudo=sudo,
    )  # fmt: skip


def disk_command(app_dir: str, sudo: bool = False) -> Command:
    return Command.of("df", "-Pm", "--", app_dir, mutating=False, sudo=sudo)


def resolve_command(app_dir: str, ref: str, sudo: bool = False) -> Command:
    return Command.of(
        "sh", "-c", _RESOLVE, "bluegreen-resolve", app_dir, ref, mutating=False, sudo=sudo
    )


def log_tail_command(log_file: str, sudo: bool = False) -> Command:
    return Command.of("tail", "-n", str(LOG_TAIL_LINES), "--", log_file, mutating=False, sudo=sudo)


def server_health_url(app: AppConfig, member: Member) -> str:
    return health_url(probe_address(app, member), app.health.path)


def probe_plan_line(app: AppConfig, member: Member) -> str:
    """How a plan shows a health probe (engine/probing.py: over a TCP connection the HAProxy
    host opens, or curl there when its sshd does not allow that)."""
    return f"GET {server_health_url(app, member)}  (from the HAProxy host; timeout {app.health.timeout_s:g}s)"


# ---- commands that change the STANDBY host -------------------------------------------------------


def backup_command(app_dir: str, archive: str, app: str, keep: int, sudo: bool = False) -> Command:
    # At least the archive just made is kept: it is what a failed deploy restores.
    return Command.of(
        "sh", "-c", _BACKUP, "bluegreen-backup",
        posixpath.normpath(app_dir), archive, str(max(1, keep)), app,
        sudo=sudo,
    )  # fmt: skip


def fetch_command(app_dir: str, sudo: bool = False) -> Command:
    return Command.of("git", "-C", app_dir, "fetch", "--prune", "--tags", "origin", sudo=sudo)


def checkout_command(app_dir: str, commit: str, sudo: bool = False) -> Command:
    """Detached at a resolved sha: a ref never reaches this line, and -f drops local edits."""
    return Command.of("git", "-C", app_dir, "checkout", "--force", "--detach", commit, sudo=sudo)


def clean_command(app_dir: str, sudo: bool = False) -> Command:
    """Untracked files go; ignored ones (.env, build output) stay: no -x."""
    return Command.of("git", "-C", app_dir, "clean", "-fd", sudo=sudo)


def snippet_command(snippet: str, app_dir: str, sudo: bool = False) -> Command:
    """build / migrate / restart: trusted config snippets, run in the app dir. Secret-looking
    values in them (`NPM_TOKEN=...`) are masked wherever the command is shown."""
    return Command(shell=snippet, cwd=app_dir, sudo=sudo, secrets=snippet_secrets(snippet))


def restore_command(app_dir: str, archive: str, sudo: bool = False) -> Command:
    return Command.of(
        "sh", "-c", _RESTORE, "bluegreen-restore", posixpath.normpath(app_dir), archive, sudo=sudo
    )


def plan_line(command: Command) -> str:
    """A command's display line for a plan, with the unresolved-commit placeholder unquoted."""
    return command.display().replace(shlex.quote(UNRESOLVED), UNRESOLVED)


@dataclass(frozen=True)
class PlanStep:
    """One line of a dry run: the step, the host, and the line the deploy would run there."""

    step: str
    host: str
    command: str


@dataclass(frozen=True)
class PlanChoices:
    """What the request switches on or off (the deploy's options that change the commands)."""

    backup: bool
    migrate: bool
    restore_on_failure: bool
    ref: str | None  # None: no pull


def plan_steps(
    app_name: str,
    app: AppConfig,
    haproxy_ssh: str,
    live: str,
    standby: str,
    archives: Sequence[str],
    choices: PlanChoices,
) -> list[PlanStep]:
    """Every command a deploy to `standby` runs, in order, as a dry run lists them: each step on
    every server of the colour (`archives`: each server's backup, in pool order), migrations once
    (on the first server)."""
    members = app.members(standby)
    d, sudo = app.app_dir, app.server(standby).sudo
    steps: list[PlanStep] = []

    def add(step: str, command: Command, on: Sequence[Member] = members) -> None:
        steps.extend(PlanStep(step, member.ssh, plan_line(command)) for member in on)

    def add_each(step: str, command: Callable[[str], Command]) -> None:
        for member, archive in zip(members, archives, strict=True):
            steps.append(PlanStep(step, member.ssh, plan_line(command(archive))))

    for command in (head_command(d, sudo), dirty_command(d, sudo), disk_command(d, sudo)):
        add("preflight", command)
    steps.extend(
        PlanStep("preflight", haproxy_ssh, probe_plan_line(app, m)) for m in app.members(live)
    )
    if choices.backup:
        add_each(
            "backup", lambda archive: backup_command(d, archive, app_name, app.backups_kept, sudo)
        )
    if choices.ref is not None:
        add("fetch", fetch_command(d, sudo))
        add("fetch", resolve_command(d, choices.ref, sudo))
        add("fetch", checkout_command(d, UNRESOLVED, sudo))
        add("fetch", clean_command(d, sudo))
    if app.build is not None:
        add("build", snippet_command(app.build, d, sudo))
    if choices.migrate and app.migrate is not None:
        add("migrate", snippet_command(app.migrate, d, sudo), members[:1])
    add("restart", snippet_command(app.restart, d, sudo))
    steps.extend(PlanStep("health", haproxy_ssh, probe_plan_line(app, m)) for m in members)
    if choices.backup and choices.restore_on_failure:
        add_each("restore (only on failure)", lambda archive: restore_command(d, archive, sudo))
        add("restore (only on failure)", snippet_command(app.restart, d, sudo))
    return steps


# ---- reading output ------------------------------------------------------------------------------


def parse_commit(stdout: str) -> str | None:
    """The full sha printed by rev-parse, or None when the output is anything else."""
    text = stdout.strip()
    return text if _SHA.fullmatch(text) else None


def parse_available_mb(df_output: str) -> int | None:
    """Available MB from `df -Pm` (the number before the capacity column; robust to spaces in
    the file system and mount point names)."""
    lines = df_output.strip().splitlines()
    if len(lines) < 2:
        return None
    match = _DF_AVAILABLE.search(" ".join(lines[1:]) + " ")
    return int(match.group(1)) if match else None


def same_commit(reported: str, expected: str) -> bool:
    """Apps often report an abbreviated sha: a prefix of at least 7 characters matches."""
    short, full = sorted((reported.lower(), expected.lower()), key=len)
    return len(short) >= 7 and full.startswith(short)


def backoff_delays(attempts: int, interval_s: float) -> list[float]:
    """Pauses between health attempts: from interval_s (0.5 s when 0), x1.5, capped."""
    delay = interval_s if interval_s > 0 else 0.5
    cap = max(delay, BACKOFF_CAP_S)
    delays = []
    for _ in range(max(0, attempts - 1)):
        delays.append(round(delay, 3))
        delay = min(delay * BACKOFF_FACTOR, cap)
    return delays


HealthKind = Literal["ok", "unreachable", "status", "commit"]


@dataclass(frozen=True)
class HealthVerdict:
    kind: HealthKind
    sentence: str

    @property
    def healthy(self) -> bool:
        return self.kind == "ok"


def judge_health(
    result: HealthResult, label: str, expect_status: int, expected_commit: str | None
) -> HealthVerdict:
    """Healthy: the expected status and, when the body names a commit, the one just deployed."""
    if result.status_code is None:
        reason = result.error or "no answer"
        return HealthVerdict("unreachable", f"{label} did not answer {result.url}: {reason}")
    if result.status_code != expect_status:
        return HealthVerdict(
            "status", f"{label} answered HTTP {result.status_code} (expected {expect_status})"
        )
    if expected_commit and result.commit and not same_commit(result.commit, expected_commit):
        return HealthVerdict(
            "commit",
            f"{label} still reports commit {result.commit[:12]} (expected "
            f"{expected_commit[:12]}): the restart did not take",
        )
    commit = f", commit {result.commit[:12]}" if result.commit else ""
    return HealthVerdict("ok", f"{label} answered HTTP {result.status_code}{commit}")
