"""What the load generator saw around a switch (`bench.switch`): the colour before it, waiting
until it settled, and the cut-over measured from the samples: time to 100% on the new LIVE,
failed requests and the outage."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bluegreen.lab.load import Load, Sample


def good(sample: Sample, color: str) -> bool:
    return sample.error is None and sample.color == color


def warm_color(load: Load, seconds: float = 0.5, timeout_s: float = 15.0) -> str:
    """Let the load run `seconds`, then the one colour that answered every request so far.
    Raises when requests failed or two colours answered (the round would measure nonsense)."""
    time.sleep(seconds)
    deadline = time.monotonic() + timeout_s
    while len(load.snapshot()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = load.snapshot()
    colors = {s.color for s in samples if s.error is None}
    errors = [s.error for s in samples if s.error]
    if errors or len(colors) != 1 or None in colors:
        raise RuntimeError(
            f"before the switch the frontend was not steady: {len(samples)} requests, colours "
            f"{sorted(str(c) for c in colors)}, errors {errors[:2]}"
        )
    return str(colors.pop())


def wait_settled(
    load: Load,
    color: str,
    since: float,
    after: float,
    quiet_s: float = 1.0,
    timeout_s: float = 30.0,
) -> bool:
    """Keep the load running until every request sent in the last `quiet_s` (and at least one) was
    answered by `color`, counting from `after` (the action's return) at the earliest."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples = [s for s in load.snapshot() if s.sent >= since]
        bad = [s.sent for s in samples if not good(s, color)]
        last_bad = max(bad, default=since)
        calm_from = max(last_bad, after)
        if any(s.sent > last_bad for s in samples) and time.monotonic() - calm_from >= quiet_s:
            return True
        time.sleep(0.05)
    return False


@dataclass
class Cutover:
    """What the load saw from the moment a switch started (t0) on."""

    new_color: str
    t0: float
    to_100_ms: float  # t0 -> the first request of the final run answered only by new_color
    reached_at: float  # monotonic instant of that first request (nan when never)
    window_end: float
    requests: int  # open at t0 or sent after it, sent before window_end
    failed: int  # of those, errors (refused, reset, timeouts, HTTP != 200)
    old_answers: int  # of those, answered by the old LIVE (fine before the cut-over)
    failed_outside: int  # errors of the round outside the window (should be none)
    outage_ms: float  # first failed request sent -> last failed request over; 0 when none
    errors: list[str] = field(default_factory=list)  # a few examples

    def to_json(self) -> dict[str, Any]:
        return {
            "new_color": self.new_color,
            "to_100_ms": None if math.isnan(self.to_100_ms) else round(self.to_100_ms, 1),
            "requests": self.requests,
            "failed": self.failed,
            "old_answers": self.old_answers,
            "failed_outside_window": self.failed_outside,
            "outage_ms": round(self.outage_ms, 1),
            "errors": self.errors,
        }


def cutover(samples: Sequence[Sample], t0: float, new_color: str, after: float) -> Cutover:
    """Time from t0 until 100% of the requests SENT through the frontend are answered by
    new_color: the send time of the first request after the last one that was not (an error or
    the old colour), minus t0. Requests are counted when still open at t0 and sent before the
    window's end: 1 s after the later of that instant and `after` (the action's return)."""
    ordered = sorted(samples, key=lambda s: s.sent)
    inside = [s for s in ordered if s.sent >= t0]
    last_bad = max((s.sent for s in inside if not good(s, new_color)), default=None)
    if last_bad is None:
        first = inside[0].sent if inside else math.nan
    else:
        later = [s.sent for s in inside if s.sent > last_bad]
        first = later[0] if later else math.nan
    to_100 = (first - t0) * 1000.0 if not math.isnan(first) else math.nan
    end = max(after, first if not math.isnan(first) else after) + 1.0
    # Counted: every request the switch could touch, i.e. still open at t0 (a request sent just
    # before t0 and cut by a restart is a failure of the switch) and sent before the end.
    window = [s for s in ordered if s.done >= t0 and s.sent <= end]
    failed = [s for s in window if s.error]
    outside = [s for s in ordered if s.error and not (s.done >= t0 and s.sent <= end)]
    examples = sorted({(s.error or "")[:120] for s in failed})[:3]
    outage = (max(s.done for s in failed) - min(s.sent for s in failed)) * 1000.0 if failed else 0.0
    return Cutover(
        new_color=new_color,
        t0=t0,
        to_100_ms=to_100,
        reached_at=first,
        window_end=end,
        requests=len(window),
        failed=len(failed),
        old_answers=sum(1 for s in window if s.error is None and s.color != new_color),
        failed_outside=len(outside),
        outage_ms=outage,
        errors=examples,
    )
