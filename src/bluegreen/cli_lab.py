"""`bluegreen lab ...` and `bluegreen demo`: the Docker lab's commands (they need the `lab` extra)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from bluegreen.lab.layouts import DEFAULT_LAYOUT, LAYOUTS
from bluegreen.lab.topology import MAX_HAPROXY_NODES, MAX_SERVERS_PER_COLOUR, Topology

err = Console(stderr=True)


@click.group()
@click.option("--prefix", default="bluegreen-lab", show_default=True, help="Container name prefix.")
@click.pass_context
def lab(ctx: click.Context, prefix: str) -> None:
    """The Docker lab: HAProxy (or several nodes) + BLUE + GREEN (or pools) + a git origin, on
    127.0.0.1."""
    ctx.obj["prefix"] = prefix


def _lab(ctx: click.Context) -> Any:
    from bluegreen.lab.controller import Lab

    return Lab(ctx.obj["prefix"])


@lab.command("up")
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default=DEFAULT_LAYOUT,
    show_default=True,
    help="shared: the users' shape (two apps on one Host-routed frontend); single: one app.",
)
@click.option(
    "--haproxy-nodes",
    type=click.IntRange(1, MAX_HAPROXY_NODES),
    default=1,
    show_default=True,
    help="HAProxy nodes with the same cfg (haproxy, haproxy2...; the first is the PRIMARY).",
)
@click.option(
    "--servers-per-colour",
    type=click.IntRange(1, MAX_SERVERS_PER_COLOUR),
    default=1,
    show_default=True,
    help="App servers a colour; more than 1 is a pool (blue1, blue2...).",
)
@click.pass_context
def lab_up(ctx: click.Context, layout: str, haproxy_nodes: int, servers_per_colour: int) -> None:
    """Start a fresh lab; the last line printed is the path of its bluegreen config."""
    info = _lab(ctx).up(
        progress=lambda msg: err.print(f"[dim]lab:[/] {msg}"),
        layout=layout,
        topology=Topology(haproxy_nodes, servers_per_colour),
    )
    frontends = ", ".join(info.frontends.values())
    err.print(f"[green]lab up[/]: frontend {frontends}; use it with:")
    err.print(f"  export BLUEGREEN_CONFIG={info.config_path}", soft_wrap=True)
    click.echo(info.config_path)


@lab.command("down")
@click.pass_context
def lab_down(ctx: click.Context) -> None:
    """Remove every container, network and file of the lab."""
    count = _lab(ctx).down(progress=lambda msg: err.print(f"[dim]lab:[/] {msg}"))
    err.print(f"lab down: {count} docker objects removed")


@lab.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def lab_status(ctx: click.Context, as_json: bool) -> None:
    """Where the lab's frontend and hosts are, and whether their containers run."""
    status = _lab(ctx).status()
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    for node, frontend in status["frontends"].items():
        click.echo(
            f"frontend  {frontend}" + (f"  ({node})" if len(status["frontends"]) > 1 else "")
        )
    if status["vip"]:
        click.echo(f"vip       {status['vip']['url']}  (held by {status['vip']['holder']})")
    click.echo(f"config    {status['config']}")
    click.echo(f"layout    {status['layout']}")
    for name, app in status["apps"].items():
        previews = ", ".join(f"{c} {h}" for c, h in app["preview"].items())
        click.echo(f"app       {name}: Host {app['host']} (preview: {previews})")
    for role, host in status["hosts"].items():
        ssh = host["ssh"] or "-"
        click.echo(f"{role:8}  {host['state']:8}  ssh {ssh:18}  {host['container']}")


@lab.command("commit")
@click.option("--break", "breakage", type=click.Choice(["build", "health"]), help="Make it fail.")
@click.pass_context
def lab_commit(ctx: click.Context, breakage: str | None) -> None:
    """Make a new commit of the sample app on the origin; the last line printed is its sha."""
    sha = _lab(ctx).commit(breakage)
    click.echo(sha)


@click.command()
@click.option("--keep", is_flag=True, help="Leave the lab running afterwards.")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Run the demo on a fresh Docker lab."""
    from bluegreen.lab.demo import run_demo

    code = run_demo(lambda msg: err.print(msg, soft_wrap=True), keep=keep)
    sys.exit(code)
