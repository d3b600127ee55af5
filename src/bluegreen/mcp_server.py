"""The MCP interface: five tools over the service facade, for AI assistants.

Tools (names and parameters are the contract of the reference workflow): `list_apps`,
`get_deployment_status`, `get_deployment_history` (read-only), `deploy_to_standby` (STANDBY only)
and `switch_traffic` (needs a person's approval).

- Every result is a pydantic model published as the tool's outputSchema and returned as structured
  content, next to a short text summary (`mcp_text`).
- The service is synchronous (blocking SSH): each call runs in a worker thread. Step events become
  progress notifications; a switch's approval question becomes an elicitation (`mcp_elicit`). A
  client that cannot elicit gets the token flow: a plan and a confirmToken to pass back after the
  user agrees.
- Every BlueGreenError becomes a tool result with isError and the error's message and hint; any
  other exception becomes a generic isError sentence and a traceback on stderr, never to the client.
- The Service is built on first use, so the server starts (and list_apps answers) with hosts down.
- Logs go to stderr only: in stdio mode stdout is the protocol.

A fifth of the module is the tools' descriptions: what the assistant reads to use them, kept
next to the tools they describe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from itertools import count
from typing import Annotated, Literal, Protocol, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server import MCPServer
from mcp.types import (
    CallToolResult,
    ContentBlock,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

from bluegreen import __version__, mcp_text
from bluegreen.domain.validate import REASON_MAX
from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import BlueGreenError
from bluegreen.log_format import SafeFormatter
from bluegreen.mcp_elicit import (
    ApprovalPending,
    Ctx,
    approval_question,
    approver_for,
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


class BlueGreenService(Protocol):
    """What the MCP server needs from `bluegreen.service.Service` (a fake in unit tests)."""

    def list_apps(self) -> list[AppSummary]: ...

    def status(self, app: str) -> AppStatus: ...

    def history(self, app: str, limit: int = 20) -> History: ...

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


# ---- descriptions ---------------------------------------------------------------------------

INSTRUCTIONS = """\
Blue/green releases behind HAProxy. BLUE and GREEN are server names; either can be LIVE (serving \
users, per haproxy.cfg) or STANDBY. The release cycle: get_deployment_status -> deploy_to_standby \
(touches STANDBY only) -> the user tests STANDBY at the address shown -> switch_traffic (STANDBY \
becomes LIVE after the user approves) -> get_deployment_status. The old LIVE stays untouched as \
STANDBY, so switch_traffic again is the instant rollback. Never approve a switch on the user's \
behalf: pass a confirmToken back only after the user explicitly agreed to the plan you showed."""

APP_HELP = "App name from the bluegreen config (see list_apps), e.g. 'jw-attendant'."

STATUS_DOC = """\
Which server (BLUE or GREEN) of an app is LIVE (serving users) and which is STANDBY, read from \
haproxy.cfg on the HAProxy host (the source of truth), with both servers' health, deployed commits, \
HAProxy's runtime view, state-file drift and any operation lock. Read-only: changes nothing. Call it \
first, before deploy_to_standby or switch_traffic, and afterwards to confirm. The summary names the \
STANDBY address the user should test before a switch, and `next_step` says what to do next. If \
`certain` is false the routing is ambiguous: do not deploy or switch until a person fixes it."""

LIST_DOC = """\
The apps this server manages (from its config file): name, HAProxy frontend and the two servers' \
addresses. Read-only and needs no SSH, so it answers even when hosts are down. Use it to find the \
`app` name the other tools take; it does not say which server is LIVE (get_deployment_status \
does)."""

HISTORY_DOC = """\
Recent deploys and traffic switches of an app, newest first: when, who, which server, commits \
before/after, LIVE before/after, outcome, reason and failed steps. Read-only. Use it to explain what \
happened, or to find which server was LIVE before the last switch when planning a rollback."""

DEPLOY_DOC = """\
Deploy a new version to the STANDBY server only. It finds STANDBY from haproxy.cfg (never from the \
server names), backs up its app dir, pulls the code (git fetch + checkout of the app's branch, or \
`ref`), builds, restarts and health-checks it. It never touches the LIVE server and never changes \
HAProxy routing: users are unaffected. On failure the backup is restored and the result names the \
failed step, its output and what to do. pullGithub=false deploys what is already checked out; \
createBackup=false skips the backup (no restore on failure); runMigrations=true runs the app's \
migrate command, which acts on the database LIVE may share, so only when the user asked for it; \
dryRun=true only returns the exact commands that would run; breakLock=true clears a STALE lock \
(never one held by a running operation). Progress is reported per step. Next: ask the user to test \
STANDBY at the address in the result, then switch_traffic to release it."""

