"""Apps on a frontend shared by Host: the config names the app's rule and Host(s) and per-server
values; routing, deploy and the traffic checks use them (fake runner, the lab's shared cfg)."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from tests.unit.fake_hosts import serve_cfg_reads
from tests.unit.test_deploy import BLUE, GREEN, HP, FakeDeployHosts, make_config

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.config import parse_config
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.probe import http_get_request, parse_http_url, url_command
from bluegreen.engine.context import Context
from bluegreen.engine.status import app_routing
from bluegreen.engine.status_reads import read_cfg
from bluegreen.engine.traffic import verify
from bluegreen.errors import ConfigError, TrafficCheckFailed
from bluegreen.lab.controller import HostInfo, LabInfo
from bluegreen.lab.images import docker_dir
from bluegreen.lab.layouts import SHARED_APPS, SHARED_FRONTEND, render_config
from bluegreen.transport.fake import FakeRunner

SHARED_CFG = (docker_dir() / "haproxy" / "shared.cfg").read_text()
THEOSHIFT: dict[str, Any] = {
    "frontend": SHARED_FRONTEND,
    "rule": "is_theoshift",
    "hosts": ["theoshift.com"],
    "restart": "supervisorctl restart theoshift-blue",
    "servers": {
        "blue": {"ssh": BLUE, "address": "blue:3001"},
        "green": {
            "ssh": GREEN,
            "address": "green:3001",
            "restart": "supervisorctl restart theoshift-green",
            "log_file": "/var/log/theoshift-green.log",
            "branch": "release",
        },
    },
}


def theoshift(**changes: Any) -> Any:
    return make_config(**{**THEOSHIFT, **changes})


# ---- config ---------------------------------------------------------------------------------


def test_an_app_names_its_rule_hosts_and_per_server_values() -> None:
    app = theoshift().apps["shop"]
    assert (app.rule, app.hosts, app.host_header) == (
        "is_theoshift",
        ("theoshift.com",),
        "theoshift.com",
    )
    blue, green = app.on("blue"), app.on("green")
    assert (blue.restart, blue.log_file, blue.branch) == (
        "supervisorctl restart theoshift-blue", "/var/log/shop.log", "main",
    )  # fmt: skip
    assert (green.restart, green.log_file, green.branch, green.app_dir) == (
        "supervisorctl restart theoshift-green", "/var/log/theoshift-green.log", "release",
        "/opt/shop",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("hosts", ["theoshift.com\r\nX-Evil: 1"], "apps.shop.hosts[0]: expected a host name"),
        ("hosts", ["-bad.example"], "apps.shop.hosts[0]: expected a host name"),
        ("rule", "is theoshift", "apps.shop.rule: expected an HAProxy name"),
    ],
)
def test_bad_rule_or_host_is_refused_naming_the_key(
    where: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError, match="problem") as caught:
        theoshift(**{where: value})
    assert message in caught.value.message


def test_an_unknown_key_in_a_server_section_is_named() -> None:
    servers = {
        "blue": {"ssh": BLUE, "address": "blue:3001", "restrat": "x"},
        "green": {"ssh": GREEN, "address": "green:3001"},
    }
    with pytest.raises(ConfigError) as caught:
        theoshift(servers=servers)
    assert "apps.shop.servers.blue.restrat: unknown key (did you mean 'restart'?)" in (
        caught.value.message
    )


def test_the_shared_lab_config_names_each_app_s_rule_host_and_green_program() -> None:
    hosts = {role: HostInfo(container=role, ssh=f"127.0.0.1:{port}")
             for role, port in (("haproxy", 2200), ("blue", 2201), ("green", 2202))}  # fmt: skip
    info = LabInfo("p", "net", "http://127.0.0.1:1", hosts, "/c", "/s", "0" * 40, layout="shared")
    config = parse_config(render_config(info))
    assert sorted(config.apps) == ["ldc-tools", "theoshift"]
    for lab_app in SHARED_APPS:
        app = config.apps[lab_app.name]
        assert (app.frontend, app.rule, app.hosts, app.frontend_url) == (
            SHARED_FRONTEND,
            lab_app.rule,
            (lab_app.host,),
            "http://127.0.0.1:1",  # where the lab publishes the frontend
        )
        for color in ("blue", "green"):
            assert app.on(color).restart == f"supervisorctl restart {lab_app.name}-{color}"
            assert app.on(color).log_file == f"/var/log/{lab_app.name}-{color}.log"


# ---- routing and deploy on the shared frontend ----------------------------------------------


def test_each_lab_app_is_routed_certainly_by_its_own_rule() -> None:
    for lab_app in SHARED_APPS:
        servers = {
            color: {"ssh": f"root@{color}", "address": f"{color}:{lab_app.port}"}
            for color in ("blue", "green")
        }
        app = make_config(
            frontend=SHARED_FRONTEND, rule=lab_app.rule, hosts=[lab_app.host], servers=servers
        ).apps["shop"]
        analysis = app_routing(parse(SHARED_CFG), app)
        assert (analysis.certain, analysis.live) == (True, "blue"), analysis.problems
        # Without its rule the shared frontend cannot be answered for the app.
        bare = app.model_copy(update={"rule": None, "hosts": ()})
        assert not app_routing(parse(SHARED_CFG), bare).certain


def test_deploy_restarts_standby_with_its_own_command_and_branch() -> None:
    lab = FakeDeployHosts(SHARED_CFG)
    lab.fake.on(dc.resolve_command("/opt/shop", "release"), host=GREEN, stdout="2" * 40 + "\n")
    lab.script_defaults()
    result = lab.deploy(theoshift())
    assert result.ok, result.error
    assert (result.color, result.ref) == ("green", "release")
    green = lab.lines(GREEN)
    assert "sh -c 'cd /opt/shop && supervisorctl restart theoshift-green'" in green
    assert not any("theoshift-blue" in line for line in green)
    assert lab.fake.calls_to(BLUE) == []


def test_dry_run_plans_standby_s_own_restart() -> None:
    lab = FakeDeployHosts(
        SHARED_CFG.replace("theoshift_blue if is_theoshift\n", "theoshift_green if is_theoshift\n")
    )
    lab.script_defaults(live="green", standby="blue")
    result = lab.deploy(theoshift(), dry_run=True)
    assert result.color == "blue"
    restarts = [p.command for p in result.plan if p.step == "restart"]
    assert restarts == ["sh -c 'cd /opt/shop && supervisorctl restart theoshift-blue'"]


# ---- probes through the frontend carry the app's Host ---------------------------------------


def test_a_probe_sends_the_given_host_header() -> None:
    target = parse_http_url("http://127.0.0.1:80/api/health", "theoshift.com")
    assert target is not None
    assert b"Host: theoshift.com\r\n" in http_get_request(target)
    argv = url_command("http://127.0.0.1:80/api/health", 3, "theoshift.com").argv
    assert ("-H", "Host: theoshift.com") in itertools.pairwise(argv)


def frontend(host_answers: dict[str, str]) -> FakeRunner:
    """A shared frontend: the app's colour for its Host, the homepage (200, not JSON) else."""
    fake = FakeRunner()
    fake.put_file(HP, "/etc/haproxy/haproxy.cfg", SHARED_CFG)
    serve_cfg_reads(fake, HP)
    fake.on(re.compile("^socat "), host=HP, exit_status=1)

    def answer(_host: str, _address: str, _port: int, payload: bytes) -> bytes:
        head = payload.decode()
        color = next((c for h, c in host_answers.items() if f"Host: {h}\r\n" in head), None)
        body = json.dumps({"status": "ok", "color": color}) if color else "homepage"
        return (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                f"{body}").encode()  # fmt: skip

    fake.tcp_responder = answer
    return fake


def test_verify_reaches_the_app_through_its_host_not_the_homepage() -> None:
    config = theoshift()
    ctx = Context(config=config, runner=frontend({"theoshift.com": "green"}))
    seen = verify(ctx, config.apps["shop"], read_cfg(ctx), "green", quick=True)
    assert "(Host: theoshift.com) answered by GREEN" in seen


def test_verify_fails_when_the_host_reaches_the_old_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bluegreen.engine.traffic.VERIFY_TIMEOUT_S", 0.5)
    config = theoshift()
    ctx = Context(config=config, runner=frontend({"theoshift.com": "blue"}))
    with pytest.raises(TrafficCheckFailed, match="did not reach GREEN"):
        verify(ctx, config.apps["shop"], read_cfg(ctx), "green", quick=True)
