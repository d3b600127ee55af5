"""The one facade both interfaces use: status, list, (later) deploy, switch, history.

It owns the wiring (config -> SSH runner -> engine context) so the CLI and the MCP server stay thin
and behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from bluegreen.domain import mcp_policy
from bluegreen.domain.approval import (
    LastLive,
    approval_mode,
    stale_plan_reason,
    unapproved_basis,
    validate_token,
)
from bluegreen.domain.config import Config, McpLevel, load_config
from bluegreen.domain.validate import validate_app_name, validate_reason, validate_ref
from bluegreen.engine import approvals, history, indicators, traffic_watch
from bluegreen.engine import switch as switch_engine
from bluegreen.engine.context import Context, StepEvent
from bluegreen.engine.deploy import deploy_to_standby
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.engine.routing_view import read_routing
from bluegreen.engine.status import get_status, get_statuses
from bluegreen.engine.switch_plan import prepare as prepare_switch
from bluegreen.errors import ApprovalError
from bluegreen.models import (
    AppRouting,
    ApprovalRecord,
    AppStatus,
    AppSummary,
    DeployResult,
    History,
    PendingApproval,
    SwitchPlan,
    SwitchResult,
)
from bluegreen.models_traffic import TrafficSample
from bluegreen.transport.base import Runner


@dataclass(frozen=True)
class SwitchRequest:
    """What a caller asks of switch_traffic (the MCP tool's and the CLI's options, once)."""

    require_approval: bool = True
    emergency: bool = False
    confirm_token: str | None = None
    force: bool = False
    break_lock: bool = False
    reason: str | None = None
    # Several HAProxy nodes that disagree: the approved plan that brings them back to one answer.
    reconcile: bool = False


@dataclass(frozen=True)
class Approver:
    """Who asks for a switch and how they can be asked: `ask` shows the plan and returns the
    answer. `from_cli`: a person using `bluegreen` (with `ask`, the y/N at their terminal);
    else an MCP client or a program, and `who` is the client's name and version."""

    from_cli: bool = False
    who: str | None = None
    ask: Callable[[SwitchPlan], bool] | None = None


def ssh_runner_for(config: Config) -> Runner:
    # Imported here so that importing the service never needs paramiko (tests with a fake runner).
    from bluegreen.transport.ssh import SSHOptions, SSHRunner

    ssh = config.ssh
    return SSHRunner(
        SSHOptions(
            known_hosts=str(ssh.known_hosts),
            identity_file=str(ssh.identity_file) if ssh.identity_file else None,
            use_agent=ssh.use_agent,
            # The default ~/.ssh/config is optional; a missing one means "no ssh_config".
            ssh_config=str(ssh.ssh_config)
            if ssh.ssh_config and ssh.ssh_config.exists()
            else "none",
            connect_timeout_s=ssh.connect_timeout_s,
            command_timeout_s=ssh.command_timeout_s,
            # `sudo = true` on a host: its commands AND its file reads and writes go through sudo.
            sudo_hosts=frozenset(
                [config.haproxy.ssh] * config.haproxy.sudo
                + [
                    m.ssh
                    for app in config.apps.values()
                    for color, server in app.servers.items()
                    if server.sudo
                    for m in server.members(color)
                ]
            ),
        )
    )


