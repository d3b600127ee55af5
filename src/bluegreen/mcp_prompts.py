"""MCP prompts: the team's runbook as conversations an assistant can start from.

`release(app, ref)`: status, deploy to STANDBY, the user tests STANDBY, the plan, approval, switch,
watch. `rollback(app, reason)`: back to the previous LIVE with an emergency switch.
`preflight(app)`: read-only checks before a release. The words (LIVE, STANDBY, BLUE, GREEN) and the
tool names are the runbook's (reference/live-standby-workflow.md). Arguments are validated like
the tools' before they enter the text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import Field

from bluegreen.domain.validate import REASON_MAX, validate_app_name, validate_reason, validate_ref
from bluegreen.errors import BlueGreenError
from bluegreen.mcp_docs import APP_HELP

T = TypeVar("T")

App = Annotated[str, Field(description=APP_HELP)]
NEVER_SELF_APPROVE = (
    "Never approve a switch on the user's behalf: pass a confirmToken back only after the user "
    "explicitly agreed to the plan you showed them."
)


def _arg(check: Callable[[object], T], value: object) -> T:
    """A prompt argument validated like the tools' (the client sees why it was refused)."""
    try:
        return check(value)
    except BlueGreenError as exc:
        raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None


def _steps(*steps: str) -> str:
    return "\n".join(f"{number}. {step}" for number, step in enumerate(steps, 1))


def release_text(app: str, ref: str | None) -> str:
    what = f"ref `{ref}`" if ref else "the app's configured branch"
    ref_arg = f', ref="{ref}"' if ref else ""
    return f"""Release {what} of app `{
        app
    }` with the blue/green runbook. BLUE and GREEN are server \
names; either can be LIVE (serving users, per haproxy.cfg) or STANDBY. Stop and tell the user at \
the first step that fails.

{
        _steps(
            f'Status: call get_deployment_status(app="{app}"). Say which server is LIVE and which is '
            "STANDBY. If `certain` is false, a lock is held or LIVE is unhealthy, stop here.",
            f'Deploy to STANDBY: call deploy_to_standby(app="{app}"{ref_arg}) (pullGithub=true, '
            "createBackup=true, runMigrations=false unless the user asked for migrations). It never "
            "touches LIVE. If it fails, report the failed step and its output.",
            "Test STANDBY: give the user the STANDBY address from the result and ask them to test it "
            "directly. Wait for their answer; do not go on without it.",
            f"Plan: read the resource bluegreen://apps/{app}/switch-plan and show the user the servers, "
            "the commit going LIVE, the warnings and the haproxy.cfg diff.",
            f'Approve and switch: call switch_traffic(app="{app}", reason="release {ref or "branch"}"). '
            "If your client asks the user, let them answer. If it returns a confirmToken, show the plan "
            "and call again with confirmToken only after the user's explicit yes.",
            f'Watch: call get_deployment_status(app="{app}") and confirm the new LIVE serves the new '
            "commit. The old LIVE is now STANDBY, untouched: switch_traffic again is the instant "
            "rollback.",
        )
    }

{NEVER_SELF_APPROVE}"""


def rollback_text(app: str, reason: str) -> str:
    return f"""Roll app `{app}` back to the server that was LIVE before the last switch. Reason \
(from the user): {reason}

{
        _steps(
            f'Status: call get_deployment_status(app="{app}") and get_deployment_history(app="{app}", '
            "limit=5). From the last successful switch, name the server that was LIVE before it and its "
            "commit; check that this server is STANDBY now, healthy, and still on that commit.",
            "If STANDBY is not the previous LIVE, or a new commit was deployed to it since, stop: a "
            "rollback would release something else. Tell the user what you found.",
            f"Plan: read bluegreen://apps/{app}/switch-plan and show the user the diff and the target.",
            f'Switch back: call switch_traffic(app="{app}", emergency=true, reason=<the reason above>). '
            "Use force=true only if the user explicitly accepts switching to an unhealthy server. "
            "Approval works as for any switch.",
            f'Confirm: call get_deployment_status(app="{app}") and report who is LIVE now. Do not deploy '
            "during a rollback.",
        )
    }

{NEVER_SELF_APPROVE}"""


def preflight_text(app: str) -> str:
    return f"""Check that app `{app}` is ready for a release. Change nothing: this is read-only.

{
        _steps(
            f'Call get_deployment_status(app="{app}"): routing certain, both servers reachable and '
            "healthy, no lock, no state-file drift, HAProxy's running view agrees with haproxy.cfg.",
            f"Read bluegreen://apps/{app}/routing: the haproxy.cfg lines that decide LIVE, and whether "
            "anything in them looks hand-edited or ambiguous.",
            f'Call get_deployment_history(app="{app}", limit=5): recent failures or rollbacks.',
            f'If this server allows deploys, call deploy_to_standby(app="{app}", dryRun=true) to see the '
            "exact commands a deploy would run on STANDBY.",
            "Report go or no-go with the reasons, and what a person must fix first.",
        )
    }"""


def register(server: MCPServer) -> None:
    @server.prompt(name="release", title="Release a version",
                   description="Walk the release runbook: status, deploy to STANDBY, the user "
                   "tests STANDBY, plan, approval, switch, watch.")  # fmt: skip
    def release(
        app: App,
        ref: Annotated[
            str | None, Field(description="Branch, tag or full sha; default: the app's branch.")
        ] = None,
    ) -> str:
        return release_text(_arg(validate_app_name, app), _arg(validate_ref, ref) if ref else None)

    @server.prompt(name="rollback", title="Roll back",
                   description="Switch back to the previous LIVE (an emergency switch) after "
                   "checking it is untouched.")  # fmt: skip
    def rollback(
        app: App,
        reason: Annotated[str, Field(description=f"Why (one line, at most {REASON_MAX} chars).")],
    ) -> str:
        return rollback_text(_arg(validate_app_name, app), _arg(validate_reason, reason) or "")

    @server.prompt(name="preflight", title="Preflight checks",
                   description="Read-only checks before a release: routing, health, lock, drift, "
                   "history, the deploy's commands.")  # fmt: skip
    def preflight(app: App) -> str:
        return preflight_text(_arg(validate_app_name, app))
