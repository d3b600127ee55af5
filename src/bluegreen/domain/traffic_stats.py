"""Requests per colour from HAProxy's `show stat`: each colour's server counters, and the rate
between two readings. Pure: the engine reads the socket, this turns rows into numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bluegreen.domain.runtime import StatRow


@dataclass(frozen=True)
class ColourCounters:
    """One colour's server in `show stat`: `stot` (sessions since HAProxy started, the count
    the rate is computed from) and `rate` (HAProxy's own sessions in the last second)."""

    color: str
    backend: str | None
    server: str | None
    total: int | None  # None: the server is not in the running HAProxy's view
    rate: int | None


def colour_counters(
    rows: Sequence[StatRow], routes: Mapping[str, tuple[str | None, str | None]]
) -> tuple[ColourCounters, ...]:
    """`routes`: colour -> (backend, server) as haproxy.cfg names them."""
    by_name = {(row.pxname, row.svname): row for row in rows if row.is_server}
    counters = []
    for color, (backend, server) in routes.items():
        row = by_name.get((backend or "", server or ""))
        total = _int(row.fields.get("stot")) if row else None
        rate = _int(row.fields.get("rate")) if row else None
        counters.append(ColourCounters(color, backend, server, total, rate))
    return tuple(counters)


def per_second(before: int | None, after: int | None, elapsed_s: float) -> float | None:
    """Requests per second between two readings; None when either is missing or HAProxy was
    restarted in between (its counters start again from zero)."""
    if before is None or after is None or elapsed_s <= 0 or after < before:
        return None
    return (after - before) / elapsed_s


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
