"""Server pools on the fake hosts: the config shape, deploy to every STANDBY server in parallel
(one failing restores them all), status per server, the switch's target check (every server, or
min_healthy) and the environment indicators on every server."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console
from starlette.testclient import TestClient
from tests.unit.fake_hosts import (
    APP,
    CFG_PATH,
    HP,
    FakeHosts,
    pool_cfg,
    pool_config,
    pool_toml,
)
from tests.unit.test_dashboard import BASE as DASHBOARD
from tests.unit.test_dashboard import PagedService

from bluegreen.cli_render import print_plan, print_status
from bluegreen.dashboard.guard import Guard
from bluegreen.dashboard.server import Dashboard
from bluegreen.domain.config import config_from_dict, parse_config
from bluegreen.engine.context import Context, StepEvent
from bluegreen.engine.deploy import POOL_PARALLEL, deploy_to_standby
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.engine.status import get_status
from bluegreen.errors import ConfigError, UnsafeOperationError
from bluegreen.mcp_text import deploy_text, plan_text, status_text
from bluegreen.service import Service, SwitchRequest

GREENS = ["green1", "green2", "green3"]
OLD = "b2" * 20  # what the fake GREEN servers run before a deploy
NEW = "c3" * 20  # what the branch resolves to


def pool_hosts(per_colour: int) -> FakeHosts:
    """The fake hosts with a pool a colour, answering status' snapshot (a deploy reads it too)."""
    hosts = FakeHosts(per_colour=per_colour)
    hosts.snapshots = True
    return hosts


def ctx(hosts: FakeHosts, per_colour: int = 3, min_healthy: int | None = None) -> Context:
    events: list[StepEvent] = []
    return Context(
        config=pool_config(per_colour, min_healthy),
        runner=hosts.runner,
        now=lambda: datetime(2025, 12, 21, 9, 30, 5, tzinfo=UTC),
        progress=events.append,
    )


def shell_lines(hosts: FakeHosts, name: str) -> list[str]:
    return [c for c in hosts.runner.commands(f"root@{name}") if "bluegreen-deployed" not in c]


# ---- config --------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "haproxy": {"ssh": "haproxy"},
    "apps": {
        "web": {
            "state_file": "/s.json",
            "frontend": "http-in",
            "app_dir": "/opt/web",
            "restart": "true",
            "servers": {
                "blue": {"ssh": "blue", "address": "10.0.0.1:3001"},
                "green": {
                    "backend": "web_green",
                    "pool": [
                        {"server": "green1", "ssh": "g1", "address": "10.0.0.2:3001"},
                        {"server": "green2", "ssh": "g2", "address": "10.0.0.3:3001"},
                    ],
                },
            },
        }
    },
}


def problems(change: dict[str, Any] | None = None, **app: Any) -> str:
    data = copy.deepcopy(BASE)
    data["apps"]["web"].update(app)
    for key, value in (change or {}).items():
        data["apps"]["web"]["servers"]["green"][key] = value
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data)
    return caught.value.message


def test_a_pool_colour_lists_every_server_and_the_one_server_form_stays() -> None:
    app = config_from_dict(BASE).app("web")
    assert [m.label for m in app.members("green")] == ["GREEN green1", "GREEN green2"]
    assert [(m.ssh, m.address) for m in app.members("green")] == [
        ("g1", "10.0.0.2:3001"),
        ("g2", "10.0.0.3:3001"),
    ]
    (blue,) = app.members("blue")
    assert (blue.label, blue.ssh, blue.in_pool) == ("BLUE", "blue", False)


def test_pool_config_errors_name_the_keys() -> None:
    both = problems({"ssh": "g1"})
    assert "apps.web.servers.green.pool:" in both and "`ssh`" in both and "never both" in both
    assert "apps.web.servers.green.pool[1].server: required key is missing" in problems(
        {
            "pool": [
                {"server": "green1", "ssh": "g1", "address": "10.0.0.2:3001"},
                {"ssh": "g2", "address": "10.0.0.3:3001"},
            ]
        }
    )
    assert "apps.web.servers.green.pool: needs 1 to 32 servers, got 0" in problems({"pool": []})
    many = [{"server": f"g{i}", "ssh": f"g{i}", "address": f"10.0.1.{i}:3001"} for i in range(33)]
    assert "apps.web.servers.green.pool: needs 1 to 32 servers, got 33" in problems({"pool": many})
    typo = problems({"pool": [{"server": "green1", "ssh": "g1", "adress": "10.0.0.2:3001"}]})
    assert "apps.web.servers.green.pool[0].adress: unknown key (did you mean 'address'?)" in typo
    assert "pool:" not in typo  # only the entry's own problems
    same = problems({"pool": [{"server": "green1", "ssh": "g1", "address": "10.0.0.1:3001"}]})
    assert "BLUE and GREEN green1 both have address 10.0.0.1:3001" in same
    assert "apps.web.min_healthy: is 3 but BLUE has 1 server(s)" in problems(min_healthy=3)
    assert "apps.web.min_healthy: must be at least 1" in problems(min_healthy=0)


