"""switch_traffic against the real lab: zero failed requests, verified, and a way back."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from bluegreen.domain.config import load_config
from bluegreen.engine.context import StepEvent
from bluegreen.errors import ApprovalError, LockedError, ValidationError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.load import Load
from bluegreen.service import Service, SwitchRequest

pytestmark = pytest.mark.lab
APP = "jw-attendant"


def service_with(lab_info: LabInfo, **app_changes: Any) -> Service:
    """A Service on the lab's config with some app settings changed (e.g. a shorter watch)."""
    config = load_config(lab_info.config_path)
    app = config.apps[APP].model_copy(update=app_changes)
    return Service(config.model_copy(update={"apps": {APP: app}}))


def live_color(lab_info: LabInfo) -> str:
    return str(httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"])


def test_20_switches_under_load_lose_no_request(fresh_lab: Lab, lab_info: LabInfo) -> None:
    with (
        service_with(lab_info, allow_unapproved=True, watch_s=0.5, drain_s=2.0) as service,
        Load(lab_info.frontend + "/health", threads=4) as load,
    ):
        time.sleep(1)
        windows: list[tuple[float, float, str]] = []  # (switch done, next switch start, colour)
        expected = "blue"
        for _ in range(20):
            begin = time.monotonic()
            if windows:
                windows[-1] = (*windows[-1][:1], begin, windows[-1][2])
            result = service.switch(APP, SwitchRequest(require_approval=False))
            assert result.ok, (result.error, [s for s in result.steps if s.status == "failed"])
            expected = "green" if expected == "blue" else "blue"
            assert result.to_live == expected
            windows.append((time.monotonic(), float("inf"), expected))
            time.sleep(0.3)
        windows[-1] = (windows[-1][0], time.monotonic(), expected)
        rate = load.rate()
    samples = load.snapshot()
    assert rate >= 100, f"load was only {rate:.0f} requests/s"
    assert load.failures == [], load.failures[:5]
    # After each switch completed, every NEW request (sent after it) reached the new LIVE.
    wrong = [
        (s, color)
        for done, until, color in windows
        for s in samples
        if done <= s.sent < until and s.color != color
    ]
    assert wrong == [], wrong[:5]
    assert len(samples) > 2000
    print(
        f"{len(samples)} requests at {rate:.0f}/s, 0 failed, "
        f"{load.stale_retries} retried after a stale keep-alive close"
    )


def test_token_flow_and_replay_refused(fresh_lab: Lab, lab_service: Service) -> None:
    first = lab_service.switch(APP)
    assert not first.executed and first.plan and first.plan.confirm_token
    assert "default_backend bk_green" in first.plan.diff
    assert lab_service.status(APP).live.color == "blue"  # type: ignore[union-attr]
    done = lab_service.switch(APP, SwitchRequest(confirm_token=first.plan.confirm_token))
    assert done.ok and done.to_live == "green"
    with pytest.raises(ApprovalError, match="already used"):
        lab_service.switch(APP, SwitchRequest(confirm_token=first.plan.confirm_token))
    status = lab_service.status(APP)
    assert status.live and status.live.color == "green"
    assert status.switch_count == 1 and status.drift == []


def test_indicators_and_state_file_after_switch(fresh_lab: Lab, lab_info: LabInfo) -> None:
    with service_with(lab_info, allow_unapproved=True) as service:
        assert service.switch(APP, SwitchRequest(require_approval=False)).ok
    green_app, blue_app = lab_info.hosts["green"].app, lab_info.hosts["blue"].app
    assert green_app and blue_app
    assert "role <strong>LIVE</strong>" in httpx.get(green_app + "/", timeout=5).text
    assert "role <strong>STANDBY</strong>" in httpx.get(blue_app + "/", timeout=5).text
    state = fresh_lab.exec("haproxy", ["cat", "/var/lib/haproxy/jw-deployment-state.json"])
    assert '"live": "green"' in state and '"switchCount": 1' in state


def test_mismatched_token_refused(fresh_lab: Lab, lab_service: Service) -> None:
    plan = lab_service.switch(APP).plan
    assert plan and plan.confirm_token
    # This app's routing changes after the plan was issued (its STANDBY's server line, by hand):
    # the token must not apply to it. (Other apps' lines are not part of an approval.)
    edit = "s/^\\(\\s*server green green:3001 .*\\)$/\\1 weight 100/"
    fresh_lab.exec("haproxy", ["sed", "-i", edit, "/etc/haproxy/haproxy.cfg"])
    assert "weight 100" in fresh_lab.exec("haproxy", ["cat", "/etc/haproxy/haproxy.cfg"])
    with pytest.raises(ApprovalError, match="does not match"):
        lab_service.switch(APP, SwitchRequest(confirm_token=plan.confirm_token))
    with pytest.raises(ValidationError, match="not a token"):
        lab_service.switch(APP, SwitchRequest(confirm_token="x; rm -rf /"))
    assert live_color(lab_info_of(fresh_lab)) == "blue"


def lab_info_of(lab: Lab) -> LabInfo:
    return lab.info()


def test_invalid_cfg_on_disk_is_refused_and_old_live_serves(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    fresh_lab.exec(
        "haproxy", ["sh", "-c", "printf '    bogus-directive on\\n' >> /etc/haproxy/haproxy.cfg"]
    )
    with service_with(lab_info, allow_unapproved=True) as service:
        result = service.switch(APP, SwitchRequest(require_approval=False))
    assert not result.ok and not result.executed
    assert any(s.name == "check-cfg" and s.status == "failed" for s in result.steps)
    assert "untouched" in (result.error or "")
    assert "bogus-directive" in fresh_lab.exec("haproxy", ["cat", "/etc/haproxy/haproxy.cfg"])
    assert live_color(lab_info) == "blue"


def test_failing_reload_restores_previous_cfg(fresh_lab: Lab, lab_info: LabInfo) -> None:
    fresh_lab.exec("haproxy", ["touch", "/tmp/fail-next-reload"])
    config = load_config(lab_info.config_path)
    reload = (
        "sh",
        "-c",
        "if [ -e /tmp/fail-next-reload ]; then rm /tmp/fail-next-reload; echo 'simulated reload failure' >&2; exit 1; fi; exec /usr/local/sbin/haproxy-reload",
    )
    config = config.model_copy(
        update={"haproxy": config.haproxy.model_copy(update={"reload": reload})}
    )
    app = config.apps[APP].model_copy(update={"allow_unapproved": True})
    with Service(config.model_copy(update={"apps": {APP: app}})) as service:
        result = service.switch(APP, SwitchRequest(require_approval=False))
        status = service.status(APP)
    assert not result.ok and result.executed and result.rolled_back
    names = [(s.name, s.status) for s in result.steps]
    assert ("reload", "failed") in names and ("verify-restored", "ok") in names
    assert "simulated reload failure" in (
        next(s for s in result.steps if s.name == "reload").output_tail or ""
    )
    assert status.live and status.live.color == "blue" and status.runtime_disagreements == []
    assert live_color(lab_info) == "blue"


def test_target_down_is_refused(fresh_lab: Lab, lab_info: LabInfo) -> None:
    fresh_lab.exec("green", ["supervisorctl", "stop", "jw-attendant"])
    with service_with(lab_info, allow_unapproved=True) as service:
        result = service.switch(APP, SwitchRequest(require_approval=False))
        emergency = service.switch(APP, SwitchRequest(require_approval=False, emergency=True))
    assert not result.executed and "not healthy" in (result.error or "")
    assert not emergency.executed and "force" in (emergency.error or "") + emergency.message
    assert live_color(lab_info) == "blue"


def test_two_concurrent_switches_exactly_one_proceeds(fresh_lab: Lab, lab_info: LabInfo) -> None:
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def attempt() -> None:
        with service_with(lab_info, allow_unapproved=True) as service:
            barrier.wait()
            try:
                outcomes.append(service.switch(APP, SwitchRequest(require_approval=False)))
            except (LockedError, ApprovalError) as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, LockedError)]
    assert len(done) == 1 and len(refused) == 1, outcomes
    assert "locked" in str(refused[0]) and "switch by" in str(refused[0])
    assert live_color(lab_info) == "green"


