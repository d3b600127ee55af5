"""What a switch asks of the running HAProxy: reload it, prove that new requests through the
frontend reach a server (with the runtime API as second witness), and let the old workers drain.
Each raises a BlueGreenError saying what failed; switch.py decides what follows."""

from __future__ import annotations

import time

from bluegreen.domain.config import AppConfig
from bluegreen.domain.haproxy_files import HAProxyFiles
from bluegreen.domain.routing import LoadedConfig
from bluegreen.domain.runtime import (
    RuntimeOutputError,
    parse_show_proc,
    parse_show_stat,
    runtime_command,
)
from bluegreen.domain.switch_commands import frontend_url, reload_command
from bluegreen.engine.context import Context
from bluegreen.engine.probing import http_probe
from bluegreen.engine.status import files_routing
from bluegreen.errors import BlueGreenError, CommandFailed, TrafficCheckFailed

VERIFY_TIMEOUT_S = 15.0
VERIFY_STREAK = 5  # consecutive answers from the new LIVE before the switch counts as done


def reload(ctx: Context, node: str | None = None) -> str:
    """Reload HAProxy on `node` (an ssh target; the primary when None)."""
    hp = ctx.config.haproxy
    node = node or hp.ssh
    r = ctx.runner.run(node, reload_command(hp.reload, hp.sudo), timeout=60)
    if not r.ok:
        raise CommandFailed(
            "the HAProxy reload failed",
            host=node,
            exit_status=r.exit_status,
            output_tail=r.tail(),
        )
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "reloaded"


def verify(
    ctx: Context, app: AppConfig, files: HAProxyFiles, color: str, quick: bool,
    forced: bool = False, node: str | None = None,
) -> str:  # fmt: skip
    """New requests through the frontend of `node` (the primary when None) reach `color`:
    VERIFY_STREAK answers in a row. `files`: what HAProxy on `node` loads now, as the switch
    wrote or put it back under the cfg lock (not read again): its frontend and routes. `forced`
    (an emergency switch to an unhealthy target, by request): any HTTP answer counts, since an
    unhealthy server may not say who it is."""
    loaded = files.loaded()
    frontend = frontend_url(loaded.cfg, app.frontend)
    if frontend is None:
        return "frontend has no bind address to probe; verified by reload only"
    node = node or ctx.config.haproxy.ssh
    url = frontend + app.health.path
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    streak, last = 0, ""
    need = 2 if quick else VERIFY_STREAK
    while time.monotonic() < deadline:
        h = http_probe(ctx.runner, node, url, 3, app.health.expect_status, app.host_header)
        if forced and h.status_code is not None:
            return f"forced: the frontend answers (HTTP {h.status_code}); health not verified"
        if h.healthy and (h.color is None or h.color == color):
            streak += 1
            if streak >= need:
                seen = f"{need} requests through {url}{_as_host(app)} answered by {color.upper()}"
                return seen + _runtime_view(ctx, app, files, loaded, color, node)
            continue
        streak = 0
        last = h.error or f"answered by {h.color}"
        time.sleep(0.1)
    raise TrafficCheckFailed(f"traffic through {url} did not reach {color.upper()} in "
                             f"{VERIFY_TIMEOUT_S:.0f}s (last: {last})")  # fmt: skip


def _as_host(app: AppConfig) -> str:
    return f" (Host: {app.host_header})" if app.host_header else ""


def _runtime_view(
    ctx: Context, app: AppConfig, files: HAProxyFiles, loaded: LoadedConfig, color: str, node: str
) -> str:
    """The second witness: the running worker's `show stat` has `color`'s server UP (a pool: at
    least one of its servers, each one's state said). Requests already reached it, so a runtime
    API that cannot be read only weakens the message."""
    hp = ctx.config.haproxy
    try:
        route = files_routing(files, app, loaded).route(color)
        r = ctx.runner.run(
            node, runtime_command(hp.runtime_socket, "show stat", hp.sudo), timeout=15
        )
        rows = parse_show_stat(r.stdout) if r.ok else ()
    except (BlueGreenError, RuntimeOutputError, ValueError) as exc:
        return f"; runtime API not read ({exc})"
    names = route.server_names
    states = {
        x.svname: x.state
        for x in rows
        if x.is_server and x.pxname == route.backend and x.svname in names
    }
    if not states:
        return "; runtime API: server not listed"
    said = ", ".join(f"{route.backend}/{name} {state}" for name, state in states.items())
    if not any(state.startswith(("UP", "no check")) for state in states.values()):
        raise TrafficCheckFailed(
            f"the running HAProxy reports {said}, although requests reached {color.upper()}"
        )
    return f"; runtime API: {said}"


def drain(ctx: Context, drain_s: float) -> str:
    """Requests in flight on the old LIVE finish in the old workers, which exit on their own once
    their connections close. Wait for that (seen through the master CLI) up to drain_s."""
    hp = ctx.config.haproxy
    if hp.master_socket is None:
        time.sleep(drain_s)
        return f"waited {drain_s:g}s for in-flight requests on the old LIVE"
    deadline = time.monotonic() + drain_s
    old: tuple[int, ...] = ()
    while True:
        r = ctx.runner.run(
            hp.ssh, runtime_command(hp.master_socket, "show proc", hp.sudo), timeout=15
        )
        try:
            if not r.ok:
                raise RuntimeOutputError(r.tail(1) or f"socat exited {r.exit_status}")
            old = parse_show_proc(r.stdout).old_worker_pids
        except RuntimeOutputError as exc:
            # Unreadable is not "no old workers": wait the whole drain time instead.
            time.sleep(max(0.0, deadline - time.monotonic()))
            return (f"the master CLI did not answer ({exc}); waited {drain_s:g}s for in-flight "
                    "requests on the old LIVE")  # fmt: skip
        if not old:
            return "old HAProxy workers finished their requests and exited"
        if time.monotonic() >= deadline:
            return (f"{len(old)} old worker(s) still finishing long connections after {drain_s:g}s; "
                    "they close on their own")  # fmt: skip
        time.sleep(0.2)
