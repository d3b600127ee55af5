"""HTTP probes from the HAProxy host, the one way every engine step checks an app.

First choice: the HAProxy host opens the TCP connection for us (SSH direct-tcpip) and we speak
HTTP over it: no process starts there, so a probe costs about one round trip. When its sshd does
not allow forwarding (or for https) the probe runs curl there instead; the verdict is the same.
"""

from __future__ import annotations

from dataclasses import asdict

from bluegreen.domain.probe import (
    HealthResult,
    answer_complete,
    http_get_request,
    parse_health,
    parse_http_answer,
    parse_http_url,
    unknown_health,
    url_command,
)
from bluegreen.errors import (
    BlueGreenError,
    CommandTimeout,
    ForwardingRefused,
    TargetUnreachable,
)
from bluegreen.models import Health
from bluegreen.transport.base import Runner, TcpRequest


def http_probe(
    runner: Runner, via: str, url: str, timeout_s: float, expect_status: int,
    host: str | None = None,
) -> HealthResult:  # fmt: skip
    """GET `url` from host `via` (with `host` as the Host header when given); never raises.
    Unhealthy only on what the target did (its answer, a refused or reset connection, its own
    silence once connected); unknown when our path (SSH to `via`, the channel open, the curl run)
    failed."""
    target = parse_http_url(url, host)
    if target is not None:
        try:
            answer = runner.exchange(
                via,
                TcpRequest(
                    target.host,
                    target.port,
                    http_get_request(target),
                    timeout_s,
                    complete=lambda received: answer_complete(target, received),
                ),
            )
        except ForwardingRefused:
            pass  # curl below
        except TargetUnreachable as exc:
            return HealthResult(url, False, None, None, error=f"connection failed: {exc}")
        except CommandTimeout as exc:
            return HealthResult(url, False, None, None, error=f"timed out: {exc}")
        except BlueGreenError as exc:
            return unknown_health(url, exc)
        else:
            latency = round(answer.duration_s * 1000, 1)
            return parse_http_answer(url, target, answer.data, latency, expect_status)
    try:
        result = runner.run(via, url_command(url, timeout_s, host), timeout=timeout_s + 10)
    except BlueGreenError as exc:  # curl has its own --max-time: a timeout here is our path
        return unknown_health(url, exc)
    return parse_health(url, result.exit_status, result.stdout, result.stderr, expect_status)


def as_health(result: HealthResult) -> Health:
    """The probe's verdict as the API model (the same fields, without the body's own status)."""
    fields = asdict(result)
    return Health(**{name: fields[name] for name in Health.model_fields})
