"""Pure builders for the commands a switch runs on the HAProxy host (and the indicator text);
the cfg check is also what status runs on a cfg edited and not reloaded.

User values (paths, names) reach the shell only as positional arguments, never in script text.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bluegreen.domain.command import Command
from bluegreen.domain.haproxy_cfg import HAProxyConfig

COMMAND_NOT_FOUND = 127  # the shell's exit status

# Keeps the newest $4 backups of this file (their names start with its own name, $5).
_BACKUP = (
    'mkdir -p -- "$2" && cp -p -- "$1" "$2/$3" && '
    'ls -1t -- "$2" | { n=0; while IFS= read -r f; do case $f in "$5".*) n=$((n + 1)); '
    '[ "$n" -le "$4" ] || rm -f -- "$2/$f" ;; esac; done; }'
)


def cfg_backup_dir(work_dir: str) -> str:
    return posixpath.join(work_dir, "cfg-backups")


def cfg_backup_name(now: datetime, from_live: str, to_live: str, cfg_path: str) -> str:
    """`<file name>.<time>.<from>-to-<to>`: the file's own name first, so each file keeps its
    own newest backups."""
    name = posixpath.basename(cfg_path)
    return f"{name}.{now.strftime('%Y%m%dT%H%M%S.%fZ')}.{from_live}-to-{to_live}"


def backup_cfg_command(cfg_path: str, work_dir: str, name: str, keep: int, sudo: bool) -> Command:
    return Command.of("sh", "-c", _BACKUP, "bluegreen-cfg-backup", cfg_path,
                      cfg_backup_dir(work_dir), name, str(keep), posixpath.basename(cfg_path),
                      sudo=sudo)  # fmt: skip


def check_path(cfg_path: str) -> str:
    """The candidate cfg is checked beside the real one, so relative paths resolve the same."""
    directory, name = posixpath.split(cfg_path)
    return posixpath.join(directory, f".{name}.bluegreen-candidate")


def check_command(check: Sequence[str], paths: tuple[str, ...], sudo: bool) -> Command:
    """`haproxy -c -f A -f B ...`: the configured check on every file HAProxy loads, in its load
    order (the first path follows the check's own words, each further one follows `-f`)."""
    first, *rest = paths
    further = [word for path in rest for word in ("-f", path)]
    return Command.of(*check, first, *further, mutating=False, sudo=sudo)


def not_found(program: str) -> str:
    """Why a check that exited COMMAND_NOT_FOUND said nothing about the cfg."""
    return (
        f"`{program}` was not found on the HAProxy host (a non-root login's PATH often lacks "
        f"/usr/sbin: give `check` in [haproxy] its full path, e.g. /usr/sbin/haproxy)"
    )


def remove_command(path: str, sudo: bool) -> Command:
    return Command.of("rm", "-f", "--", path, sudo=sudo)


def reload_command(reload: Sequence[str], sudo: bool) -> Command:
    return Command.of(*reload, sudo=sudo)


@dataclass(frozen=True)
class Bind:
    """A frontend's first TCP bind: `host` is None for a wildcard (`*:80`, `:::80`)."""

    scheme: str
    host: str | None
    port: int

    def url(self, wildcard_host: str) -> str:
        return f"{self.scheme}://{self.host or wildcard_host}:{self.port}"


def frontend_bind(cfg: HAProxyConfig, frontend: str) -> Bind | None:
    """The first TCP `bind` of the frontend (or listen section), None when it has none."""
    section = cfg.section("frontend", frontend) or cfg.section("listen", frontend)
    if section is None:
        return None
    for line in section.directives("bind"):
        args = [t.value for t in line.args]
        if not args:
            continue
        host, _, port = args[0].rpartition(":")
        if not port.isdigit():
            continue
        if host.startswith(("unix@", "abns@", "fd@", "sockpair@")):
            continue
        wildcard = host in ("", "*", "0.0.0.0", "::", "[::]")  # noqa: S104 - reading a bind
        scheme = "https" if "ssl" in args[1:] else "http"
        return Bind(scheme, None if wildcard else host, int(port))
    return None


def frontend_url(cfg: HAProxyConfig, frontend: str) -> str | None:
    """Where to send a request to the frontend from the HAProxy host itself: its first bind."""
    bind = frontend_bind(cfg, frontend)
    return bind.url("127.0.0.1") if bind else None


def env_display(role: str, color: str, since: datetime) -> bytes:
    """The environment indicator each app host shows (`.env.display` in the app dir)."""
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"# written by bluegreen after a switch\nROLE={role}\nCOLOR={color}\nSINCE={stamp}\n".encode()
