"""The dashboard against the fake hosts, through HTTP as a browser sends it: what it shows
(escaped), who may use it (Host, Origin, CSRF, token login), operator approvals recorded with the
person and the channel, stale plans refused, and a switch followed step by step."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.unit.fake_hosts import APP, FakeHosts, config
from tests.unit.test_display_text import assert_safe, hostile_status, seeded_lab
from tests.unit.test_switch_engine import history_entries, token_of

from bluegreen.dashboard.guard import Guard
from bluegreen.dashboard.server import Dashboard, run
from bluegreen.domain.validate import validate_ref
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import ConfigError, ValidationError
from bluegreen.models import AppStatus, DeployResult
from bluegreen.service import Service

BASE = "http://127.0.0.1:8766"
ORIGIN = {"origin": BASE}
TOKEN = "t" * 24


class PagedService(Service):
    """The fake hosts do not answer status's one-round read: status is given, the rest is real."""

    shown: AppStatus

    def status(self, app: str) -> AppStatus:
        return self.shown.model_copy(update={"app": app})

    def status_many(self, apps: list[str]) -> list[AppStatus]:
        return [self.status(a) for a in apps]


def client(
    lab: FakeHosts, token: str | None = None, **changes: object
) -> tuple[TestClient, Service]:
    svc = PagedService(config(**changes), runner=lab.runner)
    svc.shown = hostile_status()
    guard = Guard("127.0.0.1", 8766, token, "ops@dashboard-host", ())
    return TestClient(Dashboard(svc, guard).app(), base_url=BASE), svc


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_the_page_shows_status_plan_and_history_escaped() -> None:
    lab = seeded_lab()
    lab.runner.put_file(  # an entry whose fields carry markup
        "root@haproxy", f"/var/lib/bluegreen/history/{APP}.jsonl",
        (lab.runner.file("root@haproxy", f"/var/lib/bluegreen/history/{APP}.jsonl") or b"")
        + b'{"time":"t","operation":"deploy","app":"jw-attendant","user":"<script>alert(1)</script>",'
        b'"host":"h","outcome":"ok"}\n',
    )  # fmt: skip
    web, _ = client(lab)
    page = web.get(f"/app/{APP}")
    assert page.status_code == 200
    text = page.text
    assert_safe(text)
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text
    assert 'id="live"' in text and "LIVE: BLUE" in text and "STANDBY: GREEN" in text
    assert (
        "test STANDBY now: <code>curl -H &#x27;Host: green.theoshift.com&#x27; "
        "http://10.92.3.33:80/</code> (through the frontend with its preview Host "
        "(/etc/haproxy/haproxy.cfg:9))" in text
    )
    assert "switch plan: BLUE &rarr; GREEN" in text  # preview_switch, with its diff
    assert "-    default_backend bk_blue" in text and "+    default_backend bk_green" in text
    assert 'id="pending"' not in text  # not an operator app
    assert "approvals" not in str(lab.runner.commands())  # viewing issues no token


def test_an_unknown_host_or_a_foreign_form_is_refused() -> None:
    web, _ = client(FakeHosts())
    assert web.get(f"/app/{APP}", headers={"host": "evil.example:8766"}).status_code == 421
    page = web.get(f"/app/{APP}").text
    token = csrf(page)
    assert web.post(f"/app/{APP}/deploy", data={"csrf": token}).status_code == 403  # no Origin
    evil = {"origin": "http://evil.example"}
    assert web.post(f"/app/{APP}/deploy", data={"csrf": token}, headers=evil).status_code == 403
    wrong = web.post(f"/app/{APP}/deploy", data={"csrf": "x" * 32}, headers=ORIGIN)
    assert wrong.status_code == 403
    fresh = TestClient(web.app, base_url=BASE)  # no session: no form is valid
    assert fresh.post(f"/app/{APP}/deploy", data={"csrf": token}, headers=ORIGIN).status_code == 401


