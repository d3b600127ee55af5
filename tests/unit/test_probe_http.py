"""HTTP probes over a TCP connection the HAProxy host opens: request bytes, answer parsing, and
the fallback to curl (unit level; the lab tests run them against real sshd and apps)."""

from __future__ import annotations

import pytest

from bluegreen.domain.probe import (
    HealthResult,
    answer_complete,
    http_get_request,
    parse_http_answer,
    parse_http_url,
)
from bluegreen.engine.probing import http_probe
from bluegreen.errors import CommandTimeout, TargetUnreachable, TransportError
from bluegreen.transport.fake import FakeRunner

URL = "http://blue:3001/health"
JSON = b'{"status": "ok", "color": "blue", "commit": "abc123"}'


def test_the_target_of_a_url() -> None:
    target = parse_http_url("http://blue:3001/health?deep=1")
    assert target is not None
    assert (target.host, target.port, target.authority, target.path) == (
        "blue", 3001, "blue:3001", "/health?deep=1"
    )  # fmt: skip
    six = parse_http_url("http://[fd00::5]:8080/h")
    assert six is not None and (six.host, six.port) == ("fd00::5", 8080)
    plain = parse_http_url("http://127.0.0.1/")
    assert plain is not None and plain.port == 80
    assert parse_http_url("https://blue:3001/health") is None  # curl does TLS
    assert parse_http_url("http://blue:notaport/") is None


def test_the_request_asks_for_a_closed_connection() -> None:
    target = parse_http_url(URL)
    assert target is not None
    request = http_get_request(target)
    assert request.startswith(b"GET /health HTTP/1.1\r\n")
    assert b"host: blue:3001\r\n" in request.lower()
    assert b"connection: close\r\n" in request.lower()
    assert request.endswith(b"\r\n\r\n")


def answer(raw: bytes, expect: int = 200) -> HealthResult:
    target = parse_http_url(URL)
    assert target is not None
    return parse_http_answer(URL, target, raw, 1.5, expect)


def test_a_json_answer_with_a_length() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(JSON), JSON)
    result = answer(raw)
    assert result.healthy and result.status_code == 200 and result.latency_ms == 1.5
    assert (result.color, result.commit, result.body_status) == ("blue", "abc123", "ok")


def test_a_chunked_answer() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + JSON[:5]
    raw += b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(JSON) - 5, JSON[5:])
    assert answer(raw).commit == "abc123"


def test_an_http10_answer_that_ends_with_the_connection() -> None:
    result = answer(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + JSON)
    assert result.healthy and result.color == "blue"


def test_a_non_json_body_is_fine_the_status_decides() -> None:
    result = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert result.healthy and result.color is None


def test_an_unexpected_status_is_unhealthy() -> None:
    result = answer(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    assert not result.healthy and result.status_code == 503
    assert result.error == "HTTP 503, expected 200"
    assert answer(b"HTTP/1.1 204 No Content\r\n\r\n", expect=204).healthy


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "the connection was closed without an answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "was cut short"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "was cut short"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
        (b"\x00\x01garbage\r\n\r\n", "not an HTTP answer"),
    ],
)
def test_broken_answers_are_unhealthy_with_the_reason(raw: bytes, error: str) -> None:
    result = answer(raw)
    assert not result.healthy
    assert result.error is not None and error in result.error


def test_http_probe_goes_through_the_haproxy_host() -> None:
    fake = FakeRunner()
    seen: list[tuple[str, str, int, bytes]] = []

    def respond(host: str, address: str, port: int, request: bytes) -> bytes:
        seen.append((host, address, port, request))
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(JSON), JSON)

    fake.tcp_responder = respond
    result = http_probe(fake, "root@haproxy", URL, 3, 200)
    assert result.healthy and result.commit == "abc123"
    assert [s[:3] for s in seen] == [("root@haproxy", "blue", 3001)]
    assert fake.commands() == []  # no process was started on the host


