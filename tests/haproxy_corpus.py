"""The corpus of real layouts (tests/data/haproxy): its cases, and each case's files in load order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bluegreen.domain.routing import LoadedConfig, ServerSpec, load, load_order

CORPUS = Path(__file__).resolve().parent / "data" / "haproxy"


@dataclass(frozen=True)
class Case:
    name: str
    files: tuple[str, ...]  # as HAProxy's -f arguments, relative to CORPUS
    frontend: str
    servers: tuple[ServerSpec, ...]
    rule: str | None
    hosts: tuple[str, ...]
    expect: dict[str, Any]

    def paths(self) -> tuple[str, ...]:
        """The files HAProxy reads for this case, in its load order (relative to CORPUS)."""
        listings = {
            arg: [p.name for p in (CORPUS / arg).iterdir()]
            for arg in self.files
            if (CORPUS / arg).is_dir()
        }
        return load_order(self.files, listings)

    def load(self) -> LoadedConfig:
        return load([(path, read(path)) for path in self.paths()])


def read(path: str) -> str:
    return (CORPUS / path).read_bytes().decode()


def cases() -> list[Case]:
    table = json.loads((CORPUS / "expected.json").read_text())
    out: list[Case] = []
    for raw in table["cases"]:
        servers = tuple(ServerSpec(color, address) for color, address in raw["servers"].items())
        out.append(
            Case(
                name=raw["name"],
                files=tuple(raw["files"]),
                frontend=raw["frontend"],
                servers=servers,
                rule=raw.get("rule"),
                hosts=tuple(raw.get("hosts", ())),
                expect=raw,
            )
        )
    return out
