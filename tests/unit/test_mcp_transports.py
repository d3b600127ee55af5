"""`bluegreen serve` as a real process: stdio, streamable HTTP and SSE, bearer tokens, loopback
default and DNS-rebinding protection. The config points at hosts that refuse connections, which
also shows that the server starts and answers list_apps with every host down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bluegreen.mcp_http import BearerAuth, is_loopback, load_token, security_settings

TOKEN = "s3cret-token-for-tests-0123456789"
CONFIG = """\
[ssh]
known_hosts = "{dir}/known_hosts"
use_agent = false
connect_timeout_s = 2

[haproxy]
ssh = "root@127.0.0.1:1"

[apps.shop]
state_file = "/var/lib/haproxy/shop.json"
frontend = "http-in"
app_dir = "/opt/shop"
restart = "systemctl restart shop"

[apps.shop.servers.blue]
ssh = "root@127.0.0.1:1"
address = "10.0.0.1:3001"

[apps.shop.servers.green]
ssh = "root@127.0.0.1:1"
address = "10.0.0.2:3001"
"""
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bluegreen.toml"
    path.write_text(CONFIG.format(dir=tmp_path))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def env(token: str | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "BLUEGREEN_MCP_TOKEN"}
    if token is not None:
        environ["BLUEGREEN_MCP_TOKEN"] = token
    return environ


def serve_args(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bluegreen", "--config", str(config), "serve", *args]


@contextmanager
def serving(
    config: Path, transport: str, port: int, *args: str, token: str | None = None,
    logs: list[str] | None = None,
) -> Iterator[str]:  # fmt: skip
    process = subprocess.Popen(
        serve_args(config, "--transport", transport, "--port", str(port), *args),
        env=env(token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise AssertionError(f"serve exited {process.returncode}: {stderr.decode()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("serve did not start listening") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            _, logged = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, logged = process.communicate()
        if logs is not None:
            logs.append(logged.decode(errors="replace"))


def post_initialize(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST", url + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **(headers or {})}
        ) as response,
    ):
        return response


async def list_apps_over_http(url: str, mode: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as client,
    ):
        return await client.call_tool("list_apps", {})


def check_list_apps(result: types.CallToolResult) -> None:
    assert result.is_error is False
    assert result.structured_content == {
        "result": [
            {
                "app": "shop",
                "frontend": "http-in",
                "servers": {"blue": "10.0.0.1:3001", "green": "10.0.0.2:3001"},
            }
        ]
    }


# ---- stdio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_stdio_serves_tools_with_every_host_down(config: Path, mode: str) -> None:
    params = StdioServerParameters(command=sys.executable, args=serve_args(config)[1:], env=env())

    async def main() -> tuple[Any, Any, Any]:
        async with Client(params, mode=mode) as client:
            tools = await client.list_tools()
            apps = await client.call_tool("list_apps", {})
            status = await client.call_tool("get_deployment_status", {"app": "shop"})
            return tools, apps, status

    tools, apps, status = anyio.run(main)
    assert len(tools.tools) == 5
    check_list_apps(apps)
    assert status.is_error is False
    assert status.structured_content["certain"] is False
    assert "LIVE/STANDBY is UNCERTAIN" in status.content[0].text
    assert "connection refused" in status.content[0].text


def test_stdio_read_only_lists_the_reads_and_refuses_the_rest_by_name(config: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=serve_args(config, "--read-only")[1:], env=env()
    )

    async def main() -> tuple[Any, Any]:
        async with Client(params) as client:
            tools = await client.list_tools()
            return tools, await client.call_tool("switch_traffic", {"app": "shop"})

    tools, switch = anyio.run(main)
    assert {tool.name for tool in tools.tools} == {
        "list_apps", "get_deployment_status", "get_deployment_history",
    }  # fmt: skip
    assert switch.is_error is True
    assert "`bluegreen serve --read-only`" in switch.content[0].text


def test_read_only_contradicting_allow_is_a_usage_error(config: Path) -> None:
    result = subprocess.run(serve_args(config, "--read-only", "--allow", "deploy"), env=env(),
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 2
    assert "--read-only contradicts --allow deploy" in result.stderr


# ---- streamable HTTP -----------------------------------------------------------------------


def test_http_on_loopback_without_a_token_works(config: Path) -> None:
    with serving(config, "http", free_port()) as url:
        assert post_initialize(url).status_code == 200
        check_list_apps(anyio.run(list_apps_over_http, url, "legacy"))
        check_list_apps(anyio.run(list_apps_over_http, url, "auto"))
        # DNS rebinding: a page on another name that resolves to 127.0.0.1 is refused.
        assert post_initialize(url, {"Host": "evil.example:8765"}).status_code == 421
        assert post_initialize(url, {"Origin": "http://evil.example"}).status_code == 403


def test_http_with_a_token_requires_the_bearer_header(config: Path) -> None:
    port = free_port()
    with serving(config, "http", port, token=TOKEN) as url:
        missing = post_initialize(url)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert (
            post_initialize(url, {"Authorization": "Bearer wrong-token-0123456789"}).status_code
            == 401
        )
        assert post_initialize(url, {"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert post_initialize(url, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        check_list_apps(anyio.run(list_apps_over_http, url, "auto", TOKEN))
        with pytest.raises(ExceptionGroup):  # the SDK reports the 401 from its task group
            anyio.run(list_apps_over_http, url, "legacy", "wrong-token-0123456789")
        # The right token from a foreign Host is still refused (DNS-rebinding protection).
        foreign = {"Authorization": f"Bearer {TOKEN}", "Host": f"evil.example:{port}"}
        assert post_initialize(url, foreign).status_code == 421


def test_http_token_from_a_file(config: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with serving(config, "http", free_port(), "--token-file", str(token_file)) as url:
        assert post_initialize(url).status_code == 401
        assert post_initialize(url, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_binding_beyond_loopback_without_a_token_refuses_to_start(config: Path, host: str) -> None:
    result = subprocess.run(
        serve_args(config, "--transport", "http", "--host", host, "--port", str(free_port())),
        env=env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert f"refusing to listen on {host} without a bearer token" in result.stderr
    assert result.stdout == ""


def test_a_short_token_refuses_to_start(config: Path) -> None:
    result = subprocess.run(
        serve_args(config, "--transport", "sse", "--port", str(free_port())),
        env=env("short"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert "too short" in result.stderr


# ---- SSE -----------------------------------------------------------------------------------


def test_sse_with_a_token_still_works_and_warns_it_is_deprecated(config: Path) -> None:
    logs: list[str] = []
    with serving(config, "sse", free_port(), token=TOKEN, logs=logs) as url:
        with httpx.Client(timeout=5) as http:
            assert http.get(url + "/sse").status_code == 401
            assert http.post(url + "/messages/?session_id=x", json={}).status_code == 401

        async def main(token: str) -> Any:
            headers = {"Authorization": f"Bearer {token}"}
            async with Client(sse_client(url + "/sse", headers=headers), mode="legacy") as client:
                return await client.call_tool("list_apps", {})

        check_list_apps(anyio.run(main, TOKEN))
    assert "--transport sse is deprecated" in logs[0] and "use --transport http" in logs[0]


# ---- pieces --------------------------------------------------------------------------------


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.10", "example.com"]))


def test_allowed_hosts_name_this_server_with_its_port() -> None:
    settings = security_settings("127.0.0.1", 8765)
    assert settings.enable_dns_rebinding_protection
    assert settings.allowed_hosts == ["127.0.0.1:8765", "localhost:8765", "[::1]:8765"]
    assert "http://localhost:8765" in settings.allowed_origins
    wide = security_settings("0.0.0.0", 9000, ["deploy.example.com", "2001:db8::1"])
    assert wide.allowed_hosts[-2:] == ["deploy.example.com:9000", "[2001:db8::1]:9000"]
    assert "0.0.0.0:9000" not in wide.allowed_hosts
    assert "192.0.2.10:9000" in security_settings("192.0.2.10", 9000).allowed_hosts


def test_token_sources(tmp_path: Path) -> None:
    assert load_token("BG_TOKEN", None, {}) is None
    assert load_token("BG_TOKEN", None, {"BG_TOKEN": f"  {TOKEN}\n"}) == TOKEN
    path = tmp_path / "t"
    path.write_text("file-token-0123456789abcdef\n")
    assert load_token("BG_TOKEN", str(path), {"BG_TOKEN": TOKEN}) == "file-token-0123456789abcdef"
    with pytest.raises(Exception, match="cannot read the token file"):
        load_token(None, str(tmp_path / "missing"), {})
    with pytest.raises(Exception, match="without spaces"):
        load_token("T", None, {"T": "has a space in the middle of it"})


def test_bearer_compare() -> None:
    auth = BearerAuth(app=None, token=TOKEN)  # type: ignore[arg-type]
    assert auth.authorized(f"Bearer {TOKEN}")
    assert auth.authorized(f"bearer {TOKEN}")
    assert not auth.authorized(None)
    assert not auth.authorized("Bearer")
    assert not auth.authorized(f"Bearer {TOKEN}x")
    assert not auth.authorized(f"Token {TOKEN}")
    assert not auth.authorized("Bearer \u00e9\u00e9\u00e9")
