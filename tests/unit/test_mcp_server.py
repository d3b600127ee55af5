"""The MCP tools, driven in-process by the SDK's own client against a fake service.

Both protocol eras are covered: `legacy` (initialize handshake, 2025-11-25: elicitation is a
mid-call request) and `auto` (2026-07-28: elicitation is an input_required round trip).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from tests.unit.fake_hosts import APP as FAKE_APP
from tests.unit.fake_hosts import HP as FAKE_HP
from tests.unit.fake_hosts import FakeHosts, config

from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import BlueGreenError, CommandFailed, ConfigError, TransportError
from bluegreen.mcp_elicit import APPROVAL_KEY
from bluegreen.mcp_server import BlueGreenService, ServiceHolder, build_server
from bluegreen.models import (
    AppRouting,
    AppStatus,
    AppSummary,
    DeployResult,
    Health,
    History,
    HistoryEntry,
    Routing,
    ServerStatus,
    StateFileView,
    StepResult,
    StepStatus,
    SwitchPlan,
    SwitchResult,
)
from bluegreen.service import Approver, Service, SwitchRequest

MODES = ["legacy", "auto"]
ADDRESSES = {"blue": "10.0.0.1:3001", "green": "10.0.0.2:3001"}
TOOLS = {
    "list_apps",
    "get_deployment_status",
    "get_deployment_history",
    "deploy_to_standby",
    "switch_traffic",
}


class FakeService:
    """Behaves like bluegreen.service.Service for one app, `shop` (approval "auto"); the app
    names `down`, `failing`, `boom` and `nope` make it fail in the ways the real one can."""

    def __init__(self, approval: str = "auto") -> None:
        self.approval = approval
        self.live = "blue"
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tokens: dict[str, str] = {}
        self.closed = False
        self.elicited: list[SwitchPlan] = []
        self.drift = 0  # bump to make the next plan differ (the cfg changed meanwhile)

    @property
    def standby(self) -> str:
        return "green" if self.live == "blue" else "blue"

    def _check(self, app: str) -> None:
        if app == "down":
            raise TransportError(
                "cannot connect to root@10.0.0.9: connection refused",
                host="root@10.0.0.9",
                hint="check that sshd runs there and that the address in the config is right",
            )
        if app == "boom":
            raise RuntimeError("internal detail: /root/.ssh/id_rsa exploded")
        if app == "nope":
            raise ConfigError("no app 'nope' in the config (apps: shop)", hint="see list_apps")

    def list_apps(self) -> list[AppSummary]:
        self.calls.append(("list_apps", {}))
        return [AppSummary(app="shop", frontend="http-in", servers=dict(ADDRESSES))]

    def _server(self, color: str) -> ServerStatus:
        address = ADDRESSES[color]
        return ServerStatus(
            color=color,
            role="LIVE" if color == self.live else "STANDBY",
            ssh=f"root@{address.split(':')[0]}",
            address=address,
            reachable=True,
            healthy=True,
            health=Health(
                url=f"http://{address}/health",
                healthy=True,
                status_code=200,
                latency_ms=3.0,
                color=color,
                commit="a" * 40,
            ),
            commit="a" * 40,
            preview_command=f"curl http://{address}/",
            preview_note="straight at its address, as HAProxy reaches it (no preview rule with "
            "a Host in haproxy.cfg)",
        )

    def status(self, app: str) -> AppStatus:
        self.calls.append(("status", {"app": app}))
        self._check(app)
        live, standby = self._server(self.live), self._server(self.standby)
        return AppStatus(
            app=app,
            certain=True,
            live=live,
            standby=standby,
            servers=[live, standby],
            routing=Routing(
                certain=True,
                style="backend-per-color",
                frontend="http-in",
                summary=f"default_backend bk_{self.live}",
            ),
            state_file=StateFileView(path="/var/lib/haproxy/shop.json", present=True, valid=True),
            next_step="Both servers run the same commit: deploy_to_standby to release a new version.",
            checked_at="2025-12-21T10:00:00Z",
            duration_ms=12.0,
        )

    def history(self, app: str, limit: int = 20) -> History:
        self.calls.append(("history", {"app": app, "limit": limit}))
        self._check(app)
        entry = HistoryEntry(time="2025-12-21T10:00:00Z", operation="switch", app=app,
                             user="ana", host="laptop", outcome="ok", from_live="green",
                             to_live="blue", reason="release 42")  # fmt: skip
        return History(app=app, entries=[entry][:limit])

    def deploy(self, app: str, options: DeployOptions | None = None, *,
               progress: Callable[[StepEvent], None] | None = None) -> DeployResult:  # fmt: skip
        options = options or DeployOptions()
        self.calls.append(("deploy", {"app": app, "options": options}))
        self._check(app)
        steps = ["lock", "backup", "pull", "build", "restart", "health"]
        failing = app == "failing"
        results = []
        for index, name in enumerate(steps, 1):
            if progress:
                progress(StepEvent(name, "start", index=index, total=len(steps)))
            status: StepStatus = "failed" if failing and name == "build" else "ok"
            if progress:
                progress(StepEvent(name, status, duration_s=0.1, index=index, total=len(steps)))
            results.append(StepResult(name=name, status=status, duration_s=0.1,
                                      output_tail="npm ERR! missing script: build" if status == "failed" else None))  # fmt: skip
            if status == "failed":
                break
        return DeployResult(
            app=app, ok=not failing, color=self.standby, host=f"root@{self.standby}",
            address=ADDRESSES[self.standby], ref=options.ref, commit_before="a" * 40,
            commit_after=None if failing else "b" * 40, steps=results,
            failed_step="build" if failing else None,
            error="build failed (exit 1)" if failing else None,
            restored=True if failing else None, live_color=self.live, live_healthy_after=True,
            next_step="" if failing else f"Test STANDBY at {ADDRESSES[self.standby]}, then switch_traffic.",
        )  # fmt: skip

    def _plan(self, app: str, emergency: bool) -> SwitchPlan:
        digest = hashlib.sha256(f"{app}{self.live}{emergency}{self.drift}".encode()).hexdigest()
        return SwitchPlan(
            app=app, from_live=self.live, to_live=self.standby, emergency=emergency,
            diff=f"-    default_backend bk_{self.live}\n+    default_backend bk_{self.standby}\n",
            target_healthy=True, plan_hash=digest, approval="elicit",
        )  # fmt: skip

    def _execute(self, plan: SwitchPlan) -> SwitchResult:
        old, self.live = self.live, self.standby
        return SwitchResult(app=plan.app, executed=True, ok=True, from_live=old, to_live=self.live,
                            verified=True, state_file_written=True,
                            steps=[StepResult(name="reload", status="ok", duration_s=0.2)])  # fmt: skip

    def switch(self, app: str, request: SwitchRequest | None = None, *,
               approver: Approver | None = None,
               progress: Callable[[StepEvent], None] | None = None) -> SwitchResult:  # fmt: skip
        request, approver = request or SwitchRequest(), approver or Approver()
        elicit, confirm_token = approver.ask, request.confirm_token
        self.calls.append(("switch", {"app": app, "request": request,
                                      "elicit": elicit is not None, "who": approver.who}))  # fmt: skip
        self._check(app)
        plan = self._plan(app, request.emergency)
        if progress:
            progress(StepEvent("plan", "ok", message=f"{plan.from_live} -> {plan.to_live}"))
        if not request.require_approval:
            raise BlueGreenError("shop does not allow switches without approval",
                                 hint="call with requireApproval=true")  # fmt: skip
        if confirm_token is not None:
            if self.tokens.pop(confirm_token, None) != plan.plan_hash:
                raise BlueGreenError("confirmToken refused: unknown, used, or for another plan",
                                     hint="call switch_traffic without confirmToken for a new plan")  # fmt: skip
            return self._execute(plan)
        if self.approval == "auto" and elicit is not None:
            self.elicited.append(plan)
            if not elicit(plan):
                return SwitchResult(app=app, executed=False, ok=False, plan=plan,
                                    message="not approved: nothing changed")  # fmt: skip
            return self._execute(plan)
        token = f"tok_{len(self.tokens):03d}_abcdefghijklmnop"
        self.tokens[token] = plan.plan_hash
        issued = plan.model_copy(update={"approval": "token", "confirm_token": token,
                                         "token_expires_at": "2025-12-21T10:10:00Z"})  # fmt: skip
        return SwitchResult(app=app, executed=False, ok=False, plan=issued,
                            message="approval needed: nothing changed",
                            next_step="show the plan; after a yes, pass confirmToken")  # fmt: skip

    def preview_switch(self, app: str, *, emergency: bool = False) -> SwitchPlan:
        self.calls.append(("preview_switch", {"app": app, "emergency": emergency}))
        self._check(app)
        return self._plan(app, emergency)

    def routing(self, app: str) -> AppRouting:
        self.calls.append(("routing", {"app": app}))
        self._check(app)
        return AppRouting(app=app, config_path="/etc/haproxy/haproxy.cfg",
                          routing=self.status(app).routing)  # fmt: skip

    def close(self) -> None:
        self.closed = True


def make(service: FakeService | None = None) -> tuple[Any, FakeService, ServiceHolder]:
    fake = service or FakeService()

    def factory() -> BlueGreenService:
        return fake

    server, holder = build_server(factory)
    return server, fake, holder


def run(coro_fn: Callable[[], Any]) -> Any:
    return anyio.run(coro_fn)


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text


def answering(action: str, content: dict[str, Any] | None = None) -> Any:
    asked: list[str] = []

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    callback.asked = asked  # type: ignore[attr-defined]
    return callback


# ---- schemas and annotations -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_tools_have_schemas_annotations_and_descriptions(mode: str) -> None:
    server, _, _ = make()

    async def main() -> dict[str, types.Tool]:
        async with Client(server, mode=mode) as client:
            return {tool.name: tool for tool in (await client.list_tools()).tools}

    tools = run(main)
    assert set(tools) == TOOLS
    params = {name: set(tool.input_schema["properties"]) for name, tool in tools.items()}
    assert params["list_apps"] == set()
    assert params["get_deployment_status"] == {"app"}
    assert params["get_deployment_history"] == {"app", "limit"}
    assert params["deploy_to_standby"] == {
        "app", "pullGithub", "createBackup", "runMigrations", "ref", "dryRun", "breakLock",
    }  # fmt: skip
    assert params["switch_traffic"] == {
        "app", "requireApproval", "emergency", "confirmToken", "force", "breakLock", "reason",
        "reconcile",
    }  # fmt: skip
    for tool in tools.values():
        assert tool.input_schema.get("required", []) == (
            [] if tool.name == "list_apps" else ["app"]
        )
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert tool.description and len(tool.description) > 150
    deploy_props = tools["deploy_to_standby"].input_schema["properties"]
    assert deploy_props["pullGithub"]["default"] is True
    assert deploy_props["createBackup"]["default"] is True
    assert deploy_props["runMigrations"]["default"] is False
    switch_props = tools["switch_traffic"].input_schema["properties"]
    assert switch_props["requireApproval"]["default"] is True
    assert switch_props["emergency"]["default"] is False
    assert tools["get_deployment_history"].input_schema["properties"]["limit"]["default"] == 20

    # (readOnly, destructive, idempotent, openWorld): list_apps needs no SSH; deploy restarts
    # STANDBY's app, prunes backups and can migrate a shared database.
    hints = {
        "list_apps": (True, False, True, False),
        "get_deployment_status": (True, False, True, True),
        "get_deployment_history": (True, False, True, True),
        "deploy_to_standby": (False, True, False, True),
        "switch_traffic": (False, True, False, True),
    }
    for name, expected in hints.items():
        a = tools[name].annotations
        assert a is not None and a.title == tools[name].title
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
            expected
        ), name

    assert {"live", "standby", "certain", "next_step"} <= set(
        tools["get_deployment_status"].output_schema["properties"]
    )
    assert tools["list_apps"].output_schema["properties"]["result"]["type"] == "array"
    assert {"ok", "color", "steps", "restored"} <= set(
        tools["deploy_to_standby"].output_schema["properties"]
    )
    assert {"executed", "plan", "to_live"} <= set(
        tools["switch_traffic"].output_schema["properties"]
    )
    # What an assistant must learn from the descriptions.
    assert "never touches the LIVE" in tools["deploy_to_standby"].description
    assert "confirmToken" in tools["switch_traffic"].description
    assert "Read-only" in tools["get_deployment_status"].description


def test_server_instructions_describe_the_cycle() -> None:
    server, _, _ = make()

    async def main() -> str | None:
        async with Client(server, mode="legacy") as client:
            return client.instructions

    instructions = run(main)
    assert instructions and "deploy_to_standby" in instructions and "confirmToken" in instructions


# ---- read-only tools ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_read_only_tools_return_structured_content_and_text(mode: str) -> None:
    server, fake, _ = make()

    async def main() -> tuple[Any, Any, Any]:
        async with Client(server, mode=mode) as client:
            apps = await client.call_tool("list_apps", {})
            status = await client.call_tool("get_deployment_status", {"app": "shop"})
            history = await client.call_tool("get_deployment_history", {"app": "shop", "limit": 5})
            return apps, status, history

    apps, status, history = run(main)
    for result in (apps, status, history):
        assert result.is_error is False
        assert result.structured_content is not None
    assert apps.structured_content == {
        "result": [{"app": "shop", "frontend": "http-in", "servers": ADDRESSES}]
    }
    assert "shop: frontend http-in" in text_of(apps)

    parsed = AppStatus.model_validate(status.structured_content)
    assert parsed.live and parsed.live.color == "blue" and parsed.live.role == "LIVE"
    assert parsed.standby and parsed.standby.color == "green"
    text = text_of(status)
    assert "LIVE is BLUE, STANDBY is GREEN" in text
    assert (
        "Test STANDBY GREEN before switching with `curl http://10.0.0.2:3001/` (straight at its "
        "address, as HAProxy reaches it (no preview rule with a Host in haproxy.cfg))" in text
    )
    assert "Next: Both servers run the same commit" in text

    assert History.model_validate(history.structured_content).entries[0].reason == "release 42"
    assert "switch GREEN -> BLUE: ok by ana@laptop (release 42)" in text_of(history)
    assert ("history", {"app": "shop", "limit": 5}) in fake.calls


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_bluegreen_errors_become_actionable_tool_errors(mode: str) -> None:
    server, _, _ = make()

    async def main() -> list[types.CallToolResult]:
        async with Client(server, mode=mode) as client:
            return [
                await client.call_tool("get_deployment_status", {"app": "down"}),
                await client.call_tool("deploy_to_standby", {"app": "nope"}),
                await client.call_tool("get_deployment_history", {"app": "down"}),
            ]

    down, nope, history = run(main)
    for result in (down, nope, history):
        assert result.is_error is True
        assert result.structured_content is None
        assert_no_traceback(text_of(result))
    assert text_of(down) == (
        "TransportError: cannot connect to root@10.0.0.9: connection refused [host root@10.0.0.9]\n"
        "What to do: check that sshd runs there and that the address in the config is right"
    )
    assert "ConfigError: no app 'nope'" in text_of(nope)
    assert "What to do: see list_apps" in text_of(nope)


def test_command_failed_shows_the_output_tail() -> None:
    class Failing(FakeService):
        def status(self, app: str) -> AppStatus:
            raise CommandFailed("git fetch failed on GREEN", host="root@green", exit_status=128,
                                output_tail="fatal: could not read from remote repository",
                                hint="check the deploy key on GREEN")  # fmt: skip

    server, _, _ = make(Failing())

    async def main() -> types.CallToolResult:
        async with Client(server) as client:
            return await client.call_tool("get_deployment_status", {"app": "shop"})

    text = text_of(run(main))
    assert "git fetch failed on GREEN [host root@green]" in text
    assert "What to do: check the deploy key on GREEN" in text
    assert "exit 128" in text and "fatal: could not read from remote repository" in text


@pytest.mark.parametrize("mode", MODES)
def test_unexpected_exceptions_give_a_generic_error_and_no_details(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, _, _ = make()

    async def main() -> list[types.CallToolResult]:
        async with Client(server, mode=mode) as client:
            return [
                await client.call_tool("get_deployment_status", {"app": "boom"}),
                await client.call_tool("switch_traffic", {"app": "boom"}),
            ]

    status, switch = run(main)
    for result in (status, switch):
        assert result.is_error is True
        text = text_of(result)
        assert "Internal error in bluegreen" in text
        assert "id_rsa" not in text and "RuntimeError" not in text
        assert_no_traceback(text)
    assert "call get_deployment_status before retrying" in text_of(switch)
    assert "get_deployment_status before retrying" not in text_of(status)
    assert "id_rsa exploded" in caplog.text  # the details stay in the server's log


@pytest.mark.parametrize("mode", MODES)
def test_bad_arguments_get_the_schema_message(mode: str) -> None:
    server, fake, _ = make()

    async def main() -> list[types.CallToolResult]:
        async with Client(server, mode=mode) as client:
            return [
                await client.call_tool("get_deployment_history", {"app": "shop", "limit": 0}),
                await client.call_tool("deploy_to_standby", {"app": "shop", "dryRun": "maybe"}),
                await client.call_tool("get_deployment_status", {}),
            ]

    limit, dry_run, missing = run(main)
    for result in (limit, dry_run, missing):
        assert result.is_error is True
        assert_no_traceback(text_of(result))
    assert "limit" in text_of(limit) and "greater than or equal to 1" in text_of(limit)
    assert "dryRun" in text_of(dry_run)
    assert "app" in text_of(missing) and "Field required" in text_of(missing)
    assert not [c for c in fake.calls if c[0] in ("history", "deploy", "status")]


def test_the_service_is_built_lazily_and_retried_after_a_config_error() -> None:
    attempts: list[int] = []
    fake = FakeService()

    def factory() -> BlueGreenService:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConfigError("config file /etc/bluegreen.toml: line 3: expected '='",
                              hint="fix the file; the server picks it up on the next call")  # fmt: skip
        return fake

    server, holder = build_server(factory)
    assert attempts == []

    async def main() -> list[types.CallToolResult]:
        async with Client(server) as client:
            return [
                await client.call_tool("list_apps", {}),
                await client.call_tool("list_apps", {}),
                await client.call_tool("list_apps", {}),
            ]

    first, second, third = run(main)
    assert first.is_error is True and "line 3: expected '='" in text_of(first)
    assert second.is_error is False and third.is_error is False
    assert len(attempts) == 2  # built once it worked, then reused
    holder.close()
    assert fake.closed


# ---- deploy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_deploy_maps_parameters_and_reports_progress(mode: str) -> None:
    server, fake, _ = make()
    notified: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notified.append((progress, total, message))

    async def main() -> types.CallToolResult:
        async with Client(server, mode=mode) as client:
            return await client.call_tool(
                "deploy_to_standby",
                {"app": "shop", "pullGithub": False, "createBackup": False,
                 "runMigrations": True, "ref": "v1.2.3", "dryRun": False, "breakLock": True},
                progress_callback=on_progress,
            )  # fmt: skip

    result = run(main)
    assert result.is_error is False
    deployed = DeployResult.model_validate(result.structured_content)
    assert deployed.ok and deployed.color == "green" and deployed.live_color == "blue"
    assert fake.calls[-1] == ("deploy", {"app": "shop", "options": DeployOptions(
        pull=False, backup=False, migrate=True, ref="v1.2.3", dry_run=False, break_lock=True,
    )})  # fmt: skip
    text = text_of(result)
    assert "Deployed shop to STANDBY GREEN (10.0.0.2:3001)" in text
    assert "LIVE BLUE was not touched" in text
    assert "Next: Test STANDBY at 10.0.0.2:3001, then switch_traffic." in text

    assert len(notified) == 12
    values = [value for value, _, _ in notified]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert notified[0][2] == "[1/6] lock: start"
    assert notified[-1][2] == "[6/6] health: ok (0.1s)"


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_deploy_is_an_error_result_with_the_failed_step(mode: str) -> None:
    server, _, _ = make()

    async def main() -> types.CallToolResult:
        async with Client(server, mode=mode) as client:
            return await client.call_tool("deploy_to_standby", {"app": "failing"})

    result = run(main)
    assert result.is_error is True
    failed = DeployResult.model_validate(result.structured_content)
    assert failed.failed_step == "build" and failed.restored is True
    text = text_of(result)
    assert "FAILED at step build: build failed (exit 1)" in text
    assert "STANDBY was restored from the backup" in text
    assert "LIVE BLUE was not touched" in text
    assert "npm ERR! missing script: build" in text
    assert_no_traceback(text)


# ---- switch: the token flow ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_switch_without_elicitation_returns_a_plan_and_token_then_executes(mode: str) -> None:
    server, fake, _ = make()

    async def main() -> tuple[types.CallToolResult, types.CallToolResult, types.CallToolResult]:
        async with Client(server, mode=mode) as client:
            planned = await client.call_tool("switch_traffic", {"app": "shop"})
            assert fake.live == "blue"  # nothing changed yet
            token = planned.structured_content["plan"]["confirm_token"]
            done = await client.call_tool("switch_traffic", {"app": "shop", "confirmToken": token})
            replay = await client.call_tool(
                "switch_traffic", {"app": "shop", "confirmToken": token}
            )
            return planned, done, replay

    planned, done, replay = run(main)
    assert planned.is_error is False
    plan_result = SwitchResult.model_validate(planned.structured_content)
    assert plan_result.executed is False and plan_result.plan is not None
    token = plan_result.plan.confirm_token
    assert token
    text = text_of(planned)
    assert "Approval needed - nothing changed yet" in text
    assert "LIVE BLUE -> GREEN" in text and "default_backend bk_green" in text
    assert f'confirmToken="{token}"' in text and "explicitly agree" in text

    assert done.is_error is False
    executed = SwitchResult.model_validate(done.structured_content)
    assert executed.executed and executed.ok and executed.to_live == "green"
    assert "GREEN is now LIVE, BLUE is STANDBY" in text_of(done)
    assert fake.live == "green"
    assert replay.is_error is True and "confirmToken refused" in text_of(replay)
    # Without the elicitation capability the service was never given a way to ask.
    assert [c[1]["elicit"] for c in fake.calls if c[0] == "switch"] == [False, False, False]


def test_operator_mode_says_who_approves() -> None:
    class Operator(FakeService):
        def switch(self, app: str, *args: Any, **kwargs: Any) -> SwitchResult:
            result = super().switch(app, *args, **kwargs)
            assert result.plan is not None
            result.plan.approval = "operator"
            return result

    server, _, _ = make(Operator(approval="operator"))

    async def main() -> types.CallToolResult:
        async with Client(server) as client:
            return await client.call_tool("switch_traffic", {"app": "shop"})

    text = text_of(run(main))
    assert "a person runs `bluegreen approve tok_000_abcdefghijklmnop` on a terminal" in text


def test_switch_parameters_reach_the_service() -> None:
    server, fake, _ = make()

    async def main() -> None:
        async with Client(server) as client:
            await client.call_tool("switch_traffic", {
                "app": "shop", "emergency": True, "force": True, "breakLock": True,
                "reason": "rollback: checkout broken",
            })  # fmt: skip
            await client.call_tool("switch_traffic", {"app": "shop", "requireApproval": False})

    run(main)
    first, second = [c[1] for c in fake.calls if c[0] == "switch"]
    assert first == {"app": "shop", "request": SwitchRequest(
        require_approval=True, emergency=True, confirm_token=None, force=True, break_lock=True,
        reason="rollback: checkout broken",
    ), "elicit": False, "who": "mcp 0.1.0"}  # fmt: skip
    assert second["request"].require_approval is False


# ---- switch: elicitation ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_switch_with_elicitation_accepted_executes(mode: str) -> None:
    server, fake, _ = make()
    callback = answering("accept", {"approve": True})
    notified: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notified.append(message)

    async def main() -> types.CallToolResult:
        async with Client(server, mode=mode, elicitation_callback=callback) as client:
            return await client.call_tool("switch_traffic", {"app": "shop"},
                                          progress_callback=on_progress)  # fmt: skip

    result = run(main)
    assert result.is_error is False
    switched = SwitchResult.model_validate(result.structured_content)
    assert switched.executed and switched.ok and fake.live == "green"
    assert len(callback.asked) == 1
    question = callback.asked[0]
    assert "Switch shop: LIVE BLUE -> GREEN" in question
    assert "+    default_backend bk_green" in question
    assert question.endswith("Approve this traffic switch now?")
    assert "plan: ok - blue -> green" in notified


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("action", "content"),
    [
        ("decline", None),
        ("cancel", None),
        ("accept", {"approve": False}),
        ("accept", {"approve": "true"}),  # not a boolean: not an explicit yes
    ],
)
def test_switch_with_elicitation_anything_but_yes_changes_nothing(
    mode: str, action: str, content: dict[str, Any] | None
) -> None:
    server, fake, _ = make()
    callback = answering(action, content)

    async def main() -> types.CallToolResult:
        async with Client(server, mode=mode, elicitation_callback=callback) as client:
            return await client.call_tool("switch_traffic", {"app": "shop"})

    result = run(main)
    assert fake.live == "blue"
    assert len(callback.asked) == 1
    assert result.is_error is False
    switched = SwitchResult.model_validate(result.structured_content)
    assert switched.executed is False and switched.plan is not None
    assert "Not switched: not approved: nothing changed" in text_of(result)


@pytest.mark.parametrize("mode", MODES)
def test_a_token_call_is_never_asked_again(mode: str) -> None:
    fake = FakeService()
    fake.tokens["tok_given_by_operator_0001"] = fake._plan("shop", False).plan_hash
    server, _, _ = make(fake)
    callback = answering("decline")

    async def main() -> types.CallToolResult:
        async with Client(server, mode=mode, elicitation_callback=callback) as client:
            return await client.call_tool(
                "switch_traffic", {"app": "shop", "confirmToken": "tok_given_by_operator_0001"}
            )

    result = run(main)
    assert result.is_error is False and fake.live == "green"
    assert callback.asked == []


def test_input_required_answers_count_only_for_the_plan_and_arguments_they_approved() -> None:
    """2026-07-28: the approval rides request_state (sealed by the SDK, bound to the arguments);
    a changed plan is asked again instead of executing."""
    server, fake, _ = make()
    caps_callback = answering("accept", {"approve": True})
    yes: types.InputResponses = {
        APPROVAL_KEY: types.ElicitResult(action="accept", content={"approve": True})
    }

    async def main() -> None:
        async with Client(server, mode="auto", elicitation_callback=caps_callback) as client:
            session = client.session
            first = await session.call_tool("switch_traffic", {"app": "shop"},
                                            allow_input_required=True)  # fmt: skip
            assert isinstance(first, types.InputRequiredResult)
            assert first.input_requests and APPROVAL_KEY in first.input_requests
            assert first.request_state

            # An answer without the state it belongs to is not an approval: asked again.
            again = await session.call_tool("switch_traffic", {"app": "shop"}, input_responses=yes,
                                            allow_input_required=True)  # fmt: skip
            assert isinstance(again, types.InputRequiredResult)
            # A forged state is refused by the SDK's sealing.
            with pytest.raises(MCPError, match="requestState"):
                await session.call_tool(
                    "switch_traffic", {"app": "shop"}, input_responses=yes,
                    request_state=json.dumps({"v": 1}), allow_input_required=True,
                )  # fmt: skip
            # The state is bound to the arguments it was issued for (here: not an emergency).
            with pytest.raises(MCPError, match="requestState"):
                await session.call_tool(
                    "switch_traffic", {"app": "shop", "emergency": True}, input_responses=yes,
                    request_state=first.request_state, allow_input_required=True,
                )  # fmt: skip
            # The cfg changed since the question: the new plan is asked again.
            fake.drift += 1
            changed = await session.call_tool(
                "switch_traffic", {"app": "shop"}, input_responses=yes,
                request_state=first.request_state, allow_input_required=True,
            )  # fmt: skip
            assert isinstance(changed, types.InputRequiredResult)
            assert fake.live == "blue"
            # The answer to the current question executes exactly that plan.
            done = await session.call_tool(
                "switch_traffic", {"app": "shop"}, input_responses=yes,
                request_state=changed.request_state, allow_input_required=True,
            )  # fmt: skip
            assert isinstance(done, types.CallToolResult) and done.is_error is False
            assert fake.live == "green"

    run(main)


def test_legacy_elicitation_failure_counts_as_no() -> None:
    server, fake, _ = make()

    async def broken(context: Any, params: types.ElicitRequestParams) -> types.ErrorData:
        return types.ErrorData(code=-32603, message="UI crashed")

    async def main() -> types.CallToolResult:
        async with Client(server, mode="legacy", elicitation_callback=broken) as client:
            return await client.call_tool("switch_traffic", {"app": "shop"})

    result = run(main)
    assert result.is_error is False and fake.live == "blue"
    assert SwitchResult.model_validate(result.structured_content).executed is False


def test_holder_closes_the_service_once() -> None:
    fake = FakeService()
    holder = ServiceHolder(lambda: fake)
    holder.close()
    assert not fake.closed  # never built, nothing to close
    assert holder.get() is fake and holder.get() is fake
    holder.close()
    assert fake.closed


# ---- the real service behind the tools (scripted hosts) --------------------------------------


def lab_server(**app_changes: object) -> tuple[Any, FakeHosts, Service]:
    hosts = FakeHosts()
    service = Service(config(allow_unapproved=False, **app_changes), runner=hosts.runner)
    server, _ = build_server(lambda: service)
    return server, hosts, service


def test_an_elicit_app_refuses_a_token_from_switch_plan() -> None:
    server, hosts, service = lab_server(approval="elicit")
    token = service.plan_switch(FAKE_APP).confirm_token  # what `bluegreen switch --plan` prints

    async def main() -> types.CallToolResult:
        async with Client(server, mode="legacy") as client:  # a client that cannot elicit
            return await client.call_tool(
                "switch_traffic", {"app": FAKE_APP, "confirmToken": token}
            )

    result = run(main)
    assert result.is_error is True
    assert "is not such an answer" in text_of(result) and "elicit" in text_of(result)
    assert hosts.live_color() == "blue"


@pytest.mark.parametrize("mode", MODES)
def test_the_history_names_the_client_whose_elicitation_approved(mode: str) -> None:
    server, hosts, _ = lab_server(approval="elicit")

    async def main() -> tuple[types.CallToolResult, types.CallToolResult]:
        callback = answering("accept", {"approve": True})
        async with Client(server, mode=mode, elicitation_callback=callback) as client:
            switched = await client.call_tool("switch_traffic", {"app": FAKE_APP})
            return switched, await client.call_tool("get_deployment_history", {"app": FAKE_APP})

    result, history = run(main)
    assert result.is_error is False and hosts.live_color() == "green"
    raw = hosts.runner.file(FAKE_HP, "/var/lib/bluegreen/history/jw-attendant.jsonl") or b""
    entry = json.loads(raw.decode().splitlines()[-1])
    assert entry["approval"] == {"kind": "elicitation", "by": "mcp 0.1.0"}  # the SDK's clientInfo
    assert "switch BLUE -> GREEN, approved by elicitation (mcp 0.1.0): ok" in text_of(history)


# ---- resources over the fake service ---------------------------------------------------------


def test_resource_errors_are_actionable_and_leak_no_internals() -> None:
    server, fake, _ = make()

    async def read(uri: str) -> str:
        async with Client(server) as client:
            try:
                result = await client.read_resource(uri)
            except MCPError as exc:
                return str(exc)
            (content,) = result.contents
            assert isinstance(content, types.TextResourceContents)
            return content.text

    down = anyio.run(read, "bluegreen://apps/down/switch-plan")
    boom = anyio.run(read, "bluegreen://apps/boom/routing")
    plan = json.loads(anyio.run(read, "bluegreen://apps/shop/switch-plan"))
    assert down.startswith("TransportError: cannot connect to root@10.0.0.9")
    assert "What to do: check that sshd runs there" in down
    assert "id_rsa" not in boom and "RuntimeError" not in boom
    assert_no_traceback(boom)
    assert plan["to_live"] == "green" and plan["confirm_token"] is None
    assert ("preview_switch", {"app": "shop", "emergency": False}) in fake.calls
    assert not [call for call in fake.calls if call[0] == "switch"]
