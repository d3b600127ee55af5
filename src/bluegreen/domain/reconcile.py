"""Drift between haproxy.cfg (the truth about which server is LIVE) and the state file.

haproxy.cfg always wins. Status shows these drifts; the next write action (deploy or switch)
rewrites the state file with `state_file.repaired` / `updated_for_switch`, which clears them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bluegreen.domain.state_file import (
    LAST_SWITCH,
    LIVE,
    PROD,
    STANDBY,
    SWITCH_COUNT,
    StateReading,
    shown,
)

FILE: Final = "file"  # Drift.field for a missing or corrupt state file
REPAIR: Final = "haproxy.cfg wins; the next deploy or switch repairs the state file"
BLOCKED: Final = (
    "haproxy.cfg's routing is unclear, so the state file cannot be checked against it "
    "until haproxy.cfg is fixed"
)


@dataclass(frozen=True)
class Drift:
    field: str  # "file", "live", "standby", "prod", "lastSwitch" or "switchCount"
    state_file_value: str | None  # as written in the file (JSON), None when absent
    haproxy_value: str | None  # what haproxy.cfg implies, None when it says nothing
    message: str


def reconcile(
    truth_live: str | None, truth_standby: str | None, reading: StateReading
) -> list[Drift]:
    """Field-by-field drift; empty when the state file agrees with haproxy.cfg.

    truth_live / truth_standby: what haproxy.cfg routes (None when its routing is ambiguous).
    """
    known = truth_live is not None and truth_standby is not None
    if reading.status in ("missing", "corrupt"):
        truth = f"haproxy.cfg says LIVE is {truth_live} and STANDBY is {truth_standby}; "
        tail = truth + REPAIR if known else BLOCKED
        return [Drift(FILE, None, None, f"{reading.message}; {tail}")]
    expected = {PROD: truth_live, LIVE: truth_live, STANDBY: truth_standby}
    drifts = [
        drift
        for key in (LIVE, STANDBY, PROD)
        if (drift := _color_drift(key, expected[key], reading)) is not None
    ]
    for key in (LAST_SWITCH, SWITCH_COUNT):
        problem = reading.problem(key)
        if problem is not None:
            message = f"{problem.message}; the next deploy or switch rewrites it"
            drifts.append(Drift(key, shown(problem.value), None, message))
    return drifts


def _color_drift(key: str, truth: str | None, reading: StateReading) -> Drift | None:
    if truth is None:
        return None  # haproxy.cfg is ambiguous: nothing to compare with (reported elsewhere)
    found = reading.state.color(key)
    if found == truth:
        return None
    problem = reading.problem(key)
    if problem is not None:  # absent or malformed
        document = reading.state.document
        value = shown(document[key]) if key in document else None
        said = problem.message
    else:
        value = found
        said = f"the state file says {key} is {found}"
    role = "LIVE" if key != STANDBY else "STANDBY"
    why = " (prod names the LIVE server)" if key == PROD else ""
    message = f"{said}, but haproxy.cfg makes {truth} {role}{why}; {REPAIR}"
    return Drift(key, value, truth, message)
