"""The switch approval question, bridged from the service's worker thread to the MCP client.

Protocol <= 2025-11-25: a mid-call `elicitation/create` request (the worker thread blocks while
the event loop asks). 2026-07-28: an `InputRequiredResult` round trip, whose answer counts only
for the plan and arguments it was asked for. A client that cannot elicit gets no `ask`: the
service then answers with the token flow. Whatever the channel, the answer is the client's yes
(its name and version go into the history), not proof that a person gave it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal

import anyio.from_thread
from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp.types.version import is_version_at_least
from pydantic import BaseModel, Field, ValidationError

from bluegreen import mcp_text
from bluegreen.models import SwitchPlan
from bluegreen.service import Approver

logger = logging.getLogger("bluegreen.mcp")

Ctx = Context[Any, Any]
APPROVAL_KEY = "approve_switch"
INPUT_REQUIRED_VERSION = "2026-07-28"  # first protocol that elicits through InputRequiredResult
CLIENT_NAME_MAX = 120  # a client names itself: its words are bounded before the history keeps them


class SwitchApproval(BaseModel):
    """The one question a switch asks the person in the client."""

    approve: bool = Field(
        default=False,
        strict=True,
        title="Switch traffic now",
        description="Approve exactly this plan. Leave unchecked (or decline) to change nothing.",
    )


def approver_for(ctx: Ctx, args_digest: str, *, token_given: bool) -> Approver:
    """The service's Approver for one switch_traffic call: the client's name (for the history)
    and, when it can elicit and no token was passed, how to ask."""
    channel = None if token_given else elicitation_channel(ctx)
    ask: Callable[[SwitchPlan], bool] | None = None
    if channel == "request":
        ask = request_elicit(ctx)
    elif channel == "input_required":
        ask = input_required_elicit(ctx, args_digest)
    return Approver(from_cli=False, who=client_name(ctx), ask=ask)


def client_name(ctx: Ctx) -> str:
    """The clientInfo the MCP session declared (self-reported, recorded as such)."""
    params = ctx.session.client_params
    info = params.client_info if params is not None else None
    if info is None:
        return "MCP client (no clientInfo)"
    return f"{info.name} {info.version}"[:CLIENT_NAME_MAX]


def approved(answer: object) -> bool:
    """Only an explicit accept with approve=true approves; anything else is a no."""
    if isinstance(answer, AcceptedElicitation):
        return isinstance(answer.data, SwitchApproval) and answer.data.approve is True
    if isinstance(answer, ElicitResult):
        if answer.action != "accept" or not answer.content:
            return False
        try:
            return SwitchApproval.model_validate(answer.content).approve is True
        except ValidationError:
            return False
    return False


Channel = Literal["request", "input_required"]


def elicitation_channel(ctx: Ctx) -> Channel | None:
    """How this client can be asked: a mid-call request, an input_required round, or not at all."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (before modes existed) means form support; url-only does not.
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return None
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION):
        return "input_required"
    return "request" if ctx.session.can_send_request else None


def request_elicit(ctx: Ctx) -> Callable[[SwitchPlan], bool]:
    """The service's `elicit` for protocols with mid-call requests: blocks the worker thread
    while the event loop asks the client."""

    async def ask(plan: SwitchPlan) -> bool:
        try:
            answer = await ctx.elicit(mcp_text.approval_prompt(plan), SwitchApproval)
        except Exception:
            logger.warning("switch %s: the approval question failed; not approved", plan.app,
                           exc_info=True)  # fmt: skip
            return False
        return approved(answer)

    def elicit(plan: SwitchPlan) -> bool:
        ok = anyio.from_thread.run(ask, plan)
        logger.info("switch %s: approval %s", plan.app, "given" if ok else "NOT given")
        return ok

    return elicit


class ApprovalPending(Exception):
    """Raised from the service's `elicit` to end an input_required round with a question."""

    def __init__(self, plan: SwitchPlan) -> None:
        super().__init__(f"approval pending for {plan.app}")
        self.plan = plan


def _state(plan: SwitchPlan, args_digest: str) -> str:
    return json.dumps({"v": 1, "plan": plan.plan_hash, "args": args_digest}, sort_keys=True)


def input_required_elicit(ctx: Ctx, args_digest: str) -> Callable[[SwitchPlan], bool]:
    """The service's `elicit` for 2026-07-28: the first round raises ApprovalPending (the tool then
    returns the question); the retry carries the answer, which counts only for the same plan and
    arguments (the SDK seals request_state, so a client cannot forge it)."""
    answer = (ctx.input_responses or {}).get(APPROVAL_KEY)

    def elicit(plan: SwitchPlan) -> bool:
        if answer is None or ctx.request_state != _state(plan, args_digest):
            raise ApprovalPending(plan)
        ok = approved(answer)
        logger.info("switch %s: approval %s", plan.app, "given" if ok else "NOT given")
        return ok

    return elicit


def approval_question(pending: ApprovalPending, args_digest: str) -> InputRequiredResult:
    request = ElicitRequest(
        params=ElicitRequestFormParams(
            message=mcp_text.approval_prompt(pending.plan),
            requested_schema=render_elicitation_schema(SwitchApproval),
        )
    )
    return InputRequiredResult(
        input_requests={APPROVAL_KEY: request}, request_state=_state(pending.plan, args_digest)
    )