# ---- deploy --------------------------------------------------------------------------------------


def test_deploy_goes_to_every_standby_server_in_parallel_and_migrates_once() -> None:
    hosts = pool_hosts(3)
    app_ctx = ctx(hosts)
    app = app_ctx.config.apps[APP].model_copy(update={"migrate": "python3 migrate.py"})
    config = app_ctx.config.model_copy(update={"apps": {APP: app}})
    # Every server's build waits until all three have started: only a parallel deploy gets past.
    started = threading.Barrier(3, timeout=10)
    hosts.on_build = lambda _: started.wait()
    events: list[StepEvent] = []
    result = deploy_to_standby(
        Context(config=config, runner=hosts.runner, progress=events.append, now=app_ctx.now),
        APP,
        DeployOptions(migrate=True),
        sleep=lambda _: None,
    )
    assert result.ok, result.error
    assert (result.color, result.commit_before, result.commit_after) == ("green", OLD, NEW)
    assert result.host == "root@green1, root@green2, root@green3"
    assert [(s.server, s.ok, s.commit_after) for s in result.servers] == [
        (name, True, NEW) for name in GREENS
    ]
    for name in GREENS:
        assert hosts.commits[name] == NEW and hosts.serving[name] == NEW
        lines = shell_lines(hosts, name)
        assert any("git -C /opt/jw-attendant checkout --force --detach " + NEW in x for x in lines)
        assert (
            lines.count("sh -c 'cd /opt/jw-attendant && supervisorctl restart jw-attendant'") == 1
        )
    # Migrations change the database every colour shares: once, on the first server.
    migrations = [n for n in GREENS if any("migrate.py" in x for x in shell_lines(hosts, n))]
    assert migrations == ["green1"]
    # LIVE (every BLUE server) got nothing but reads.
    for name in ("blue1", "blue2", "blue3"):
        hosts.runner.assert_read_only(f"root@{name}")
    # Progress names each server's steps; a phase ends on every server before the next begins.
    done = [e.step for e in events if e.status == "ok"]
    for name in GREENS:
        steps = ["preflight", "backup", "fetch", "build", "migrate", "restart", "health"]
        if name != "green1":
            steps.remove("migrate")
        assert [s for s in done if s.endswith(name)] == [f"{step} {name}" for step in steps]
    assert max(done.index(f"build {n}") for n in GREENS) < done.index("migrate green1")
    assert done.index("migrate green1") < min(done.index(f"restart {n}") for n in GREENS)


def test_one_servers_failing_build_restores_every_server_of_the_pool() -> None:
    hosts = pool_hosts(3)
    hosts.build_fails.add("green2")
    started = threading.Barrier(3, timeout=10)  # every server is building when green2 fails
    hosts.on_build = lambda _: started.wait()
    result = deploy_to_standby(ctx(hosts), APP, sleep=lambda _: None)
    assert not result.ok
    assert (result.failed_step, result.failed_server) == ("build", "green2")
    assert "failed on GREEN green2" in (result.error or "")
    assert result.restored is True and result.commit_after == OLD
    for name in GREENS:
        # Checked out, built (or not) and put back: every server runs what it ran before.
        assert hosts.commits[name] == OLD, name
        assert hosts.serving.get(name, OLD) == OLD, name
        assert any("bluegreen-restore" in x for x in shell_lines(hosts, name)), name
    # No server was restarted on the new commit: the failure stopped the pool before restarts.
    assert not any(s.name.startswith("restart ") for s in result.steps)
    assert [s.server for s in result.servers if s.failed_step] == ["green2"]
    assert result.standby_state is not None
    for name in GREENS:
        assert f"GREEN {name} was restored" in result.standby_state


def test_a_pool_server_unhealthy_after_restart_restores_every_server() -> None:
    hosts = pool_hosts(2)
    hosts.healthy["green2"] = False
    result = deploy_to_standby(ctx(hosts, per_colour=2), APP, sleep=lambda _: None)
    assert not result.ok and (result.failed_step, result.failed_server) == ("health", "green2")
    assert result.restored is True
    assert hosts.commits == {"blue1": "a1" * 20, "blue2": "a1" * 20, "green1": OLD, "green2": OLD}
    assert hosts.serving["green1"] == OLD  # restarted on the new commit, then restored
    assert result.next_step.startswith("Read GREEN green2's log")


