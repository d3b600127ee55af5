"""One read of the HAProxy host: files, runtime API and clocks in a single SSH command.

A status needs haproxy.cfg, state files, lock holders, `show stat`, `show servers state` and the
ages of the cfg and of the running worker. Each as its own SSH channel costs a channel open, a
session and a process on the host; together in one POSIX sh script they cost one (and the files
are read while socat waits for HAProxy). The script prints a line per fact, the runtime API's
answer last:

    bluegreen-snapshot 1
    uptime 12345.67                 /proc/uptime (read just before the clock)
    now 1795813034.123456789        wall clock (date +%s.%N)
    ticks 100                       getconf CLK_TCK
    cfgmtime 1795813030.000000000   newest stat -c %.9Y of the files HAProxy loads, or -
    file <base64>                   one line per requested path, in order: its bytes,
    file -                          missing,
    file !<why>                     or unreadable (base64 never holds '!'); a directory:
    file dir                        then an `entry` line per *.cfg file (domain/haproxy_files.py)
    workerstart 123456              start of the worker (`show info` Pid), in ticks, or -
    cmdline <base64>                the worker's arguments (its master's), or -
    runtime <exit status>           then socat's output to the end:
    <show info>\\n\\n<show stat>\\n\\n<show servers state>

The script only reads. Parsing is strict: anything unexpected is an error, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bluegreen.domain.command import Command
from bluegreen.domain.haproxy_files import READ_FUNCTIONS, FileRead, FileReadError, parse_lines

MAGIC = "bluegreen-snapshot 1"
RUNTIME_QUERIES = ("show info", "show stat", "show servers state")

_SCRIPT = (
    READ_FUNCTIONS
    + r"""LC_ALL=C; export LC_ALL
