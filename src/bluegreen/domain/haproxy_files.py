"""Every file HAProxy loads, read from its host in one command, and what the running HAProxy
says it loads. Pure, no I/O: the shell text, the command, the parser and the checks.

The configured list is `[haproxy] config_files` (HAProxy's `-f` arguments, in order; a directory
stands for its `*.cfg` files in lexical order), by default just `config_path`. The running
HAProxy's own arguments (`/proc/<pid>/cmdline` of the process whose pid the runtime API's
`show info` gives: a worker's arguments are its master's) are the witness: when they name other
files, an answer from the configured list could be confidently wrong, so it is a problem. A
relative `-f` path (found from the directory HAProxy started in, which is not read) matches the
configured absolute path that ends with it, and is said in a note; any other is a problem that
says so.

Each path read prints one line (the snapshot's status read prints the same lines):

    file <base64>                   its bytes,
    file -                          missing,
    file !<why>                     unreadable (base64 never holds '!'),
    file dir                        a directory, then one line per `*.cfg` regular file in it:
    entry <base64 name> <base64>    (or `entry <base64 name> !<why>`)
    cmdline <base64>                the running HAProxy's arguments, NUL-separated, or -
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bluegreen.domain.command import Command
from bluegreen.domain.routing import LoadedConfig, RoutingAnalysis, config_args, load, load_order
from bluegreen.errors import HAProxyConfigError

# Shell functions shared by this read and the status snapshot (domain/snapshot.py). A glob skips
# dot-files, as HAProxy does when it reads a directory; `-f` skips what is not a regular file.
READ_FUNCTIONS = r"""read_one() {
  if [ ! -r "$1" ]; then echo '!permission denied'
  else base64 -w0 -- "$1" 2>/dev/null || printf '!read failed (base64 exit %s)' "$?"; echo
  fi
}
read_files() {
  for f; do
    printf 'file '
    if [ ! -e "$f" ]; then echo -
    elif [ -d "$f" ]; then
      echo dir
      for g in "$f"/*.cfg; do
        [ -f "$g" ] || continue
        printf 'entry %s ' "$(printf %s "${g##*/}" | base64 -w0)"
        read_one "$g"
      done
    else read_one "$f"
    fi
  done
}
print_cmdline() {
  printf 'cmdline '
  if [ -n "$1" ] && [ -r "/proc/$1/cmdline" ]; then base64 -w0 < "/proc/$1/cmdline"; echo
  else echo -
  fi
}
"""

_READ = r"""LC_ALL=C; export LC_ALL
sock=$1; shift
echo 'bluegreen-cfg-read 1'
read_files "$@"
pid=$(printf 'show info\n' | socat -t 5 stdio "unix-connect:$sock" 2>/dev/null | sed -n 's/^Pid: \([0-9][0-9]*\).*/\1/p')
print_cmdline "$pid"
"""
MAGIC = "bluegreen-cfg-read 1"


class FileReadError(ValueError):
    """A read's output is not what the shell functions print."""


@dataclass(frozen=True)
class FileRead:
    """A file's bytes, None when missing, or `error` when it could not be read; a directory has
    `entries` (its `*.cfg` files, each name with its read)."""

    data: bytes | None
    error: str | None = None
    entries: tuple[tuple[str, FileRead], ...] | None = None


def read_command(paths: Sequence[str], runtime_socket: str, *, sudo: bool = False) -> Command:
    """Every path (file or directory) and the running HAProxy's arguments, in one command."""
    return Command.of("sh", "-c", READ_FUNCTIONS + _READ, "bluegreen-cfg-read", runtime_socket,
                      *paths, mutating=False, sudo=sudo)  # fmt: skip


def parse_lines(lines: Sequence[str]) -> tuple[list[FileRead], tuple[str, ...] | None, list[str]]:
    """The `file` (with their `entry`) lines and the `cmdline` line among `lines`: the reads in
    order, the arguments (None: unknown) and the lines that are neither, for the caller."""
    reads: list[FileRead] = []
    entries: list[tuple[str, FileRead]] | None = None
    argv: tuple[str, ...] | None = None
    rest: list[str] = []

    def close() -> None:
        nonlocal entries
        if entries is not None:
            reads.append(FileRead(None, entries=tuple(entries)))
            entries = None

    for line in lines:
        key, _, value = line.partition(" ")
        if key == "entry" and entries is not None:
            name, _, data = value.partition(" ")
            entries.append((_decode(name).decode(errors="replace"), file_read(data)))
            continue
        close()
        if key == "file" and value == "dir":
            entries = []
        elif key == "file":
            reads.append(file_read(value))
        elif key == "cmdline":
            argv = _argv(value)
        else:
            rest.append(line)
    close()
    return reads, argv, rest


def file_read(value: str) -> FileRead:
    if value == "-":
        return FileRead(None)
    if "!" in value:
        return FileRead(None, error=value.split("!", 1)[1] or "unreadable")
    return FileRead(_decode(value))


def _decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FileReadError(f"bad file data: {value[:80]!r}") from None


def _argv(value: str) -> tuple[str, ...] | None:
    if value == "-":
        return None
    words = _decode(value).decode(errors="replace").split("\0")
    words = words[:-1] if words and not words[-1] else words
    return tuple(words) or None  # an empty cmdline: a process that is gone, nothing known


