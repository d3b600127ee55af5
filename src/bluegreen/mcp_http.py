"""Streamable HTTP and SSE transports for the MCP server: bearer token, loopback default,
DNS-rebinding protection.

- The server binds 127.0.0.1 by default. Binding anything that is not loopback requires a bearer
  token (from an environment variable or a file); without one the server refuses to start.
- With a token, every HTTP request needs `Authorization: Bearer <token>` (compared in constant
  time); anything else gets 401 before it reaches the MCP endpoint.
- The Host and Origin headers must name this server (127.0.0.1, localhost, [::1], the bind address
  and any --allow-host name, with the port): a web page that rebinds its DNS name to 127.0.0.1
  is refused (421/403).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bluegreen.errors import ConfigError

logger = logging.getLogger("bluegreen.mcp")

MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def token_hint(env: str) -> str:
    """How to make a token for the server that reads it from `env` (or a --token-file)."""
    return (
        'create one with `python -c "import secrets; print(secrets.token_urlsafe(32))"` and put '
        f"it in the {env} environment variable or a file passed as --token-file"
    )


BEARER_HINT = token_hint("BLUEGREEN_MCP_TOKEN")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_token(token: str, source: str, hint: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the bearer token from {source} is too short ({len(token)} characters; at least "
            f"{MIN_TOKEN_LENGTH})",
            hint=hint,
        )
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(
            f"the bearer token from {source} must be printable ASCII without spaces",
            hint=hint,
        )
    return token


def load_token(
    token_env: str | None,
    token_file: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    hint: str = BEARER_HINT,
) -> str | None:
    """The bearer token: from the file when one is given, else from the environment variable.
    `hint`: how to make one, for the server that asks (the MCP server, the dashboard)."""
    if token_file:
        path = Path(token_file).expanduser()
        try:
            raw = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc}", hint=hint) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("token file %s is readable by others: chmod 600 it", path)
        return _check_token(raw.strip(), f"the file {path}", hint)
    env = os.environ if environ is None else environ
    value = env.get(token_env or "", "").strip()
    return _check_token(value, f"${token_env}", hint) if value else None


def check_exposure(host: str, token: str | None, *, hint: str = BEARER_HINT) -> None:
    """Refuse to listen beyond loopback without a bearer token."""
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without a bearer token: anyone who can reach it could "
            "switch your production traffic",
            hint=f"bind 127.0.0.1 (the default), or {hint}",
        )


def _url_host(name: str) -> str:
    if ":" in name and not name.startswith("["):
        return f"[{name}]"  # a bare IPv6 address
    return name


def security_settings(
    host: str, port: int, allow_hosts: Sequence[str] = ()
) -> TransportSecuritySettings:
    """DNS-rebinding protection: the Host (and any Origin) header must name this server."""
    names = list(LOOPBACK_NAMES)
    extra = [] if host in ("0.0.0.0", "::", "") else [host]  # noqa: S104 - a comparison
    for name in [*extra, *allow_hosts]:
        shown = _url_host(name.strip())
        if shown and shown not in names:
            names.append(shown)
    hosts = [f"{name}:{port}" for name in names]
    origins = [f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")]
    if port in (80, 443):  # browsers and clients omit the default port
        hosts += names
        origins += [f"{'https' if port == 443 else 'http'}://{name}" for name in names]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class BearerAuth:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    def authorized(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.authorized(
            Headers(scope=scope).get("authorization")
        ):
            client = scope.get("client")
            logger.warning("401 for %s %s from %s", scope.get("method"), scope.get("path"),
                           client[0] if client else "?")  # fmt: skip
            response = JSONResponse(
                {"error": "unauthorized", "error_description": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="bluegreen"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_app(
    server: MCPServer,
    transport: Literal["http", "sse"],
    *,
    host: str,
    port: int,
    token: str | None,
    allow_hosts: Sequence[str] = (),
) -> ASGIApp:
    security = security_settings(host, port, allow_hosts)
    app: ASGIApp
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host)
    else:
        app = server.streamable_http_app(transport_security=security, host=host)
    return BearerAuth(app, token) if token else app


def endpoint(transport: Literal["http", "sse"], host: str, port: int) -> str:
    return f"http://{_url_host(host)}:{port}" + ("/sse" if transport == "sse" else "/mcp")


def run(
    server: MCPServer,
    transport: Literal["http", "sse"],
    *,
    host: str,
    port: int,
    token: str | None,
    allow_hosts: Sequence[str] = (),
) -> None:
    import uvicorn

    check_exposure(host, token)
    app = build_app(server, transport, host=host, port=port, token=token, allow_hosts=allow_hosts)
    kind = "SSE" if transport == "sse" else "streamable HTTP"
    logger.info(
        "bluegreen MCP server (%s) on %s; bearer token %s; accepted Host names: %s",
        kind, endpoint(transport, host, port), "required" if token else "not required (loopback)",
        ", ".join(security_settings(host, port, allow_hosts).allowed_hosts),
    )  # fmt: skip
    config = uvicorn.Config(app, host=host.strip("[]"), port=port, log_config=None,
                            server_header=False)  # fmt: skip
    uvicorn.Server(config).run()
