"""Routing analysis of server pools: every server of a colour's pool in its own backend, found by
its HAProxy name; anything else is uncertain, naming the servers; a switch moves only the
deciding line."""

from __future__ import annotations

from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.routing import RoutingAnalysis, ServerSpec, analyze_routing, plan_switch

BLUE = ServerSpec("blue", "10.92.3.24:3001")
GREEN_POOL = ServerSpec(
    "green",
    "10.92.3.22:3001",
    backend="theoshift_green",
    pool=(("green1", "10.92.3.22:3001"), ("green2", "10.92.3.27:3001")),
)

POOL_CFG = """\
frontend https_frontend
    bind *:80
    acl is_theoshift       hdr(host) -i theoshift.com
    acl is_theoshift_blue  hdr(host) -i blue.theoshift.com
    acl is_theoshift_green hdr(host) -i green.theoshift.com
    use_backend theoshift_green if is_theoshift          # LIVE
    use_backend theoshift_blue  if is_theoshift_blue     # preview, fixed
    use_backend theoshift_green if is_theoshift_green    # preview, fixed
    default_backend homepage

backend theoshift_blue
    server blue1 10.92.3.24:3001 check
backend theoshift_green
    balance roundrobin
    server green1 10.92.3.22:3001 check inter 5s
    server green2 10.92.3.27:3001 check inter 5s
backend homepage
    server web 10.92.3.40:80 check
"""


def analyse(text: str, green: ServerSpec = GREEN_POOL) -> RoutingAnalysis:
    return analyze_routing(parse(text), "https_frontend", (BLUE, green), rule="is_theoshift")


def test_a_pool_in_its_backend_is_certain_and_every_server_line_is_known() -> None:
    a = analyse(POOL_CFG)
    assert a.problems == ()
    assert (a.live, a.standby) == ("green", "blue")
    green = a.route("green")
    assert green.backend == "theoshift_green"
    assert [pool.server for pool in green.pool_lines] == ["green1", "green2"]
    assert [pool.line for pool in green.pool_lines] == [15, 16]


def test_switching_a_pool_colour_moves_only_the_deciding_line() -> None:
    cfg = parse(POOL_CFG)
    a = analyse(POOL_CFG)
    edit = plan_switch(cfg, a, "blue")
    assert edit.changed_lines == (6,)
    before, after = POOL_CFG.splitlines(), edit.text.splitlines()
    assert after[5] == "    use_backend theoshift_blue if is_theoshift          # LIVE"
    assert [n for n, (x, y) in enumerate(zip(before, after, strict=True)) if x != y] == [5]
    back = plan_switch(parse(edit.text), edit.analysis, "green")
    assert back.text == POOL_CFG


def test_a_pool_server_missing_from_the_backend_is_uncertain_naming_it() -> None:
    text = POOL_CFG.replace("    server green2 10.92.3.27:3001 check inter 5s\n", "")
    a = analyse(text)
    assert not a.certain
    assert any("green2" in p and "theoshift_green" in p for p in a.problems), a.problems


def test_a_backend_holding_servers_of_both_colours_is_uncertain() -> None:
    text = POOL_CFG.replace(
        "    server green2 10.92.3.27:3001 check inter 5s\n",
        "    server green2 10.92.3.27:3001 check inter 5s\n    server blue1 10.92.3.24:3001 check\n",
    )
    a = analyse(text)
    assert not a.certain
    assert any("blue1" in p and "both colours" in p for p in a.problems), a.problems


def test_one_shared_backend_for_a_pool_is_uncertain() -> None:
    text = POOL_CFG.replace("server blue1 10.92.3.24:3001 check\n", "").replace(
        "    server green2 10.92.3.27:3001 check inter 5s\n",
        "    server green2 10.92.3.27:3001 check inter 5s\n"
        "    server blue1 10.92.3.24:3001 check backup\n",
    )
    blue = ServerSpec("blue", "10.92.3.24:3001", backend="theoshift_green")
    a = analyze_routing(parse(text), "https_frontend", (blue, GREEN_POOL), rule="is_theoshift")
    assert not a.certain
    assert any("holds servers of both colours" in p for p in a.problems), a.problems


def test_a_server_not_in_the_pool_is_uncertain() -> None:
    text = POOL_CFG.replace(
        "    server green2 10.92.3.27:3001 check inter 5s\n",
        "    server green2 10.92.3.27:3001 check inter 5s\n    server green3 10.92.3.28:3001\n",
    )
    a = analyse(text)
    assert not a.certain
    assert any("green3" in p and "not in GREEN's pool" in p for p in a.problems), a.problems


def test_a_pool_server_at_another_address_or_disabled_is_uncertain() -> None:
    moved = analyse(POOL_CFG.replace("green2 10.92.3.27:3001", "green2 10.92.3.29:3001"))
    assert any("10.92.3.29:3001" in p and "green2" in p for p in moved.problems)
    off = analyse(
        POOL_CFG.replace("green2 10.92.3.27:3001 check", "green2 10.92.3.27:3001 disabled")
    )
    assert any("green2" in p and "disabled" in p for p in off.problems), off.problems
    assert not moved.certain and not off.certain


def test_a_pool_split_over_two_backends_is_uncertain() -> None:
    text = POOL_CFG.replace("    server green2 10.92.3.27:3001 check inter 5s\n", "").replace(
        "backend homepage\n", "backend other\n    server green2 10.92.3.27:3001\nbackend homepage\n"
    )
    green = ServerSpec("green", GREEN_POOL.address, pool=GREEN_POOL.pool)
    a = analyse(text, green)
    assert not a.certain
    assert any("split over several backends" in p for p in a.problems), a.problems
