"""The running HAProxy process compared with haproxy.cfg on disk (status' third witness): which
server the running worker treats differently from the file (maintenance or weight set by hand, a
cfg edited and not reloaded), from the runtime parsers of domain/runtime.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bluegreen.domain.runtime import (
    ProcInfo,
    ServerState,
    StatRow,
)

NOT_RELOADED: Final = "haproxy.cfg was changed and not reloaded"
BY_HAND: Final = "set by hand on the runtime API"


@dataclass(frozen=True)
class CfgServer:
    """What haproxy.cfg on disk says about one colour's server (filled from the cfg model)."""

    color: str
    backend: str
    server: str
    disabled: bool = False
    backup: bool = False
    weight: int | None = None  # None: no `weight` keyword, so HAProxy's default of 1
    routed: bool = False  # haproxy.cfg sends user traffic here: this colour is LIVE

    @property
    def effective_weight(self) -> int:
        return 1 if self.weight is None else self.weight

    @property
    def label(self) -> str:
        live = ", LIVE" if self.routed else ""
        return f"{self.color} ({self.backend}/{self.server}{live})"


FindingKind = Literal["disagreement", "health", "info"]


@dataclass(frozen=True)
class RuntimeFinding:
    kind: FindingKind  # disagreement: process != file; health: checks; info: worth knowing
    color: str | None  # None for process-wide findings
    message: str


@dataclass(frozen=True)
class RuntimeReport:
    findings: tuple[RuntimeFinding, ...] = ()

    def _messages(self, kind: FindingKind) -> tuple[str, ...]:
        return tuple(f.message for f in self.findings if f.kind == kind)

    @property
    def disagreements(self) -> tuple[str, ...]:
        return self._messages("disagreement")

    @property
    def health(self) -> tuple[str, ...]:
        return self._messages("health")

    @property
    def info(self) -> tuple[str, ...]:
        return self._messages("info")

    @property
    def in_sync(self) -> bool:
        return not self.disagreements


def runtime_disagreements(
    cfg_servers: Sequence[CfgServer],
    stats: Sequence[StatRow] | None = None,
    servers_state: Sequence[ServerState] | None = None,
    proc: ProcInfo | None = None,
) -> RuntimeReport:
    """Where the running HAProxy disagrees with haproxy.cfg on disk, plus health facts.

    Pass whatever was fetched: `show servers state` tells hand-made changes from unreloaded
    edits precisely (admin flags, initial vs user weight); `show stat` alone gives the same
    findings with "by hand, or not reloaded" wording, plus health-check results.
    """
    findings: list[RuntimeFinding] = []
    for cfg in cfg_servers:
        findings += _ServerCheck(cfg, stats, servers_state).run()
    if proc is not None:
        findings += _proc_findings(proc)
    return RuntimeReport(tuple(findings))


