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

import httpx
import pytest

from bluegreen.domain.config import Config, load_config
from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.routing import analyze_routing
from bluegreen.engine.status import server_specs
from bluegreen.errors import ApprovalError, LockedError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.models import SwitchResult
from bluegreen.service import Service

pytestmark = pytest.mark.lab
APP, SHOP = "jw-attendant", "shop"
CFG = "/etc/haproxy/haproxy.cfg"
SHOP_PORT = 8081
SHOP_CFG = f"""
# A second app on the same file: its own frontend and backends, the same app hosts.
frontend shop-in
    bind *:{SHOP_PORT}
    default_backend bk_shop_blue

backend bk_shop_blue
    option httpchk GET /health
    server blue blue:3001 check inter 1s fall 2 rise 2

backend bk_shop_green
    option httpchk GET /health
    server green green:3001 check inter 1s fall 2 rise 2
"""
ROUNDS = 20
# The reasons a switch that lost the race may give: the other app holds haproxy.cfg past the
# wait, or the cfg it was planned from changed under it (the other app's switch went first).
REFUSALS = ("is locked", "changed since")


def two_app_config(lab_info: LabInfo) -> Config:
    config = load_config(lab_info.config_path)
    own = config.apps[APP].model_copy(
        update={"allow_unapproved": True, "watch_s": 1.0, "drain_s": 0.5}
    )
    shop = own.model_copy(
        update={
            "frontend": "shop-in",
            "state_file": "/var/lib/haproxy/shop-deployment-state.json",
            "servers": {
                color: server.model_copy(update={"backend": f"bk_shop_{color}"})
                for color, server in own.servers.items()
            },
        }
    )
    return config.model_copy(update={"apps": {APP: own, SHOP: shop}})


def add_shop_to_haproxy(lab: Lab) -> None:
    lab.exec("haproxy", ["sh", "-c", f'printf "%s" "$1" >> {CFG} && haproxy-reload', "-", SHOP_CFG])
    deadline = time.monotonic() + 30
    while "blue" not in through_haproxy(lab, SHOP):
        assert time.monotonic() < deadline, "the shop frontend never answered"
        time.sleep(0.2)


def through_haproxy(lab: Lab, app: str) -> str:
    """The colour a new request through the app's frontend reaches (curl on the HAProxy host)."""
    port = 80 if app == APP else SHOP_PORT
    body = lab.exec("haproxy", ["curl", "-s", "--max-time", "3", f"http://127.0.0.1:{port}/health"])
    try:
        return str(json.loads(body)["color"])
    except ValueError:
        return f"no answer: {body[:80]!r}"


def routed(lab: Lab, config: Config, app: str) -> str | None:
    cfg = parse(lab.exec("haproxy", ["cat", CFG]))
    analysis = analyze_routing(cfg, config.apps[app].frontend, server_specs(config.apps[app]))
    assert analysis.certain, analysis.problems
    return analysis.live


def state_live(lab: Lab, config: Config, app: str) -> str:
    raw = lab.exec("haproxy", ["cat", config.apps[app].state_file])
    return str(json.loads(raw)["live"])


def switch_both_at_once(config: Config) -> dict[str, SwitchResult | Exception]:
    outcomes: dict[str, SwitchResult | Exception] = {}
    barrier = threading.Barrier(2)

    def switch(app: str) -> None:
        with Service(config) as service:  # one Service each: two separate clients
            barrier.wait()
            try:
                outcomes[app] = service.switch(app, require_approval=False)
            except (LockedError, ApprovalError) as exc:
                outcomes[app] = exc

    threads = [threading.Thread(target=switch, args=(app,)) for app in (APP, SHOP)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_apps_on_one_cfg_switched_at_once_20_rounds(fresh_lab: Lab, lab_info: LabInfo) -> None:
    add_shop_to_haproxy(fresh_lab)
    config = two_app_config(lab_info)
    expected = {APP: "blue", SHOP: "blue"}
    oks = refusals = 0
    started = time.monotonic()
    for round_no in range(1, ROUNDS + 1):
        outcomes = switch_both_at_once(config)
        with Service(config) as service:
            for app, outcome in outcomes.items():
                where = f"round {round_no}, {app}: {outcome!r}"
                if isinstance(outcome, SwitchResult) and outcome.ok:
                    oks += 1
                    expected[app] = str(outcome.to_live)
                    entry = service.history(app).entries[0]
                    assert (entry.outcome, entry.to_live) == ("ok", outcome.to_live), where
                    assert state_live(fresh_lab, config, app) == outcome.to_live, where
                    continue
                refusals += 1
                if isinstance(outcome, Exception):
                    assert any(word in str(outcome) for word in REFUSALS), where
                else:  # failed inside the switch: it says why (the cfg checks below say the rest)
                    assert outcome.error, where
        # After both finished, every ok is still true: nothing was silently undone.
        for app in (APP, SHOP):
            assert routed(fresh_lab, config, app) == expected[app], (round_no, app, outcomes)
            assert {through_haproxy(fresh_lab, app) for _ in range(3)} == {expected[app]}, (
                round_no,
                app,
                outcomes,
            )
        assert httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"] == expected[APP]
    took = time.monotonic() - started
    print(f"{ROUNDS} rounds in {took:.0f}s: {oks} ok, {refusals} refused with a reason")
    assert oks >= ROUNDS  # at least one app moves every round
