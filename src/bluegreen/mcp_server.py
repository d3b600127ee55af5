"""The MCP interface: five tools over the service facade, for AI assistants.

Tools (names and parameters are the contract of the reference workflow): `list_apps`,
`get_deployment_status`, `get_deployment_history` (read-only), `deploy_to_standby` (STANDBY only)
and `switch_traffic` (needs approval). Resources and completion: `mcp_resources`; prompts:
`mcp_prompts`; descriptions: `mcp_docs`; results: `mcp_results`.

- Safety mode (`bluegreen serve --read-only` / `--allow deploy`, and each app's `mcp` key): the
  service refuses what the mode does not allow and names the switch; this server also leaves the
  tools its mode refuses out of tools/list.
- Every result is a pydantic model published as the tool's outputSchema and returned as structured
  content, after a short text summary (`mcp_text`) and the same content serialized as JSON.
- The service is synchronous (blocking SSH): each call runs in a worker thread (`run_tool`, the one
  place a tool call is dispatched). Step events become progress notifications; a switch's approval
  question becomes an elicitation (`mcp_elicit`). A client that cannot elicit gets the token flow:
  a plan and a confirmToken to pass back after the user agrees.
- Every BlueGreenError becomes a tool result with isError and the error's message and hint; any
  other exception becomes a generic isError sentence and a traceback on stderr, never to the client.
- The Service is built on first use, so the server starts (and list_apps answers) with hosts down.
- Logs go to stderr only: in stdio mode stdout is the protocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from itertools import count
from typing import Annotated, Literal, Protocol, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server import MCPServer
from mcp.types import (
    CallToolResult,
    InputRequiredResult,
    Tool,
    ToolAnnotations,
)
from pydantic import Field

from bluegreen import __version__, mcp_prompts, mcp_resources, mcp_text
from bluegreen.domain.config import McpLevel
from bluegreen.domain.mcp_policy import SERVER_SWITCH, hidden_tools
from bluegreen.domain.validate import REASON_MAX
from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import BlueGreenError
from bluegreen.log_format import SafeFormatter
from bluegreen.mcp_docs import (
    APP_HELP,
    DEPLOY_DOC,
    HISTORY_DOC,
    INSTRUCTIONS,
    LIST_DOC,
    STATUS_DOC,
    SWITCH_DOC,
)
from bluegreen.mcp_elicit import (
    ApprovalPending,
    Ctx,
    approval_question,
    approver_for,
)
from bluegreen.mcp_resources import ReadService
from bluegreen.mcp_results import (
    apps_result,
    deploy_result,
    error_result,
    history_result,
    internal_error,
    status_result,
    switch_result,
)
from bluegreen.models import (
    AppStatus,
    AppSummary,
    DeployResult,
    History,
    SwitchResult,
)
from bluegreen.service import Approver, SwitchRequest

logger = logging.getLogger("bluegreen.mcp")

T = TypeVar("T")
Progress = Callable[[StepEvent], None]

SERVER_NAME = "bluegreen"


class BlueGreenService(ReadService, Protocol):
    """What the MCP server needs from `bluegreen.service.Service` (a fake in unit tests)."""

    def deploy(
        self, app: str, options: DeployOptions | None = None, *, progress: Progress | None = None
    ) -> DeployResult: ...

    def switch(
        self,
        app: str,
        request: SwitchRequest | None = None,
        *,
        approver: Approver | None = None,
        progress: Progress | None = None,
    ) -> SwitchResult: ...

    def close(self) -> None: ...


ServiceFactory = Callable[[], BlueGreenService]


class ServiceHolder:
    """Builds the service on first use (a config error then reaches the client as a tool error,
    and is retried on the next call, so fixing the file needs no restart)."""

    def __init__(self, factory: ServiceFactory) -> None:
        self._factory = factory
        self._service: BlueGreenService | None = None
        self._lock = threading.Lock()

    def get(self) -> BlueGreenService:
        with self._lock:
            if self._service is None:
                self._service = self._factory()
            return self._service

    def close(self) -> None:
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.close()


# The parameters several tools share, described once.
App = Annotated[str, Field(description=APP_HELP)]
BreakLock = Annotated[bool, Field(description="Clear a STALE lock left by a dead operation.")]


def read_only(title: str, *, needs_hosts: bool = True) -> ToolAnnotations:
    """A read changes nothing and may be repeated; most reach remote hosts (open world)."""
    return ToolAnnotations(title=title, read_only_hint=True, destructive_hint=False,
                           idempotent_hint=True, open_world_hint=needs_hosts)  # fmt: skip


def destructive(title: str) -> ToolAnnotations:
    """deploy restarts STANDBY's app, prunes its backups and can migrate a shared database;
    switch changes which server users reach. Neither is idempotent: a repeat does it again."""
    return ToolAnnotations(title=title, read_only_hint=False, destructive_hint=True,
                           idempotent_hint=False, open_world_hint=True)  # fmt: skip


R = TypeVar("R", bound=CallToolResult | InputRequiredResult)


async def run_tool(
    tool: str, work: Callable[[], T], render: Callable[[T], R], *, mutating: bool = False
) -> R | CallToolResult:
    """Run blocking service work in a worker thread and turn the outcome into a tool result.

    The worker is not abandoned on cancellation: a deploy or switch always finishes its own
    cleanup (restore, rollback, unlock) rather than being cut off half-way."""
    try:
        value = await anyio.to_thread.run_sync(work)
        return render(value)
    except BlueGreenError as exc:
        logger.info("%s: %s", tool, exc)
        return error_result(exc)
    except Exception:
        logger.exception("%s raised an unexpected exception", tool)
        return internal_error(tool, mutating)


# ---- progress bridge ------------------------------------------------------------------------


def progress_bridge(ctx: Ctx, tool: str) -> Progress:
    """Step events -> log lines and MCP progress notifications. Called on the event loop; events
    also come from threads anyio does not know (a pool deploy's): each call carries its token."""
    counter = count(1)
    loop = anyio.lowlevel.current_token()

    def on_event(event: StepEvent) -> None:
        text = mcp_text.event_text(event)
        logger.info("%s: %s", tool, text)
        try:
            anyio.from_thread.run(ctx.report_progress, float(next(counter)), None, text, token=loop)
        except Exception:  # a lost notification must never break a deploy or a switch
            logger.debug("progress notification not delivered", exc_info=True)

    return on_event


# ---- the server ------------------------------------------------------------------------------


class BlueGreenServer(MCPServer):
    """The SDK's server, listing only the tools its safety mode allows. A hidden tool stays
    registered: called by name, the service refuses it and says which switch refuses."""

    def __init__(self, allow: McpLevel) -> None:
        super().__init__(SERVER_NAME, title="Blue/green releases behind HAProxy",
                         instructions=INSTRUCTIONS, version=__version__)  # fmt: skip
        self.hidden = hidden_tools(allow)

    async def list_tools(self) -> list[Tool]:
        return [tool for tool in await super().list_tools() if tool.name not in self.hidden]


def build_server(
    service_factory: ServiceFactory, *, allow: McpLevel = "full"
) -> tuple[MCPServer, ServiceHolder]:
    """The MCP server and the holder of its (lazily built) service; close the holder at exit.
    `allow` only hides tools: the service built by the factory enforces the same mode."""
    holder = ServiceHolder(service_factory)
    server = BlueGreenServer(allow)

    @server.tool(
        name="list_apps",
        title="List apps",
        description=LIST_DOC,
        annotations=read_only("List apps", needs_hosts=False),
    )
    async def list_apps() -> Annotated[CallToolResult, list[AppSummary]]:
        return await run_tool("list_apps", lambda: holder.get().list_apps(), apps_result)

    @server.tool(
        name="get_deployment_status",
        title="Deployment status",
        description=STATUS_DOC,
        annotations=read_only("Deployment status"),
    )
    async def get_deployment_status(
        app: App,
    ) -> Annotated[CallToolResult, AppStatus]:
        return await run_tool(
            "get_deployment_status", lambda: holder.get().status(app), status_result
        )

    @server.tool(
        name="get_deployment_history",
        title="Deployment history",
        description=HISTORY_DOC,
        annotations=read_only("Deployment history"),
    )
    async def get_deployment_history(
        app: App,
        limit: Annotated[
            int, Field(ge=1, le=1000, description="How many entries, newest first.")
        ] = 20,
    ) -> Annotated[CallToolResult, History]:
        return await run_tool(
            "get_deployment_history", lambda: holder.get().history(app, limit), history_result
        )

    @server.tool(
        name="deploy_to_standby",
        title="Deploy to STANDBY",
        description=DEPLOY_DOC,
        annotations=destructive("Deploy to STANDBY"),
    )
    async def deploy_to_standby(
        app: App,
        ctx: Ctx,
        pullGithub: Annotated[
            bool, Field(description="Fetch and check out the code from git first.")
        ] = True,
        createBackup: Annotated[
            bool, Field(description="Back up STANDBY's app dir first (restored on failure).")
        ] = True,
        runMigrations: Annotated[
            bool,
            Field(description="Run the app's migrate command (acts on the shared database)."),
        ] = False,
        ref: Annotated[
            str | None,
            Field(description="Branch, tag or full commit sha; default: the app's branch."),
        ] = None,
        dryRun: Annotated[
            bool, Field(description="Only return the commands that would run; change nothing.")
        ] = False,
        breakLock: BreakLock = False,
    ) -> Annotated[CallToolResult, DeployResult]:
        progress = progress_bridge(ctx, "deploy_to_standby")
        options = DeployOptions(pull=pullGithub, backup=createBackup, migrate=runMigrations,
                                ref=ref, dry_run=dryRun, break_lock=breakLock)  # fmt: skip

        def work() -> DeployResult:
            return holder.get().deploy(app, options, progress=progress)

        return await run_tool("deploy_to_standby", work, deploy_result, mutating=True)

    @server.tool(
        name="switch_traffic",
        title="Switch traffic",
        description=SWITCH_DOC,
        annotations=destructive("Switch traffic"),
    )
    async def switch_traffic(
        app: App,
        ctx: Ctx,
        requireApproval: Annotated[
            bool, Field(description="Ask the user first (false only where the config allows).")
        ] = True,
        emergency: Annotated[
            bool, Field(description="Fast rollback: skip draining and slow checks.")
        ] = False,
        confirmToken: Annotated[
            str | None,
            Field(description="The token from a previous call's plan, after the user agreed."),
        ] = None,
        force: Annotated[
            bool, Field(description="With emergency: switch even to an unhealthy target.")
        ] = False,
        breakLock: BreakLock = False,
        reason: Annotated[
            str | None,
            Field(
                description=f"Why; recorded in the history. One line of plain text, at most "
                f"{REASON_MAX} characters (no control, line-separator or bidi characters)."
            ),
        ] = None,
        reconcile: Annotated[
            bool,
            Field(
                description="Several HAProxy nodes that disagree: plan routing the others to the "
                "primary's LIVE (shows every node's diff; approved like any switch)."
            ),
        ] = False,
    ) -> Annotated[CallToolResult, SwitchResult] | InputRequiredResult:
        progress = progress_bridge(ctx, "switch_traffic")
        request = SwitchRequest(require_approval=requireApproval, emergency=emergency,
                                confirm_token=confirmToken, force=force, break_lock=breakLock,
                                reason=reason, reconcile=reconcile)  # fmt: skip
        args = [app, requireApproval, emergency, force, breakLock, reason, reconcile]
        digest = hashlib.sha256(json.dumps(args).encode()).hexdigest()
        approver = approver_for(ctx, digest, token_given=confirmToken is not None)

        def work() -> SwitchResult | ApprovalPending:
            try:
                return holder.get().switch(app, request, approver=approver, progress=progress)
            except ApprovalPending as pending:
                return pending

        def render(value: SwitchResult | ApprovalPending) -> CallToolResult | InputRequiredResult:
            if isinstance(value, ApprovalPending):
                return approval_question(value, digest)
            return switch_result(value)

        return await run_tool("switch_traffic", work, render, mutating=True)

    mcp_resources.register(server, holder.get)
    mcp_prompts.register(server)
    return server, holder


# ---- running it ------------------------------------------------------------------------------


def configure_logging(debug: bool = False) -> None:
    """Everything to stderr: in stdio mode stdout is the protocol."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])
    # paramiko logs a traceback for every dropped SSH handshake, which the transport retries or
    # reports itself: its messages only with --debug.
    logging.getLogger("paramiko").setLevel(logging.WARNING if debug else logging.CRITICAL)


def default_factory(config_path: str | None, allow: McpLevel = "full") -> ServiceFactory:
    def factory() -> BlueGreenService:
        from bluegreen.service import Service

        return Service.from_path(config_path, mcp=allow)

    return factory


def with_telemetry(factory: ServiceFactory) -> ServiceFactory:
    """Traced services when OTEL_EXPORTER_OTLP_ENDPOINT is set (the `otel` extra); otherwise the
    factory as it is, and nothing about tracing imported."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return factory
    from bluegreen import telemetry

    return telemetry.traced(factory)


def check_config(config_path: str | None) -> None:
    """Warn early (on stderr) about a broken config; the server still starts and reports it."""
    from bluegreen.domain.config import load_config

    try:
        config = load_config(config_path)
    except BlueGreenError as exc:
        logger.warning("config: %s; every tool will report this until it is fixed", exc)
        return
    logger.info("config: %d app(s): %s", len(config.apps), ", ".join(config.apps))


def serve(
    config_path: str | None,
    *,
    transport: Literal["stdio", "http", "sse"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    token_env: str | None = "BLUEGREEN_MCP_TOKEN",  # noqa: S107 - a variable name
    token_file: str | None = None,
    allow_hosts: Sequence[str] = (),
    allow: McpLevel = "full",
    debug: bool = False,
    factory: ServiceFactory | None = None,
) -> None:
    """Run the MCP server until the client disconnects (stdio) or it is interrupted (HTTP/SSE).

    Raises ConfigError before serving when HTTP/SSE would be exposed beyond loopback without a
    bearer token, or when the token is unusable."""
    from bluegreen import mcp_http

    configure_logging(debug)
    token: str | None = None
    if transport != "stdio":
        token = mcp_http.load_token(token_env, token_file)
        mcp_http.check_exposure(host, token)
    if transport == "sse":
        logger.warning("--transport sse is deprecated (the MCP specification replaced HTTP+SSE with "
                       "streamable HTTP): use --transport http")  # fmt: skip
    check_config(config_path)
    logger.info("safety mode: %s (%s)", allow, SERVER_SWITCH[allow])
    server, holder = build_server(
        with_telemetry(factory or default_factory(config_path, allow)), allow=allow
    )
    try:
        if transport == "stdio":
            logger.info("bluegreen MCP server %s on stdio", __version__)
            anyio.run(server.run_stdio_async)
        else:
            mcp_http.run(server, transport, host=host, port=port, token=token,
                         allow_hosts=allow_hosts)  # fmt: skip
    except KeyboardInterrupt:
        logger.info("interrupted")
    finally:
        holder.close()
