"""The people's interface: `bluegreen ...`. Thin: parses, calls the service or the lab, prints."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click
from rich.console import Console

from bluegreen import __version__
from bluegreen.cli_approvals import approvals
from bluegreen.cli_lab import demo, lab
from bluegreen.cli_serve import serve
from bluegreen.cli_text import safe, safe_block
from bluegreen.domain.display_text import MESSAGE_MAX, one_line
from bluegreen.domain.validate import REASON_MAX
from bluegreen.errors import (
    EXIT_DEPLOY_FAILED,
    EXIT_INTERNAL,
    EXIT_ROUTING_UNCERTAIN,
    EXIT_SWITCH_FAILED,
    ApprovalError,
    BlueGreenError,
)
from bluegreen.log_format import SafeFormatter
from bluegreen.models import SwitchPlan

err = Console(stderr=True)


def fail(exc: BlueGreenError, debug: bool = False) -> None:
    if debug:
        err.print_exception()
    # safe_block/safe escape Rich markup too: "bluegreen-mcp[lab]", "[::1]:22" print as is.
    err.print(f"[bold red]error:[/] {safe_block(exc.message, line_limit=MESSAGE_MAX)}")
    if exc.hint:
        err.print(f"[dim]hint:[/] {safe(exc.hint, MESSAGE_MAX)}")
    sys.exit(exc.exit_code)


class _Group(click.Group):
    """The one place errors become output: a BlueGreenError its message, hint and exit code; an
    unexpected exception one sentence (the traceback only with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BlueGreenError as exc:
            fail(exc, bool(ctx.obj and ctx.obj.get("debug")))
        except Exception as exc:
            if "--debug" in sys.argv:
                raise
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {safe(str(exc), MESSAGE_MAX)}"
            )
            err.print("[dim]hint:[/] rerun with --debug for the traceback, and report it")
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bluegreen")
@click.option("--config", "config_path", envvar="BLUEGREEN_CONFIG", help="Config file (TOML).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option(
    "-v", "--verbose", is_flag=True,
    help="Stream remote output line by line and show every remote command with host, exit "
    "status and duration (secrets masked).",
)  # fmt: skip
@click.pass_context
def main(ctx: click.Context, config_path: str | None, debug: bool, verbose: bool) -> None:
    """Blue/green releases behind HAProxy: status, deploy to STANDBY, switch traffic.

    The config comes from --config, else $BLUEGREEN_CONFIG, else ~/.config/bluegreen/config.toml.
    Shell completion: eval "$(_BLUEGREEN_COMPLETE=bash_source bluegreen)" (zsh_source, fish_source).
    """
    ctx.obj = {"config": config_path, "debug": debug}
    import logging

    # paramiko logs a traceback for every dropped SSH handshake, which the transport retries or
    # reports itself in one sentence: shown only with --debug.
    logging.getLogger("paramiko").setLevel(logging.WARNING if debug else logging.CRITICAL)
    if verbose or debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(SafeFormatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        root = logging.getLogger("bluegreen")
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)


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
    with _service(ctx) as service:
        apps = [app] if app else [a.app for a in service.list_apps()]
        results = service.status_many(apps)
    if as_json:
        payload: Any = [r.model_dump(mode="json") for r in results]
        click.echo(json.dumps(payload[0] if app else payload, indent=2))
    else:
        for result in results:
            print_status(out, result)
    sys.exit(0 if all(r.certain for r in results) else EXIT_ROUTING_UNCERTAIN)


