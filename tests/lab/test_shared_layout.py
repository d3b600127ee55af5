"""The users' production shape against the real lab (`bluegreen lab up`, the shared layout): one
frontend `https_frontend` routes theoshift and ldc-tools by Host, each app with a preview host per
colour, and a homepage for every other request. One lab serves the whole module; each test reads
the LIVE it starts from instead of assuming one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, load_config
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import SHARED_APPS, SHARED_HEALTH_PATH
from bluegreen.lab.load import Load
from bluegreen.service import Service, SwitchRequest
from tests.lab.test_cfg_lock import ROUNDS, read, switch_rounds

pytestmark = pytest.mark.lab
THEOSHIFT, LDC = (app.name for app in SHARED_APPS)
APPS = {app.name: app for app in SHARED_APPS}
CFG = "/etc/haproxy/haproxy.cfg"
OTHER = {"blue": "green", "green": "blue"}


@pytest.fixture(scope="module")
def info(shared_lab: Lab) -> LabInfo:
    return shared_lab.info()


@pytest.fixture(scope="module")
def config(info: LabInfo) -> Config:
    """The lab's own config; switches need no approval here (as in the other switch tests)."""
    loaded = load_config(info.config_path)
    apps = {
        name: app.model_copy(update={"allow_unapproved": True, "watch_s": 1.0, "drain_s": 0.5})
        for name, app in loaded.apps.items()
    }
    return loaded.model_copy(update={"apps": apps})


@pytest.fixture(scope="module")
def service(config: Config) -> Iterator[Service]:
    with Service(config) as service:
        yield service


def answer(service: Service, host: str) -> dict[str, str]:
    """A new request through the frontend with Host `host`, from the HAProxy host (curl there)."""
    url = f"http://127.0.0.1:80{SHARED_HEALTH_PATH}"
    argv = ("curl", "-s", "--max-time", "3", "-H", f"Host: {host}", url)
    result = service.runner.run(service.config.haproxy.ssh, Command.of(*argv), timeout=10)
    try:
        return dict(json.loads(result.stdout))
    except ValueError:
        return {
            "error": f"exit {result.exit_status}: {result.stdout[:80]!r} {result.stderr[:80]!r}"
        }


def served_by(service: Service, host: str) -> str:
    return answer(service, host).get("color", "no colour")


def through_public_host(service: Service, app: str) -> str:
    return served_by(service, APPS[app].host)


def live(service: Service, app: str) -> str:
    status = service.status(app)
    assert status.certain and status.live is not None, status.problems
    return status.live.color


def program_pid(service: Service, color: str, program: str) -> str:
    (server,) = service.config.apps[THEOSHIFT].members(color)
    ssh = server.ssh
    result = service.runner.run(ssh, Command.of("supervisorctl", "pid", program), timeout=15)
    assert result.ok and result.stdout.strip().isdigit(), result.stdout
    return result.stdout.strip()


def previews_hold(service: Service) -> None:
    for app in SHARED_APPS:
        for color in ("blue", "green"):
            seen = answer(service, app.preview(color))
            assert (seen.get("app"), seen.get("color")) == (app.name, color), (app.name, seen)


def test_lab_status_names_the_apps_and_their_hosts(shared_lab: Lab, service: Service) -> None:
    status = shared_lab.status()
    assert status["layout"] == "shared" and status["frontend"].startswith("http://127.0.0.1:")
    assert status["apps"][THEOSHIFT]["host"] == "theoshift.com"
    assert status["apps"][LDC]["preview"] == {
        "blue": "blue.ldc-tools.com",
        "green": "green.ldc-tools.com",
    }
    # A request for no app reaches the homepage, not an app.
    homepage = answer(service, "unknown.example")
    assert "color" not in homepage


def test_status_of_both_apps_is_certain_with_preview_lines_kept(service: Service) -> None:
    for status in service.status_many([THEOSHIFT, LDC]):
        assert status.certain, status.problems
        assert status.routing.frontend == "https_frontend"
        assert status.live is not None and status.standby is not None
        assert {s.health.healthy for s in status.servers if s.health} == {True}
        assert "preview" in status.routing.summary, status.routing.summary
        assert through_public_host(service, status.app) == status.live.color


def test_deploy_to_standby_of_one_app_leaves_the_other_app_untouched(
    shared_lab: Lab, service: Service
) -> None:
    standby = OTHER[live(service, THEOSHIFT)]
    before = {
        (color, app.program(color)): program_pid(service, color, app.program(color))
        for app in SHARED_APPS
        for color in ("blue", "green")
    }
    ldc_commit = answer(service, APPS[LDC].host)["commit"]
    commit = shared_lab.commit()
    result = service.deploy(THEOSHIFT, DeployOptions())
    assert result.ok, result.error
    assert (result.color, result.commit_after) == (standby, commit)
    # STANDBY's own program was restarted (the restart command differs per host) ...
    restarted = (standby, APPS[THEOSHIFT].program(standby))
    assert program_pid(service, *restarted) != before[restarted]
    assert answer(service, APPS[THEOSHIFT].preview(standby))["commit"] == commit
    # ... and nothing else: theoshift's LIVE and both ldc-tools processes run on, unchanged.
    for key, pid in before.items():
        if key != restarted:
            assert program_pid(service, *key) == pid, key
    assert answer(service, APPS[LDC].host)["commit"] == ldc_commit


def test_switch_under_load_through_the_public_host_moves_only_its_line(
    service: Service, info: LabInfo
) -> None:
    from_live = live(service, THEOSHIFT)
    ldc_live = live(service, LDC)
    cfg_before = read(service, CFG).decode().splitlines()
    url = info.frontend + SHARED_HEALTH_PATH
    with (
        Load(url, threads=2, host=APPS[THEOSHIFT].host) as load,
        Load(url, threads=2, host=APPS[LDC].host) as other,
    ):
        time.sleep(1)
        result = service.switch(THEOSHIFT, SwitchRequest(require_approval=False))
        assert result.ok, (result.error, [s for s in result.steps if s.status == "failed"])
        done = time.monotonic()
        time.sleep(1)
    assert result.to_live == OTHER[from_live]
    samples = load.snapshot()
    assert load.failures == [] and other.failures == [], (load.failures[:3], other.failures[:3])
    assert {s.color for s in samples if s.sent > done} == {result.to_live}
    assert {s.color for s in other.snapshot()} == {ldc_live}
    # Exactly the deciding line changed: the other app's lines and the preview lines are
    # byte-identical.
    cfg_after = read(service, CFG).decode().splitlines()
    changed = [(a, b) for a, b in zip(cfg_before, cfg_after, strict=True) if a != b]
    assert changed == [
        (
            f"    use_backend theoshift_{from_live} if is_theoshift",
            f"    use_backend theoshift_{result.to_live} if is_theoshift",
        )
    ]
    previews_hold(service)
    print(
        f"theoshift: {len(samples)} requests, 0 failed; ldc-tools: {len(other.snapshot())} "
        "requests, 0 failed, all on its LIVE"
    )


def test_two_apps_switched_at_once_20_rounds(config: Config, service: Service) -> None:
    started = time.monotonic()
    oks, refusals = switch_rounds(
        config, service, (THEOSHIFT, LDC), through_public_host, lambda *_: previews_hold(service)
    )
    print(f"{ROUNDS} rounds in {time.monotonic() - started:.0f}s: {oks} ok, {refusals} refused")
    # An approval binds the app's own lines: the other app's switch never makes it stale, so
    # every round both apps move (the cfg lock orders them; nothing is undone).
    assert (oks, refusals) == (2 * ROUNDS, 0)
