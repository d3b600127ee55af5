"""deploy_to_standby against the real lab: STANDBY from haproxy.cfg, LIVE serving throughout."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from bluegreen import errors
from bluegreen.domain.config import load_config
from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.engine.lock import OperationLock
from bluegreen.errors import LockedError, TransportError, ValidationError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import APP_DIR
from bluegreen.lab.load import Load
from bluegreen.models import DeployResult
from bluegreen.service import Service

pytestmark = pytest.mark.lab

APP = "jw-attendant"
LOCK_DIR = f"/var/lib/bluegreen/locks/{APP}.lock"
HISTORY = f"/var/lib/bluegreen/history/{APP}.jsonl"


def service_with(lab_info: LabInfo, health: dict[str, Any] | None = None, **app: Any) -> Service:
    """A Service on the lab's config with some app settings changed."""
    config = load_config(lab_info.config_path)
    current = config.apps[APP]
    if health:
        app["health"] = current.health.model_copy(update=health)
    changed = current.model_copy(update=app)
    return Service(config.model_copy(update={"apps": {APP: changed}}))


def app_health(lab_info: LabInfo, color: str) -> httpx.Response:
    url = lab_info.hosts[color].app
    assert url
    return httpx.get(url + "/health", timeout=5)


def head(lab: Lab, color: str) -> str:
    return lab.exec(color, ["git", "-C", APP_DIR, "rev-parse", "HEAD"]).strip()


def exists(lab: Lab, role: str, path: str) -> bool:
    return lab.exec(role, ["sh", "-c", f"test -e {path} && echo yes || echo no"]).strip() == "yes"


def durations(result: DeployResult) -> str:
    steps = ", ".join(
        f"{s.name} {s.duration_s:.2f}s" for s in result.steps if s.status != "skipped"
    )
    return f"deploy {result.duration_s:.2f}s: {steps}"