@main.command("inspect-cfg")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--app", "app_name", required=True, help="App whose servers to look for.")
@click.option("--rule", help="ACL that selects the app's users in a shared frontend.")
@click.option("--host", "hosts", multiple=True, help="Host header of the app (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def inspect_cfg(
    ctx: click.Context, files: tuple[str, ...], app_name: str, rule: str | None,
    hosts: tuple[str, ...], as_json: bool,
) -> None:  # fmt: skip
    """Analyse local haproxy.cfg FILES offline: which of APP's servers they route to.

    FILES as HAProxy's -f arguments, in order (a directory: its *.cfg files in lexical order).
    Uses the app's server names and addresses from the config. Exit 0 when routing is certain.
    """
    from dataclasses import asdict

    from bluegreen.cli_render import inspection_lines
    from bluegreen.domain.config import load_config
    from bluegreen.domain.routing import analyze_routing, describe, load, load_order
    from bluegreen.engine.status import server_specs

    app = load_config(ctx.obj["config"]).app(app_name)
    listings = {f: os.listdir(f) for f in files if os.path.isdir(f)}
    texts = []
    for path in load_order(files, listings):
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            texts.append((path, handle.read()))
    analysis = analyze_routing(
        load(texts),
        app.frontend,
        server_specs(app),
        rule=rule or app.rule,
        hosts=hosts or app.hosts,
    )
    if as_json:
        data = asdict(analysis)
        data["certain"] = analysis.certain
        data["summary"] = describe(analysis)
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo("\n".join(inspection_lines(analysis)))
    sys.exit(0 if analysis.certain else EXIT_ROUTING_UNCERTAIN)


@main.command()
@click.argument("app")
@click.option("--ref", help="Branch, tag or full sha to deploy (default: the app's branch).")
@click.option("--no-pull", is_flag=True, help="Deploy what is checked out on the host.")
@click.option(
    "--backup/--no-backup", default=True, show_default=True, help="Archive the app dir first."
)
@click.option("--migrate", is_flag=True, help="Run migrations (they hit the database LIVE uses).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--break-lock", is_flag=True, help="Break a STALE lock (never a live one).")
@click.option("--no-restore", is_flag=True, help="On failure, leave the standby as it failed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def deploy(
    ctx: click.Context, app: str, ref: str | None, no_pull: bool, backup: bool, migrate: bool,
    dry_run: bool, break_lock: bool, no_restore: bool, as_json: bool,
) -> None:  # fmt: skip
    """Deploy to the STANDBY server only (git fetch + checkout, build, restart, health).

    LIVE is never touched. Exit code 0 only on success.
    """
    from bluegreen.cli_progress import StepPrinter
    from bluegreen.cli_render import print_steps
    from bluegreen.engine.deploy_plan import DeployOptions

    options = DeployOptions(pull=not no_pull, backup=backup, migrate=migrate, ref=ref,
                            dry_run=dry_run, break_lock=break_lock,
                            restore_on_failure=not no_restore)  # fmt: skip
    with _service(ctx) as service, StepPrinter(err, enabled=not as_json) as printer:
        result = service.deploy(app, options, progress=printer)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    elif dry_run:
        click.echo(
            f"plan: deploy {result.ref or '(current checkout)'} to STANDBY {result.color.upper()} ({result.host})"
        )
        for item in result.plan:
            click.echo(f"  [{item.step}] {item.host}: {one_line(item.command, MESSAGE_MAX)}")
        for warning in result.warnings:
            click.echo(f"! {one_line(warning, MESSAGE_MAX)}")
    else:
        out = Console()
        if not result.ok:
            print_steps(err, [s for s in result.steps if s.status == "failed"])
        verdict = "[green]deployed[/]" if result.ok else "[bold red]DEPLOY FAILED[/]"
        out.print(f"{verdict} {result.app} to STANDBY {result.color.upper()}: "
                  f"{safe((result.commit_before or '?')[:12])} -> "
                  f"{safe((result.commit_after or '?')[:12])} in {result.duration_s:.1f}s")  # fmt: skip
        for warning in result.warnings:
            out.print(f"[yellow]![/] {safe(warning, MESSAGE_MAX)}")
        if result.error:
            out.print(f"[red]{safe(result.error, MESSAGE_MAX)}[/]")
        if result.restored is not None:
            out.print(
                "standby restored from backup"
                if result.restored
                else "[red]standby NOT restored[/]"
            )
        if result.next_step:
            out.print(f"[dim]next:[/] {safe(result.next_step, MESSAGE_MAX)}")
    sys.exit(0 if result.ok else EXIT_DEPLOY_FAILED)


