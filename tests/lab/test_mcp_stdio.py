"""The MCP server as an assistant's client runs it: `bluegreen --config <lab> serve` over stdio,
driven by the SDK's client against the real lab (HAProxy, sshd, git, app processes)."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import httpx
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.models import AppStatus, DeployResult, History, SwitchResult

pytestmark = pytest.mark.lab
APP = "jw-attendant"


def server_params(lab_info: LabInfo) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "BLUEGREEN_CONFIG"}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "bluegreen", "--config", lab_info.config_path, "serve"],
        env=env,
    )


def live_color(lab_info: LabInfo) -> str:
    return str(httpx.get(lab_info.frontend + "/health", timeout=5).json()["color"])


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def ok(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def test_release_cycle_over_stdio_with_the_token_flow(fresh_lab: Lab, lab_info: LabInfo) -> None:
    new = fresh_lab.commit()
    notified: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notified.append(message or "")

    async def main() -> None:
        # No elicitation callback: the client cannot ask the user, so switch uses the token flow.
        async with Client(server_params(lab_info)) as client:
            apps = ok(await client.call_tool("list_apps", {}))
            assert [a["app"] for a in apps["result"]] == [APP]

            status = AppStatus.model_validate(
                ok(await client.call_tool("get_deployment_status", {"app": APP}))
            )
            assert status.certain and status.live and status.standby
            assert (status.live.color, status.standby.color) == ("blue", "green")

            dry = DeployResult.model_validate(
                ok(await client.call_tool("deploy_to_standby", {"app": APP, "dryRun": True}))
            )
            assert dry.dry_run and dry.color == "green" and dry.plan

            result = await client.call_tool(
                "deploy_to_standby", {"app": APP}, progress_callback=on_progress
            )
            deployed = DeployResult.model_validate(ok(result))
            assert (deployed.color, deployed.live_color, deployed.commit_after) == (
                "green", "blue", new,
            )  # fmt: skip
            assert "LIVE BLUE was not touched" in text_of(result)
            assert any("build" in message for message in notified), notified
            assert live_color(lab_info) == "blue"

            planned = await client.call_tool("switch_traffic", {"app": APP, "reason": "mcp test"})
            plan = SwitchResult.model_validate(ok(planned))
            assert not plan.executed and plan.plan and plan.plan.confirm_token
            assert "default_backend bk_green" in plan.plan.diff
            assert f'confirmToken="{plan.plan.confirm_token}"' in text_of(planned)
            assert live_color(lab_info) == "blue"  # nothing changed before the second call

            done = SwitchResult.model_validate(
                ok(
                    await client.call_tool(
                        "switch_traffic",
                        {"app": APP, "reason": "mcp test", "confirmToken": plan.plan.confirm_token},
                    )
                )
            )
            assert done.executed and done.ok and done.to_live == "green"

            after = AppStatus.model_validate(
                ok(await client.call_tool("get_deployment_status", {"app": APP}))
            )
            assert after.live and after.live.color == "green"
            assert after.standby and after.standby.color == "blue"
            assert after.live.commit == new

            history = History.model_validate(
                ok(await client.call_tool("get_deployment_history", {"app": APP, "limit": 5}))
            )
            assert [(e.operation, e.outcome) for e in history.entries[:2]] == [
                ("switch", "ok"), ("deploy", "ok"),
            ]  # fmt: skip
            assert history.entries[0].reason == "mcp test"

            replay = await client.call_tool(
                "switch_traffic", {"app": APP, "confirmToken": plan.plan.confirm_token}
            )
            assert replay.is_error is True and "Traceback" not in text_of(replay)

    anyio.run(main)
    assert live_color(lab_info) == "green"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_switch_approved_by_the_user_in_the_client(
    fresh_lab: Lab, lab_info: LabInfo, mode: str
) -> None:
    """legacy: elicitation is a mid-call request; auto (2026-07-28): an input_required round."""
    answers = [("decline", None), ("accept", {"approve": True})]
    asked: list[str] = []

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        action, content = answers[len(asked) - 1]
        return types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    async def main() -> tuple[types.CallToolResult, types.CallToolResult]:
        async with Client(
            server_params(lab_info), mode=mode, elicitation_callback=elicitation
        ) as c:
            declined = await c.call_tool("switch_traffic", {"app": APP})
            assert live_color(lab_info) == "blue"
            approved = await c.call_tool("switch_traffic", {"app": APP})
            return declined, approved

    declined, approved = anyio.run(main)
    first = SwitchResult.model_validate(ok(declined))
    assert not first.executed and "not approved" in first.message
    second = SwitchResult.model_validate(ok(approved))
    assert second.executed and second.ok and second.to_live == "green"
    assert len(asked) == 2
    assert "LIVE BLUE -> GREEN" in asked[0] and "bk_green" in asked[0]
    assert live_color(lab_info) == "green"
