"""The `routing` resource's lines: the frontend, what decides LIVE, each colour's backend and
server, in file order, each with why it matters."""

from __future__ import annotations

from tests.unit.test_routing import read, specs

from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.routing import analyze_routing
from bluegreen.domain.routing_lines import routing_lines


def lines_of(name: str, frontend: str, blue: str, green: str) -> list[tuple[int, str, str]]:
    cfg = parse(read(name))
    analysis = analyze_routing(cfg, frontend, specs(blue, green))
    return [(line.number, line.text.strip(), line.why) for line in routing_lines(cfg, analysis)]


def test_a_backend_per_colour_names_the_deciding_default_backend() -> None:
    found = lines_of("lab_style1.cfg", "http-in", "blue:3001", "green:3001")
    assert [n for n, _, _ in found] == sorted(n for n, _, _ in found)
    deciding = [(text, why) for _, text, why in found if "decides LIVE" in why]
    assert deciding == [("default_backend bk_blue", "decides LIVE")]
    assert any(why == "frontend http-in" for _, _, why in found)
    whys = {why for _, _, why in found}
    assert {"BLUE's backend", "GREEN's backend", "BLUE's server", "GREEN's server"} <= whys


def test_a_shared_backend_names_the_server_lines_that_decide_the_roles() -> None:
    found = lines_of("shared_backup_style2.cfg", "www", "10.92.3.22:3001", "10.92.3.24:3001")
    by_text = {text: why for _, text, why in found}
    green = "server green 10.92.3.24:3001 check backup cookie g"
    assert by_text[green] == "decides LIVE, GREEN's server"  # its `backup` makes it STANDBY
    assert by_text["backend app"] == "BLUE's backend, GREEN's backend"
    assert not [text for text in by_text if text.startswith("server certbot")]  # not the app's