@main.command()
@click.argument("app")
@click.option("--plan", "plan_only", is_flag=True, help="Print the plan and a confirmation token.")
@click.option("--confirm", "token", help="Execute the plan this token was issued for.")
@click.option("--yes", is_flag=True, help="No approval (only where the config allows it).")
@click.option("--emergency", is_flag=True, help="Rollback mode: skip drain and slow checks.")
@click.option(
    "--force", is_flag=True, help="With --emergency: switch even to a target that is down."
)
@click.option("--break-lock", is_flag=True, help="Break a STALE lock (never a live one).")
@click.option(
    "--reason",
    help=f"Why: recorded in the history (one line, at most {REASON_MAX} characters).",
)
@click.option(
    "--reconcile",
    is_flag=True,
    help="HAProxy nodes that disagree: route the others to the primary's LIVE (a plan, approved).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def switch(
    ctx: click.Context, app: str, plan_only: bool, token: str | None, yes: bool, emergency: bool,
    force: bool, break_lock: bool, reason: str | None, reconcile: bool, as_json: bool,
) -> None:  # fmt: skip
    """Switch traffic: STANDBY becomes LIVE, old LIVE becomes STANDBY (the instant rollback).

    On a terminal it shows the plan and the haproxy.cfg diff and asks y/N. Scripts use --plan,
    then --confirm TOKEN. Exit code 0 only when the switch happened and was verified.
    """
    from bluegreen.cli_progress import StepPrinter
    from bluegreen.cli_render import print_plan, print_steps
    from bluegreen.service import Approver, SwitchRequest

    out = Console()

    def ask(plan: SwitchPlan) -> bool:
        print_plan(err, plan)
        return click.confirm("Switch traffic now?", default=False, err=True)

    interactive = sys.stdin.isatty() and not (plan_only or token or yes)
    if not (interactive or plan_only or token or yes):
        raise BlueGreenError("no terminal to ask for approval",
                             hint="use --plan, then --confirm TOKEN (or --yes where the config allows it)")  # fmt: skip
    request = SwitchRequest(require_approval=not yes, emergency=emergency, confirm_token=token,
                            force=force, break_lock=break_lock, reason=reason,
                            reconcile=reconcile)  # fmt: skip
    approver = Approver(from_cli=True, who=_os_user(), ask=ask if interactive else None)
    with _service(ctx) as service:
        if plan_only:
            plan = service.plan_switch(app, emergency=emergency, reconcile=reconcile)
            if as_json:
                data = plan.model_dump(mode="json")
                data["confirmToken"] = data.pop("confirm_token")
                click.echo(json.dumps(data, indent=2))
            else:
                print_plan(out, plan)
                out.print(f"to execute: bluegreen switch {app} --confirm {plan.confirm_token}"
                          + (" --emergency" if emergency else "")
                          + (" --reconcile" if reconcile else ""))  # fmt: skip
                out.print(f"(token valid until {plan.token_expires_at})")
            return
        with StepPrinter(err, enabled=not as_json) as printer:
            result = service.switch(app, request, approver=approver, progress=printer)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        if not result.ok:
            print_steps(err, [s for s in result.steps if s.status == "failed"])
        style = "green" if result.ok else "bold red"
        out.print(f"[{style}]{safe(result.message or result.error, MESSAGE_MAX)}[/]")
        if result.error and result.error not in result.message:
            out.print(f"[red]{safe(result.error, MESSAGE_MAX)}[/]")
        if result.next_step:
            out.print(f"[dim]next:[/] {safe(result.next_step, MESSAGE_MAX)}")
    sys.exit(0 if result.ok else EXIT_SWITCH_FAILED)


@main.command()
@click.argument("token")
@click.pass_context
def approve(ctx: click.Context, token: str) -> None:
    """Approve an operator-mode switch plan as the person at this terminal.

    Shows the plan as it is now (servers, commit going LIVE, haproxy.cfg diff) and asks y/N;
    refuses without a terminal, and refuses a plan that changed since the token was issued.
    """
    from bluegreen.cli_render import print_plan

    if not sys.stdin.isatty():
        raise ApprovalError(
            "bluegreen approve needs a terminal: a person reads the plan and answers y/N",
            hint="run it in an interactive shell (stdin is not a terminal here)",
        )

    def confirm(plan: SwitchPlan) -> bool:
        print_plan(err, plan)
        return click.confirm("Approve this switch?", default=False, err=True)

    with _service(ctx) as service:
        click.echo(one_line(service.approve(token, _os_user(), confirm), MESSAGE_MAX))


