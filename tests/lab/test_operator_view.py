"""The operator's view against the real lab, as a person uses it: `bluegreen dashboard` in
headless chromium (load, follow a deploy, approve an operator plan, see the switch),
`bluegreen watch` printing the traffic moving from one colour to the other during a switch, and
a login shell's prompt showing each host's role before and after a switch (`bluegreen prompt`).
The screenshots in docs/screenshots/ (shown in the README) are made by these runs."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bluegreen.domain.command import Command
from bluegreen.domain.prompt_snippet import snippet_path
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import SHARED_APPS, SHARED_HEALTH_PATH
from bluegreen.lab.load import Load
from bluegreen.service import Service, SwitchRequest
from tests.lab.browser import Browser

pytestmark = pytest.mark.lab
APP = "theoshift"  # the browser's app: the users' shared frontend, with preview Hosts
THEOSHIFT = next(app for app in SHARED_APPS if app.name == APP)
SINGLE_APP = "jw-attendant"  # watch and the prompt run on the single layout
SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
BLUEGREEN = str(Path(sys.executable).parent / "bluegreen")


@pytest.fixture(scope="module")
def operator_config(shared_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The users' shared layout, its apps approved by an operator (a person, in the dashboard)."""
    text = Path(shared_lab.info().config_path).read_text()
    assert 'approval = "auto"' in text
    path = tmp_path_factory.mktemp("operator") / "bluegreen.toml"
    path.write_text(text.replace('approval = "auto"', 'approval = "operator"'))
    return path


