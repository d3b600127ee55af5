"""The scale-out benchmark's pure parts: the window in which the pair's frontends answered with
different colours, the pair's 0-failed verdict, and the labs it compares."""

from __future__ import annotations

import math

import pytest
from bench.scale_out import LABS, failed_verdict, nodes_apart_ms

from bluegreen.lab.load import Sample

T0 = 10.0
NODE1, NODE2 = "http://127.0.0.1:1/health", "http://127.0.0.1:2/health"


def test_nodes_apart_is_the_spread_of_each_frontends_cut_over() -> None:
    samples = [
        Sample(10.10, 10.11, "blue", None, NODE1),
        Sample(10.20, 10.21, "green", None, NODE1),  # node 1 all-new from 10.20
        Sample(10.30, 10.31, "green", None, NODE1),
        Sample(10.25, 10.26, "blue", None, NODE2),  # node 2 still on the old LIVE
        Sample(10.45, 10.46, "green", None, NODE2),  # node 2 all-new from 10.45
        Sample(10.50, 10.51, "green", None, NODE2),
    ]
    assert nodes_apart_ms(samples, T0, "green", returned=10.6) == pytest.approx(250.0)


def test_nodes_apart_needs_two_frontends_that_both_reached_the_new_live() -> None:
    one = [Sample(10.2, 10.21, "green", None, NODE1)]
    assert math.isnan(nodes_apart_ms(one, T0, "green", returned=10.3))
    never = [*one, Sample(10.3, 10.31, "blue", None, NODE2)]
    assert math.isnan(nodes_apart_ms(never, T0, "green", returned=10.4))


def test_the_pair_passes_only_with_rounds_and_no_failed_request() -> None:
    assert failed_verdict([0, 0, 0], 0) == "PASS (target: 0 failed)"
    assert failed_verdict([0, 1, 0], 0).startswith("FAIL")
    assert failed_verdict([0, 0], 1).startswith("FAIL")  # a round that raised is no pass
    assert failed_verdict([], 0).startswith("FAIL")  # nothing measured is no pass


def test_the_labs_compare_one_dimension_each_against_one_node_one_server() -> None:
    one, pair, pool = LABS["one"], LABS["pair"], LABS["pool"]
    assert (one.haproxy_nodes, one.servers_per_colour) == (1, 1)
    assert (pair.haproxy_nodes, pair.servers_per_colour) == (2, 1)
    assert (pool.haproxy_nodes, pool.servers_per_colour) == (1, 3)