def test_http_probe_falls_back_to_curl_when_forwarding_is_refused() -> None:
    fake = FakeRunner()  # no tcp responder: the fake host refuses forwarding
    fake.on(
        lambda c: c.argv[0] == "curl",
        host="root@haproxy",
        stdout=JSON.decode() + "\n__bluegreen_probe__ 200 0.002\n",
    )
    result = http_probe(fake, "root@haproxy", URL, 3, 200)
    assert result.healthy and result.color == "blue" and result.latency_ms == 2.0
    assert [c.kind for c in fake.calls] == ["tcp", "run"]


def test_https_goes_to_curl_directly() -> None:
    fake = FakeRunner()
    fake.on(
        lambda c: c.argv[0] == "curl" and "-k" in c.argv, stdout="\n__bluegreen_probe__ 200 0.01\n"
    )
    assert http_probe(fake, "root@haproxy", "https://blue:3443/health", 3, 200).healthy
    assert [c.kind for c in fake.calls] == ["run"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            TargetUnreachable(
                "root@haproxy could not connect to blue:3001: Connect failed", host="h"
            ),
            "connection failed",
        ),
        (CommandTimeout("blue:3001 did not answer within 3s", host="h"), "timed out"),
    ],
)
def test_an_unreachable_or_silent_target_is_unhealthy_not_an_error(
    error: Exception, reason: str
) -> None:
    fake = FakeRunner()

    def respond(host: str, address: str, port: int, request: bytes) -> bytes:
        raise error

    fake.tcp_responder = respond
    result = http_probe(fake, "root@haproxy", URL, 3, 200)
    assert not result.healthy and result.status_code is None
    assert result.error is not None and result.error.startswith(reason)


def test_a_probe_our_own_path_could_not_make_is_unknown_not_unhealthy() -> None:
    fake = FakeRunner()

    def respond(host: str, address: str, port: int, request: bytes) -> bytes:
        raise TransportError("root@haproxy did not open a connection to blue:3001", host=host)

    fake.tcp_responder = respond
    result = http_probe(fake, "root@haproxy", URL, 3, 200)
    assert result.unknown and not result.healthy and result.status_code is None
    assert result.error and "could not be made" in result.error and "blue:3001" in result.error
    # The curl way: our command to the HAProxy host timing out says nothing about the server.
    fake = FakeRunner()
    fake.on(lambda c: c.argv[0] == "curl", raises=CommandTimeout("curl did not finish", host="h"))
    assert http_probe(fake, "root@haproxy", URL, 3, 200).unknown
    # A real answer is never unknown.
    fake.tcp_responder = lambda *_: b"HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n"
    refused = http_probe(fake, "root@haproxy", URL, 3, 200)
    assert not refused.healthy and not refused.unknown and refused.status_code == 503


@pytest.mark.parametrize(
    ("raw", "whole"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nContent-Le", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", False),
        (b"HTTP/1.0 200 OK\r\n\r\nbody until the close", False),  # only the close ends it
        (b"\x00garbage\r\n\r\n", True),  # reading on would not help
    ],
)
def test_when_an_answer_is_whole(raw: bytes, whole: bool) -> None:
    target = parse_http_url(URL)
    assert target is not None
    assert answer_complete(target, raw) is whole


class KeptOpenChannel:
    """A peer that answers, then keeps the connection open (ignores `Connection: close`)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.timeouts: list[float] = []

    def settimeout(self, seconds: float) -> None:
        self.timeouts.append(seconds)

    def recv(self, size: int) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        raise TimeoutError  # nothing more, and no close


def test_a_peer_that_keeps_the_connection_open_is_not_a_timeout() -> None:
    import time

    from bluegreen.transport.ssh_channel import read_answer

    target = parse_http_url(URL)
    assert target is not None
    body = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(JSON), JSON)
    channel = KeptOpenChannel([body[:20], body[20:]])
    data = read_answer(channel, time.monotonic() + 5, lambda r: answer_complete(target, r))  # type: ignore[arg-type]
    assert data == body
    # Without the completeness check the same peer is a timeout (None), never a wrong answer.
    channel = KeptOpenChannel([body[:20], body[20:]])
    assert read_answer(channel, time.monotonic() + 5, None) is None  # type: ignore[arg-type]
