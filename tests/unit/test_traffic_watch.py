"""Requests per colour from `show stat`: the pure counters and rates, and the engine's readings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.unit.fake_hosts import APP, CFG_PATH, CONFIG_TOML, HP, FakeHosts, config
from tests.unit.test_runtime import STAT_HEADER, server_line, stat_line

from bluegreen import cli
from bluegreen.cli_traffic import traffic_line
from bluegreen.domain.runtime import parse_show_stat
from bluegreen.domain.traffic_stats import ColourCounters, per_second, servers_counters
from bluegreen.engine.context import Context
from bluegreen.engine.traffic_watch import sample, watch
from bluegreen.models_traffic import ColourTraffic, TrafficSample
from bluegreen.service import Service


def test_counters_come_from_each_colours_own_server_row() -> None:
    text = "\n".join([
        STAT_HEADER,
        stat_line(pxname="http-in", svname="FRONTEND", stot=900, rate=9, type=0),
        server_line("bk_blue", "blue", "UP", stot=700, rate=7),
        stat_line(pxname="bk_blue", svname="BACKEND", stot=700, rate=7, type=1),
        server_line("bk_green", "green", "UP", stot=200, rate=0),
        server_line("preview_green", "green", "UP", stot=55, rate=1),
    ])  # fmt: skip
    rows = parse_show_stat(text)
    counters = (
        servers_counters(rows, "blue", "bk_blue", ["blue"]),
        servers_counters(rows, "green", "bk_green", ["green"]),
    )
    assert counters == (
        ColourCounters("blue", "bk_blue", "blue", 700, 7),
        ColourCounters("green", "bk_green", "green", 200, 0),
    )


def test_a_server_missing_from_the_running_view_has_no_numbers() -> None:
    text = STAT_HEADER + "\n" + server_line("bk_blue", "blue", "UP", stot=1, rate=1)
    green = servers_counters(parse_show_stat(text), "green", "bk_green", ["green"])
    assert green.total is None and green.rate is None
    unrouted = servers_counters(parse_show_stat(text), "green", None, [])
    assert unrouted.total is None


def test_a_pools_counters_are_the_sum_of_its_servers() -> None:
    text = "\n".join([
        STAT_HEADER,
        server_line("bk_green", "green1", "UP", stot=200, rate=3),
        server_line("bk_green", "green2", "UP", stot=150, rate=2),
    ])  # fmt: skip
    rows = parse_show_stat(text)
    both = servers_counters(rows, "green", "bk_green", ["green1", "green2"])
    assert both == ColourCounters("green", "bk_green", "green1, green2", 350, 5)
    assert servers_counters(rows, "green", "bk_green", ["green1", "green3"]).total is None


def test_per_second_between_two_readings() -> None:
    assert per_second(100, 130, 2.0) == 15.0
    assert per_second(None, 130, 2.0) is None
    assert per_second(100, 130, 0.0) is None
    assert per_second(500, 3, 1.0) is None  # HAProxy restarted: counters began again


def at_times(lab: FakeHosts, *seconds: float) -> Context:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = iter(start + timedelta(seconds=s) for s in seconds)
    return Context(config=config(), runner=lab.runner, now=lambda: next(times))


def test_readings_follow_the_traffic_from_one_colour_to_the_other() -> None:
    lab = FakeHosts()
    ctx = at_times(lab, 0, 2, 4)
    lab.requests = {"blue": 1000, "green": 10}
    first = sample(ctx, APP)
    assert [(c.color, c.role, c.requests_total, c.per_second) for c in first.colours] == [
        ("blue", "LIVE", 1000, None), ("green", "STANDBY", 10, None)
    ]  # fmt: skip
    lab.requests = {"blue": 1040, "green": 10}
    second = sample(ctx, APP, first)
    assert [c.per_second for c in second.colours] == [20.0, 0.0]
    # The switch: haproxy.cfg now sends the app's users to GREEN, and the requests follow.
    cfg = (lab.runner.file(HP, CFG_PATH) or b"").replace(b"default_backend bk_blue",
                                                         b"default_backend bk_green")  # fmt: skip
    lab.runner.put_file(HP, CFG_PATH, cfg)
    lab.requests = {"blue": 1042, "green": 70}
    third = sample(ctx, APP, second)
    assert [(c.color, c.role, c.per_second) for c in third.colours] == [
        ("blue", "STANDBY", 1.0), ("green", "LIVE", 30.0)
    ]  # fmt: skip
    assert third.error is None


def test_an_unreadable_runtime_api_is_said_not_shown_as_zero() -> None:
    lab = FakeHosts()
    lab.master_cli_fails = True  # socat is refused
    reading = sample(at_times(lab, 0), APP)
    assert reading.error and "Permission denied" in reading.error
    assert all(c.requests_total is None and c.per_second is None for c in reading.colours)


def test_watch_hands_on_each_reading_with_rates() -> None:
    lab = FakeHosts()
    seen: list[TrafficSample] = []

    def on_sample(s: TrafficSample) -> None:
        seen.append(s)
        lab.requests["blue"] += 5

    watch(at_times(lab, 0, 1, 2), APP, on_sample, every_s=0, count=3)
    assert [s.colours[0].per_second for s in seen] == [None, 5.0, 5.0]


def test_bluegreen_watch_prints_a_line_per_reading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab = FakeHosts()
    lab.requests = {"blue": 100, "green": 0}
    monkeypatch.setattr(cli, "_service", lambda ctx: Service(config(), runner=lab.runner))
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG_TOML)
    shown = CliRunner().invoke(
        cli.main, ["--config", str(path), "watch", APP, "--count", "2", "--every", "0.2"]
    )
    assert shown.exit_code == 0, shown.output
    first, second = shown.output.splitlines()
    assert "BLUE LIVE" in first and "... req/s" in first  # nothing to compare with yet
    assert re.search(r"BLUE LIVE +0\.0 req/s .*GREEN STANDBY +0\.0 req/s", second), second


def test_the_bar_follows_the_rate() -> None:
    reading = TrafficSample(app=APP, at="2026-01-01T10:00:00+00:00", colours=[
        ColourTraffic(color="blue", role="STANDBY", requests_total=9, per_second=1.0),
        ColourTraffic(color="green", role="LIVE", requests_total=99, per_second=12.0),
    ])  # fmt: skip
    line = traffic_line(reading, scale=12.0)
    assert line.startswith("10:00:00  BLUE STANDBY ")
    assert "   1.0 req/s ##" + " " * 22 in line and "  12.0 req/s " + "#" * 24 in line
    unread = reading.model_copy(update={"error": "runtime API not read: \x1b[2J", "colours": []})
    assert traffic_line(unread, 1.0).endswith("! runtime API not read: \\x1b[2J")
