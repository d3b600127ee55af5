"""Pools, HAProxy nodes and config files together: an app with a pool a colour behind a pair
of HAProxy nodes, its lines in a conf.d file on both. Each feature has its own tests
(test_pools.py, test_haproxy_nodes.py, test_config_files.py); this one checks they compose."""

from __future__ import annotations

from tests.unit.fake_hosts import (
    APP,
    CFG_PATH,
    CONF_D,
    HP,
    HP2,
    FakeHosts,
    nodes_toml,
    pool_cfg,
    pool_toml,
)

from bluegreen.domain.config import parse_config
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.service import Service, SwitchRequest

APP_FILE = f"{CONF_D}/50-jw.cfg"
GLOBAL, APP_LINES = pool_cfg(2).split("frontend http-in\n")  # global + defaults | the app
APP_LINES = "frontend http-in\n" + APP_LINES


def pool_pair() -> tuple[FakeHosts, Service]:
    hosts = FakeHosts(nodes=2, per_colour=2)
    listed = f'[haproxy]\nconfig_files = ["{CFG_PATH}", "{CONF_D}"]\n'
    text = nodes_toml(2, pool_toml(2)).replace("[haproxy]\n", listed)
    hosts.running_args = ("haproxy", "-W", "-f", CFG_PATH, "-f", CONF_D)
    for node in (HP, HP2):
        hosts.runner.put_file(node, CFG_PATH, GLOBAL)
        hosts.runner.put_file(node, APP_FILE, APP_LINES)
        hosts.running[node] = hosts.loaded_text(node)
    return hosts, Service(parse_config(text, "test"), runner=hosts.runner)


def test_a_pool_behind_two_nodes_in_a_conf_d_file_status_deploy_switch() -> None:
    hosts, svc = pool_pair()
    status = svc.status(APP)
    assert status.certain, status.problems
    assert [(n.name, n.live, n.certain, n.cfg_file) for n in status.nodes] == [
        ("haproxy", "blue", True, APP_FILE),
        ("haproxy2", "blue", True, APP_FILE),
    ]
    assert status.standby is not None and status.standby.color == "green"
    assert [(s.server, s.healthy) for s in status.standby.pool] == [
        ("green1", True),
        ("green2", True),
    ]

    deployed = svc.deploy(APP, DeployOptions())
    assert deployed.ok, deployed.error
    assert [s.server for s in deployed.servers] == ["green1", "green2"]
    for name in ("green1", "green2"):
        assert hosts.commits[name] == hosts.origin and hosts.serving[name] == hosts.origin
    for name in ("blue1", "blue2"):
        hosts.runner.assert_read_only(f"root@{name}")

    result = svc.switch(APP, SwitchRequest(require_approval=False))
    assert result.ok and result.verified, result.error
    edited = APP_LINES.replace("default_backend bk_blue", "default_backend bk_green")
    for node in (HP, HP2):
        assert hosts.runner.file(node, CFG_PATH) == GLOBAL.encode()
        assert hosts.runner.file(node, APP_FILE) == edited.encode()
        assert hosts.live_color(node) == "green"
    written = {(c.host, c.line) for c in hosts.runner.calls if c.kind == "write"}
    assert (HP, APP_FILE) in written and (HP2, APP_FILE) in written
    assert not [w for w in written if w[1] == CFG_PATH]
