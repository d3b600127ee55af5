"""`bluegreen approvals ...`: housekeeping of the confirmation tokens on the HAProxy host."""

from __future__ import annotations

import json

import click

from bluegreen.cli_text import safe


@click.group()
def approvals() -> None:
    """Switch plans' confirmation tokens (kept on the HAProxy host under work_dir/approvals)."""


@approvals.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def prune(ctx: click.Context, as_json: bool) -> None:
    """Remove expired tokens nobody answered (every app).

    A used, approved or still valid token is never removed. Issuing a new token prunes too.
    """
    from bluegreen.cli import _service  # at call time: cli imports this module

    with _service(ctx) as service:
        removed = service.prune_approvals()
    if as_json:
        click.echo(json.dumps({"removed": removed}))
    elif removed:
        click.echo(f"removed {len(removed)} expired token(s) nobody answered: "
                   + ", ".join(safe(t) for t in removed))  # fmt: skip
    else:
        click.echo("no expired unanswered token")
