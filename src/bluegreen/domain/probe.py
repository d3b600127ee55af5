"""Health probes as data: the HTTP GET made from the HAProxy host, and the parse of its answer.

The probe runs from the HAProxy host because that is the network path HAProxy itself uses: a
server reachable from the operator's laptop but not from HAProxy is not healthy for traffic.
Two ways, same verdict: raw HTTP/1.1 bytes over a TCP connection the HAProxy host opens for us
(an SSH direct-tcpip channel; `http_get_request` / `parse_http_answer`), or curl run there
(`url_command` / `parse_health`) when the host does not allow forwarding, or for https.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from bluegreen.domain.command import Command

MARKER = "__bluegreen_probe__"


@dataclass(frozen=True)
class HealthResult:
    """A probe's verdict. `unknown`: the probe could not be made (our own path to the HAProxy
    host failed or was too slow), so `healthy` is False without saying anything of the server."""

    url: str
    healthy: bool
    status_code: int | None
    latency_ms: float | None
    color: str | None = None
    commit: str | None = None
    body_status: str | None = None
    error: str | None = None
    unknown: bool = False


def unknown_health(url: str, why: object) -> HealthResult:
    return HealthResult(url, False, None, None, error=f"the probe could not be made: {why}",
                        unknown=True)  # fmt: skip


def health_url(address: str, path: str) -> str:
    return f"http://{address}{path}"


def url_command(url: str, timeout_s: float, host: str | None = None) -> Command:
    """GET `url` with curl; a fresh connection each time (`Connection: close`), TLS not verified
    for https (the probe checks routing, not certificates). `host`: the Host header to send
    instead of the URL's (a shared frontend picks the app by it)."""
    extra = ["-k"] if url.startswith("https:") else []
    if host is not None:
        extra += ["-H", f"Host: {host}"]
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


@dataclass(frozen=True)
class HttpUrl:
    """An http:// URL, parsed: where it connects (host without brackets, port), the authority
    for the Host header, and the path with its query (what HTTP calls the request target)."""

    host: str
    port: int
    authority: str
    path: str


def parse_http_url(url: str, host: str | None = None) -> HttpUrl | None:
    """The connection an http URL needs; None for anything else (https goes through curl).
    `host` replaces the URL's authority in the Host header."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpUrl(parts.hostname, port, host or parts.netloc, path)


def http_get_request(target: HttpUrl) -> bytes:
    """A GET that asks the server to close the connection after answering (a fresh connection
    per probe, as curl's): the answer then ends where the connection does."""
    conn = h11.Connection(our_role=h11.CLIENT)
    return conn.send(_get(target)) + conn.send(h11.EndOfMessage())


def _get(target: HttpUrl) -> h11.Request:
    headers = [
        ("Host", target.authority),
        ("User-Agent", "bluegreen-probe"),
        ("Accept", "*/*"),
        ("Connection", "close"),
    ]
    return h11.Request(method="GET", target=target.path, headers=headers)


def answer_complete(target: HttpUrl, raw: bytes) -> bool:
    """Whether `raw` already holds a whole answer (or one that cannot be parsed: reading on
    would not help). For servers that keep the connection open despite `Connection: close`."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(_get(target))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.EndOfMessage):
                return True
    except h11.RemoteProtocolError:
        return True


def parse_http_answer(
    url: str, target: HttpUrl, raw: bytes, latency_ms: float, expect_status: int
) -> HealthResult:
    """The verdict on the bytes the server sent until it closed the connection."""
    conn = h11.Connection(our_role=h11.CLIENT)
    conn.send(_get(target))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    conn.receive_data(b"")  # the server closed: the answer is complete or it is cut short
    code: int | None = None
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                code = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return HealthResult(url, False, code, latency_ms, error=_cut_short(raw, code))
    except h11.RemoteProtocolError as exc:
        # h11 words a close in the middle of (or before) an answer in two ways.
        closed = not raw or "closed" in str(exc) or "ConnectionClosed" in str(exc)
        error = _cut_short(raw, code) if closed else f"not an HTTP answer: {exc}"
        return HealthResult(url, False, code, latency_ms, error=error)
    return _verdict(url, code, latency_ms, bytes(body).decode(errors="replace"), expect_status)


def _cut_short(raw: bytes, code: int | None) -> str:
    if not raw:
        return "the connection was closed without an answer"
    if code is None and raw.startswith(b"HTTP/"):
        return "the answer was cut short before its headers ended"
    if code is None:
        return f"not an HTTP answer: {raw[:60]!r}"
    return f"the answer (HTTP {code}) was cut short"


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
    return _verdict(url, code, latency, body, expect_status)


def _verdict(
    url: str, code: int | None, latency: float | None, body: str, expect_status: int
) -> HealthResult:
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
