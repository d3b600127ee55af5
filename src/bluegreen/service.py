"""The one facade both interfaces use: status, list, (later) deploy, switch, history.

It owns the wiring (config -> SSH runner -> engine context) so the CLI and the MCP server stay thin
and behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from bluegreen.domain.approval import validate_token
from bluegreen.domain.config import AppConfig, Config, load_config
from bluegreen.domain.validate import validate_app_name, validate_ref
from bluegreen.engine import approvals, history
from bluegreen.engine import switch as switch_engine
from bluegreen.engine.context import Context, StepEvent
from bluegreen.engine.deploy import deploy_to_standby
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.engine.status import get_status, get_statuses
from bluegreen.engine.switch_plan import prepare as prepare_switch
from bluegreen.errors import ApprovalError
from bluegreen.models import (
    AppStatus,
    AppSummary,
    DeployResult,
    History,
    SwitchPlan,
    SwitchResult,
)
from bluegreen.transport.base import Runner


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
                + [s.ssh for app in config.apps.values() for s in app.servers.values() if s.sudo]
            ),
        )
    )


class Service:
    def __init__(
        self,
        config: Config,
        runner: Runner | None = None,
        progress: Callable[[StepEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.runner = runner or ssh_runner_for(config)
        self._progress = progress

    @classmethod
    def from_path(cls, path: str | None = None) -> Service:
        return cls(load_config(path))

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
                servers={color: server.address for color, server in app.servers.items()},
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

    # --- switch ----------------------------------------------------------------------------

    def switch(
        self,
        app: str,
        *,
        require_approval: bool = True,
        emergency: bool = False,
        confirm_token: str | None = None,
        force: bool = False,
        break_lock: bool = False,
        reason: str | None = None,
        elicit: Callable[[SwitchPlan], bool] | None = None,
        progress: Callable[[StepEvent], None] | None = None,
        terminal: bool = False,
    ) -> SwitchResult:
        """Plan, approve and execute a switch. Without approval nothing changes: the result then
        holds the plan (and, in token/operator mode, the confirmToken to pass back).

        `elicit` asks a person and returns their answer. `terminal=True` says it is a person at
        this terminal (the CLI's y/N), which approves in every mode, `operator` included."""
        validate_app_name(app)
        if confirm_token is not None:
            validate_token(confirm_token)
        ctx = self.context(progress)
        app_cfg = self.config.app(app)
        mode = (
            "elicit" if terminal and elicit else approval_mode(app_cfg.approval, elicit is not None)
        )
        prepared = prepare_switch(ctx, app, emergency=emergency, mode=mode)
        plan = prepared.plan

        def go() -> SwitchResult:
            return switch_engine.execute(ctx, app, plan.plan_hash, emergency=emergency,
                                         force=force, reason=reason, break_lock=break_lock)  # fmt: skip

        if not require_approval:
            why_not = self._unapproved_refusal(ctx, app, app_cfg, emergency, plan.to_live)
            if why_not:
                raise ApprovalError(
                    why_not, hint="call with requireApproval=true and approve the plan"
                )
            return go()
        if confirm_token is not None:
            approvals.consume(ctx, app, confirm_token, plan.plan_hash)
            return go()
        if mode == "elicit":
            if elicit is None:
                raise ApprovalError(
                    f"{app} requires approval by a person in the MCP client (approval = "
                    '"elicit"), and this client cannot ask',
                    hint="use a client with elicitation support, or run `bluegreen switch` in a terminal",
                )
            if not elicit(plan):
                return SwitchResult(app=app, executed=False, ok=False, plan=plan,
                                    from_live=plan.from_live, to_live=plan.to_live,
                                    message="not approved: nothing changed")  # fmt: skip
            return go()
        issued = approvals.issue(ctx, plan, mode, app_cfg.token_ttl_s)
        how = (
            f"a person must run `bluegreen approve {issued.confirm_token}` on a terminal, then "
            "call switch_traffic again with confirmToken"
            if mode == "operator"
            else "show the plan to the user; after their explicit yes, call switch_traffic again "
            "with confirmToken"
        )
        return SwitchResult(
            app=app, executed=False, ok=False, plan=issued, confirmToken=issued.confirm_token,
            from_live=plan.from_live,
            to_live=plan.to_live, emergency=emergency,
            message=f"approval needed: switch {plan.from_live.upper()} -> {plan.to_live.upper()} "
            f"is planned, nothing changed",
            next_step=how,
        )  # fmt: skip

    def plan_switch(self, app: str, *, emergency: bool = False) -> SwitchPlan:
        """The plan with a confirmation token (for `bluegreen switch --plan`); changes nothing."""
        validate_app_name(app)
        ctx = self.context()
        app_cfg = self.config.app(app)
        mode = "operator" if app_cfg.approval == "operator" else "token"
        prepared = prepare_switch(ctx, app, emergency=emergency, mode=mode)
        return approvals.issue(ctx, prepared.plan, mode, app_cfg.token_ttl_s)

    def _unapproved_refusal(
        self, ctx: Context, app: str, cfg: AppConfig, emergency: bool, target: str
    ) -> str | None:
        if cfg.allow_unapproved:
            return None
        if emergency and cfg.allow_emergency_without_approval:
            last = next(
                (e for e in history.read(ctx, app, limit=50).entries
                 if e.operation == "switch" and e.outcome == "ok"),
                None,
            )  # fmt: skip
            if last is not None and last.from_live == target:
                return None
            return (f"an emergency switch without approval only goes back to the server that was "
                    f"LIVE before the last switch, and {target.upper()} was not")  # fmt: skip
        return f"{app} does not allow switches without approval (allow_unapproved = false)"

    def approve(self, token: str, who: str) -> str:
        """A person approves an operator-mode switch plan (`bluegreen approve TOKEN`)."""
        record = approvals.approve(self.context(), validate_token(token), who)
        return (f"approved: {record.app} switch {record.from_live.upper()} -> "
                f"{record.to_live.upper()} (token valid until {record.expires})")  # fmt: skip

    def history(self, app: str, limit: int = 20) -> History:
        validate_app_name(app)
        self.config.app(app)
        return history.read(self.context(), app, limit=max(1, min(limit, 1000)))

    def deploy(
        self,
        app: str,
        *,
        pull: bool = True,
        backup: bool = True,
        migrate: bool = False,
        ref: str | None = None,
        dry_run: bool = False,
        break_lock: bool = False,
        restore_on_failure: bool = True,
        lock_wait_s: float = 0.0,
        progress: Callable[[StepEvent], None] | None = None,
    ) -> DeployResult:
        """deploy_to_standby: STANDBY (from haproxy.cfg) gets the ref, built, restarted, probed."""
        validate_app_name(app)
        if ref is not None:
            validate_ref(ref)
        options = DeployOptions(
            pull=pull,
            backup=backup,
            migrate=migrate,
            ref=ref,
            dry_run=dry_run,
            break_lock=break_lock,
            restore_on_failure=restore_on_failure,
            lock_wait_s=lock_wait_s,
        )
        return deploy_to_standby(self.context(progress), app, options)


def approval_mode(configured: str, client_can_elicit: bool) -> str:
    """`auto`: ask a person in the client when it can, else the two-step token."""
    if configured == "auto":
        return "elicit" if client_can_elicit else "token"
    return configured
