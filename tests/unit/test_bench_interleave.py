"""The benchmarks' round order: no arm may always run first (after an idle moment) or last."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from bench.common import Series, interleave


@pytest.mark.parametrize("arms", [2, 3, 4, 6])
def test_each_arm_runs_first_and_last_equally_often(arms: int) -> None:
    order: list[int] = []

    def arm(i: int) -> Callable[[], float]:
        def run() -> float:
            order.append(i)
            return 1.0

        return run

    series = [Series(f"arm {i}") for i in range(arms)]
    rounds = 4 * arms
    interleave(rounds, [(series[i], arm(i)) for i in range(arms)])
    rounds_run = [order[r * arms : (r + 1) * arms] for r in range(rounds)]
    assert all(sorted(r) == list(range(arms)) for r in rounds_run)
    firsts = Counter(r[0] for r in rounds_run)
    lasts = Counter(r[-1] for r in rounds_run)
    assert set(firsts.values()) == {4} and set(lasts.values()) == {4}, (firsts, lasts)
    assert all(s.n == rounds for s in series)


def test_a_failing_arm_records_a_failure_and_the_run_goes_on() -> None:
    good, bad = Series("good"), Series("bad")

    def boom() -> float:
        raise RuntimeError("refused")

    interleave(3, [(good, lambda: 2.0), (bad, boom)])
    assert good.n == 3 and bad.n == 0 and len(bad.failures) == 3


def test_two_arms_swap_places_so_each_goes_first_in_half_the_rounds() -> None:
    order: list[str] = []

    def arm(name: str) -> Callable[[], float]:
        def run() -> float:
            order.append(name)
            return 1.0

        return run

    interleave(8, [(Series("a"), arm("a")), (Series("b"), arm("b"))])
    assert order == list("abbabaababbabaab")


def test_progress_reports_every_arm_of_every_round() -> None:
    lines: list[str] = []

    def boom() -> float:
        raise RuntimeError("refused")

    interleave(
        2,
        [(Series("tool"), lambda: 12.4), (Series("base"), boom)],
        progress=lines.append,
        label="warm-up ",
    )
    assert lines == [
        "warm-up round 1/2 tool: 12 ms",
        "warm-up round 1/2 base: FAILED refused",
        "warm-up round 2/2 base: FAILED refused",
        "warm-up round 2/2 tool: 12 ms",
    ]
