"""MCP resources: what an assistant (or its user) can read without calling a tool.

`bluegreen://apps` lists the apps (from the config, no SSH). Per app, the templates
`bluegreen://apps/{app}/status`, `/history`, `/switch-plan` (the plan and haproxy.cfg diff a switch
would follow now; it issues no token and changes nothing) and `/routing` (the haproxy.cfg lines that
route the app). Each is JSON (`application/json`, ASCII: text from hosts arrives escaped), the same
models as the tools' structured content. Reads only: every safety mode serves them.

Completion: `app` (of the templates and the prompts) from the config. `ref` is not completed:
its values live in the origin, one SSH round trip and a `git ls-remote` per keystroke away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import BaseModel

from bluegreen import mcp_text
from bluegreen.errors import BlueGreenError
from bluegreen.models import AppRouting, AppStatus, AppSummary, History, SwitchPlan

logger = logging.getLogger("bluegreen.mcp")

T = TypeVar("T")
JSON = "application/json"
APPS_URI = "bluegreen://apps"
APP_URI = "bluegreen://apps/{app}"
COMPLETION_MAX = 100  # the most values one completion answer may carry


class ReadService(Protocol):
    """The reads the resources need from `bluegreen.service.Service`."""

    def list_apps(self) -> list[AppSummary]: ...

    def status(self, app: str) -> AppStatus: ...

    def history(self, app: str, limit: int = 20) -> History: ...

    def preview_switch(self, app: str, *, emergency: bool = False) -> SwitchPlan: ...

    def routing(self, app: str) -> AppRouting: ...


async def read(uri: str, work: Callable[[], BaseModel | list[AppSummary]]) -> str:
    """Run a blocking read in a worker thread; a BlueGreenError becomes the read's error."""
    try:
        value = await anyio.to_thread.run_sync(work)
    except BlueGreenError as exc:
        logger.info("%s: %s", uri, exc)
        raise ResourceError(mcp_text.error_text(exc)) from None
    if isinstance(value, list):
        return mcp_text.as_json({"result": [app.model_dump(mode="json") for app in value]})
    return mcp_text.as_json(value.model_dump(mode="json"))


def register(server: MCPServer, service: Callable[[], ReadService]) -> None:
    @server.resource(APPS_URI, name="apps", title="Apps", mime_type=JSON,
                     description="The apps this server manages (from its config; no SSH).")  # fmt: skip
    async def apps() -> str:
        return await read(APPS_URI, lambda: service().list_apps())

    @server.resource(f"{APP_URI}/status", name="status", title="App status", mime_type=JSON,
                     description="Which server is LIVE and which STANDBY (from haproxy.cfg), "
                     "health, commits, drift and lock: get_deployment_status's answer.")  # fmt: skip
    async def status(app: str) -> str:
        return await read(f"{APPS_URI}/{app}/status", lambda: service().status(app))

    @server.resource(f"{APP_URI}/history", name="history", title="App history", mime_type=JSON,
                     description="The last 20 deploys and switches, newest first, with how each "
                     "switch was approved.")  # fmt: skip
    async def history(app: str) -> str:
        return await read(f"{APPS_URI}/{app}/history", lambda: service().history(app))

    @server.resource(f"{APP_URI}/switch-plan", name="switch-plan", title="Switch plan",
                     mime_type=JSON,
                     description="What switch_traffic would do now: servers, target health and "
                     "commit, warnings and the exact haproxy.cfg diff. Issues no token and changes "
                     "nothing; approving needs switch_traffic.")  # fmt: skip
    async def switch_plan(app: str) -> str:
        return await read(f"{APPS_URI}/{app}/switch-plan", lambda: service().preview_switch(app))

    @server.resource(f"{APP_URI}/routing", name="routing", title="Routing lines", mime_type=JSON,
                     description="The haproxy.cfg lines that route the app (frontend, deciding "
                     "rules, each colour's backend and server), with why each matters.")  # fmt: skip
    async def routing(app: str) -> str:
        return await read(f"{APPS_URI}/{app}/routing", lambda: service().routing(app))

    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if argument.name != "app":
            return None
        try:
            names = await anyio.to_thread.run_sync(lambda: [a.app for a in service().list_apps()])
        except BlueGreenError:
            return None  # a broken config: the tools and resources say why
        matches = [name for name in names if name.startswith(argument.value)]
        return Completion(values=matches[:COMPLETION_MAX], total=len(matches),
                          has_more=len(matches) > COMPLETION_MAX)  # fmt: skip

    # The SDK's `completion` decorator is untyped; called as a function, `complete` stays typed.
    server.completion()(complete)  # type: ignore[no-untyped-call]
