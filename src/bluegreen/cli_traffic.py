"""`bluegreen watch`: one line per reading, requests per second per colour with a bar, so the
traffic moving from one colour to the other during a switch is seen as it happens."""

from __future__ import annotations

from datetime import datetime

from bluegreen.domain.display_text import one_line
from bluegreen.models_traffic import ColourTraffic, TrafficSample

BAR_WIDTH = 24


def traffic_line(reading: TrafficSample, scale: float) -> str:
    """`scale`: the requests per second that fill a whole bar (the most seen so far)."""
    when = datetime.fromisoformat(reading.at).strftime("%H:%M:%S")
    parts = [_colour(c, scale) for c in reading.colours]
    line = f"{when}  " + "   ".join(parts)
    return line + (f"  ! {one_line(reading.error)}" if reading.error else "")


def _colour(c: ColourTraffic, scale: float) -> str:
    name = f"{one_line(c.color).upper()} {c.role or '?'}".ljust(14)
    if c.requests_total is None:
        return f"{name}     - req/s {'':{BAR_WIDTH}}"
    if c.per_second is None:  # the first reading, or HAProxy reloaded: its counters began again
        return f"{name}   ... req/s {'':{BAR_WIDTH}}"
    filled = round(BAR_WIDTH * c.per_second / scale) if scale > 0 else 0
    return f"{name}{c.per_second:6.1f} req/s {'#' * filled:{BAR_WIDTH}}"