def test_auto_rollback_when_new_live_breaks_right_after(fresh_lab: Lab, lab_info: LabInfo) -> None:
    def break_green(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            fresh_lab.exec("green", ["supervisorctl", "stop", "jw-attendant"])

    with service_with(lab_info, allow_unapproved=True, watch_s=10.0) as service:
        result = service.switch(APP, SwitchRequest(require_approval=False), progress=break_green)
        status = service.status(APP)
    assert result.auto_rollback and not result.ok
    assert "rolled back automatically" in (result.error or "")
    assert status.live and status.live.color == "blue"
    assert status.state_file.contents and status.state_file.contents["live"] == "blue"
    assert live_color(lab_info) == "blue"
    entries = service_with(lab_info).history(APP).entries
    assert entries[0].outcome == "auto-rolled-back"


def test_emergency_without_approval_only_goes_back(fresh_lab: Lab, lab_info: LabInfo) -> None:
    with service_with(lab_info) as service:  # lab config: emergency without approval allowed
        with pytest.raises(ApprovalError, match="only goes back"):
            service.switch(APP, SwitchRequest(require_approval=False, emergency=True))
        plan = service.switch(APP).plan
        assert plan and plan.confirm_token
        assert service.switch(APP, SwitchRequest(confirm_token=plan.confirm_token)).ok
        back = service.switch(
            APP, SwitchRequest(require_approval=False, emergency=True, reason="bad release")
        )
    assert back.ok and back.to_live == "blue" and back.emergency
    assert not any(s.name == "drain" for s in back.steps)
    entry = service_with(lab_info).history(APP).entries[0]
    assert entry.emergency and entry.reason == "bad release"


def test_a_deploy_after_the_plan_makes_the_token_stale(fresh_lab: Lab, lab_info: LabInfo) -> None:
    """Plan (token issued, GREEN on the first commit), deploy a new commit to GREEN, confirm the
    old token: refused, naming the new commit, and nothing changed."""
    with service_with(lab_info) as service:
        plan = service.switch(APP).plan
        assert plan and plan.confirm_token and plan.target_commit == lab_info.initial_commit
        fresh_lab.commit()
        deployed = service.deploy(APP)
        assert deployed.ok and deployed.color == "green" and deployed.commit_after
        new = deployed.commit_after[:7]
        with pytest.raises(ApprovalError, match=f"STANDBY GREEN changed since the plan: {new} was "
                           "deployed"):  # fmt: skip
            service.switch(APP, SwitchRequest(confirm_token=plan.confirm_token))
        status = service.status(APP)
        history = service.history(APP).entries
    assert live_color(lab_info) == "blue"
    assert status.live and status.live.color == "blue" and not status.state_file.present
    assert [e.operation for e in history] == ["deploy"]


def test_emergency_without_approval_refuses_new_code(fresh_lab: Lab, lab_info: LabInfo) -> None:
    """Approved switch BLUE -> GREEN, a new commit deployed to BLUE (the new STANDBY), then an
    emergency switch without approval: refused, naming the commit; GREEN stays LIVE."""
    with service_with(lab_info) as service:  # lab config: emergency without approval allowed
        plan = service.switch(APP).plan
        assert plan and plan.confirm_token
        assert service.switch(APP, SwitchRequest(confirm_token=plan.confirm_token)).ok
        switched = service.history(APP).entries[0]
        assert switched.from_commit == switched.to_commit == lab_info.initial_commit
        assert switched.approval and switched.approval.kind == "token"
        fresh_lab.commit()
        deployed = service.deploy(APP)
        assert deployed.ok and deployed.color == "blue" and deployed.commit_after
        old, new = lab_info.initial_commit[:7], deployed.commit_after[:7]
        with pytest.raises(
            ApprovalError, match=f"BLUE ran {old} when it was LIVE and now runs {new}"
        ):
            service.switch(APP, SwitchRequest(require_approval=False, emergency=True))
        status = service.status(APP)
        history = service.history(APP).entries
    assert live_color(lab_info) == "green" and status.live and status.live.color == "green"
    assert [e.operation for e in history] == ["deploy", "switch"]