class _ServerCheck:
    def __init__(
        self,
        cfg: CfgServer,
        stats: Sequence[StatRow] | None,
        states: Sequence[ServerState] | None,
    ) -> None:
        self.cfg = cfg
        self.stats = stats
        self.states = states
        self.row = next(
            (
                r
                for r in stats or ()
                if r.pxname == cfg.backend and r.svname == cfg.server and r.is_server
            ),
            None,
        )
        self.state = next(
            (s for s in states or () if s.backend == cfg.backend and s.server == cfg.server),
            None,
        )
        self.out: list[RuntimeFinding] = []

    def add(self, kind: FindingKind, text: str) -> None:
        self.out.append(RuntimeFinding(kind, self.cfg.color, f"{self.cfg.label} {text}"))

    def run(self) -> list[RuntimeFinding]:
        if self.stats is None and self.states is None:
            return []
        if self._missing():
            return self.out
        if self.state is not None:
            self._admin_from_flags(self.state)
        elif self.row is not None:
            self._admin_from_status(self.row)
        self._weight()
        self._backup()
        self._health()
        return self.out

    def _missing(self) -> bool:
        cfg = self.cfg
        if self.stats is not None and self.row is None:
            if not any(r.pxname == cfg.backend for r in self.stats):
                self.add(
                    "disagreement",
                    f"is missing at runtime: haproxy.cfg defines backend {cfg.backend}, "
                    f"the running HAProxy has no such backend; {NOT_RELOADED}",
                )
            else:
                self.add(
                    "disagreement",
                    f"is missing at runtime: backend {cfg.backend} has no server {cfg.server} "
                    f"in the running HAProxy; {NOT_RELOADED}",
                )
            return True
        if self.stats is None and self.state is None:
            self.add(
                "disagreement",
                f"is missing at runtime: the running HAProxy has no server "
                f"{cfg.backend}/{cfg.server}; {NOT_RELOADED}",
            )
            return True
        return False

    def _admin_from_flags(self, state: ServerState) -> None:
        flags = set(state.admin_flags)
        if not self.cfg.disabled:
            if "CMAINT" in flags:
                self.add(
                    "disagreement",
                    f"was loaded with `disabled`, which haproxy.cfg no longer has; {NOT_RELOADED}",
                )
            elif "FMAINT" in flags:
                self.add(
                    "disagreement",
                    f"is in maintenance (MAINT), {BY_HAND}, while haproxy.cfg enables it",
                )
        elif "CMAINT" not in flags:
            self.add(
                "disagreement",
                f"is `disabled` in haproxy.cfg, but the running HAProxy loaded it enabled; "
                f"{NOT_RELOADED}",
            )
        elif not state.in_maintenance:
            self.add(
                "disagreement",
                "is `disabled` in haproxy.cfg, but was taken out of maintenance by hand "
                "on the runtime API",
            )
        if "IMAINT" in flags:
            self.add("health", "is in maintenance because the server it tracks is")
        if "RMAINT" in flags:
            self.add("health", "is in maintenance because its address does not resolve (DNS)")
        if "HMAINT" in flags:
            self.add("info", "had its FQDN changed at runtime (runtime API or DNS)")
        if "FDRAIN" in flags:
            self.add(
                "disagreement",
                f"is draining (DRAIN), {BY_HAND}, while haproxy.cfg keeps it in service",
            )
        if "IDRAIN" in flags:
            self.add("health", "is draining because the server it tracks is")

    def _admin_from_status(self, row: StatRow) -> None:
        word, detail = row.state, row.status_detail or ""
        maint = word == "MAINT"
        if maint and detail.startswith("via"):
            tracked = detail[3:].strip()
            self.add("health", f"is in maintenance because the server it tracks ({tracked}) is")
        elif maint and detail == "resolution":
            self.add("health", "is in maintenance because its address does not resolve (DNS)")
        elif maint and not self.cfg.disabled:
            self.add(
                "disagreement",
                f"is in maintenance (MAINT) while haproxy.cfg enables it: {BY_HAND}, "
                f"or {NOT_RELOADED}",
            )
        elif not maint and self.cfg.disabled:
            self.add(
                "disagreement",
                f"is `disabled` in haproxy.cfg but in service at runtime ({row.status}): "
                f"enabled by hand on the runtime API, or {NOT_RELOADED}",
            )
        if word == "DRAIN":
            if detail == "agent":
                self.add("health", "is draining (DRAIN) at its agent check's request")
            elif row.tracked:
                self.add("health", f"is draining because the server it tracks ({row.tracked}) is")
            else:
                self.add(
                    "disagreement",
                    f"is draining (DRAIN), {BY_HAND}, while haproxy.cfg keeps it in service",
                )

    def _weight(self) -> None:
        expected = self.cfg.effective_weight
        state, row = self.state, self.row
        if state is not None and state.uweight is not None and state.iweight is not None:
            if state.iweight != expected:
                self.add(
                    "disagreement",
                    f"has weight {expected} in haproxy.cfg, but the running HAProxy loaded "
                    f"weight {state.iweight}; {NOT_RELOADED}",
                )
            elif state.uweight != state.iweight:
                self.add(
                    "disagreement",
                    f"has weight {state.uweight} at runtime, {BY_HAND}; "
                    f"haproxy.cfg says {expected}",
                )
            return
        if row is None:
            return
        # uweight (2.4+) is the user weight itself; `weight` is scaled down during slowstart.
        actual = row.uweight if row.uweight is not None else None
        if actual is None and row.throttle is None:
            actual = row.weight
        if actual is not None and actual != expected:
            self.add(
                "disagreement",
                f"has weight {actual} at runtime but {expected} in haproxy.cfg: {BY_HAND}, "
                f"or {NOT_RELOADED}",
            )

    def _backup(self) -> None:
        row = self.row
        if row is None or row.bck is None or bool(row.bck) == self.cfg.backup:
            return
        runtime = "a backup" if row.bck else "an active"
        on_disk = "a backup" if self.cfg.backup else "an active"
        self.add(
            "disagreement",
            f"is {runtime} server at runtime but {on_disk} one in haproxy.cfg; {NOT_RELOADED}",
        )

    def _health(self) -> None:
        row, state = self.row, self.state
        if row is None:
            if state is not None and state.op_state == 0 and not state.in_maintenance:
                self.add("health", "is stopped (DOWN) at runtime")
            return
        word, detail = row.state, row.status_detail
        if word == "DOWN":
            if detail == "agent":
                self.add("health", "is DOWN: its agent check fails")
            elif detail:
                self.add("health", f"is DOWN, coming back: {detail} of the checks needed passed")
            else:
                self.add("health", f"is DOWN by health check{_check_summary(row)}")
        elif word == "UP" and detail:
            self.add("health", f"is UP but its latest health checks failed ({detail})")
        elif word == "NOLB":
            self.add(
                "health",
                "is soft-stopped (NOLB): its health check asks for no new traffic",
            )


def _check_summary(row: StatRow) -> str:
    parts = [p for p in (row.check_status, row.check_code and str(row.check_code)) if p]
    words = " ".join(parts)
    desc = row.last_chk or row.check_desc
    if words and desc:
        return f": {words} ({desc})"
    return f": {words or desc}" if (words or desc) else ""


def _proc_findings(proc: ProcInfo) -> list[RuntimeFinding]:
    out: list[RuntimeFinding] = []
    if proc.failed_reloads:
        out.append(
            RuntimeFinding(
                "disagreement",
                None,
                f"the HAProxy master counts {proc.failed_reloads} failed reload(s): if the "
                "latest reload failed, HAProxy still runs an older configuration than "
                "haproxy.cfg on disk (`haproxy -c -f` says why)",
            )
        )
    if proc.master is not None and not proc.workers:
        out.append(
            RuntimeFinding("health", None, "the HAProxy master has no current worker process")
        )
    if proc.old_workers:
        pids = ", ".join(str(p) for p in proc.old_worker_pids)
        out.append(
            RuntimeFinding(
                "info",
                None,
                f"{len(proc.old_workers)} HAProxy worker(s) from earlier reloads are still "
                f"finishing their connections (pid {pids})",
            )
        )
    return out
