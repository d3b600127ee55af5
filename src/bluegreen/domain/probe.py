"""Health probes as data: the curl command run on the HAProxy host, and the parse of its answer.

The probe runs from the HAProxy host because that is the network path HAProxy itself uses: a
server reachable from the operator's laptop but not from HAProxy is not healthy for traffic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bluegreen.domain.command import Command

MARKER = "__bluegreen_probe__"


@dataclass(frozen=True)
class HealthResult:
    url: str
    healthy: bool
    status_code: int | None
    latency_ms: float | None
    color: str | None = None
    commit: str | None = None
    body_status: str | None = None
    error: str | None = None


def health_url(address: str, path: str) -> str:
    return f"http://{address}{path}"


def health_command(address: str, path: str, timeout_s: float) -> Command:
    return url_command(health_url(address, path), timeout_s)


def url_command(url: str, timeout_s: float) -> Command:
    """GET `url` with curl; a fresh connection each time (`Connection: close`), TLS not verified
    for https (the probe checks routing, not certificates)."""
    extra = ["-k"] if url.startswith("https:") else []
    write_out = f"\n{MARKER} %{{http_code}} %{{time_total}}\n"
    return Command.of(
        "curl",
        "-sS",
        "--max-time",
        f"{timeout_s:g}",
        "--noproxy",
        "*",
        "-H",
        "Connection: close",
        *extra,
        "-o",
        "-",
        "-w",
        write_out,
        url,
        mutating=False,
    )


def parse_health(
    url: str, exit_status: int, stdout: str, stderr: str, expect_status: int
) -> HealthResult:
    body, _, trailer = stdout.rpartition(f"\n{MARKER} ")
    code: int | None = None
    latency: float | None = None
    parts = trailer.split()
    if len(parts) >= 2 and parts[0].isdigit():
        code = int(parts[0]) or None
        try:
            latency = round(float(parts[1]) * 1000, 1)
        except ValueError:
            latency = None
    if exit_status != 0 or code is None:
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else f"curl exit {exit_status}"
        if exit_status == 127:
            reason = "curl is not installed on the HAProxy host"
        return HealthResult(url, False, code, latency, error=reason)
    color = commit = body_status = None
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            color = _str_or_none(data.get("color"))
            commit = _str_or_none(data.get("commit"))
            body_status = _str_or_none(data.get("status"))
    except ValueError:
        pass  # a non-JSON health body is fine: the status code decides
    healthy = code == expect_status
    error = None if healthy else f"HTTP {code}, expected {expect_status}"
    return HealthResult(url, healthy, code, latency, color, commit, body_status, error)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
