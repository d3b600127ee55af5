"""The environment indicators on the app hosts: `.env.display` (each host's colour and role,
rewritten by every switch) and the prompt snippet that shows it in login shells."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from bluegreen.domain.config import AppConfig
from bluegreen.domain.prompt_snippet import snippet, snippet_path
from bluegreen.domain.switch_commands import env_display
from bluegreen.engine.context import Context
from bluegreen.transport.parallel import parallel


def write_roles(ctx: Context, app: AppConfig, roles: Mapping[str, str], now: datetime) -> str:
    """Each host's `.env.display` says its role (`roles`: colour -> LIVE / STANDBY), on every
    server of a pool."""

    def write(color: str, role: str, ssh: str) -> Callable[[], None]:
        path = f"{app.on(color).app_dir}/.env.display"
        data = env_display(role, color, now)
        return lambda: ctx.runner.write_file_atomic(ssh, path, data)

    calls = [write(c, r, m.ssh) for c, r in roles.items() for m in app.members(c)]
    outcomes = parallel(calls)
    failed = [str(o) for o in outcomes if isinstance(o, Exception)]
    hosts = "both hosts" if len(calls) == 2 else f"all {len(calls)} hosts"
    return "; ".join(failed) if failed else f"{hosts} show their new role"


def install_prompt(ctx: Context, app: AppConfig) -> list[str]:
    """The prompt snippet on every app host, every server of a pool (readable by every login),
    for the app dir each server runs the app from; where it went."""
    targets = [(m.ssh, app.on(color).app_dir) for color in app.servers for m in app.members(color)]

    def write(host: str, app_dir: str) -> Callable[[], None]:
        path, data = snippet_path(app_dir), snippet(app_dir)
        return lambda: ctx.runner.write_file_atomic(host, path, data, mode=0o644)

    outcomes = parallel([write(host, app_dir) for host, app_dir in targets])
    failed = [o for o in outcomes if isinstance(o, Exception)]
    if failed:
        raise failed[0]
    return [f"{host}:{snippet_path(app_dir)}" for host, app_dir in targets]
