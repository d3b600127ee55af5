"""Requests per colour from HAProxy's `show stat`: each colour's server counters, and the rate
between two readings. Pure: the engine reads the socket, this turns rows into numbers."""

from __future__ import annotations

from collections.abc import Sequence
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


def servers_counters(
    rows: Sequence[StatRow], color: str, backend: str | None, servers: Sequence[str]
) -> ColourCounters:
    """A colour's counters: its server's, or the sum over every server of its pool (unknown
    when one of them is not in the running HAProxy's view)."""
    by_name = {(row.pxname, row.svname): row for row in rows if row.is_server}
    found = [by_name.get((backend or "", server)) for server in servers]
    rows_found = [row for row in found if row is not None]
    complete = bool(servers) and len(rows_found) == len(servers)
    totals = [_int(row.fields.get("stot")) for row in rows_found]
    rates = [_int(row.fields.get("rate")) for row in rows_found]
    return ColourCounters(
        color,
        backend,
        ", ".join(servers) or None,
        _sum(totals) if complete else None,
        _sum(rates) if complete else None,
    )


def _sum(values: Sequence[int | None]) -> int | None:
    return None if None in values else sum(v for v in values if v is not None)


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