def parse_read(stdout: str, paths: Sequence[str]) -> tuple[list[FileRead], tuple[str, ...] | None]:
    """`read_command`'s output: one read per path, and the running HAProxy's arguments."""
    lines = stdout.rstrip("\n").split("\n")
    if not lines or lines[0] != MAGIC:
        raise FileReadError(f"not a bluegreen cfg read: {stdout[:120]!r}")
    reads, argv, rest = parse_lines(lines[1:])
    if rest:
        raise FileReadError(f"unexpected line in the cfg read: {rest[0][:120]!r}")
    if len(reads) != len(paths):
        raise FileReadError(f"expected {len(paths)} files, got {len(reads)}")
    return reads, argv


@dataclass(frozen=True)
class HAProxyFiles:
    """Every file HAProxy loads, as read, in its load order; and the `-f` arguments the running
    HAProxy was started with (None: they could not be read)."""

    configured: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...]
    running: tuple[str, ...] | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(path for path, _ in self.files)

    def data(self, path: str) -> bytes:
        return dict(self.files)[path]

    def loaded(self) -> LoadedConfig:
        return load([(path, data.decode(errors="replace")) for path, data in self.files])

    def replaced(self, path: str, data: bytes) -> HAProxyFiles:
        """The same files with `path` holding `data` (a switch's candidate)."""
        return replace(self, files=tuple((p, data if p == path else d) for p, d in self.files))

    def mismatch(self) -> str | None:
        """Why an answer from the configured files may not be what HAProxy runs, or None."""
        if self.running is None:
            return None
        running, configured = _normal(self.running), _normal(self.configured)
        if _same_files(running, configured):
            return None
        if relative := [p for p in running if not p.startswith("/")]:
            dirs = ", ".join(
                f'"<dir>/{p}"' if not p.startswith("/") else _quote(p) for p in running
            )
            return (
                f"The running HAProxy loads {_args(running)}: {', '.join(relative)} "
                f"{'is a relative path' if len(relative) == 1 else 'are relative paths'}, "
                "found from the directory HAProxy was started in, which bluegreen cannot see. "
                f"Set config_files = [{dirs}] in [haproxy], <dir> being that directory (absolute "
                "paths, in this order), or start HAProxy with absolute -f paths."
            )
        missing = [p for p in running if p not in configured]
        extra = [p for p in configured if p not in running]
        what = (f"it also loads {', '.join(missing)}, which bluegreen does not read" if missing
                else f"it does not load {', '.join(extra)}" if extra
                else "in another order")  # fmt: skip
        return (
            f"The running HAProxy loads {_args(running)} but [haproxy] config_files says "
            f"{_args(configured)}: {what}. Set config_files = [{', '.join(map(_quote, running))}] "
            "in [haproxy] (HAProxy's -f arguments, in order)."
        )

    def note(self) -> str | None:
        if self.running is None:
            return (
                "The running HAProxy's arguments could not be read (runtime API or /proc): the "
                f"files it loads are taken from the config ({_args(self.configured)})."
            )
        running = _normal(self.running)
        if running != _normal(self.configured) and not self.mismatch():
            return (
                f"The running HAProxy loads relative paths ({_args(running)}): they are taken to "
                f"be config_files' {_args(self.configured)} (the same names, in the same order)."
            )
        return None

    def checked(self, analysis: RoutingAnalysis) -> RoutingAnalysis:
        """`analysis` with the mismatch as a problem (never certain then) or the note."""
        if problem := self.mismatch():
            return replace(analysis, problems=(*analysis.problems, problem))
        if note := self.note():
            return replace(analysis, notes=(*analysis.notes, note))
        return analysis


def _normal(paths: Sequence[str]) -> tuple[str, ...]:
    return tuple(posixpath.normpath(p) for p in paths)


def _same_files(running: Sequence[str], configured: Sequence[str]) -> bool:
    """The same list, a relative running path matching the configured (absolute) path that
    ends with it: HAProxy resolved it against the directory it started in."""
    return len(running) == len(configured) and all(
        c == r or (not r.startswith("/") and c.endswith("/" + r))
        for r, c in zip(running, configured, strict=True)
    )


def _args(paths: Sequence[str]) -> str:
    return " ".join(f"-f {p}" for p in paths)


def _quote(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def collect(
    configured: Sequence[str],
    reads: Sequence[FileRead],
    argv: Sequence[str] | None,
    host: str,
) -> HAProxyFiles:
    """The files HAProxy loads from one read per configured path; an error names the file."""
    listings: dict[str, list[str]] = {}
    found: dict[str, bytes] = {}
    for path, read in zip(configured, reads, strict=True):
        if read.entries is not None:
            listings[path] = [name for name, _ in read.entries]
            for name, entry in read.entries:
                found[f"{path.rstrip('/')}/{name}"] = _data(
                    f"{path.rstrip('/')}/{name}", entry, host
                )
        else:
            found[path] = _data(path, read, host)
    order = load_order(configured, listings)
    running = config_args(argv) if argv is not None else None
    return HAProxyFiles(tuple(configured), tuple((p, found[p]) for p in order), running)


def _data(path: str, read: FileRead, host: str) -> bytes:
    if read.error is not None:
        raise HAProxyConfigError(f"reading {path} on {host} failed: {read.error}",
                                 hint="the login needs read access to every file HAProxy loads")  # fmt: skip
    if read.data is None:
        raise HAProxyConfigError(f"haproxy.cfg not found at {path} on {host}",
                                 hint="check [haproxy] config_files (or config_path)")  # fmt: skip
    return read.data
