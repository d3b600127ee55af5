"""The MCP server as an assistant's client runs it: `bluegreen --config <lab> serve` over stdio
and over streamable HTTP, driven by the SDK's client against the real lab (HAProxy, sshd, git,
app processes)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.models import (
    AppRouting,
    AppStatus,
    DeployResult,
    History,
    SwitchPlan,
    SwitchResult,
)
from tests.unit.test_mcp_transports import free_port, serving

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


# ---- the whole surface, through both transports ------------------------------------------------

TOOLS = {"list_apps", "get_deployment_status", "get_deployment_history", "deploy_to_standby",
         "switch_traffic"}  # fmt: skip
RESOURCES = ("status", "history", "switch-plan", "routing")


@asynccontextmanager
async def connected(lab_info: LabInfo, transport: str) -> AsyncIterator[Client]:
    if transport == "stdio":
        async with Client(server_params(lab_info)) as client:
            yield client
        return
    with serving(Path(lab_info.config_path), "http", free_port()) as url:
        async with Client(streamable_http_client(url + "/mcp")) as client:
            yield client


def resource_json(result: types.ReadResourceResult) -> Any:
    (content,) = result.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "application/json" and content.text.isascii()
    return json.loads(content.text)


def prompt_text(result: types.GetPromptResult) -> str:
    (message,) = result.messages
    assert isinstance(message.content, types.TextContent)
    return message.content.text


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_every_tool_resource_and_prompt_through_a_real_client(
    lab_info: LabInfo, transport: str
) -> None:
    """Everything the server offers, against the lab; nothing here switches or deploys."""

    async def main() -> None:
        async with connected(lab_info, transport) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} == TOOLS
            apps = await client.call_tool("list_apps", {})
            assert [a["app"] for a in ok(apps)["result"]] == [APP]
            assert json.loads(apps.content[1].text) == apps.structured_content  # type: ignore[union-attr]
            status = AppStatus.model_validate(
                ok(await client.call_tool("get_deployment_status", {"app": APP}))
            )
            assert status.certain and status.live and status.standby
            live, standby = status.live.color, status.standby.color
            ok(await client.call_tool("get_deployment_history", {"app": APP, "limit": 3}))
            dry = DeployResult.model_validate(
                ok(await client.call_tool("deploy_to_standby", {"app": APP, "dryRun": True}))
            )
            assert dry.dry_run and dry.color == standby
            planned = SwitchResult.model_validate(
                ok(await client.call_tool("switch_traffic", {"app": APP}))
            )
            assert not planned.executed and planned.plan and planned.plan.confirm_token

            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            assert listed == ["bluegreen://apps"]
            templates = (await client.list_resource_templates()).resource_templates
            assert len(templates) == len(RESOURCES)
            listed_apps = resource_json(await client.read_resource("bluegreen://apps"))
            assert listed_apps["result"][0]["app"] == APP
            read = {name: resource_json(await client.read_resource(f"bluegreen://apps/{APP}/{name}"))
                    for name in RESOURCES}  # fmt: skip
            assert AppStatus.model_validate(read["status"]).live.color == live  # type: ignore[union-attr]
            assert History.model_validate(read["history"]).app == APP
            preview = SwitchPlan.model_validate(read["switch-plan"])
            assert (preview.from_live, preview.to_live) == (live, standby)
            assert f"+    default_backend bk_{standby}" in preview.diff
            assert preview.confirm_token is None
            routing = AppRouting.model_validate(read["routing"])
            assert [line.text.strip() for line in routing.lines if "decides LIVE" in line.why] == [
                f"default_backend bk_{live}"
            ]

            template = types.ResourceTemplateReference(uri="bluegreen://apps/{app}/status")
            completed = await client.complete(template, {"name": "app", "value": "jw"})
            assert completed.completion.values == [APP]
            assert {p.name for p in (await client.list_prompts()).prompts} == {
                "release", "rollback", "preflight",
            }  # fmt: skip
            release = await client.get_prompt("release", {"app": APP, "ref": "main"})
            assert "deploy_to_standby" in prompt_text(release)
            rollback = await client.get_prompt("rollback", {"app": APP, "reason": "lab check"})
            assert "emergency=true" in prompt_text(rollback)
            preflight = await client.get_prompt("preflight", {"app": APP})
            assert "read-only" in prompt_text(preflight)

    before = live_color(lab_info)
    anyio.run(main)
    assert live_color(lab_info) == before  # a plan, a preview and a dry run changed nothing