def test_dry_run_lists_each_servers_commands_and_migrations_once() -> None:
    hosts = pool_hosts(2)
    result = deploy_to_standby(ctx(hosts, per_colour=2), APP, DeployOptions(dry_run=True))
    restarts = [p.host for p in result.plan if p.step == "restart"]
    assert restarts == ["root@green1", "root@green2"]
    assert [p.host for p in result.plan if p.step == "health"] == [HP, HP]
    for name in ("green1", "green2"):
        hosts.runner.assert_read_only(f"root@{name}")


# ---- status --------------------------------------------------------------------------------------


def test_status_shows_each_server_and_the_pools_health() -> None:
    hosts = pool_hosts(3)
    hosts.healthy["green3"] = False
    status = get_status(ctx(hosts), APP)
    assert status.certain, status.problems
    assert status.standby is not None and status.standby.color == "green"
    green = status.standby
    assert [(s.server, s.healthy) for s in green.pool] == [
        ("green1", True), ("green2", True), ("green3", False),
    ]  # fmt: skip
    assert (green.pool_healthy, len(green.pool), green.healthy) == (2, 3, False)
    assert green.commit == OLD
    assert any("GREEN green3 (STANDBY) is not healthy" in p for p in status.problems)
    # With min_healthy 2 the pool counts as healthy.
    assert get_status(ctx(hosts, min_healthy=2), APP).standby.healthy is True  # type: ignore[union-attr]


def test_status_reports_drift_between_pool_servers() -> None:
    hosts = pool_hosts(2)
    hosts.commits["blue2"] = "d4" * 20
    status = get_status(ctx(hosts, per_colour=2), APP)
    live = status.live
    assert live is not None and live.commit is None
    assert [s.commit for s in live.pool] == ["a1" * 20, "d4" * 20]
    drift = [p for p in status.problems if "different commits" in p]
    assert len(drift) == 1 and "blue1 a1a1a1a1a1a1" in drift[0] and "blue2 d4d4d4d4d4d4" in drift[0]
    assert status.next_step.startswith("LIVE BLUE's servers run different commits")
    hosts.commits["green1"] = "e5" * 20
    status = get_status(ctx(hosts, per_colour=2), APP)
    assert status.next_step.startswith("STANDBY GREEN's servers run different commits")


# ---- switch --------------------------------------------------------------------------------------


def switch(hosts: FakeHosts, per_colour: int = 3, min_healthy: int | None = None) -> Any:
    service = Service(pool_config(per_colour, min_healthy), runner=hosts.runner)
    return service.switch(APP, SwitchRequest(require_approval=False))


def test_switch_refuses_when_one_target_server_is_down_naming_it() -> None:
    hosts = pool_hosts(3)
    hosts.healthy["green2"] = False
    result = switch(hosts)
    assert not result.executed and not result.ok
    assert "refusing to switch: 2 of 3 GREEN servers healthy" in (result.error or "")
    assert "green2 not healthy" in (result.error or "")
    assert "green1" not in (result.error or "").split("needed:")[1]
    assert hosts.runner.file(HP, CFG_PATH) == pool_cfg(3).encode()
    plan = result.plan
    assert plan is not None and [s.ready for s in plan.target_servers] == [True, False, True]


def test_switch_refuses_a_target_server_on_another_commit() -> None:
    hosts = pool_hosts(2)
    hosts.commits["green2"] = "d4" * 20
    result = switch(hosts, per_colour=2)
    assert not result.executed
    assert "green2 has d4d4d4d checked out" in (result.error or "")


def test_switch_goes_on_with_min_healthy_servers_and_moves_only_the_deciding_line() -> None:
    hosts = pool_hosts(3)
    hosts.healthy["green2"] = False
    result = switch(hosts, min_healthy=2)
    assert result.ok, result.error
    target = next(s for s in result.steps if s.name == "target")
    assert target.message.startswith("2 of 3 GREEN servers healthy on b2b2b2b (min_healthy 2)")
    new = (hosts.runner.file(HP, CFG_PATH) or b"").decode()
    assert new == pool_cfg(3).replace("default_backend bk_blue", "default_backend bk_green")
    # Every server of both pools shows its new role.
    for name, role in (("green1", "LIVE"), ("green3", "LIVE"), ("blue2", "STANDBY")):
        display = hosts.runner.file(f"root@{name}", "/opt/jw-attendant/.env.display") or b""
        assert f"ROLE={role}" in display.decode(), name


