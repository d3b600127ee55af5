"""How a deploy's result ends: the next step it suggests and its history line. Both read only the
finished DeployResult, so what is reported and what is recorded cannot disagree."""

from __future__ import annotations

from bluegreen.engine import history
from bluegreen.engine.context import Context
from bluegreen.models import DeployResult

_NEXT_ON_FAILURE = {
    "preflight": "Fix what preflight found on {s} and deploy again.",
    "backup": "Make room for the backup (or deploy without one) and deploy again.",
    "fetch": "Check the ref and {s}'s access to origin, then deploy again.",
    "build": "Fix the build (see output_tail), push a new commit and deploy again.",
    "migrate": "Check the migration output: the database LIVE uses may be partly migrated.",
    "restart": "Check {s}'s process manager and log (output_tail), then deploy again.",
    "health": "Read {s}'s log (output_tail), fix the app and deploy again.",
}
_LIVE_WORD = {True: " and healthy", False: " but NOT healthy: check it now", None: ""}


def next_step(result: DeployResult) -> str:
    label = result.color.upper()
    if result.ok:
        return (
            f"Test {label} at {result.address} (commit {(result.commit_after or '?')[:12]}), "
            "then switch_traffic to make it LIVE."
        )
    failed = result.failed_step or ""
    if result.failed_server:
        label = f"{label} {result.failed_server}"
    return (
        _NEXT_ON_FAILURE[failed].format(s=label)
        if failed in _NEXT_ON_FAILURE
        else f"Check {label} (see error) before deploying again."
    ) + f" {result.live_color.upper()} stays LIVE{_LIVE_WORD[result.live_healthy_after]}."


def record(ctx: Context, result: DeployResult) -> None:
    """The deploy's history line; a line that cannot be written becomes a warning."""
    problem = history.record(
        ctx, "deploy", result.app, "ok" if result.ok else "failed", color=result.color,
        ref=result.ref, commit_before=result.commit_before, commit_after=result.commit_after,
        duration_s=result.duration_s, steps=result.steps, error=result.error,
    )  # fmt: skip
    if problem:
        result.warnings.append(problem)
