"""Tool results: the text summary (`mcp_text`), then the structured content serialized as JSON
(as the MCP specification asks of a tool that returns structured content), and errors as isError
results that say what to do and never show internals."""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, ContentBlock, TextContent
from pydantic import BaseModel

from bluegreen import mcp_text
from bluegreen.errors import BlueGreenError
from bluegreen.models import AppStatus, AppSummary, DeployResult, History, SwitchResult


def _text(text: str) -> list[ContentBlock]:
    return [TextContent(type="text", text=text)]


def structured(model: BaseModel, text: str, *, is_error: bool = False) -> CallToolResult:
    return _with_json(text, model.model_dump(mode="json"), is_error)


def _with_json(text: str, data: dict[str, Any], is_error: bool = False) -> CallToolResult:
    """The one-line-per-fact summary, then the structured content serialized (as the spec asks
    of a tool that returns structured content)."""
    content = _text(text) + _text(mcp_text.as_json(data))
    return CallToolResult(content=content, structured_content=data, is_error=is_error)


def error_result(exc: BlueGreenError) -> CallToolResult:
    return CallToolResult(content=_text(mcp_text.error_text(exc)), is_error=True)


def internal_error(tool: str, mutating: bool) -> CallToolResult:
    text = (
        f"Internal error in bluegreen while running {tool}; the details are in the server's log "
        "(stderr), not here."
    )
    if mutating:
        text += (
            " The operation may have stopped part-way: call get_deployment_status before retrying."
        )
    return CallToolResult(content=_text(text), is_error=True)


def status_result(status: AppStatus) -> CallToolResult:
    return structured(status, mcp_text.status_text(status))


def apps_result(apps: list[AppSummary]) -> CallToolResult:
    data = {"result": [app.model_dump(mode="json") for app in apps]}
    return _with_json(mcp_text.apps_text(apps), data)


def history_result(history: History) -> CallToolResult:
    return structured(history, mcp_text.history_text(history))


def deploy_result(result: DeployResult) -> CallToolResult:
    return structured(result, mcp_text.deploy_text(result), is_error=not result.ok)


def switch_result(result: SwitchResult) -> CallToolResult:
    failed = not result.ok and (result.executed or result.error is not None)
    return structured(result, mcp_text.switch_text(result), is_error=failed)
