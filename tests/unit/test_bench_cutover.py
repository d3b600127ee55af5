"""The switch benchmark's headline numbers, computed from load samples around t0."""

from __future__ import annotations

import math

import pytest
from bench.cutover import cutover

from bluegreen.lab.load import Sample

T0 = 10.0


def test_time_to_100_failed_requests_and_outage() -> None:
    samples = [
        Sample(8.0, 8.5, None, "early"),  # over before t0: not the switch's failure
        Sample(9.0, 9.01, "blue", None),
        Sample(9.95, 10.05, None, "reset"),  # open at t0 and cut: the switch's failure
        Sample(10.1, 10.11, "blue", None),  # the old LIVE, before the cut-over
        Sample(10.2, 10.21, None, "refused"),
        Sample(10.3, 10.31, "green", None),  # from here on only the new LIVE answers
        Sample(10.4, 10.41, "green", None),
        Sample(11.6, 11.61, "green", None),  # after the window (1 s past the call's return)
    ]
    cut = cutover(samples, T0, "green", after=10.5)
    assert cut.to_100_ms == pytest.approx(300.0)
    assert cut.reached_at == 10.3 and cut.window_end == pytest.approx(11.5)
    assert (cut.requests, cut.failed, cut.old_answers, cut.failed_outside) == (5, 2, 1, 1)
    assert cut.outage_ms == pytest.approx(260.0)  # first failed sent -> last failed over
    assert cut.errors == ["refused", "reset"]


def test_never_all_on_the_new_live_has_no_time_to_100() -> None:
    samples = [Sample(10.1, 10.11, "green", None), Sample(10.2, 10.21, "blue", None)]
    cut = cutover(samples, T0, "green", after=10.3)
    assert math.isnan(cut.to_100_ms) and math.isnan(cut.reached_at)
    assert (cut.failed, cut.old_answers, cut.outage_ms) == (0, 1, 0.0)
    assert cut.to_json()["to_100_ms"] is None
