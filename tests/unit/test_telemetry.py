"""Telemetry (the `otel` extra): spans of tool calls and of deploy/switch steps, recorded by an
in-memory exporter while the SDK's own client drives the server in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tests.unit.fake_hosts import CONFIG_TOML
from tests.unit.test_mcp_server import FakeService

from bluegreen import telemetry
from bluegreen.mcp_server import BlueGreenService, build_server, with_telemetry

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider() -> Iterator[None]:
    # OpenTelemetry allows one global tracer provider per process: this module installs it once,
    # and afterwards its exporter drops what the rest of the test run's servers record.
    assert telemetry.install(EXPORTER)
    yield
    EXPORTER.shutdown()


@pytest.fixture
def spans(provider: None) -> InMemorySpanExporter:
    EXPORTER.clear()
    return EXPORTER


def call(fake: FakeService, tool: str, arguments: dict[str, object]) -> int:
    """Call a tool from inside a span of the caller's; that span's trace id."""

    def factory() -> BlueGreenService:
        return telemetry.TracedService(fake)

    server, holder = build_server(factory)
    caller: list[int] = []

    async def main() -> None:
        async with Client(server, mode="legacy") as client:
            # Started after the server is: its trace reaches the server only in the request's _meta.
            with trace.get_tracer("caller").start_as_current_span("caller") as span:
                caller.append(span.get_span_context().trace_id)
                await client.call_tool(tool, arguments)

    anyio.run(main)
    holder.close()
    return caller[0]


def tool_span(exporter: InMemorySpanExporter, tool: str) -> ReadableSpan:
    [span] = [
        s
        for s in exporter.get_finished_spans()
        if s.name == f"tools/call {tool}" and s.kind == SpanKind.SERVER
    ]
    return span


def steps_under(exporter: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def test_a_deploy_is_one_tool_span_in_the_callers_trace_with_a_child_span_per_step(
    spans: InMemorySpanExporter,
) -> None:
    caller_trace = call(FakeService(), "deploy_to_standby", {"app": "shop"})

    span = tool_span(spans, "deploy_to_standby")
    assert span.context.trace_id == caller_trace
    assert span.parent is not None and span.parent.is_remote  # continued from the request's _meta
    assert span.attributes is not None
    assert span.attributes["bluegreen.app"] == "shop"
    assert span.attributes["bluegreen.colour.standby"] == "green"
    assert span.attributes["bluegreen.commit"] == "b" * 40
    assert span.attributes["bluegreen.outcome"] == "ok"
    steps = steps_under(spans, span)
    assert [s.name for s in steps] == [
        f"step {name}" for name in ("lock", "backup", "pull", "build", "restart", "health")
    ]
    for step in steps:
        assert step.context.trace_id == caller_trace
        assert step.attributes is not None
        assert step.attributes["bluegreen.app"] == "shop"
        assert step.attributes["bluegreen.colour.standby"] == "green"
        assert step.attributes["bluegreen.commit"] == "b" * 40
        assert step.attributes["bluegreen.outcome"] == "ok"
        assert step.start_time is not None and step.end_time is not None
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= step.start_time <= step.end_time <= span.end_time


def test_a_failed_step_is_an_error_span_and_the_deploy_outcome_failed(
    spans: InMemorySpanExporter,
) -> None:
    call(FakeService(), "deploy_to_standby", {"app": "failing"})

    span = tool_span(spans, "deploy_to_standby")
    assert span.attributes is not None
    assert span.attributes["bluegreen.outcome"] == "failed"
    assert "bluegreen.commit" not in span.attributes  # a failed deploy has no new commit
    steps = {s.name: s for s in steps_under(spans, span)}
    assert list(steps) == ["step lock", "step backup", "step pull", "step build"]
    build = steps["step build"]
    assert build.attributes is not None
    assert build.attributes["bluegreen.outcome"] == "failed"
    assert build.status.status_code == StatusCode.ERROR


def test_a_switch_span_names_both_colours_and_its_steps(spans: InMemorySpanExporter) -> None:
    fake = FakeService(approval="token")
    call(fake, "switch_traffic", {"app": "shop"})  # plans, issues a token
    token = next(iter(fake.tokens))
    spans.clear()
    call(fake, "switch_traffic", {"app": "shop", "confirmToken": token})

    span = tool_span(spans, "switch_traffic")
    assert span.attributes is not None
    assert span.attributes["bluegreen.colour.from"] == "blue"
    assert span.attributes["bluegreen.colour.to"] == "green"
    assert span.attributes["bluegreen.outcome"] == "ok"
    [plan] = steps_under(spans, span)
    assert plan.name == "step plan"
    assert plan.attributes is not None
    assert plan.attributes["bluegreen.colour.to"] == "green"


def test_a_service_error_is_the_outcome_of_the_tool_span(spans: InMemorySpanExporter) -> None:
    call(FakeService(), "deploy_to_standby", {"app": "down"})

    span = tool_span(spans, "deploy_to_standby")
    assert span.attributes is not None
    assert span.attributes["bluegreen.outcome"] == "raised TransportError"
    assert span.status.status_code == StatusCode.ERROR  # the tool result has isError


def factory_module_check(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


WITHOUT_TELEMETRY = """
import sys
from bluegreen.mcp_server import with_telemetry
factory = lambda: None
assert with_telemetry(factory) is factory
loaded = sorted(m for m in sys.modules if m == 'bluegreen.telemetry' or m.startswith('opentelemetry.sdk'))
assert not loaded, loaded
"""


def test_without_the_endpoint_variable_nothing_about_tracing_is_imported() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = factory_module_check(env, WITHOUT_TELEMETRY)
    assert done.returncode == 0, done.stderr


WITHOUT_EXTRA = """
import logging, sys
for name in ('opentelemetry.sdk', 'opentelemetry.sdk.trace', 'opentelemetry.sdk.resources'):
    sys.modules[name] = None  # the otel extra is not installed
logging.basicConfig(stream=sys.stdout, level=logging.WARNING)
from bluegreen.mcp_server import with_telemetry
factory = lambda: None
assert with_telemetry(factory) is factory
"""


def test_the_endpoint_without_the_extra_warns_and_serves_untraced() -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    done = factory_module_check(env, WITHOUT_EXTRA)
    assert done.returncode == 0, done.stderr
    assert "pip install 'bluegreen-mcp[otel]'" in done.stdout


def test_with_the_endpoint_variable_services_are_traced(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[object] = []

    def install(exporter: object = None) -> bool:
        installed.append(exporter)
        return True

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setattr(telemetry, "install", install)
    fake = FakeService()
    service = with_telemetry(lambda: fake)()
    assert isinstance(service, telemetry.TracedService)
    assert installed == [None]  # the real exporter: OTLP over HTTP
    assert service.list_apps() == fake.list_apps()


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps the bodies POSTed to /v1/traces."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            self.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def test_the_server_exports_its_tool_spans_over_otlp_http(tmp_path: Path) -> None:
    """`bluegreen serve` as a client runs it, with the variable set: spans reach the endpoint
    (flushed when the client disconnects)."""
    config = tmp_path / "bluegreen.toml"
    config.write_text(CONFIG_TOML)
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{collector.server_address[1]}"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "bluegreen", "--config", str(config), "serve"],
        env=env,
    )

    async def main() -> None:
        async with Client(params) as client:
            assert not (await client.call_tool("list_apps", {})).is_error

    try:
        anyio.run(main)
    finally:
        collector.shutdown()
    exported = b"".join(Collector.bodies)
    assert b"tools/call list_apps" in exported
    assert b"bluegreen-mcp" in exported  # the service name
