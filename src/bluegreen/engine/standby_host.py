"""STANDBY as a deploy reaches it: every command through the guard that refuses any change to
LIVE, a failed command as a CommandFailed with the snippets' secrets masked, and the app's log."""

from __future__ import annotations

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.command import Command, mask
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.secrets import redact, snippet_secrets
from bluegreen.engine.deploy_plan import READ_TIMEOUT_S
from bluegreen.engine.guard import GuardedRunner
from bluegreen.errors import BlueGreenError, CommandFailed
from bluegreen.transport.base import CommandResult


class StandbyHost:
    def __init__(
        self, runner: GuardedRunner, app: AppConfig, member: Member, sudo: bool, timeout: float,
    ) -> None:  # fmt: skip
        self.runner, self.app, self.member, self.sudo = runner, app, member, sudo
        self.label, self.timeout = member.label, timeout
        # Secret-looking values of the snippets: masked in messages and output tails.
        self.secrets = tuple(
            secret
            for snippet in (app.build, app.migrate, app.restart)
            for secret in snippet_secrets(snippet)
        )

    def run(self, command: Command, timeout: float | None = None) -> CommandResult:
        return self.runner.run(self.member.ssh, command, timeout=timeout or self.timeout)

    def check(self, result: CommandResult, what: str, extra_tail: str | None = None) -> None:
        if result.ok:
            return
        tail = result.tail(dc.TAIL_LINES)
        if extra_tail:
            tail = f"{tail}\n--- {self.app.log_file} ---\n{extra_tail}"
        raise CommandFailed(
            f"{mask(what, self.secrets)} failed on {self.label} (exit {result.exit_status})",
            host=self.member.ssh,
            exit_status=result.exit_status,
            output_tail=redact(tail, self.secrets) or "",
        )

    def log_tail(self) -> str | None:
        if self.app.log_file is None:
            return None
        try:
            command = dc.log_tail_command(self.app.log_file, self.sudo)
            result = self.run(command, READ_TIMEOUT_S)
        except BlueGreenError as exc:
            return f"(could not read {self.app.log_file}: {exc})"
        return redact(
            result.stdout
            if result.ok
            else f"(could not read {self.app.log_file}: {result.tail(2)})",
            self.secrets,
        )
