"""HAProxy's runtime view (stats socket and master CLI): the query and its parsers (the
comparison with haproxy.cfg is domain/runtime_compare.py).

Parsers are pure functions over the text HAProxy 2.6 prints; columns are found through each
command's header line, so extra or reordered columns in other versions are harmless. When the
text is not the expected output at all (e.g. `Permission denied.` or `Unknown command.`), the
parsers raise RuntimeOutputError quoting it, instead of returning an empty and misleading view.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from bluegreen.domain.command import Command


class RuntimeOutputError(ValueError):
    """The runtime API answered something other than the output of the command we sent."""


def runtime_command(socket_path: str, query: str, sudo: bool = False) -> Command:
    """Ask HAProxy's runtime API one question through socat (read-only queries only)."""
    return Command.of(
        "socat",
        "-t",
        "5",
        "stdio",
        f"unix-connect:{socket_path}",
        stdin=f"{query}\n".encode(),
        mutating=False,
        sudo=sudo,
    )


def _unexpected(command: str, text: str) -> RuntimeOutputError:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    said = f": {first[:120]!r}" if first else " (empty output)"
    return RuntimeOutputError(f"unexpected answer to `{command}`{said}")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "", "-") else None
    except ValueError:
        return None


def _text(value: str | None) -> str | None:
    return value if value not in (None, "") else None


# ---- show stat -----------------------------------------------------------------------------

STAT_TYPES: Final = {0: "frontend", 1: "backend", 2: "server", 3: "listener"}


@dataclass(frozen=True)
class StatRow:
    """One `show stat` line: a frontend, a backend (svname BACKEND) or one of its servers."""

    pxname: str
    svname: str
    status: str | None  # raw: UP, DOWN, "UP 1/3", "MAINT (via bk/srv)", "no check", OPEN ...
    weight: int | None  # effective weight (server), total weight (backend)
    uweight: int | None  # user weight, the one `set weight` changes (2.4+)
    act: int | None  # server: 1 when active; backend: number of active servers
    bck: int | None  # server: 1 when backup; backend: number of backup servers
    scur: int | None  # current sessions
    check_status: str | None  # L7OK, L4CON, L7STS ... ("* " in-progress marker removed)
    check_code: int | None
    check_desc: str | None
    last_chk: str | None
    tracked: str | None  # "backend/server" this server tracks
    throttle: int | None  # slowstart percentage while warming up
    type: int | None
    fields: Mapping[str, str] = field(compare=False, repr=False)  # every column, by name

    @property
    def kind(self) -> str:
        if self.type in STAT_TYPES:
            return STAT_TYPES[self.type]
        return {"FRONTEND": "frontend", "BACKEND": "backend"}.get(self.svname, "server")

    @property
    def is_server(self) -> bool:
        return self.kind == "server"

    @property
    def state(self) -> str:
        """The status without its detail: UP, DOWN, MAINT, DRAIN, NOLB, "no check", OPEN..."""
        return status_word(self.status)

    @property
    def status_detail(self) -> str | None:
        """What follows the state word: "1/3", "via bk/srv", "resolution", "agent"."""
        if not self.status or self.state == "no check":
            return None
        rest = self.status[len(self.state) :].strip().strip("()").strip()
        return rest or None


def status_word(status: str | None) -> str:
    if not status:
        return "unknown"
    if status.lower().startswith("no check"):
        return "no check"
    return re.split(r"[\s(]", status.strip(), maxsplit=1)[0].upper()


def parse_show_stat(text: str) -> tuple[StatRow, ...]:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _is_stat_header(line)), None)
    if start is None:
        raise _unexpected("show stat", text)
    names = [name.strip() for name in lines[start][1:].split(",")]
    rows: list[StatRow] = []
    body = [line for line in lines[start + 1 :] if line.strip()]
    for values in csv.reader(body):
        cells = {name: value for name, value in zip(names, values, strict=False) if name}
        rows.append(_stat_row(cells))
    return tuple(rows)


def _is_stat_header(line: str) -> bool:
    names = {name.strip() for name in line[1:].split(",")}
    return line.startswith("#") and {"pxname", "svname"} <= names


def _stat_row(cells: dict[str, str]) -> StatRow:
    check_status = _text(cells.get("check_status"))
    if check_status and check_status.startswith("* "):
        check_status = check_status[2:]
    return StatRow(
        pxname=cells.get("pxname", ""),
        svname=cells.get("svname", ""),
        status=_text(cells.get("status")),
        weight=_int(cells.get("weight")),
        uweight=_int(cells.get("uweight")),
        act=_int(cells.get("act")),
        bck=_int(cells.get("bck")),
        scur=_int(cells.get("scur")),
        check_status=check_status,
        check_code=_int(cells.get("check_code")),
        check_desc=_text(cells.get("check_desc")),
        last_chk=_text(cells.get("last_chk")),
        tracked=_text(cells.get("tracked")),
        throttle=_int(cells.get("throttle")),
        type=_int(cells.get("type")),
        fields=MappingProxyType(cells),
    )


# ---- show servers state --------------------------------------------------------------------

OP_STATES: Final = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
# srv_admin_state bits (HAProxy 2.6 include/haproxy/server-t.h).
ADMIN_FLAGS: Final = (
    (0x01, "FMAINT"),  # forced into maintenance (runtime API, or `disabled` with CMAINT)
    (0x02, "IMAINT"),  # inherited from a tracked server
    (0x04, "CMAINT"),  # `disabled` in the configuration it was loaded with
    (0x08, "FDRAIN"),  # forced into drain (runtime API)
    (0x10, "IDRAIN"),  # inherited drain
    (0x20, "RMAINT"),  # address resolution failed
    (0x40, "HMAINT"),  # FQDN changed from the runtime API
)
_MAINT_MASK: Final = 0x01 | 0x02 | 0x20  # HAProxy's SRV_ADMF_MAINT: CMAINT alone is not MAINT
_DRAIN_MASK: Final = 0x08 | 0x10