class Service:
    """`mcp`: the safety mode of the MCP server this service answers (domain/mcp_policy), with
    each app's `mcp` key; None for a person at the CLI, whom that policy does not bind."""

    def __init__(
        self,
        config: Config,
        runner: Runner | None = None,
        progress: Callable[[StepEvent], None] | None = None,
        *,
        mcp: McpLevel | None = None,
    ) -> None:
        self.config = config
        self.runner = runner or ssh_runner_for(config)
        self._progress = progress
        self._mcp = mcp

    @classmethod
    def from_path(cls, path: str | None = None, *, mcp: McpLevel | None = None) -> Service:
        return cls(load_config(path), mcp=mcp)

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.runner.close()

    def context(self, progress: Callable[[StepEvent], None] | None = None) -> Context:
        chosen = progress or self._progress
        if chosen is None:
            return Context(config=self.config, runner=self.runner)
        return Context(config=self.config, runner=self.runner, progress=chosen)

    def list_apps(self) -> list[AppSummary]:
        return [
            AppSummary(
                app=name,
                frontend=app.frontend,
                servers={
                    color: ", ".join(m.address for m in app.members(color)) for color in app.servers
                },
            )
            for name, app in self.config.apps.items()
        ]

    def status(self, app: str) -> AppStatus:
        validate_app_name(app)
        return get_status(self.context(), app)

    def status_many(self, apps: list[str]) -> list[AppStatus]:
        """Status of several apps at once (their reads share the pooled connections)."""
        for app in apps:
            validate_app_name(app)
        # One round of reads for all of them: one command on the HAProxy host, one probe per
        # distinct server, one `git log` per app host and app dir.
        return get_statuses(self.context(), apps)

    def _allowed(self, action: mcp_policy.Action, app: str) -> None:
        if self._mcp is not None:
            level = self.config.app(app).mcp
            mcp_policy.check(action, app, server=self._mcp, app_level=level)

    # --- switch ----------------------------------------------------------------------------

    def switch(
        self,
        app: str,
        request: SwitchRequest | None = None,
        *,
        approver: Approver | None = None,
        progress: Callable[[StepEvent], None] | None = None,
    ) -> SwitchResult:
        """Plan, approve and execute a switch. Without approval nothing changes: the result then
        holds the plan (and, in token/operator mode, plan.confirm_token to pass back).
        Without an `approver`, the caller is a program that cannot ask anyone."""
        request = request or SwitchRequest()
        approver = approver or Approver()
        validate_app_name(app)
        self._allowed("switch", app)
        validate_reason(request.reason)
        if request.confirm_token is not None:
            validate_token(request.confirm_token)
        ctx = self.context(progress)
        app_cfg = self.config.app(app)
        # A person answering y/N at their terminal approves in every mode, `operator` included.
        can_ask = approver.ask is not None
        mode = (
            "elicit" if approver.from_cli and can_ask else approval_mode(app_cfg.approval, can_ask)
        )
        plan = prepare_switch(ctx, app, emergency=request.emergency, mode=mode,
                              reconcile=request.reconcile).plan  # fmt: skip

        def go(approval: ApprovalRecord) -> SwitchResult:
            return switch_engine.execute(
                ctx, app, plan, approval, emergency=request.emergency, force=request.force,
                reason=request.reason, break_lock=request.break_lock,
            )  # fmt: skip

        if not request.require_approval:
            kind = unapproved_basis(
                app, allow_unapproved=app_cfg.allow_unapproved,
                allow_emergency=app_cfg.allow_emergency_without_approval,
                emergency=request.emergency, target=plan.to_live, target_commit=plan.target_commit,
                last_live=lambda: _last_live(ctx, app),
            )  # fmt: skip
            return go(ApprovalRecord(kind=kind))
        if request.confirm_token is not None:
            return go(approvals.consume(ctx, request.confirm_token, plan, app_cfg.approval,
                                        approver.from_cli))  # fmt: skip
        if mode == "elicit":
            if approver.ask is None:
                raise ApprovalError(
                    f"{app} requires approval by a person in the MCP client (approval = "
                    '"elicit"), and this client cannot ask',
                    hint="use a client with elicitation support, or run `bluegreen switch` in a terminal",
                )
            if not approver.ask(plan):
                return SwitchResult(app=app, executed=False, ok=False, plan=plan,
                                    from_live=plan.from_live, to_live=plan.to_live,
                                    message="not approved: nothing changed")  # fmt: skip
            return go(ApprovalRecord(kind="terminal" if approver.from_cli else "elicitation",
                                     by=approver.who))  # fmt: skip
        issued = approvals.issue(ctx, plan, mode, app_cfg.token_ttl_s)
        how = (
            f"a person must run `bluegreen approve {issued.confirm_token}` on a terminal, then "
            "call switch_traffic again with confirmToken"
            if mode == "operator"
            else "show the plan to the user; after their explicit yes, call switch_traffic again "
            "with confirmToken"
        )
        return SwitchResult(
            app=app, executed=False, ok=False, plan=issued, from_live=plan.from_live,
            to_live=plan.to_live, emergency=request.emergency,
            message=f"approval needed: switch {plan.from_live.upper()} -> {plan.to_live.upper()} "
            f"is planned, nothing changed",
            next_step=how,
        )  # fmt: skip

    def preview_switch(self, app: str, *, emergency: bool = False) -> SwitchPlan:
        """The plan a switch would follow now, with its cfg diff: no token, no lock, no write.
        A read, so every MCP safety mode allows it; approving needs switch_traffic."""
        validate_app_name(app)
        mode = self.config.app(app).approval  # `auto` stays `auto`: the caller is not known yet
        return prepare_switch(self.context(), app, emergency=emergency, mode=mode).plan

    def routing(self, app: str) -> AppRouting:
        """The haproxy.cfg lines that route this app, with the analysis (read-only)."""
        validate_app_name(app)
        return read_routing(self.context(), app)

    def plan_switch(
        self, app: str, *, emergency: bool = False, reconcile: bool = False
    ) -> SwitchPlan:
        """The plan with a confirmation token (for `bluegreen switch --plan`); changes nothing."""
        validate_app_name(app)
        ctx = self.context()
        app_cfg = self.config.app(app)
        mode = "operator" if app_cfg.approval == "operator" else "token"
        prepared = prepare_switch(ctx, app, emergency=emergency, mode=mode, reconcile=reconcile)
        return approvals.issue(ctx, prepared.plan, mode, app_cfg.token_ttl_s, from_cli=True)

    def pending_approvals(self, app: str) -> list[PendingApproval]:
        """Operator-mode plans for `app` waiting for a person (read-only)."""
        validate_app_name(app)
        self.config.app(app)
        return [
            PendingApproval(token=r.token, app=r.app, from_live=r.from_live, to_live=r.to_live,
                            emergency=r.emergency, target_commit=r.target_commit,
                            plan_hash=r.plan_hash, created=r.created, expires=r.expires)
            for r in approvals.pending(self.context(), app)
        ]  # fmt: skip

    def prune_approvals(self) -> list[str]:
        """Remove expired tokens nobody answered (every app); returns the tokens removed."""
        return approvals.prune(self.context())

    def approve(
        self,
        token: str,
        who: str,
        confirm: Callable[[SwitchPlan], bool],
        *,
        channel: str = "terminal",
    ) -> str:
        """`bluegreen approve TOKEN` (or the dashboard's Approve): the person sees the plan as it
        is now (the token's own plan, or a refusal if anything changed since) and says yes or no.
        `channel`: where they said it, recorded with their name."""
        ctx = self.context()
        record = approvals.approvable(ctx, validate_token(token))
        plan = prepare_switch(ctx, record.app, emergency=record.emergency, mode="operator",
                              reconcile=record.reconcile).plan  # fmt: skip
        if plan.plan_hash != record.plan_hash:
            why = stale_plan_reason(plan.to_live, record.target_commit, plan.target_commit)
            raise ApprovalError(f"this token's plan no longer applies: {why}",
                                hint="ask for a new plan and approve that one")  # fmt: skip
        if not confirm(plan.model_copy(update={"confirm_token": token,
                                               "token_expires_at": record.expires})):  # fmt: skip
            return "not approved: nothing changed"
        approvals.approve(ctx, record, who, channel)
        return (f"approved: {record.app} switch {record.from_live.upper()} -> "
                f"{record.to_live.upper()} (token valid until {record.expires})")  # fmt: skip

    def traffic(self, app: str, previous: TrafficSample | None = None) -> TrafficSample:
        """Requests per colour from HAProxy's runtime statistics; rates against `previous`."""
        validate_app_name(app)
        return traffic_watch.sample(self.context(), app, previous)

    def watch_traffic(
        self,
        app: str,
        on_sample: Callable[[TrafficSample], None],
        *,
        every_s: float = 1.0,
        count: int | None = None,
    ) -> None:
        """`bluegreen watch`: a reading every `every_s` seconds, `count` times or until stopped."""
        validate_app_name(app)
        traffic_watch.watch(self.context(), app, on_sample, every_s=every_s, count=count)

    def install_prompt(self, app: str) -> list[str]:
        """`bluegreen prompt`: the prompt snippet on both app hosts, and, when LIVE and STANDBY
        are certain now, each host's `.env.display` (a switch rewrites it from then on)."""
        validate_app_name(app)
        self._allowed("deploy", app)  # writes on the app hosts, as a deploy does
        ctx = self.context()
        app_cfg = self.config.app(app)
        done = [f"prompt snippet at {where}" for where in indicators.install_prompt(ctx, app_cfg)]
        status = get_status(ctx, app)
        if status.certain:
            roles = {s.color: s.role for s in status.servers if s.role}
            done.append(indicators.write_roles(ctx, app_cfg, roles, ctx.now()))
        else:
            done.append("roles not written: LIVE/STANDBY is not certain now (see status)")
        return done

    def history(self, app: str, limit: int = 20) -> History:
        validate_app_name(app)
        self.config.app(app)
        return history.read(self.context(), app, limit=max(1, min(limit, 1000)))

    def deploy(
        self,
        app: str,
        options: DeployOptions | None = None,
        *,
        progress: Callable[[StepEvent], None] | None = None,
    ) -> DeployResult:
        """deploy_to_standby: STANDBY (from haproxy.cfg) gets the ref, built, restarted, probed."""
        validate_app_name(app)
        self._allowed("deploy", app)
        options = options or DeployOptions()
        if options.ref is not None:
            validate_ref(options.ref)
        return deploy_to_standby(self.context(progress), app, options)


def _last_live(ctx: Context, app: str) -> LastLive | None:
    """From the history: who was LIVE before the last successful switch, on which commit."""
    last = next(
        (e for e in history.read(ctx, app, limit=50).entries
         if e.operation == "switch" and e.outcome == "ok" and e.from_live),
        None,
    )  # fmt: skip
    return LastLive(last.from_live, last.from_commit) if last and last.from_live else None
