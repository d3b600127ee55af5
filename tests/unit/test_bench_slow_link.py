"""The benchmarks' slow link delays every chunk, stalls some, and never reorders bytes."""

from __future__ import annotations

import socket
import threading
import time

from bench.slow_link import LinkShape, SlowLink


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_round_trip_pays_the_delay_both_ways_and_bytes_stay_in_order() -> None:
    server, port = _echo_server()
    link = SlowLink(f"127.0.0.1:{port}", LinkShape(delay_s=0.05, loss=0.3, seed=7))
    with server, link, socket.create_connection(("127.0.0.1", link.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        assert time.monotonic() - started >= 0.1
        sent = b"".join(i.to_bytes(4, "big") for i in range(1000))
        for offset in range(0, len(sent), 400):
            sock.sendall(sent[offset : offset + 400])
            time.sleep(0.001)
        got = b""
        while len(got) < len(sent):
            got += sock.recv(65536)
        assert got == sent
    assert link.stalls > 0
    assert link.chunks > link.stalls