@pytest.fixture
def fresh_shared(shared_lab: Lab) -> Lab:
    """The shared lab as `up` left it (initial cfg, both hosts on the first commit)."""
    shared_lab.reset()
    return shared_lab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dashboard(operator_config: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [BLUEGREEN, "--config", str(operator_config), "dashboard", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/login", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def readings_above_zero(app: str, color: str, count: int) -> str:
    """JS: the page's traffic line for `color` has `count` readings above zero."""
    return (f"(JSON.parse(sessionStorage.getItem('bluegreen-traffic-{app}') || '{{}}')"
            f"['{color}'] || []).filter(v => v > 0).length >= {count}")  # fmt: skip


def status_json(config: Path, app: str) -> dict[str, Any]:
    """`bluegreen status APP --json`, as a person or a script reads it."""
    done = subprocess.run([BLUEGREEN, "--config", str(config), "status", app, "--json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


# What the page shows, read from its DOM (texts only).
PAGE_VIEW = """(() => {
  const text = (sel) => document.querySelector(sel)?.innerText ?? null;
  return {
    summary: text('#summary'), live: text('#live'), standby: text('#standby'),
    live_h2: text('#live h2'), standby_h2: text('#standby h2'),
    test_standby: document.querySelector('#standby .preview code')?.textContent ?? null,
  };
})()"""


def contradictions(page: dict[str, str | None], status: dict[str, Any]) -> list[str]:
    """Where the page says something `bluegreen status --json` does not (values that change
    from one reading to the next, latencies and times, are not compared)."""
    found = []

    def says(where: str, value: object, what: str) -> None:
        if str(value) not in (page[where] or ""):
            found.append(f"#{where} does not show {what} {value!r}: {page[where]!r}")

    certain = "routing: certain" if status["certain"] else "routing: UNCERTAIN"
    says("summary", certain, "the verdict")
    says("summary", status["routing"]["summary"], "the routing summary")
    says("summary", f"switches: {status['switch_count'] or 0}", "the switch count")
    for role in ("live", "standby"):
        server = status[role]
        if page[f"{role}_h2"] != f"{role.upper()}: {server['color'].upper()}":
            found.append(f"#{role} is {page[f'{role}_h2']!r}, status says {server['color']}")
        says(role, (server["commit"] or "")[:7], "the commit")
        says(role, "healthy (HTTP" if server["healthy"] else "UNHEALTHY", "the health")
        runtime = f"{server['runtime_state'] or ''} ({server['backend']}/{server['server']})"
        says(role, runtime, "HAProxy's view")
        says(role, server["address"], "the address")
        for rule in server["preview"]:
            says(role, rule["line"], "a preview rule's line")
            says(role, ", ".join(rule["hosts"]), "a preview rule's hosts")
    if page["test_standby"] != status["standby"]["preview_command"]:
        found.append(f"test STANDBY now: {page['test_standby']!r}, status says "
                     f"{status['standby']['preview_command']!r}")  # fmt: skip
    return found


def agrees_with_status(browser: Browser, config: Path, app: str) -> dict[str, Any]:
    """The page, reloaded, shows nothing `bluegreen status --json` contradicts; that status."""
    status = status_json(config, app)
    browser.open(f"{browser.evaluate('location.origin')}/app/{app}")
    browser.wait_for("!!document.querySelector('#standby h2')")
    page = browser.evaluate(PAGE_VIEW)
    assert contradictions(page, status) == [], (page, status)
    return status


def test_dashboard_in_a_browser_deploy_approve_switch(
    fresh_shared: Lab, operator_config: Path, dashboard: str
) -> None:
    """The users' shared frontend: test STANDBY through its preview Host, deploy a chosen ref to
    it from the form, approve the operator plan, see the switch and the preview Host swap."""
    started = time.monotonic()
    info = fresh_shared.info()
    chosen = fresh_shared.commit()  # the ref the person picks: not the branch's head
    head = fresh_shared.commit()
    host = THEOSHIFT.host
    with Browser() as browser, Load(info.frontend + SHARED_HEALTH_PATH, threads=2, host=host):
        # Load: LIVE and STANDBY as status has them, STANDBY's preview Host, traffic on BLUE.
        browser.open(f"{dashboard}/app/{APP}")
        browser.wait_for("document.querySelector('#live h2')?.textContent === 'LIVE: BLUE'")
        status = agrees_with_status(browser, operator_config, APP)
        assert status["standby"]["preview_command"] == (
            f"curl -H 'Host: {THEOSHIFT.preview('green')}' {info.frontend}/"
        )
        browser.wait_for(readings_above_zero(APP, "blue", 3))
        browser.screenshot(SHOTS / "dashboard-status.png")

        # Follow a deploy of the chosen ref to STANDBY, step by step.
        browser.evaluate(f"document.querySelector('#ref').value = {json.dumps(chosen)}")
        browser.click("#deploy")
        browser.wait_for("document.querySelectorAll('#job .steps li').length >= 2", timeout=60)
        heading = browser.evaluate("document.querySelector('#job h2').textContent")
        assert heading == f"progress: deploy: ref {chosen}", heading
        browser.screenshot(SHOTS / "dashboard-deploy.png")
        browser.wait_for("document.querySelector('#job')?.dataset.done", timeout=180)
        assert browser.evaluate("document.querySelector('#job').dataset.done") == "ok", (
            browser.evaluate("document.querySelector('#job').innerText")
        )
        # The page reloads itself once the job is done: STANDBY runs the chosen commit.
        browser.wait_for(f"document.querySelector('#standby')?.innerText.includes('{chosen[:7]}')")
        assert f"(ref {chosen})" in browser.evaluate("document.querySelector('#history').innerText")
        assert head[:7] not in browser.evaluate("document.querySelector('#standby').innerText")

        # An MCP client asks for the switch: operator mode, so a person must approve it.
        with Service.from_path(str(operator_config)) as service:
            asked = service.switch(APP)
        assert not asked.executed and asked.plan and asked.plan.confirm_token
        browser.open(f"{dashboard}/app/{APP}")
        browser.wait_for("!!document.querySelector('.pending .approve-switch')")
        pending = browser.evaluate("document.querySelector('#pending').innerText")
        assert f"{chosen[:7]} goes LIVE" in pending, pending
        diff = browser.evaluate("document.querySelector('#plan .diff').innerText")
        assert "+    use_backend theoshift_green if is_theoshift" in diff, diff
        browser.screenshot(SHOTS / "dashboard-approval.png")

        # Approve and switch: the steps, then the traffic moving to GREEN.
        browser.click(".pending .approve-switch")
        browser.wait_for("document.querySelector('#job')?.dataset.done", timeout=120)
        assert browser.evaluate("document.querySelector('#job').dataset.done") == "ok"
        browser.wait_for("document.querySelector('#live h2')?.textContent === 'LIVE: GREEN'")
        browser.wait_for(readings_above_zero(APP, "green", 4))
        # The page reloads itself after the job: the bars are drawn again at its first reading.
        browser.wait_for("document.querySelector('.bar.c-blue')?.dataset.rate === '0'")
        browser.screenshot(SHOTS / "dashboard-switch.png")
        timeline = browser.evaluate("document.querySelector('#history').innerText")
        # STANDBY is BLUE now: the page offers BLUE's preview Host, as status does.
        status = agrees_with_status(browser, operator_config, APP)
        assert status["standby"]["preview_command"] == (
            f"curl -H 'Host: {THEOSHIFT.preview('blue')}' {info.frontend}/"
        )

    with Service.from_path(str(operator_config)) as service:
        final = service.status(APP)
        entry = service.history(APP, 1).entries[0]
    assert final.live and final.live.color == "green" and final.live.commit == chosen
    assert entry.operation == "switch" and entry.outcome == "ok"
    assert entry.approval and entry.approval.kind == "operator"
    assert entry.approval.channel == "dashboard" and entry.approval.by
    assert f"approved by operator ({entry.approval.by}, via dashboard)" in timeline
    print(f"browser test: {time.monotonic() - started:.1f}s")


def rates(line: str) -> dict[str, float]:
    return {c.lower(): float(r) for c, r in re.findall(r"(BLUE|GREEN) \S+ +([\d.]+) req/s", line)}


def test_watch_shows_the_traffic_moving_during_a_switch(fresh_lab: Lab, lab_info: LabInfo) -> None:
    lines: list[tuple[float, str]] = []
    watch = subprocess.Popen(
        [BLUEGREEN, "--config", lab_info.config_path, "watch", SINGLE_APP, "--every", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    config = Service.from_path(lab_info.config_path).config
    app = config.apps[SINGLE_APP].model_copy(update={"allow_unapproved": True})
    try:
        with Load(lab_info.frontend + "/health", threads=2), Service(
            config.model_copy(update={"apps": {SINGLE_APP: app}})
        ) as service:  # fmt: skip
            time.sleep(4)
            switch_started = time.monotonic()
            result = service.switch(SINGLE_APP, SwitchRequest(require_approval=False))
            switch_done = time.monotonic()
            assert result.ok, result.error
            time.sleep(4)
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        reader.join(timeout=5)
    assert lines, watch.stderr.read() if watch.stderr else ""
    before = [rates(t) for at, t in lines if at < switch_started and "..." not in t]
    after = [rates(t) for at, t in lines if at > switch_done + 1.5]
    assert before and after, lines
    assert all(r["blue"] > 0 and r["green"] == 0 for r in before[1:]), lines
    assert all(r["green"] > 0 and r["blue"] == 0 for r in after), lines
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "watch-during-switch.txt").write_text("\n".join(t for _, t in lines) + "\n")


def login_prompts(service: Service) -> dict[str, str]:
    """What a login shell (bash -l, /etc/profile and /etc/profile.d/) shows on each app host."""
    shown = {}
    for color, server in service.config.apps[SINGLE_APP].servers.items():
        (member,) = server.members(color)
        r = service.runner.run(member.ssh, Command.of("bash", "-lc", 'printf %s "${PS1@P}"',
                                                      mutating=False))  # fmt: skip
        assert r.ok, r.tail()
        match = re.search(r"\[(BLUE|GREEN) (LIVE|STANDBY)\]", r.stdout)
        shown[color] = match.group(0) if match else r.stdout
    return shown


def test_a_login_shells_prompt_knows_its_role_across_a_switch(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    installed = subprocess.run(
        [BLUEGREEN, "--config", lab_info.config_path, "prompt", SINGLE_APP],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert "both hosts show their new role" in installed.stdout
    config = Service.from_path(lab_info.config_path).config
    app = config.apps[SINGLE_APP].model_copy(update={"allow_unapproved": True})
    with Service(config.model_copy(update={"apps": {SINGLE_APP: app}})) as service:
        try:
            assert login_prompts(service) == {"blue": "[BLUE LIVE]", "green": "[GREEN STANDBY]"}
            assert all(s.prompt_installed for s in service.status(SINGLE_APP).servers)
            assert service.switch(SINGLE_APP, SwitchRequest(require_approval=False)).ok
            assert login_prompts(service) == {"blue": "[BLUE STANDBY]", "green": "[GREEN LIVE]"}
        finally:  # the next tests find the hosts as `lab up` left them
            for member in (m for color in app.servers for m in app.members(color)):
                service.runner.run(member.ssh, Command.of(
                    "rm", "-f", "--", snippet_path(app.app_dir)))  # fmt: skip


def test_traffic_per_app_on_the_shared_frontend(shared_lab: Lab) -> None:
    """The users' production shape: one frontend routes two apps by Host. Each app's readings
    are its own colour's server rows; a switch of one app moves only its traffic."""
    info = shared_lab.info()
    loaded = Service.from_path(info.config_path).config
    apps = {n: a.model_copy(update={"allow_unapproved": True}) for n, a in loaded.apps.items()}
    theoshift, ldc = (app.name for app in SHARED_APPS)
    url = info.frontend + SHARED_HEALTH_PATH
    hosts = {app.name: app.host for app in SHARED_APPS}
    with (
        Service(loaded.model_copy(update={"apps": apps})) as service,
        Load(url, threads=2, host=hosts[theoshift]),
        Load(url, threads=2, host=hosts[ldc]),
    ):

        def busy(app: str) -> dict[str, tuple[str | None, bool]]:
            """Each colour's role and whether it served requests over about a second."""
            first = service.traffic(app)
            time.sleep(1)
            reading = service.traffic(app, first)
            assert reading.error is None, reading.error
            return {c.color: (c.role, (c.per_second or 0) > 0) for c in reading.colours}

        before = busy(theoshift)
        live = next(color for color, (role, _) in before.items() if role == "LIVE")
        other = "green" if live == "blue" else "blue"
        assert before == {live: ("LIVE", True), other: ("STANDBY", False)}
        ldc_before = busy(ldc)
        assert service.switch(theoshift, SwitchRequest(require_approval=False)).ok
        assert busy(theoshift) == {live: ("STANDBY", False), other: ("LIVE", True)}
        assert busy(ldc) == ldc_before  # the other app's traffic stays where it was
