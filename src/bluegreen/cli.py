"""The people's interface: `bluegreen ...`. Thin: parses, calls the service or the lab, prints."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from bluegreen import __version__
from bluegreen.errors import BlueGreenError

err = Console(stderr=True)


def fail(exc: BlueGreenError, debug: bool = False) -> None:
    if debug:
        err.print_exception()
    err.print(f"[bold red]error:[/] {exc.message}")
    if exc.hint:
        err.print(f"[dim]hint:[/] {exc.hint}")
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bluegreen")
@click.option("--config", "config_path", envvar="BLUEGREEN_CONFIG", help="Config file (TOML).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Blue/green releases behind HAProxy: status, deploy to STANDBY, switch traffic."""
    ctx.obj = {"config": config_path, "debug": debug}


def _service(ctx: click.Context) -> Any:
    from bluegreen.service import Service

    return Service.from_path(ctx.obj["config"])


@main.command()
@click.argument("app", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, app: str | None, as_json: bool) -> None:
    """Which server is LIVE and which STANDBY, their health, drift and locks.

    Exit code 0 only when the answer is certain (routing unambiguous) for every app shown.
    """
    from bluegreen.cli_render import print_status

    out = Console()
    try:
        with _service(ctx) as service:
            apps = [app] if app else [a.app for a in service.list_apps()]
            results = [service.status(name) for name in apps]
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    if as_json:
        payload: Any = [r.model_dump(mode="json") for r in results]
        click.echo(json.dumps(payload[0] if app else payload, indent=2))
    else:
        for result in results:
            print_status(out, result)
    sys.exit(0 if all(r.certain for r in results) else 12)


@main.command("inspect-cfg")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--app", "app_name", required=True, help="App whose servers to look for.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def inspect_cfg(ctx: click.Context, file: str, app_name: str, as_json: bool) -> None:
    """Analyse a local haproxy.cfg offline: which of APP's servers it routes to.

    Uses the app's server names and addresses from the config. Exit 0 when routing is certain.
    """
    from dataclasses import asdict

    from bluegreen.domain.config import load_config
    from bluegreen.domain.haproxy_cfg import parse
    from bluegreen.domain.routing import analyze_routing, describe
    from bluegreen.engine.status import server_specs

    try:
        app = load_config(ctx.obj["config"]).app(app_name)
        with open(file, encoding="utf-8", errors="replace", newline="") as handle:
            analysis = analyze_routing(parse(handle.read()), app.frontend, server_specs(app))
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    if as_json:
        data = asdict(analysis)
        data["certain"] = analysis.certain
        data["summary"] = describe(analysis)
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(describe(analysis))
        for problem in analysis.problems:
            click.echo(f"! {problem}")
    sys.exit(0 if analysis.certain else 12)


@main.group()
@click.option("--prefix", default="bluegreen-lab", show_default=True, help="Container name prefix.")
@click.pass_context
def lab(ctx: click.Context, prefix: str) -> None:
    """The Docker lab: HAProxy + BLUE + GREEN + a git origin, on 127.0.0.1."""
    ctx.obj["prefix"] = prefix


def _lab(ctx: click.Context) -> Any:
    from bluegreen.lab.controller import Lab

    return Lab(ctx.obj["prefix"])


@lab.command("up")
@click.pass_context
def lab_up(ctx: click.Context) -> None:
    """Start a fresh lab; the last line printed is the path of its bluegreen config."""
    try:
        info = _lab(ctx).up(progress=lambda msg: err.print(f"[dim]lab:[/] {msg}"))
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    err.print(f"[green]lab up[/]: frontend {info.frontend}; use it with:")
    err.print(f"  export BLUEGREEN_CONFIG={info.config_path}", soft_wrap=True)
    click.echo(info.config_path)


@lab.command("down")
@click.pass_context
def lab_down(ctx: click.Context) -> None:
    """Remove every container, network and file of the lab."""
    try:
        count = _lab(ctx).down(progress=lambda msg: err.print(f"[dim]lab:[/] {msg}"))
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    err.print(f"lab down: {count} docker objects removed")


@lab.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lab_status(ctx: click.Context, as_json: bool) -> None:
    """Where the lab's frontend and hosts are, and whether their containers run."""
    try:
        status = _lab(ctx).status()
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"frontend  {status['frontend']}")
    click.echo(f"config    {status['config']}")
    for role, host in status["hosts"].items():
        ssh = host["ssh"] or "-"
        click.echo(f"{role:8}  {host['state']:8}  ssh {ssh:18}  {host['container']}")


@lab.command("commit")
@click.option("--break", "breakage", type=click.Choice(["build", "health"]), help="Make it fail.")
@click.pass_context
def lab_commit(ctx: click.Context, breakage: str | None) -> None:
    """Make a new commit of the sample app on the origin; the last line printed is its sha."""
    try:
        sha = _lab(ctx).commit(breakage)
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    click.echo(sha)


@main.command()
@click.option("--keep", is_flag=True, help="Leave the lab running afterwards.")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Run the demo on a fresh Docker lab."""
    from bluegreen.lab.demo import run_demo

    try:
        code = run_demo(lambda msg: err.print(msg, soft_wrap=True), keep=keep)
    except BlueGreenError as exc:
        fail(exc, ctx.obj["debug"])
    sys.exit(code)
