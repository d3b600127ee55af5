"""Where to test a colour now: status reads haproxy.cfg's preview rules (the Host names each
colour's fixed rule routes, with FILE:LINE) and the frontend's address, and gives each server a
curl through the frontend with its preview Host, or straight at its address when the cfg has
none (and says so). The routing notes ride along. Fake runner, the lab's shared cfg."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.test_display_text import cli_console
from tests.unit.test_status_engine import CFG, HP, Hosts, app, make_config

from bluegreen.cli_render import print_status
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.preview import preview_command, public_frontend_url, ssh_host
from bluegreen.domain.routing.acl import rule_hosts
from bluegreen.domain.switch_commands import frontend_bind
from bluegreen.engine.status import get_status
from bluegreen.errors import ConfigError
from bluegreen.lab.images import docker_dir
from bluegreen.mcp_text import status_text
from bluegreen.models import PreviewRoute

SHARED = (docker_dir() / "haproxy" / "shared.cfg").read_text()
PATH = "/etc/haproxy/haproxy.cfg"


def theoshift(**changes: Any) -> dict[str, Any]:
    return {
        **app("/var/lib/haproxy/theoshift.json"),
        "frontend": "https_frontend",
        "rule": "is_theoshift",
        "hosts": ["theoshift.com"],
        **changes,
    }


def line_of(text: str, cfg: str = SHARED) -> int:
    return next(n for n, line in enumerate(cfg.splitlines(), 1) if line.strip() == text)


def test_each_colour_gets_its_preview_host_and_the_line_that_routes_it() -> None:
    hosts = Hosts({PATH: SHARED.encode()})
    status = get_status(hosts.ctx(make_config(theoshift=theoshift())), "theoshift")
    assert status.certain and status.live and status.standby
    assert (status.live.color, status.standby.color) == ("blue", "green")
    green_rule = "use_backend theoshift_green if is_theoshift_green"
    assert status.standby.preview == [
        PreviewRoute(hosts=["green.theoshift.com"], line=f"{PATH}:{line_of(green_rule)}",
                     text=green_rule)
    ]  # fmt: skip
    assert status.live.preview[0].hosts == ["blue.theoshift.com"]
    # `bind *:80` on the HAProxy host, reached over ssh as "haproxy".
    assert status.routing.frontend_url == "http://haproxy:80"
    assert status.standby.preview_command == (
        "curl -H 'Host: green.theoshift.com' http://haproxy:80/"
    )
    assert status.standby.preview_note == (
        f"through the frontend with its preview Host ({PATH}:{line_of(green_rule)})"
    )
    assert status.live.preview_command == "curl -H 'Host: blue.theoshift.com' http://haproxy:80/"


def test_a_configured_frontend_url_is_where_people_reach_it() -> None:
    hosts = Hosts({PATH: SHARED.encode()})
    config = make_config(theoshift=theoshift(frontend_url="http://10.92.3.33/"))
    status = get_status(hosts.ctx(config), "theoshift")
    assert status.routing.frontend_url == "http://10.92.3.33"
    assert status.standby and status.standby.preview_command == (
        "curl -H 'Host: green.theoshift.com' http://10.92.3.33/"
    )


def test_without_a_preview_rule_the_colour_is_reached_at_its_address_and_status_says_so() -> None:
    hosts = Hosts({PATH: CFG})
    status = get_status(hosts.ctx(make_config(a=app("/var/lib/haproxy/a.json"))), "a")
    assert status.standby and status.standby.color == "green"
    assert status.standby.preview == []
    assert status.standby.preview_command == "curl http://green:3001/"
    assert status.standby.preview_note == (
        "straight at its address, as HAProxy reaches it (no preview rule with a Host in "
        "haproxy.cfg)"
    )


def test_routing_notes_reach_the_status() -> None:
    hosts = Hosts({PATH: SHARED.rstrip("\n").encode()})  # no final newline: a note, not a problem
    status = get_status(hosts.ctx(make_config(theoshift=theoshift())), "theoshift")
    assert status.certain
    assert any("does not end with a newline" in note for note in status.routing.notes)
    assert not any("newline" in problem for problem in status.problems)


@pytest.mark.parametrize(
    ("condition", "hosts"),
    [
        ("if is_theoshift_green", ("green.theoshift.com",)),
        ("if { hdr(host) -i a.example B.example }", ("a.example", "b.example")),
        ("if is_theoshift_blue || is_theoshift_green", ("blue.theoshift.com",
                                                        "green.theoshift.com")),
        ("if !is_theoshift_green", ()),  # every Host but one: no Host to send
        ("if is_theoshift_green is_theoshift_blue", ()),  # AND: not a Host list
        ("if { path_beg /green }", ()),
        ("unless is_theoshift_green", ()),
    ],
)  # fmt: skip
def test_the_hosts_of_a_preview_rule_are_read_only_from_an_exact_host_list(
    condition: str, hosts: tuple[str, ...]
) -> None:
    cfg = parse(SHARED.replace("use_backend theoshift_green if is_theoshift_green",
                               f"use_backend theoshift_green {condition}"))  # fmt: skip
    front = cfg.section("frontend", "https_frontend")
    assert front is not None
    line = next(x for x in front.directives("use_backend") if condition in x.text)
    assert rule_hosts(front, line.condition) == hosts


def test_the_frontend_address_from_its_bind() -> None:
    assert ssh_host("root@10.92.3.26:2222") == "10.92.3.26"
    assert ssh_host("haproxy") == "haproxy"
    assert ssh_host("ops@[fd00::1]:22") == "[fd00::1]"
    explicit = parse(SHARED.replace("bind *:80", "bind 10.92.3.33:8080 ssl crt /x.pem"))
    assert public_frontend_url(None, frontend_bind(explicit, "https_frontend"), HP) == (
        "https://10.92.3.33:8080"
    )
    assert public_frontend_url(None, frontend_bind(parse(SHARED), "nope"), HP) is None
    reach = preview_command(None, ["green.theoshift.com"], f"{PATH}:9", "green:3001")
    assert (reach.command, reach.note) == (
        "curl http://green:3001/",
        "straight at its address, as HAProxy reaches it (no frontend address in haproxy.cfg)",
    )
    # Host names come from haproxy.cfg: quoted for the shell, never spliced.
    assert preview_command("http://h", ["a;rm -rf /"], "x", "g:1").command == (
        "curl -H 'Host: a;rm -rf /' http://h/"
    )


@pytest.mark.parametrize("url", ["10.92.3.33", "http://h/path", "ftp://h", "http://h:99999"])
def test_a_bad_frontend_url_is_refused_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError, match=r"apps\.theoshift\.frontend_url: expected http://"):
        make_config(theoshift=theoshift(frontend_url=url))


def test_cli_and_mcp_status_show_how_to_test_each_colour() -> None:
    hosts = Hosts({PATH: SHARED.encode()})
    status = get_status(hosts.ctx(make_config(theoshift=theoshift())), "theoshift")
    console, buffer = cli_console()
    print_status(console, status)
    shown = buffer.getvalue()
    assert "test GREEN now: curl -H 'Host: green.theoshift.com' http://haproxy:80/" in shown
    assert "test BLUE now: curl -H 'Host: blue.theoshift.com' http://haproxy:80/" in shown
    assert f"preview GREEN: green.theoshift.com ({PATH}:36)" in shown
    assert f"Preview GREEN: green.theoshift.com ({PATH}:36)" in status_text(status)
    assert (
        "Test STANDBY GREEN before switching with `curl -H 'Host: green.theoshift.com' "
        "http://haproxy:80/` (through the frontend with its preview Host" in status_text(status)
    )
