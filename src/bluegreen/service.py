"""The one facade both interfaces use: status, list, (later) deploy, switch, history.

It owns the wiring (config -> SSH runner -> engine context) so the CLI and the MCP server stay thin
and behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from bluegreen.domain.config import Config, load_config
from bluegreen.domain.validate import validate_app_name
from bluegreen.engine.context import Context, StepEvent
from bluegreen.engine.status import get_status
from bluegreen.models import AppStatus, AppSummary
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
