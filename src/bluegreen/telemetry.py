"""Traces of the MCP server over OTLP (the `otel` extra), on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The MCP SDK already opens one server span per tool call, continuing the trace of the request's
`_meta` (traceparent) when present; it records to whatever tracer provider is installed, and
`install` installs one that exports over OTLP/HTTP (configured by the standard OTEL_* variables).
`TracedService` adds what only bluegreen knows: the app, colours, commit and outcome on that span,
and a child span per deploy/switch step, built from the engine's step events.

Only `mcp_server.serve` imports this module, and only with the variable set: without it nothing
about tracing is imported or changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.models import (
    AppRouting,
    AppStatus,
    AppSummary,
    DeployResult,
    History,
    SwitchPlan,
    SwitchResult,
)
from bluegreen.service import Approver, SwitchRequest

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from bluegreen.mcp_server import BlueGreenService, Progress, ServiceFactory

logger = logging.getLogger("bluegreen.telemetry")

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME = "bluegreen-mcp"
ENDS = {"ok", "failed", "skipped"}  # StepEvent statuses that finish a step

tracer = trace.get_tracer("bluegreen")
R = TypeVar("R")


def install(exporter: SpanExporter | None = None) -> bool:
    """Install the global tracer provider; False (with a warning) when the extra is missing.

    Without an exporter: OTLP over HTTP in batches (the real server); with one: each span handed
    to it as it ends (tests, with an in-memory exporter)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ModuleNotFoundError:
        logger.warning(
            "%s is set but the otel extra is not installed: no traces "
            "(pip install 'bluegreen-mcp[otel]')",
            ENDPOINT_ENV,
        )
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def traced(factory: ServiceFactory) -> ServiceFactory:
    """The factory whose services are traced, once the provider is installed; else as it is."""
    if not install():
        return factory
    return lambda: TracedService(factory())


@dataclass
class StepRecorder:
    """Passes step events on (to MCP progress) and keeps when each step started and ended."""

    forward: Progress | None
    parent: otel_context.Context = field(default_factory=otel_context.get_current)
    started: dict[str, int] = field(default_factory=dict)
    steps: list[tuple[StepEvent, int, int]] = field(default_factory=list)

    def __call__(self, event: StepEvent) -> None:
        now = time.time_ns()
        if event.status == "start":
            self.started[event.step] = now
        elif event.status in ENDS:
            self.steps.append((event, self.started.pop(event.step, now), now))
        if self.forward is not None:
            self.forward(event)

    def emit(self, attributes: dict[str, Any]) -> None:
        """One child span of the tool call per finished step, with the operation's attributes."""
        for event, start, end in self.steps:
            span = tracer.start_span(
                f"step {event.step}",
                context=self.parent,
                start_time=start,
                attributes={
                    **attributes,
                    "bluegreen.step": event.step,
                    "bluegreen.outcome": event.status,
                },
            )
            if event.status == "failed":
                span.set_status(Status(StatusCode.ERROR, event.message))
            span.end(end_time=end)


def annotate(attributes: dict[str, Any]) -> None:
    """Attributes on the current span: the tool call's (the worker thread runs in its context)."""
    trace.get_current_span().set_attributes(attributes)


class TracedService:
    """The service with bluegreen's attributes on the tool call's span and a span per step."""

    def __init__(self, service: BlueGreenService) -> None:
        self._service = service

    def list_apps(self) -> list[AppSummary]:
        return self._service.list_apps()

    def status(self, app: str) -> AppStatus:
        annotate({"bluegreen.app": app})
        return self._service.status(app)

    def history(self, app: str, limit: int = 20) -> History:
        annotate({"bluegreen.app": app})
        return self._service.history(app, limit)

    def preview_switch(self, app: str, *, emergency: bool = False) -> SwitchPlan:
        annotate({"bluegreen.app": app})
        return self._service.preview_switch(app, emergency=emergency)

    def routing(self, app: str) -> AppRouting:
        annotate({"bluegreen.app": app})
        return self._service.routing(app)

    def deploy(
        self, app: str, options: DeployOptions | None = None, *, progress: Progress | None = None
    ) -> DeployResult:
        def attributes(result: DeployResult) -> dict[str, Any]:
            return {
                "bluegreen.colour.standby": result.color,
                "bluegreen.commit": result.commit_after,
                "bluegreen.outcome": "ok" if result.ok else "failed",
            }

        return self._traced(
            app, progress, lambda p: self._service.deploy(app, options, progress=p), attributes
        )

    def switch(
        self,
        app: str,
        request: SwitchRequest | None = None,
        *,
        approver: Approver | None = None,
        progress: Progress | None = None,
    ) -> SwitchResult:
        def attributes(result: SwitchResult) -> dict[str, Any]:
            outcome = "ok" if result.ok else "failed" if result.executed else "not executed"
            return {
                "bluegreen.colour.from": result.from_live,
                "bluegreen.colour.to": result.to_live,
                "bluegreen.commit": result.plan.target_commit if result.plan else None,
                "bluegreen.outcome": "rolled back" if result.rolled_back else outcome,
            }

        def run(recorder: Progress) -> SwitchResult:
            return self._service.switch(app, request, approver=approver, progress=recorder)

        return self._traced(app, progress, run, attributes)

    def close(self) -> None:
        self._service.close()

    @staticmethod
    def _traced(
        app: str,
        progress: Progress | None,
        run: Callable[[Progress], R],
        attributes: Callable[[R], dict[str, Any]],
    ) -> R:
        """Run a deploy or switch, then describe it on the tool span and on one span per step
        (also when it raised: the steps it got through, with the error as the outcome)."""
        recorder = StepRecorder(progress)
        found: dict[str, Any] = {"bluegreen.app": app}
        try:
            result = run(recorder)
        except Exception as exc:
            found["bluegreen.outcome"] = f"raised {type(exc).__name__}"
            raise
        else:
            found |= attributes(result)
            return result
        finally:
            found = {key: value for key, value in found.items() if value is not None}
            annotate(found)
            recorder.emit(found)