def _os_user() -> str:
    """The person at this terminal, as the OS knows them (recorded with their approval)."""
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


@main.command()
@click.argument("app")
@click.option("--limit", default=20, show_default=True, help="How many entries, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def history(ctx: click.Context, app: str, limit: int, as_json: bool) -> None:
    """The audit log of deploys and switches (kept on the HAProxy host)."""
    from bluegreen.cli_render import print_history

    with _service(ctx) as service:
        result = service.history(app, limit)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        print_history(Console(), result)


@main.command()
@click.argument("app")
@click.pass_context
def prompt(ctx: click.Context, app: str) -> None:
    """Install the prompt that knows its role on both app hosts (/etc/profile.d/).

    Login shells then show the host's colour and role (LIVE or STANDBY), read at every prompt
    from the app dir's .env.display, which every switch rewrites. `status` says which hosts
    have it.
    """
    with _service(ctx) as service:
        for line in service.install_prompt(app):
            click.echo(one_line(line, MESSAGE_MAX))


@main.command()
@click.argument("app")
@click.option("--every", "every_s", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="Seconds between readings.")  # fmt: skip
@click.option("--count", type=click.IntRange(1), help="Stop after this many readings.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per reading.")
@click.pass_context
def watch(ctx: click.Context, app: str, every_s: float, count: int | None, as_json: bool) -> None:
    """Requests per second per colour, live, from HAProxy's runtime statistics (`show stat`).

    During a switch the traffic moves from one colour's line to the other's. Ctrl-C stops.
    """
    from bluegreen.cli_traffic import traffic_line
    from bluegreen.models_traffic import TrafficSample

    scale = 1.0

    def show(reading: TrafficSample) -> None:
        nonlocal scale
        if as_json:
            click.echo(reading.model_dump_json())
            return
        scale = max([scale, *(c.per_second or 0.0 for c in reading.colours)])
        click.echo(traffic_line(reading, scale))

    # Ctrl-C is how a person stops watching.
    with _service(ctx) as service, contextlib.suppress(KeyboardInterrupt):
        service.watch_traffic(app, show, every_s=every_s, count=count)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; anything but loopback requires a token (as for `serve`).")  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=8766, show_default=True)
@click.option("--token-env", default="BLUEGREEN_DASHBOARD_TOKEN", show_default=True, metavar="VAR",
              help="Environment variable holding the login token.")  # fmt: skip
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="File holding the login token (wins over --token-env).")  # fmt: skip
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Extra Host name browsers use to reach the dashboard.")  # fmt: skip
@click.pass_context
def dashboard(
    ctx: click.Context, host: str, port: int, token_env: str, token_file: str | None,
    allow_hosts: tuple[str, ...],
) -> None:  # fmt: skip
    """The operator's view in a browser: LIVE/STANDBY, history, the switch plan, approvals.

    Listens on 127.0.0.1 by default. With a token, people log in with it and their name (recorded
    with their approvals); without, approvals are recorded as the OS user running the dashboard.
    """
    from bluegreen.dashboard.server import run
    from bluegreen.mcp_http import load_token, token_hint

    token = load_token(token_env, token_file, hint=token_hint(token_env))
    with _service(ctx) as service:
        run(service, host=host, port=port, token=token, os_user=_os_user(),
            allow_hosts=allow_hosts, hint=token_hint(token_env))  # fmt: skip


main.add_command(serve)
main.add_command(approvals)
main.add_command(lab)
main.add_command(demo)


def mcp_main() -> None:
    """`bluegreen-mcp [OPTIONS]` is `bluegreen serve [OPTIONS]`: the command MCP clients start
    (`uvx bluegreen-mcp`, `pipx run bluegreen-mcp`); the config comes from $BLUEGREEN_CONFIG."""
    main(args=["serve", *sys.argv[1:]], prog_name="bluegreen-mcp")
