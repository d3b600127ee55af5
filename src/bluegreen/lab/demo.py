"""`bluegreen demo`: the README's first command. A full release on a fresh lab in the users'
shape (one frontend, two apps chosen by Host, preview hosts), under load on both apps' public
hosts: lab up -> status -> new commit -> deploy theoshift's STANDBY -> switch (approved) ->
status -> haproxy.cfg compared line by line -> summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bluegreen.engine.context import StepEvent
from bluegreen.lab.controller import Lab
from bluegreen.lab.layouts import SHARED_APPS, SHARED_HEALTH_PATH
from bluegreen.lab.load import Load
from bluegreen.models import AppStatus
from bluegreen.service import Service, SwitchRequest

Say = Callable[[str], None]
RELEASED, OTHER = SHARED_APPS  # theoshift is released; ldc-tools' users keep being served
APP = RELEASED.name


def _status_line(status: AppStatus) -> str:
    live, standby = status.live, status.standby
    if not (status.certain and live and standby):
        return "routing UNCERTAIN: " + "; ".join(status.problems)
    return (
        f"LIVE {live.color.upper()} ({(live.commit or '?')[:12]}, "
        f"{'healthy' if live.healthy else 'UNHEALTHY'}), STANDBY {standby.color.upper()} "
        f"({(standby.commit or '?')[:12]}, {'healthy' if standby.healthy else 'UNHEALTHY'})"
    )


def run_demo(say: Say, keep: bool = False, prefix: str = "bluegreen-lab") -> int:
    lab = Lab(prefix)
    timings: list[tuple[str, float]] = []

    @contextmanager
    def timed(label: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        timings.append((label, time.monotonic() - started))

    def steps(event: StepEvent) -> None:
        if event.status in ("ok", "failed"):
            mark = "ok" if event.status == "ok" else "FAILED"
            say(f"     {event.step:<14} {mark:<6} {event.duration_s or 0:6.2f}s  {event.message}")

    say("1. lab up: HAProxy + BLUE + GREEN + a git origin, ports on 127.0.0.1 only")
    with timed("lab up"):
        info = lab.up(progress=lambda msg: say(f"     {msg}"))
    code = 1
    url = info.frontend + SHARED_HEALTH_PATH
    try:
        with (
            Service.from_path(info.config_path) as service,
            Load(url, threads=4, host=RELEASED.host) as load,
            Load(url, threads=2, host=OTHER.host) as other,
        ):
            say(f"   steady load through {info.frontend}: 4 clients as Host {RELEASED.host}, "
                f"2 as Host {OTHER.host}")  # fmt: skip
            say("2. get_deployment_status of both apps on the shared frontend")
            with timed("status"):
                before = service.status(APP)
                other_before = service.status(OTHER.name)
            say(f"   {APP}: {_status_line(before)}")
            say(f"   {OTHER.name}: {_status_line(other_before)}")
            hp = service.config.haproxy
            cfg_before = service.runner.read_file(hp.ssh, hp.config_path) or b""
            say("3. a developer pushes a new commit of the sample app to the origin")
            sha = lab.commit()
            say(f"   origin main is now {sha[:12]}")
            say(f"4. deploy_to_standby {APP}: only its STANDBY program is touched")
            with timed("deploy"):
                deployed = service.deploy(APP, progress=steps)
            if not deployed.ok:
                say(f"   DEPLOY FAILED: {deployed.error}")
                return 1
            say(f"5. switch_traffic {APP}: plan, approval (token), atomic switch, verify")
            with timed("switch plan"):
                planned = service.switch(APP)
            assert planned.plan is not None and planned.plan.confirm_token is not None
            for line in planned.plan.diff.splitlines()[3:]:
                say(f"     {line}")
            say(f"   approved with token {planned.plan.confirm_token[:6]}... (an operator's yes)")
            mark = len(load.snapshot())
            with timed("switch"):
                token = SwitchRequest(confirm_token=planned.plan.confirm_token)
                switched = service.switch(APP, token, progress=steps)
            during = load.snapshot()[mark:]
            if not switched.ok:
                say(f"   SWITCH FAILED: {switched.error}")
                return 1
            say("6. get_deployment_status")
            after = service.status(APP)
            say(f"   {APP}: {_status_line(after)}")
            cfg_after = service.runner.read_file(hp.ssh, hp.config_path) or b""
        say("7. haproxy.cfg before and after, every routing line of the shared frontend")
        moved = _compare_rules(say, cfg_before.decode(), cfg_after.decode())
        samples = load.snapshot()
        failed = load.failures + other.failures
        other_lives = {s.color for s in other.snapshot()}
        say("")
        say("summary")
        for label, seconds in timings:
            say(f"   {label:<12} {seconds:6.1f}s")
        say(f"   requests during the switch: {len(during)}, failed: "
            f"{sum(1 for s in during if s.error)}; over the whole demo: {len(samples)}, failed: {len(failed)}"
            f" (stale keep-alive retries: {load.stale_retries})")  # fmt: skip
        say(f"   {OTHER.name}: {len(other.snapshot())} requests, failed: {len(other.failures)}, "
            f"served by {', '.join(sorted(c or '?' for c in other_lives)).upper()}")  # fmt: skip
        new_live = after.live is not None and after.live.color == switched.to_live
        released = new_live and after.live is not None and after.live.commit == sha
        untouched = other_lives == {other_before.live.color if other_before.live else None}
        code = 0 if (not failed and released and untouched and moved == 1) else 1
        say("")
        say(
            "try the MCP server on a lab (`bluegreen demo --keep` or `bluegreen lab up` leaves one up):"
        )
        say(
            f"   npx -y @modelcontextprotocol/inspector --cli -e BLUEGREEN_CONFIG={info.config_path} "
            "bluegreen serve -- --method tools/list"
        )
        say(f"   BLUEGREEN_CONFIG={info.config_path} bluegreen status")
    finally:
        if keep:
            say(
                f"lab kept: export BLUEGREEN_CONFIG={info.config_path}; `bluegreen lab down` removes it"
            )
        else:
            lab.down()
            say(
                "lab down: every container, network and key removed (keep it with `bluegreen demo --keep`)"
            )
    return code


def _compare_rules(say: Say, before: str, after: str) -> int:
    """Show each `use_backend` line as identical or moved; the number of lines that changed."""
    changed = 0
    for old, new in zip(before.splitlines(), after.splitlines(), strict=False):
        changed += old != new
        if old.strip().startswith("use_backend"):
            say(f"     {'MOVED' if old != new else 'identical':<9}  {new.strip()}")
    changed += abs(len(before.splitlines()) - len(after.splitlines()))
    say(f"   {changed} line changed; the other app's and the preview lines are byte-identical"
        if changed == 1 else f"   {changed} lines changed")  # fmt: skip
    return changed
