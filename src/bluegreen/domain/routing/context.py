"""The working state of one analysis: the configuration, the app, and what was found so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from bluegreen.domain.haproxy_cfg import HAProxyConfig, Line, Section
from bluegreen.domain.routing.acl import Users, acl_hosts
from bluegreen.domain.routing.model import AppTraffic, RuleNote, ServerSpec, where
from bluegreen.domain.routing.sources import LoadedConfig


@dataclass
class Work:
    loaded: LoadedConfig
    frontend: str
    specs: tuple[ServerSpec, ...]
    traffic: AppTraffic
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    preview: list[RuleNote] = field(default_factory=list)
    others: list[RuleNote] = field(default_factory=list)

    @property
    def cfg(self) -> HAProxyConfig:
        return self.loaded.cfg

    def problem(self, sentence: str) -> None:
        if sentence not in self.problems:
            self.problems.append(sentence)

    def note(self, sentence: str) -> None:
        if sentence not in self.notes:
            self.notes.append(sentence)

    def at(self, number: int, *, opening: bool = False) -> str:
        """`line N` (`line N of FILE` with several files); `Line ...` to open a sentence."""
        found = where(self.loaded.locations, number)
        return "L" + found[1:] if opening else found

    def lines(self, numbers: list[int]) -> str:
        """`lines 3, 4` (or each with its file)."""
        if len(self.loaded.files) <= 1:
            return "lines " + ", ".join(str(n) for n in numbers)
        return ", ".join(self.at(n) for n in numbers)

    def users(self, section: Section) -> Users:
        """The app's users: the configured hosts, else the hosts its rule lists in the app's own
        frontend (another frontend may define an ACL of the same name differently)."""
        hosts = frozenset(h.lower() for h in self.traffic.hosts)
        if not hosts and self.traffic.rule is not None:
            own = self.cfg.find_sections(("frontend", "listen"), self.frontend)
            where = own[0] if len(own) == 1 else section
            hosts = acl_hosts(where, self.traffic.rule) or frozenset()
        return Users(self.traffic.rule, hosts)

    def keep(
        self,
        kind: str,
        line: Line,
        backend: str | None,
        color: str | None = None,
        hosts: tuple[str, ...] = (),
    ) -> None:
        """Record a routing line that is reported, never moved (kind: preview or other)."""
        note = RuleNote(line.number, line.text.strip(), backend, color, hosts)
        bucket = self.preview if kind == "preview" else self.others
        if note not in bucket:
            bucket.append(note)
