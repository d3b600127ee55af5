"""One writer of haproxy.cfg at a time, against the real lab: two apps routed by the lab's one
haproxy.cfg (the lab's own app on `http-in`, and a second app added here on its own frontend
`shop-in`, port 8081, with its own backends to the same BLUE and GREEN app hosts), switched at
the same instant, 20 rounds. Every `ok` is true afterwards (cfg, traffic through HAProxy, state
file, history) and every refusal says why; before the cfg lock, rounds ended with one app's `ok`
switch silently undone by the other's restore."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, load_config
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.engine.status import app_routing
from bluegreen.errors import ApprovalError, LockedError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.models import SwitchResult
from bluegreen.service import Service, SwitchRequest

from .fault_tools import app_of_its_own, app_of_its_own_cfg

pytestmark = pytest.mark.lab
APP, SHOP = "jw-attendant", "shop"
CFG = "/etc/haproxy/haproxy.cfg"
SHOP_PORT = 8081
SHOP_CFG = "\n" + app_of_its_own_cfg(
    SHOP,
    SHOP_PORT,
    "A second app on the same file: its own frontend and backends, the same app hosts.",
)
ROUNDS = 20
# The reasons a switch that lost the race may give: the other app holds haproxy.cfg past the
# wait, or the cfg it was planned from changed under it (the other app's switch went first).
REFUSALS = ("is locked", "changed since")


def two_app_config(lab_info: LabInfo) -> Config:
    config = load_config(lab_info.config_path)
    own = config.apps[APP].model_copy(
        update={"allow_unapproved": True, "watch_s": 1.0, "drain_s": 0.5}
    )
    return config.model_copy(update={"apps": {APP: own, SHOP: app_of_its_own(own, SHOP)}})


def add_shop_to_haproxy(lab: Lab, service: Service) -> None:
    lab.exec("haproxy", ["sh", "-c", f'printf "%s" "$1" >> {CFG} && haproxy-reload', "-", SHOP_CFG])
    deadline = time.monotonic() + 30
    while through_haproxy(service, SHOP) != "blue":
        assert time.monotonic() < deadline, "the shop frontend never answered"
        time.sleep(0.2)


# The checks read the HAProxy host over the tool's own SSH connection (`docker exec` output is
# sometimes lost on this loaded machine, which would be a false failure).


def through_haproxy(service: Service, app: str) -> str:
    """The colour a new request through the app's frontend reaches (curl on the HAProxy host)."""
    port = 80 if app == APP else SHOP_PORT
    url = f"http://127.0.0.1:{port}/health"
    hp = service.config.haproxy.ssh
    answer = service.runner.run(hp, Command.of("curl", "-s", "--max-time", "3", url), timeout=10)
    try:
        return str(json.loads(answer.stdout)["color"])
    except ValueError:
        return (
            f"no answer (exit {answer.exit_status}): {answer.stdout[:80]!r} {answer.stderr[:80]!r}"
        )


def read(service: Service, path: str) -> bytes:
    return service.runner.read_file(service.config.haproxy.ssh, path) or b""


def routed(service: Service, app: str) -> str | None:
    """The LIVE colour haproxy.cfg on disk routes the app to, or why it cannot say."""
    cfg = parse(read(service, CFG).decode())
    analysis = app_routing(cfg, service.config.apps[app])
    return analysis.live if analysis.certain else f"uncertain: {'; '.join(analysis.problems)}"


def state_live(service: Service, app: str) -> str:
    return str(json.loads(read(service, service.config.apps[app].state_file))["live"])


def switch_both_at_once(
    config: Config, apps: tuple[str, str] = (APP, SHOP)
) -> dict[str, SwitchResult | Exception]:
    outcomes: dict[str, SwitchResult | Exception] = {}
    barrier = threading.Barrier(2)

    def switch(app: str) -> None:
        with Service(config) as service:  # one Service each: two separate clients
            barrier.wait()
            try:
                outcomes[app] = service.switch(app, SwitchRequest(require_approval=False))
            except (LockedError, ApprovalError) as exc:
                outcomes[app] = exc

    threads = [threading.Thread(target=switch, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


Through = Callable[[Service, str], str]  # the colour a new request for the app reaches


def switch_rounds(
    config: Config,
    checker: Service,
    apps: tuple[str, str],
    through: Through,
    after_round: Callable[[int, dict[str, str]], None] = lambda _round, _expected: None,
) -> tuple[int, int]:
    """ROUNDS rounds of both apps switched at the same instant; after each, every `ok` still
    holds (cfg, traffic, state file, history) and every refusal says why. (oks, refusals)."""
    expected = {app: str(routed(checker, app)) for app in apps}
    oks = refusals = 0
    for round_no in range(1, ROUNDS + 1):
        outcomes = switch_both_at_once(config, apps)
        for app, outcome in outcomes.items():
            where = f"round {round_no}, {app}: {outcome!r}"
            if isinstance(outcome, SwitchResult) and outcome.ok:
                oks += 1
                expected[app] = str(outcome.to_live)
                entry = checker.history(app).entries[0]
                assert (entry.outcome, entry.to_live) == ("ok", outcome.to_live), where
                assert state_live(checker, app) == outcome.to_live, where
                continue
            refusals += 1
            if isinstance(outcome, Exception):
                assert any(word in str(outcome) for word in REFUSALS), where
            else:  # failed inside the switch: it says why (the checks below say the rest)
                assert outcome.error, where
        # After both finished, every ok is still true: nothing was silently undone.
        for app in apps:
            seen = {through(checker, app) for _ in range(3)}
            assert (routed(checker, app), seen) == (expected[app], {expected[app]}), (
                round_no,
                app,
                outcomes,
            )
        after_round(round_no, expected)
    return oks, refusals


def test_two_apps_on_one_cfg_switched_at_once_20_rounds(fresh_lab: Lab, lab_info: LabInfo) -> None:
    config = two_app_config(lab_info)

    def laptop_view(round_no: int, expected: dict[str, str]) -> None:
        frontend = httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"]
        assert frontend == expected[APP], round_no

    with Service(config) as checker:
        add_shop_to_haproxy(fresh_lab, checker)
        started = time.monotonic()
        oks, refusals = switch_rounds(config, checker, (APP, SHOP), through_haproxy, laptop_view)
        took = time.monotonic() - started
    print(f"{ROUNDS} rounds in {took:.0f}s: {oks} ok, {refusals} refused with a reason")
    assert (oks, refusals) == (2 * ROUNDS, 0)  # both apps move every round, one after the other
