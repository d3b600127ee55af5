"""Confirmation tokens on the HAProxy host: issue, operator-approve, and consume exactly once."""

from __future__ import annotations

from bluegreen.domain import approval as dapproval
from bluegreen.engine.context import Context
from bluegreen.errors import ApprovalError
from bluegreen.models import SwitchPlan


def issue(ctx: Context, plan: SwitchPlan, mode: str, ttl_s: float) -> SwitchPlan:
    hp = ctx.config.haproxy
    record = dapproval.new_token(plan.app, plan.plan_hash, mode, ctx.now(), ttl_s,
                                 plan.from_live, plan.to_live)  # fmt: skip
    ctx.runner.run(hp.ssh, dapproval.token_dir_command(hp.work_dir, hp.sudo))
    ctx.runner.write_file_atomic(
        hp.ssh, dapproval.record_path(hp.work_dir, record.token), record.to_json(), mode=0o600
    )
    return plan.model_copy(
        update={"confirm_token": record.token, "token_expires_at": record.expires, "approval": mode}
    )


def load(ctx: Context, token: str) -> dapproval.TokenRecord:
    hp = ctx.config.haproxy
    dapproval.validate_token(token)
    record = dapproval.parse_token_record(
        ctx.runner.read_file(hp.ssh, dapproval.record_path(hp.work_dir, token))
    )
    if record is None:
        raise ApprovalError(
            "unknown confirmToken: no switch plan was issued with it",
            hint="call switch_traffic without confirmToken to get a plan and a token",
        )
    return record


def approve(ctx: Context, token: str, who: str) -> dapproval.TokenRecord:
    """`bluegreen approve TOKEN`: a person on a terminal approves an operator-mode plan."""
    record = load(ctx, token)
    if record.expired(ctx.now()):
        raise ApprovalError(f"token expired at {record.expires}", hint="ask for a new plan")
    hp = ctx.config.haproxy
    result = ctx.runner.run(hp.ssh, dapproval.approve_command(hp.work_dir, token, who, hp.sudo))
    if not result.ok:
        raise ApprovalError("this token was already approved")
    return record


def consume(ctx: Context, app: str, token: str, plan_hash: str) -> dapproval.TokenRecord:
    """Check a token against the current plan and use it up. Raises ApprovalError otherwise."""
    hp = ctx.config.haproxy
    record = load(ctx, token)
    if ctx.runner.run(hp.ssh, dapproval.used_check_command(hp.work_dir, token)).ok:
        raise ApprovalError(
            "confirmToken was already used (replay refused); nothing changed",
            hint="ask for a new plan if another switch is really wanted",
        )
    if record.app != app:
        raise ApprovalError(f"this token was issued for app {record.app!r}, not {app!r}")
    if record.expired(ctx.now()):
        raise ApprovalError(
            f"confirmToken expired at {record.expires}; nothing changed",
            hint="ask for a new plan (switch_traffic without confirmToken)",
        )
    if record.plan_hash != plan_hash:
        raise ApprovalError(
            "confirmToken does not match the current plan: haproxy.cfg, the state file or the "
            "target changed since it was issued; nothing changed",
            hint="ask for a new plan and approve that one",
        )
    if record.mode == "operator":
        approved = ctx.runner.run(hp.ssh, dapproval.approved_check_command(hp.work_dir, token))
        if not approved.ok:
            raise ApprovalError(
                "this switch needs an operator's approval first; nothing changed",
                hint=f"a person runs `bluegreen approve {token}` on a terminal, then call again",
            )
    used = ctx.runner.run(hp.ssh, dapproval.consume_command(hp.work_dir, token, hp.sudo))
    if not used.ok:
        raise ApprovalError(
            "confirmToken was already used (replay refused); nothing changed",
            hint="ask for a new plan if another switch is really wanted",
        )
    return record