def test_a_switch_with_the_first_target_server_down_verifies_on_the_others() -> None:
    hosts = pool_hosts(3)
    hosts.healthy["green1"] = False
    result = switch(hosts, min_healthy=2)
    assert result.ok, result.error
    verify = next(s for s in result.steps if s.name == "verify")
    assert "bk_green/green1 DOWN, bk_green/green2 UP, bk_green/green3 UP" in verify.message


def test_prompt_goes_to_every_server_of_a_pool() -> None:
    hosts = pool_hosts(2)
    service = Service(pool_config(2), runner=hosts.runner)
    written = [w for w in service.install_prompt(APP) if w.startswith("prompt snippet at ")]
    assert sorted(w.removeprefix("prompt snippet at ").split(":")[0] for w in written) == [
        "root@blue1", "root@blue2", "root@green1", "root@green2",
    ]  # fmt: skip


def test_a_deploy_of_a_pool_is_bounded_in_parallel() -> None:
    """With more servers than POOL_PARALLEL, never more than that many run a step at once."""
    per_colour = POOL_PARALLEL + 2
    hosts = pool_hosts(per_colour)
    running = 0
    peak = 0
    lock = threading.Lock()
    full = threading.Event()  # set once POOL_PARALLEL builds run at the same time

    def build(name: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == POOL_PARALLEL:
                full.set()
        full.wait(timeout=10)
        with lock:
            running -= 1

    hosts.on_build = build
    result = deploy_to_standby(ctx(hosts, per_colour=per_colour), APP, sleep=lambda _: None)
    assert result.ok, result.error
    assert peak == POOL_PARALLEL


def test_status_and_plan_texts_show_each_server_of_a_pool() -> None:
    hosts = pool_hosts(2)
    hosts.healthy["green2"] = False
    status = get_status(ctx(hosts, per_colour=2), APP)
    text = status_text(status)
    assert "STANDBY: GREEN (a pool) - 1 of 2 servers healthy" in text
    assert "server green2: GREEN at green2:3001 - UNHEALTHY" in text
    console = Console(record=True, width=200)
    print_status(console, status)
    shown = console.export_text()
    assert "1/2 ok" in shown and "green2" in shown and "root@green2" in shown
    plan = switch(hosts, per_colour=2).plan
    assert "server green2 at green2:3001: NOT ready: not healthy" in plan_text(plan)
    print_plan(console, plan)
    assert "green1 green1:3001: ready" in console.export_text()


def test_the_dashboard_shows_each_server_of_a_pool() -> None:
    hosts = pool_hosts(2)
    hosts.healthy["green2"] = False
    service = PagedService(pool_config(2), runner=hosts.runner)
    service.shown = get_status(ctx(hosts, per_colour=2), APP)
    guard = Guard("127.0.0.1", 8766, None, "ops@dashboard-host", ())
    page = TestClient(Dashboard(service, guard).app(), base_url=DASHBOARD).get(f"/app/{APP}").text
    assert "1 of 2 servers healthy: green1 healthy (b2b2b2b), green2 NOT healthy" in page
    assert "test STANDBY now: <code>curl http://green1:3001/</code>" in page
    assert "green1, the first server of the pool" in page


def test_one_unreachable_standby_server_stops_the_deploy_before_any_change() -> None:
    hosts = pool_hosts(3)
    hosts.unreachable.add("green3")
    result = deploy_to_standby(ctx(hosts), APP, sleep=lambda _: None)
    assert not result.ok and (result.failed_step, result.failed_server) == ("preflight", "green3")
    assert result.restored is None  # nothing was changed, so nothing to restore
    assert "No route to host" in (result.error or "")
    for name in GREENS:
        hosts.runner.assert_read_only(f"root@{name}")
        assert hosts.commits[name] == OLD


def test_two_standby_servers_on_one_host_are_refused() -> None:
    hosts = pool_hosts(2)
    text = pool_toml(2).replace('ssh = "root@green2"', 'ssh = "deploy@green1"')
    context = Context(config=parse_config(text, "test"), runner=hosts.runner)
    with pytest.raises(
        UnsafeOperationError, match="GREEN green1 and STANDBY GREEN green2 are the same ssh host"
    ):
        deploy_to_standby(context, APP)
    for name in GREENS[:2]:
        hosts.runner.assert_read_only(f"root@{name}")


def test_the_deploy_text_names_the_server_that_failed() -> None:
    hosts = pool_hosts(2)
    hosts.build_fails.add("green2")
    started = threading.Barrier(2, timeout=10)
    hosts.on_build = lambda _: started.wait()
    text = deploy_text(deploy_to_standby(ctx(hosts, per_colour=2), APP, sleep=lambda _: None))
    assert "FAILED at step build on server green2" in text
    assert "- GREEN green1 was restored" in text and "- GREEN green2 was restored" in text