def op_state_word(value: int) -> str:
    return OP_STATES.get(value, f"unknown({value})")


def admin_state_words(value: int) -> tuple[str, ...]:
    return tuple(name for bit, name in ADMIN_FLAGS if value & bit)


@dataclass(frozen=True)
class ServerState:
    """One `show servers state` line."""

    backend_id: int | None
    backend: str
    server_id: int | None
    server: str
    addr: str | None
    op_state: int | None
    admin_state: int
    uweight: int | None  # current user weight
    iweight: int | None  # initial weight, from the configuration it was loaded with
    port: int | None
    fields: Mapping[str, str] = field(compare=False, repr=False)

    @property
    def op_state_name(self) -> str:
        return "unknown" if self.op_state is None else op_state_word(self.op_state)

    @property
    def admin_flags(self) -> tuple[str, ...]:
        return admin_state_words(self.admin_state)

    @property
    def in_maintenance(self) -> bool:
        return bool(self.admin_state & _MAINT_MASK)

    @property
    def draining(self) -> bool:
        return bool(self.admin_state & _DRAIN_MASK)


def parse_show_servers_state(text: str) -> tuple[ServerState, ...]:
    names: list[str] | None = None
    rows: list[ServerState] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.isdigit():  # blank, or the format version ("1")
            continue
        if line.startswith("#"):
            if "be_name" in line:
                names = line[1:].split()
            continue
        if names is None:
            raise _unexpected("show servers state", text)
        rows.append(_server_state(dict(zip(names, line.split(), strict=False))))
    if names is None:
        raise _unexpected("show servers state", text)
    return tuple(rows)


def _server_state(cells: dict[str, str]) -> ServerState:
    admin = cells.get("srv_admin_state", "0")
    try:
        admin_state = int(admin, 16) if admin.lower().startswith("0x") else int(admin)
    except ValueError:
        admin_state = 0
    return ServerState(
        backend_id=_int(cells.get("be_id")),
        backend=cells.get("be_name", ""),
        server_id=_int(cells.get("srv_id")),
        server=cells.get("srv_name", ""),
        addr=None if cells.get("srv_addr") in (None, "-") else cells["srv_addr"],
        op_state=_int(cells.get("srv_op_state")),
        admin_state=admin_state,
        uweight=_int(cells.get("srv_uweight")),
        iweight=_int(cells.get("srv_iweight")),
        port=_int(cells.get("srv_port")),
        fields=MappingProxyType(cells),
    )


# ---- show proc (master CLI) ----------------------------------------------------------------


@dataclass(frozen=True)
class ProcEntry:
    pid: int
    kind: str  # "master", "worker", or a program's name
    reloads: int | None
    uptime: str | None  # as printed: 0d00h02m07s
    version: str | None

    @property
    def uptime_s(self) -> int | None:
        match = re.fullmatch(r"(\d+)d(\d+)h(\d+)m(\d+)s", self.uptime or "")
        if not match:
            return None
        days, hours, minutes, seconds = (int(g) for g in match.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class ProcInfo:
    master: ProcEntry | None
    failed_reloads: int | None  # "N [failed: M]" on the master line (2.6+), else None
    workers: tuple[ProcEntry, ...]
    old_workers: tuple[ProcEntry, ...]  # from earlier reloads, still finishing connections
    programs: tuple[ProcEntry, ...]

    @property
    def master_reloads(self) -> int | None:
        return self.master.reloads if self.master else None

    @property
    def worker_pids(self) -> tuple[int, ...]:
        return tuple(w.pid for w in self.workers)

    @property
    def old_worker_pids(self) -> tuple[int, ...]:
        return tuple(w.pid for w in self.old_workers)


_FAILED = re.compile(r"(\d+)\s+\[failed:\s*(\d+)\]")
_WAS = re.compile(r"\[was:\s*(\d+)\]")  # old workers' relative PID before 2.5
_SECTIONS: Final = {
    "# workers": "workers",
    "# old workers": "old_workers",
    "# programs": "programs",
    "# old programs": "old_programs",
}


def parse_show_proc(text: str) -> ProcInfo:
    columns: list[str] | None = None
    section = "master"
    found: dict[str, list[ProcEntry]] = {name: [] for name in ("master", *_SECTIONS.values())}
    failed: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#<PID>"):
            columns = re.findall(r"<([^>]+)>", line)
            continue
        if line in _SECTIONS:
            section = _SECTIONS[line]
            continue
        if columns is None:
            raise _unexpected("show proc", text)
        if match := _FAILED.search(line):
            failed = int(match.group(2))
            line = _FAILED.sub(match.group(1), line, count=1)
        line = _WAS.sub(r"was:\1", line)
        entry = _proc_entry(columns, line.split())
        if entry is not None:
            found[section].append(entry)
    if columns is None:
        raise _unexpected("show proc", text)
    masters = found["master"]
    return ProcInfo(
        master=masters[0] if masters else None,
        failed_reloads=failed,
        workers=tuple(found["workers"]),
        old_workers=tuple(found["old_workers"]),
        programs=tuple(found["programs"]),
    )


def _proc_entry(columns: list[str], words: list[str]) -> ProcEntry | None:
    cells = dict(zip(columns, words, strict=False))
    pid = _int(cells.get("PID"))
    if pid is None:
        return None
    return ProcEntry(
        pid=pid,
        kind=cells.get("type", "?"),
        reloads=_int(cells.get("reloads")),
        uptime=_text(cells.get("uptime")),
        version=None if cells.get("version") == "-" else _text(cells.get("version")),
    )
