"""The locks on the HAProxy host (per app, and per haproxy.cfg), as pure data and commands.

`mkdir` is atomic on every POSIX file system, so whichever tool instance creates the lock
directory first holds the lock (the idea Kamal uses). The holder's details live inside it, with a
random token so only the holder releases it. User values reach the shell only as positional
arguments ("$1"), never inside the script text.
"""

from __future__ import annotations

import getpass
import json
import os
import posixpath
import secrets
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from bluegreen.domain.command import Command
from bluegreen.domain.display_text import one_line

# A deploy's build can take long; after this a lock is reported stale (and can be broken).
STALE_AFTER_S = 2 * 3600

_ACQUIRE = 'mkdir -p -- "$2" && mkdir -- "$1" 2>/dev/null && cat > "$1/holder.json"'
_RELEASE = 'grep -qF -- "$2" "$1/holder.json" 2>/dev/null && rm -rf -- "$1"'


@dataclass(frozen=True)
class Holder:
    operation: str
    app: str
    user: str
    host: str
    pid: int
    since: str
    token: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode() + b"\n"

    def age_s(self, now: datetime) -> float | None:
        try:
            return (now - datetime.fromisoformat(self.since.replace("Z", "+00:00"))).total_seconds()
        except ValueError:
            return None

    def abandoned(self, now: datetime, local_host: str | None = None) -> bool:
        """Its process is gone (when it ran on this machine), or it is older than the limit. One
        part of "stale" (engine/lock.py's is_stale adds what only the running process knows)."""
        if local_host is not None and self.host == local_host and not _pid_alive(self.pid):
            return True
        age = self.age_s(now)
        return age is None or age > STALE_AFTER_S

    def describe(self) -> str:
        """For messages: the fields come from a file on the HAProxy host, so each is made safe
        (an error message may have lines of its own, so no field may add one)."""
        operation, user, host, since = (
            one_line(v) for v in (self.operation, self.user, self.host, self.since)
        )
        return f"{operation} by {user}@{host} (pid {self.pid}) since {since}"


def new_holder(operation: str, app: str, now: datetime) -> Holder:
    return Holder(
        operation=operation,
        app=app,
        user=current_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
        since=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        token=secrets.token_hex(16),
    )


def parse_holder(raw: bytes | None) -> Holder | None:
    """The holder in a lock dir, or None when unreadable (a lock mid-creation or corrupted)."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Holder(
            operation=str(data["operation"]),
            app=str(data["app"]),
            user=str(data["user"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            since=str(data["since"]),
            token=str(data["token"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def lock_dir(work_dir: str, key: str) -> str:
    """Where the lock `key` lives: an app's name, or cfg_lock_key's."""
    return posixpath.join(work_dir, "locks", f"{key}.lock")


def cfg_lock_key(config_path: str) -> str:
    """The key of the lock of one haproxy.cfg, shared by every app it routes. In a folder of its
    own ("cfg/"), so it can never be an app's name."""
    return "cfg/" + config_path.strip("/").replace("/", "_")


def holder_path(work_dir: str, key: str) -> str:
    return posixpath.join(lock_dir(work_dir, key), "holder.json")


def acquire_command(work_dir: str, key: str, holder: Holder, sudo: bool = False) -> Command:
    path = lock_dir(work_dir, key)
    return Command.of(
        "sh",
        "-c",
        _ACQUIRE,
        "bluegreen-lock",
        path,
        posixpath.dirname(path),
        stdin=holder.to_json(),
        sudo=sudo,
    )


def release_command(work_dir: str, key: str, token: str, sudo: bool = False) -> Command:
    return Command.of(
        "sh", "-c", _RELEASE, "bluegreen-unlock", lock_dir(work_dir, key), token, sudo=sudo
    )


def break_command(work_dir: str, key: str, sudo: bool = False) -> Command:
    return Command.of("rm", "-rf", "--", lock_dir(work_dir, key), sudo=sudo)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME
        return f"uid-{os.getuid()}"