def test_deploy_new_commit_to_green_while_blue_serves(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    new = fresh_lab.commit()
    events: list[StepEvent] = []
    with Load(lab_info.frontend + "/health", threads=4) as load:
        time.sleep(0.5)
        result = lab_service.deploy(APP, progress=events.append)
        time.sleep(0.5)
    assert result.ok, (result.error, result.output_tail)
    print(durations(result))
    assert (result.color, result.live_color, result.address) == ("green", "blue", "green:3001")
    assert (result.commit_before, result.commit_after) == (lab_info.initial_commit, new)
    # Users only ever reached BLUE, and none of their requests failed.
    samples = load.snapshot()
    assert len(samples) > 50
    assert load.failures == [], load.failures[:5]
    assert {s.color for s in samples} == {"blue"}
    # GREEN runs the new build; BLUE was not touched.
    assert app_health(lab_info, "green").json()["commit"] == new
    assert app_health(lab_info, "blue").json()["commit"] == lab_info.initial_commit
    assert head(fresh_lab, "blue") == lab_info.initial_commit
    assert result.backup_path and exists(fresh_lab, "green", result.backup_path)
    assert result.backup_path.endswith(f"-{lab_info.initial_commit[:12]}.tar.gz")
    assert [e.step for e in events if e.status == "start"] == [
        "preflight", "backup", "fetch", "build", "restart", "health",
    ]  # fmt: skip
    assert result.next_step.startswith("Test GREEN at green:3001")
    entry = lab_service.history(APP).entries[0]
    assert (entry.operation, entry.outcome, entry.color, entry.commit_after) == (
        "deploy", "ok", "green", new,
    )  # fmt: skip
    assert not exists(fresh_lab, "haproxy", LOCK_DIR)
    status = lab_service.status(APP)
    assert status.standby and status.standby.commit == new and status.standby.healthy


def test_after_a_hand_switch_the_deploy_goes_to_blue(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    fresh_lab.exec(
        "haproxy",
        ["sh", "-c", "sed -i 's/default_backend bk_blue/default_backend bk_green/' "
         "/etc/haproxy/haproxy.cfg && haproxy-reload"],
    )  # fmt: skip
    new = fresh_lab.commit()
    result = lab_service.deploy(APP)
    assert result.ok, result.error
    assert (result.color, result.live_color) == ("blue", "green")
    assert app_health(lab_info, "blue").json()["commit"] == new
    assert head(fresh_lab, "green") == lab_info.initial_commit
    assert httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"] == "green"


def test_a_hand_switch_not_reloaded_stops_the_deploy(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    """The file now calls BLUE STANDBY, but the running HAProxy still sends users to BLUE:
    deploying "to STANDBY" would be deploying to LIVE. Refused before anything runs."""
    time.sleep(0.2)  # the edit lands clearly after the worker started
    fresh_lab.exec(
        "haproxy",
        ["sed", "-i", "s/default_backend bk_blue/default_backend bk_green/",
         "/etc/haproxy/haproxy.cfg"],
    )  # fmt: skip
    fresh_lab.commit()
    with pytest.raises(errors.UnsafeOperationError, match="changed and not reloaded"):
        lab_service.deploy(APP)
    assert head(fresh_lab, "blue") == lab_info.initial_commit
    assert head(fresh_lab, "green") == lab_info.initial_commit
    assert httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"] == "blue"
    fresh_lab.exec("haproxy", ["haproxy-reload"])  # reloaded: now the file is the truth
    result = lab_service.deploy(APP)
    assert result.ok and (result.color, result.live_color) == ("blue", "green"), result.error


def test_deploy_an_older_commit_by_sha(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    new = fresh_lab.commit()
    assert lab_service.deploy(APP).commit_after == new
    back = lab_service.deploy(APP, DeployOptions(ref=lab_info.initial_commit, backup=False))
    assert back.ok, back.error
    assert (back.ref, back.commit_before, back.commit_after) == (
        lab_info.initial_commit, new, lab_info.initial_commit,
    )  # fmt: skip
    assert app_health(lab_info, "green").json()["commit"] == lab_info.initial_commit


def test_build_failure_is_reported_and_green_restored(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    fresh_lab.commit("build")
    result = lab_service.deploy(APP)
    print(durations(result))
    assert not result.ok
    assert (result.failed_step, result.error_type, result.exit_status) == (
        "build",
        "CommandFailed",
        1,
    )
    assert result.output_tail and "build failed" in result.output_tail
    assert result.restored is True, result.standby_state
    assert result.standby_state and "healthy again" in result.standby_state
    assert result.live_healthy_after is True
    # GREEN serves the old commit from the restored checkout.
    assert head(fresh_lab, "green") == lab_info.initial_commit
    assert app_health(lab_info, "green").json()["commit"] == lab_info.initial_commit
    assert not exists(fresh_lab, "haproxy", LOCK_DIR)
    entry = lab_service.history(APP).entries[0]
    assert entry.outcome == "failed" and entry.error == result.error


def test_a_build_printing_megabytes_on_one_line_fails_fast_and_small(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    """A failing build that prints a 3 MB line (a minified bundle): the failure comes back at once,
    with a bounded, masked output tail, in the result and in the history (masking used to take
    hours on such a line)."""
    build = 'python3 -c \'print("o" * 3000000); print("API_TOKEN=s3cr3tvalue")\'; exit 1'
    with service_with(lab_info, build=build) as service:
        started = time.monotonic()
        result = service.deploy(APP)
        took = time.monotonic() - started
        entry = service.history(APP).entries[0]
    assert not result.ok and result.failed_step == "build", result.error
    assert result.output_tail and len(result.output_tail) <= 4000
    assert "s3cr3tvalue" not in result.output_tail and "API_TOKEN=" in result.output_tail
    assert result.restored is True
    failed = next(s for s in entry.steps if s.name == "build")
    assert failed.output_tail and len(failed.output_tail) <= 4000
    print(f"failed deploy with a 3 MB output line: {took:.1f}s")


@pytest.mark.parametrize("restore", [True, False], ids=["restore", "no-restore"])
def test_health_failure(fresh_lab: Lab, lab_info: LabInfo, restore: bool) -> None:
    broken = fresh_lab.commit("health")
    with service_with(lab_info, health={"attempts": 3, "interval_s": 0.2}) as service:
        result = service.deploy(APP, DeployOptions(restore_on_failure=restore))
    print(durations(result))
    assert not result.ok and result.failed_step == "health"
    assert result.error_type == "HealthCheckFailed"
    assert result.error and result.error.startswith("GREEN answered HTTP 503 (expected 200)")
    assert result.output_tail and "GET /health" in result.output_tail  # the app's own log
    assert result.live_healthy_after is True
    green = app_health(lab_info, "green")
    if restore:
        assert result.restored is True
        assert green.status_code == 200 and green.json()["commit"] == lab_info.initial_commit
        assert result.commit_after == lab_info.initial_commit
    else:
        assert result.restored is False
        assert result.standby_state and "restore_on_failure is off" in result.standby_state
        assert green.status_code == 503 and green.json()["commit"] == broken
        assert result.commit_after == broken
    assert httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"] == "blue"


def test_lock_held_by_another_operation_is_refused(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    fresh_lab.commit()
    with (
        Service.from_path(lab_info.config_path) as other,
        OperationLock(other.context(), APP, "switch"),
        pytest.raises(LockedError, match=r"jw-attendant is locked: switch by \S+@\S+ \(pid"),
    ):
        lab_service.deploy(APP)
    assert head(fresh_lab, "green") == lab_info.initial_commit
    assert not exists(fresh_lab, "haproxy", LOCK_DIR)  # the other holder released it


def test_standby_stopped_during_the_build_fails_cleanly(fresh_lab: Lab, lab_info: LabInfo) -> None:
    fresh_lab.commit()
    building = threading.Event()
    results: list[DeployResult | BaseException] = []

    def progress(event: StepEvent) -> None:
        if event.step == "build" and event.status == "start":
            building.set()

    def run() -> None:
        try:
            results.append(service.deploy(APP, progress=progress))
        except BaseException as exc:
            results.append(exc)

    with service_with(lab_info, build="sleep 8 && python3 build.py") as service:
        worker = threading.Thread(target=run)
        worker.start()
        try:
            assert building.wait(30)
            time.sleep(0.5)
            fresh_lab.container("green").stop(timeout=2)
            worker.join(60)
            assert not worker.is_alive()
        finally:
            fresh_lab.container("green").start()
    (result,) = results
    assert isinstance(result, DeployResult), result
    print(durations(result), result.error)
    assert not result.ok and result.failed_step == "build"
    assert result.error_type and issubclass(getattr(errors, result.error_type), TransportError)
    assert result.restored is False and result.standby_state
    assert result.live_healthy_after is True
    assert not exists(fresh_lab, "haproxy", LOCK_DIR)
    assert httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"] == "blue"
    assert lab_service_history_outcome(lab_info) == "failed"


def lab_service_history_outcome(lab_info: LabInfo) -> str:
    with Service.from_path(lab_info.config_path) as service:
        return service.history(APP).entries[0].outcome


INJECTIONS = [
    "-oProxyCommand=touch /tmp/pwned",
    "--upload-pack=touch /tmp/pwned",
    "main;touch /tmp/pwned",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "main\ntouch /tmp/pwned",
    "main && touch /tmp/pwned",
]


def test_ref_injection_is_refused_and_nothing_runs(
    fresh_lab: Lab, lab_info: LabInfo, lab_service: Service
) -> None:
    for ref in INJECTIONS:
        with pytest.raises(ValidationError, match="refused"):
            lab_service.deploy(APP, DeployOptions(ref=ref))
    assert head(fresh_lab, "green") == lab_info.initial_commit
    for role in ("green", "blue", "haproxy"):
        assert not exists(fresh_lab, role, "/tmp/pwned")
    assert not exists(fresh_lab, "haproxy", LOCK_DIR)
    assert not exists(fresh_lab, "haproxy", HISTORY)


def test_dry_run_changes_nothing(fresh_lab: Lab, lab_info: LabInfo, lab_service: Service) -> None:
    fresh_lab.commit()
    backups = ["sh", "-c", f"ls -1 {APP_DIR}.bluegreen-backups 2>/dev/null || true"]
    before = fresh_lab.exec("green", backups)
    result = lab_service.deploy(APP, DeployOptions(dry_run=True, migrate=False))
    assert result.ok and result.dry_run and result.color == "green"
    assert result.commit_before == lab_info.initial_commit
    assert any(p.step == "build" and "python3 build.py" in p.command for p in result.plan)
    assert head(fresh_lab, "green") == lab_info.initial_commit
    assert not exists(fresh_lab, "haproxy", LOCK_DIR)
    assert not exists(fresh_lab, "haproxy", HISTORY)
    assert fresh_lab.exec("green", backups) == before
