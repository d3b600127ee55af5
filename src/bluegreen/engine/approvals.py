"""Confirmation tokens on the HAProxy host: issue, operator-approve, and consume exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bluegreen.domain import approval as dapproval
from bluegreen.engine.context import Context
from bluegreen.errors import ApprovalError, BlueGreenError, CommandFailed
from bluegreen.models import ApprovalRecord, SwitchPlan
from bluegreen.transport.parallel import parallel

log = logging.getLogger("bluegreen.approvals")


def issue(
    ctx: Context, plan: SwitchPlan, mode: str, ttl_s: float, *, from_cli: bool = False
) -> SwitchPlan:
    hp = ctx.config.haproxy
    record = dapproval.new_token(plan.app, plan.plan_hash, mode, ctx.now(), ttl_s,
                                 plan.from_live, plan.to_live, emergency=plan.emergency,
                                 target_commit=plan.target_commit,
                                 issued_by_cli=from_cli, reconcile=plan.reconcile)  # fmt: skip
    ctx.runner.run(hp.ssh, dapproval.token_dir_command(hp.work_dir, hp.sudo))
    ctx.runner.write_file_atomic(
        hp.ssh, dapproval.record_path(hp.work_dir, record.token), record.to_json(), mode=0o600
    )
    try:  # expired tokens nobody answered go; the new plan stands even if that fails
        prune(ctx)
    except BlueGreenError as exc:
        log.warning("expired approval tokens were not removed: %s", exc)
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


def approvable(ctx: Context, token: str) -> dapproval.TokenRecord:
    """The record of an operator-mode token that can still be approved."""
    record = load(ctx, token)
    if record.mode != "operator":
        raise ApprovalError(
            f"this token was issued in {record.mode} mode: it needs no operator's approval",
            hint='`bluegreen approve` is for apps with approval = "operator"',
        )
    if record.expired(ctx.now()):
        raise ApprovalError(f"token expired at {record.expires}", hint="ask for a new plan")
    return record


def _unanswered(ctx: Context) -> list[dapproval.TokenRecord]:
    """Every record in the approvals directory that was neither approved nor used (any app,
    expired ones included), read side by side."""
    hp = ctx.config.haproxy
    listed = ctx.runner.run(hp.ssh, dapproval.list_command(hp.work_dir, hp.sudo))
    if not listed.ok:  # no approvals directory yet: no plan was ever issued
        return []

    def read(token: str) -> Callable[[], bytes | None]:
        return lambda: ctx.runner.read_file(hp.ssh, dapproval.record_path(hp.work_dir, token))

    tokens = dapproval.unanswered_tokens(listed.stdout)
    raws = parallel([read(t) for t in tokens])
    # A record that names another token than its file is not one this tool wrote: skipped.
    return [
        record for token, raw in zip(tokens, raws, strict=True)
        if not isinstance(raw, Exception) and (record := dapproval.parse_token_record(raw))
        and record.token == token
    ]  # fmt: skip


def pending(ctx: Context, app: str) -> list[dapproval.TokenRecord]:
    """Operator-mode plans for `app` that await a person: issued, not approved, not used, not
    expired (oldest first)."""
    now = ctx.now()
    records = [r for r in _unanswered(ctx) if dapproval.awaits_operator(r, app, now)]
    return sorted(records, key=lambda r: r.created)


def prune(ctx: Context) -> list[str]:
    """Remove the records of expired tokens nobody answered (every app); never a used, approved
    or still valid one. Returns the tokens removed."""
    hp = ctx.config.haproxy
    now = ctx.now()
    expired = [r.token for r in _unanswered(ctx) if r.expired(now)]
    if not expired:
        return []
    result = ctx.runner.run(hp.ssh, dapproval.prune_command(hp.work_dir, expired, hp.sudo))
    if not result.ok:
        raise CommandFailed(
            f"removing expired approval tokens in {dapproval.token_dir(hp.work_dir)} on "
            f"{hp.ssh} failed",
            host=hp.ssh, exit_status=result.exit_status, output_tail=result.tail(),
            hint="check that directory's permissions; the tokens stay refused once expired",
        )  # fmt: skip
    return result.stdout.split()


def approve(
    ctx: Context, record: dapproval.TokenRecord, who: str, channel: str = "terminal"
) -> None:
    """A person approved this operator-mode plan (after seeing it): record who, and where."""
    token = record.token
    hp = ctx.config.haproxy
    result = ctx.runner.run(
        hp.ssh, dapproval.approve_command(hp.work_dir, token, who, channel, hp.sudo)
    )
    if not result.ok:
        raise ApprovalError("this token was already approved")


def consume(
    ctx: Context, token: str, plan: SwitchPlan, configured: str, from_cli: bool
) -> ApprovalRecord:
    """Check a token against the current plan and what the app's approval mode accepts, and use
    it up. Returns how it was approved; raises ApprovalError otherwise."""
    hp = ctx.config.haproxy
    app = plan.app
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
    refusal = dapproval.token_refusal(app, configured, record, from_cli)
    if refusal:
        raise ApprovalError(f"{refusal}; nothing changed", hint="ask for a new plan")
    if record.plan_hash != plan.plan_hash:
        why = dapproval.stale_plan_reason(plan.to_live, record.target_commit, plan.target_commit)
        raise ApprovalError(
            f"confirmToken does not match the current plan: {why}; nothing changed",
            hint="ask for a new plan and approve that one",
        )
    approval = ApprovalRecord(kind="token")
    if record.mode == "operator":
        approved = ctx.runner.run(hp.ssh, dapproval.approved_check_command(hp.work_dir, token))
        if not approved.ok:
            raise ApprovalError(
                "this switch needs an operator's approval first; nothing changed",
                hint=f"a person runs `bluegreen approve {token}` on a terminal, then call again",
            )
        by = ctx.runner.read_file(hp.ssh, dapproval.approver_path(hp.work_dir, token))
        channel = ctx.runner.read_file(hp.ssh, dapproval.channel_path(hp.work_dir, token))
        approval = ApprovalRecord(kind="operator", by=(by or b"").decode(errors="replace") or None,
                                  channel=dapproval.parse_channel(channel))  # fmt: skip
    used = ctx.runner.run(hp.ssh, dapproval.consume_command(hp.work_dir, token, hp.sudo))
    if not used.ok:
        raise ApprovalError(
            "confirmToken was already used (replay refused); nothing changed",
            hint="ask for a new plan if another switch is really wanted",
        )
    return approval
