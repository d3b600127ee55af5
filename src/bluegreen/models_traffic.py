"""The traffic watch's readings (`bluegreen watch`, the dashboard): requests per colour from
HAProxy's runtime statistics, one reading at a time."""

from __future__ import annotations

from pydantic import BaseModel, Field

from bluegreen.models import Role


class ColourTraffic(BaseModel):
    color: str
    role: Role | None = Field(default=None, description="From haproxy.cfg at this reading.")
    backend: str | None = None
    server: str | None = None
    requests_total: int | None = Field(
        default=None, description="HAProxy's `stot` for this server; None when not listed."
    )
    per_second: float | None = Field(
        default=None, description="Requests per second since the previous reading."
    )
    haproxy_rate: int | None = Field(
        default=None, description="HAProxy's own `rate`: sessions in the last second."
    )


class TrafficSample(BaseModel):
    """One reading of HAProxy's runtime statistics for an app's two servers."""

    app: str
    at: str = Field(description="When it was read (ISO 8601, UTC).")
    colours: list[ColourTraffic]
    error: str | None = Field(default=None, description="Why the runtime API was not read.")
