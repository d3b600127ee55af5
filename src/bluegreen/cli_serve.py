"""`bluegreen serve`: the MCP server's command (stdio, streamable HTTP, deprecated SSE)."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http", "sse"]),
    default="stdio",
    show_default=True,
    help="stdio for a local client; http (streamable HTTP, /mcp) to listen; sse (/sse) is "
    "deprecated.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="HTTP/SSE bind address; anything but loopback requires a bearer token.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option(
    "--token-env",
    default="BLUEGREEN_MCP_TOKEN",
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the HTTP/SSE bearer token.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="File holding the bearer token (wins over --token-env).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Extra Host name clients use to reach this server (DNS-rebinding protection).",
)
@click.option(
    "--allow",
    type=click.Choice(["read-only", "deploy", "full"]),
    default="full",
    show_default=True,
    help="What MCP clients may do: read-only (status, list, history), deploy (also "
    "deploy_to_standby), full (also switch_traffic). Each app's `mcp` key can only narrow it.",
)
@click.option("--read-only", is_flag=True, help="Same as --allow read-only.")
@click.pass_context
def serve(
    ctx: click.Context, transport: str, host: str, port: int, token_env: str,
    token_file: str | None, allow_hosts: tuple[str, ...], allow: str, read_only: bool,
) -> None:  # fmt: skip
    """Run the MCP server (tools for AI assistants); logs go to stderr.

    HTTP listens on 127.0.0.1 by default; with a token set, every request needs
    `Authorization: Bearer <token>`. SSE is deprecated: use http. The safety mode binds MCP
    clients only; the CLI's own commands are for people and are not restricted by it.
    """
    from bluegreen.mcp_server import serve as run_server

    if read_only and allow not in ("full", "read-only"):
        raise click.UsageError(f"--read-only contradicts --allow {allow}")
    run_server(
        ctx.obj["config"], transport=transport, host=host, port=port,  # type: ignore[arg-type]
        token_env=token_env, token_file=token_file, allow_hosts=allow_hosts,
        allow="read-only" if read_only else allow,  # type: ignore[arg-type]
        debug=ctx.obj["debug"],
    )  # fmt: skip