sock=$1; query=$2; n=$3; shift 3
nl='
'
# The newest change among the files of the first $n paths (HAProxy's -f arguments; a directory:
# its *.cfg files). Not a directory's own time: a switch stages its candidate there.
newest() {
  i=0
  for f; do
    i=$((i + 1)); [ "$i" -le "$n" ] || break
    if [ -d "$f" ]; then for g in "$f"/*.cfg; do [ -f "$g" ] && stat -c %.9Y -- "$g"; done
    else stat -c %.9Y -- "$f"
    fi
  done 2>/dev/null | sort -n | tail -n 1
}
echo 'bluegreen-snapshot 1'
exec 3>&1
# The rest is read while the runtime API answers (socat is the slowest part): the group prints
# straight to stdout (fd 3), and is waited for before anything else is printed.
rt=$(
  {
    # Uptime first, then the wall clock: on a loaded host `date` may start late, and the worker's
    # age (from uptime) must never come out larger than the cfg's (from the clock) only because of
    # that gap: a gap can hide a very recent hand edit, never invent one.
    { read -r up _ < /proc/uptime; } 2>/dev/null && echo "uptime $up"
    date +'now %s.%N'
    printf 'ticks '; getconf CLK_TCK 2>/dev/null || echo -
    m=$(newest "$@"); echo "cfgmtime ${m:--}"
    shift "$n"
    read_files "$@"
  } >&3 &
  printf '%s\n' "$query" | socat -t 5 stdio "unix-connect:$sock" 2>&1
  rc=$?
  wait
  exit $rc
)
rrc=$?
exec 3>&-
pid=
case "$nl$rt" in *"${nl}Pid: "*) pid="$nl$rt"; pid=${pid#*"${nl}Pid: "}; pid=${pid%%[!0-9]*} ;; esac
start=-
# Field 22 of /proc/PID/stat, counted after the ") " that ends the command name (field 2).
field22() { shift 19; start=${1:--}; }
if [ -n "$pid" ] && { read -r line < "/proc/$pid/stat"; } 2>/dev/null; then
  set -f; field22 ${line##*") "}; set +f
fi
echo "workerstart $start"
print_cmdline "$pid"
echo "runtime $rrc"
printf '%s\n' "$rt"
"""
)


class SnapshotError(ValueError):
    """The snapshot's output is not what the script prints."""


def snapshot_command(
    config_files: Sequence[str], runtime_socket: str, files: list[str], *, sudo: bool = False
) -> Command:
    """The read-only command; `files` are read in order (HAProxy's `config_files` only give the
    cfg's age: they are not read unless listed in `files` too)."""
    return Command.of(
        "sh",
        "-c",
        _SCRIPT,
        "bluegreen-snapshot",
        runtime_socket,
        ";".join(RUNTIME_QUERIES),
        str(len(config_files)),
        *config_files,
        *files,
        mutating=False,
        sudo=sudo,
    )


@dataclass(frozen=True)
class Snapshot:
    now: float | None
    uptime: float | None
    ticks: int | None
    cfg_mtime: float | None
    worker_start_ticks: int | None
    files: dict[str, FileRead]
    runtime_exit: int
    runtime_output: str
    runtime_sections: tuple[str, ...] = field(default=())
    cmdline: tuple[str, ...] | None = None  # the running HAProxy's arguments, when readable

    def ages(self) -> tuple[float, float] | None:
        """(seconds since haproxy.cfg changed, seconds since the worker started), when known."""
        if None in (self.now, self.uptime, self.ticks, self.cfg_mtime, self.worker_start_ticks):
            return None
        assert self.now is not None and self.cfg_mtime is not None and self.uptime is not None
        assert self.worker_start_ticks is not None and self.ticks
        return self.now - self.cfg_mtime, self.uptime - self.worker_start_ticks / self.ticks

    def runtime_answer(self, query: str) -> str | None:
        """The runtime API's answer to one of RUNTIME_QUERIES, or None when it did not answer."""
        if self.runtime_exit != 0 or len(self.runtime_sections) != len(RUNTIME_QUERIES):
            return None
        return self.runtime_sections[RUNTIME_QUERIES.index(query)]

    def runtime_problem(self) -> str | None:
        if self.runtime_exit != 0:
            tail = " ".join(self.runtime_output.strip().splitlines()[-3:])
            return f"socat exited {self.runtime_exit}: {tail or 'no output'}"
        if len(self.runtime_sections) != len(RUNTIME_QUERIES):
            head = " ".join(self.runtime_output.strip().splitlines()[:3])
            return f"unexpected answer to {'; '.join(RUNTIME_QUERIES)!r}: {head[:200]!r}"
        return None


def parse_snapshot(stdout: str, files: list[str]) -> Snapshot:
    head, sep, runtime = stdout.partition("\nruntime ")
    lines = head.split("\n")
    if not sep or not lines or lines[0] != MAGIC:
        raise SnapshotError(f"not a bluegreen snapshot: {stdout[:120]!r}")
    exit_line, _, output = runtime.partition("\n")
    try:
        runtime_exit = int(exit_line)
    except ValueError:
        raise SnapshotError(f"bad runtime exit status {exit_line!r}") from None
    values: dict[str, str] = {}
    try:
        reads, cmdline, rest = parse_lines(lines[1:])
    except FileReadError as exc:
        raise SnapshotError(str(exc)) from None
    for line in rest:
        key, _, value = line.partition(" ")
        if key in ("now", "uptime", "ticks", "cfgmtime", "workerstart"):
            values[key] = value
        else:
            raise SnapshotError(f"unexpected line in snapshot: {line[:120]!r}")
    if len(reads) != len(files):
        raise SnapshotError(f"expected {len(files)} files, got {len(reads)}")
    output = output.removesuffix("\n")
    # HAProxy ends each answer of a `;` list with an empty line; none has one inside.
    sections = tuple(output.rstrip("\n").split("\n\n"))
    return Snapshot(
        now=_float(values.get("now")),
        uptime=_float(values.get("uptime")),
        ticks=_positive_int(values.get("ticks")),
        cfg_mtime=_float(values.get("cfgmtime")),
        worker_start_ticks=_positive_int(values.get("workerstart")),
        files=dict(zip(files, reads, strict=True)),
        runtime_exit=runtime_exit,
        runtime_output=output,
        runtime_sections=sections,
        cmdline=cmdline,
    )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "-") else None
    except ValueError:
        return None  # e.g. a `date` without %N: the age is then unknown, never invented


def _positive_int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    number = int(value)
    return number if number > 0 else None
