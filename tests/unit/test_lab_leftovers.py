"""Leftovers of a lab are removed by label, and by name only when they carry no other lab's
label (Docker SDK faked)."""

from __future__ import annotations

import re
from pathlib import Path

from bluegreen.lab.controller import LABEL, Lab


class _Container:
    def __init__(self, name: str, labels: dict[str, str]) -> None:
        self.name, self.labels, self.id, self.removed = name, labels, name, False

    def remove(self, force: bool, v: bool) -> None:
        self.removed = True


class _Docker:
    """What remove_leftovers asks of the Docker SDK: containers by label or name, networks."""

    def __init__(self, containers: list[_Container]) -> None:
        self.all = containers
        self.containers, self.networks = self, self

    def list(self, all: bool = False, filters: dict[str, str] | None = None,
             names: list[str] | None = None) -> list[_Container]:  # fmt: skip
        if names is not None:
            return []  # networks: none left
        key, value = next(iter((filters or {}).items()))
        if key == "label":
            label, prefix = value.split("=")
            return [c for c in self.all if c.labels.get(label) == prefix]
        return [c for c in self.all if re.match(value, c.name)]


def test_removing_leftovers_spares_a_lab_whose_prefix_starts_with_this_one(tmp_path: Path) -> None:
    """`bg-h2` and `bg-h2-shared` are two labs of one test session: bringing `bg-h2` up again
    removed the shared lab's containers (their names start with `bg-h2-`), which then refused
    every SSH connection."""
    ours = _Container("bg-h2-haproxy", {LABEL: "bg-h2"})
    unlabelled = _Container("bg-h2-blue", {})  # a leftover from before labels
    other = _Container("bg-h2-shared-haproxy", {LABEL: "bg-h2-shared"})
    lab = Lab("bg-h2", state_dir=tmp_path)
    lab._client = _Docker([ours, unlabelled, other])
    assert lab.remove_leftovers(lambda _: None) == 2
    assert ours.removed and unlabelled.removed and not other.removed