def wait_for(web: TestClient, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        view: dict[str, Any] = web.get(f"/api/jobs/{job}").json()
        if view["done"]:
            return view
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def test_an_operator_plan_approved_in_the_browser_and_switched_step_by_step() -> None:
    lab = FakeHosts()
    web, svc = client(lab, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))  # an MCP client asked for the switch
    page = web.get(f"/app/{APP}").text
    assert 'class="pending"' in page and "approve and switch now" in page
    assert f'value="{token}"' in page and "b2b2b2b" in page  # the commit going LIVE
    done = web.post(f"/app/{APP}/approve", headers=ORIGIN, follow_redirects=False,
                    data={"csrf": csrf(page), "token": token, "then": "switch"})  # fmt: skip
    assert done.status_code == 303
    job = done.headers["location"].split("job=")[1]
    view = wait_for(web, job)
    assert view["ok"], view
    steps = [s["step"] for s in view["steps"]]
    assert "reload" in steps and "verify" in steps
    assert lab.live_color() == "green"
    assert history_entries(lab)[-1]["approval"] == {
        "kind": "operator", "by": "ops@dashboard-host", "channel": "dashboard"
    }  # fmt: skip
    assert "approved: jw-attendant switch BLUE -&gt; GREEN" in web.get(f"/app/{APP}").text


def test_a_stale_plan_is_shown_stale_and_refused() -> None:
    lab = FakeHosts()
    web, svc = client(lab, allow_unapproved=False, approval="operator")
    token = token_of(svc.switch(APP))
    lab.commits["green"] = "c3" * 20  # deployed after the plan
    page = web.get(f"/app/{APP}").text
    assert "cannot be approved: STANDBY GREEN changed since the plan" in page
    assert "approve and switch now" not in page
    refused = web.post(f"/app/{APP}/approve", headers=ORIGIN,
                       data={"csrf": csrf(page), "token": token})  # fmt: skip
    assert refused.status_code == 400 and "no longer applies" in refused.text
    assert len(svc.pending_approvals(APP)) == 1


def test_only_a_plan_the_page_lists_can_be_approved_there() -> None:
    hosts = FakeHosts()
    web, svc = client(hosts, allow_unapproved=False, approval="token")
    token = token_of(svc.switch(APP))  # token mode: no operator's approval to give
    page = web.get(f"/app/{APP}").text
    refused = web.post(f"/app/{APP}/approve", headers=ORIGIN,
                       data={"csrf": csrf(page), "token": token})  # fmt: skip
    assert refused.status_code == 400 and "no plan of jw-attendant awaits approval" in refused.text
    assert "approved" not in str(hosts.runner.paths("root@haproxy"))


def test_a_token_login_names_the_person_who_approves() -> None:
    lab = FakeHosts()
    web, svc = client(lab, TOKEN, allow_unapproved=False, approval="operator")
    assert web.get("/", follow_redirects=False).headers["location"] == "/login"
    assert web.get(f"/api/app/{APP}/traffic").status_code == 401
    wrong = web.post("/login", data={"token": "x" * 24, "name": "ana"}, headers=ORIGIN)
    assert wrong.status_code == 401
    web.post("/login", data={"token": TOKEN, "name": "ana"}, headers=ORIGIN)
    token = token_of(svc.switch(APP))
    page = web.get(f"/app/{APP}").text
    web.post(f"/app/{APP}/approve", headers=ORIGIN, data={"csrf": csrf(page), "token": token})
    assert "ana (dashboard login)" in (lab.runner.file(
        "root@haproxy", f"/var/lib/bluegreen/approvals/{token}.approved/by") or b"").decode()  # fmt: skip


def test_any_other_bind_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="without a bearer token") as refused:
        run(Service(config(), runner=FakeHosts().runner), host="0.0.0.0", port=1, token=None,
            os_user="ops")  # fmt: skip
    assert "BLUEGREEN_DASHBOARD_TOKEN" in (refused.value.hint or "")


def test_traffic_readings_give_rates_per_colour() -> None:
    lab = FakeHosts()
    web, _ = client(lab)
    first = web.get(f"/api/app/{APP}/traffic").json()
    assert [c["requests_total"] for c in first["colours"]] == [0, 0]
    lab.requests["blue"] = 50
    second = web.get(f"/api/app/{APP}/traffic").json()
    assert second["colours"][0]["per_second"] > 0 and second["colours"][1]["per_second"] == 0