SWITCH_DOC = """\
Release: make STANDBY the new LIVE. It edits haproxy.cfg (validated with `haproxy -c`, replaced \
atomically, seamless reload, verified through the frontend) and updates the state file; the old \
LIVE becomes STANDBY, untouched, so calling switch_traffic again is the instant rollback. Deploys \
nothing. It needs the user's approval: when the client can ask the user (elicitation), the user is \
shown the plan and asked directly. Otherwise the first call changes nothing and returns the plan \
(servers, target health, haproxy.cfg diff) with a confirmToken: show the plan to the user, and only \
after they explicitly agree, call switch_traffic again with the same arguments plus confirmToken. \
Never invent, reuse or self-approve a token. emergency=true is a fast rollback (skips draining and \
slow checks); force=true (with emergency) switches even to an unhealthy target; \
requireApproval=false works only where the config allows it. `reason` goes into the history. \
Progress is reported per step. Before switching, make sure STANDBY was tested."""

READ_ONLY = {"read_only_hint": True, "destructive_hint": False, "idempotent_hint": True}
# The parameters several tools share, described once.
App = Annotated[str, Field(description=APP_HELP)]
BreakLock = Annotated[bool, Field(description="Clear a STALE lock left by a dead operation.")]


def tool_annotations(
    title: str, *, read_only: bool = False, destructive: bool = False
) -> ToolAnnotations:
    """Every tool reaches remote hosts (open world); reads are idempotent, changes are not."""
    if read_only:
        return ToolAnnotations(title=title, open_world_hint=True, **READ_ONLY)
    return ToolAnnotations(
        title=title,
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=False,
        open_world_hint=True,
    )


# ---- results -------------------------------------------------------------------------------


def _text(text: str) -> list[ContentBlock]:
    return [TextContent(type="text", text=text)]


def structured(model: BaseModel, text: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=_text(text), structured_content=model.model_dump(mode="json"), is_error=is_error
    )


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
    return CallToolResult(
        content=_text(mcp_text.apps_text(apps)),
        structured_content={"result": [app.model_dump(mode="json") for app in apps]},
    )


def history_result(history: History) -> CallToolResult:
    return structured(history, mcp_text.history_text(history))


def deploy_result(result: DeployResult) -> CallToolResult:
    return structured(result, mcp_text.deploy_text(result), is_error=not result.ok)


def switch_result(result: SwitchResult) -> CallToolResult:
    failed = not result.ok and (result.executed or result.error is not None)
    return structured(result, mcp_text.switch_text(result), is_error=failed)


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
    """Step events (from the worker thread) -> log lines and MCP progress notifications."""
    counter = count(1)

    def on_event(event: StepEvent) -> None:
        text = mcp_text.event_text(event)
        logger.info("%s: %s", tool, text)
        try:
            anyio.from_thread.run(ctx.report_progress, float(next(counter)), None, text)
        except Exception:  # a lost notification must never break a deploy or a switch
            logger.debug("progress notification not delivered", exc_info=True)

    return on_event


# ---- the server ------------------------------------------------------------------------------


def build_server(service_factory: ServiceFactory) -> tuple[MCPServer, ServiceHolder]:
    """The MCP server and the holder of its (lazily built) service; close the holder at exit."""
    holder = ServiceHolder(service_factory)
    server: MCPServer = MCPServer(
        SERVER_NAME,
        title="Blue/green releases behind HAProxy",
        instructions=INSTRUCTIONS,
        version=__version__,
    )

    @server.tool(
        name="list_apps",
        title="List apps",
        description=LIST_DOC,
        annotations=tool_annotations("List apps", read_only=True),
    )
    async def list_apps() -> Annotated[CallToolResult, list[AppSummary]]:
        return await run_tool("list_apps", lambda: holder.get().list_apps(), apps_result)

    @server.tool(
        name="get_deployment_status",
        title="Deployment status",
        description=STATUS_DOC,
        annotations=tool_annotations("Deployment status", read_only=True),
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
        annotations=tool_annotations("Deployment history", read_only=True),
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
        annotations=tool_annotations("Deploy to STANDBY"),
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
        annotations=tool_annotations("Switch traffic", destructive=True),
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
    ) -> Annotated[CallToolResult, SwitchResult] | InputRequiredResult:
        progress = progress_bridge(ctx, "switch_traffic")
        request = SwitchRequest(require_approval=requireApproval, emergency=emergency,
                                confirm_token=confirmToken, force=force, break_lock=breakLock,
                                reason=reason)  # fmt: skip
        args = [app, requireApproval, emergency, force, breakLock, reason]
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


def default_factory(config_path: str | None) -> ServiceFactory:
    def factory() -> BlueGreenService:
        from bluegreen.service import Service

        return Service.from_path(config_path)

    return factory


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
    check_config(config_path)
    server, holder = build_server(factory or default_factory(config_path))
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