def test_the_overview_lists_every_app_with_its_roles() -> None:
    web, _ = client(FakeHosts())
    page = web.get("/")
    assert page.status_code == 200
    assert_safe(page.text)
    assert f'<a href="/app/{APP}">{APP}</a>' in page.text
    assert (
        '<span class="c-blue">BLUE</span></td><td><span class="c-green">GREEN</span>' in page.text
    )


class DeployRecorder(PagedService):
    """Records what the page's deploy asks for; the deploy itself is the engine's (tested there)."""

    asked: list[DeployOptions]

    def deploy(self, app: str, options: DeployOptions | None = None, *,
               progress: Any = None) -> DeployResult:  # fmt: skip
        self.asked.append(options or DeployOptions())
        ref = (options and options.ref) or "main"
        return DeployResult(app=app, ok=True, color="green", host="root@green",
                            address="green:3001", ref=ref, commit_after="c3" * 20,
                            live_color="blue")  # fmt: skip


def recorder(lab: FakeHosts) -> tuple[TestClient, DeployRecorder]:
    svc = DeployRecorder(config(), runner=lab.runner)
    svc.shown, svc.asked = hostile_status(), []
    guard = Guard("127.0.0.1", 8766, None, "ops@dashboard-host", ())
    return TestClient(Dashboard(svc, guard).app(), base_url=BASE), svc


def test_a_deploy_from_the_page_takes_a_ref_shown_in_its_progress() -> None:
    web, svc = recorder(FakeHosts())
    page = web.get(f"/app/{APP}").text
    assert '<input id="ref" name="ref"' in page
    started = web.post(f"/app/{APP}/deploy", headers=ORIGIN, follow_redirects=False,
                       data={"csrf": csrf(page), "ref": " v1.2 "})  # fmt: skip
    job = started.headers["location"].split("job=")[1]
    view = wait_for(web, job)
    assert view["ok"] and view["detail"] == "ref v1.2", view
    assert view["message"] == "GREEN now runs c3c3c3c (v1.2)"
    assert [o.ref for o in svc.asked] == ["v1.2"]
    assert "progress: deploy: ref v1.2" in web.get(f"/app/{APP}?job={job}").text
    # No ref: the configured branch, as the CLI without --ref.
    plain = web.post(f"/app/{APP}/deploy", headers=ORIGIN, follow_redirects=False,
                     data={"csrf": csrf(page), "ref": ""})  # fmt: skip
    assert wait_for(web, plain.headers["location"].split("job=")[1])["ok"]
    assert svc.asked[-1].ref is None


@pytest.mark.parametrize("ref", ["--upload-pack=evil", "main;reboot", "a b", "$(id)", "x..y"])
def test_a_bad_ref_is_refused_as_the_cli_refuses_it_before_any_job(ref: str) -> None:
    web, svc = recorder(FakeHosts())
    page = web.get(f"/app/{APP}").text
    refused = web.post(f"/app/{APP}/deploy", headers=ORIGIN, follow_redirects=False,
                       data={"csrf": csrf(page), "ref": ref})  # fmt: skip
    assert refused.status_code == 400
    with pytest.raises(ValidationError) as cli_says:
        validate_ref(ref)
    assert html.escape(cli_says.value.message) in refused.text
    assert svc.asked == []


def test_the_history_shows_each_deploys_ref() -> None:
    lab = seeded_lab()
    lab.runner.put_file(
        "root@haproxy", f"/var/lib/bluegreen/history/{APP}.jsonl",
        b'{"time":"t","operation":"deploy","app":"jw-attendant","user":"u","host":"h",'
        b'"outcome":"ok","color":"green","ref":"release-7","commit_after":"' + b"c3" * 20 + b'"}\n',
    )  # fmt: skip
    web, _ = client(lab)
    assert "c3c3c3c (ref <code>release-7</code>)" in web.get(f"/app/{APP}").text
