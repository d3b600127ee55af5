"""A slow, lossy link for the benchmarks, in user space: a TCP relay on 127.0.0.1 that delays every
chunk by a fixed one-way latency and, for a fraction of chunks, by an extra stall as long as a TCP
retransmission after a lost segment would take.

Why not `tc netem`: this machine's kernel has no `sch_netem` ("Specified qdisc kind is unknown"),
and no module can be loaded. A relay in front of each host's SSH port slows every byte the tool
exchanges with that host (commands, file transfers, the health probes it tunnels through the
HAProxy host's connection), which is the path whose timeouts the soak checks. Traffic between the
containers (HAProxy to the apps) is not slowed.

Loss is modelled as TCP shows it to applications: nothing is dropped, the chunk arrives late. The
stall (default 3 x RTT, at least 200 ms: Linux' minimum RTO) is what the sender's retransmission
costs.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class LinkShape:
    delay_s: float = 0.2  # one way, each direction
    loss: float = 0.02  # fraction of chunks that pay a retransmission stall
    seed: int = 1

    @property
    def stall_s(self) -> float:
        return max(0.2, 3 * 2 * self.delay_s)


@dataclass
class SlowLink:
    """Relays 127.0.0.1:<port> to `target` ("host:port") with the shape's delay and stalls."""

    target: str
    shape: LinkShape
    port: int = 0
    stalls: int = 0
    chunks: int = 0
    _server: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _rng_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.shape.seed)

    def __enter__(self) -> SlowLink:
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(0.2)
        self._server, self.port = server, server.getsockname()[1]
        self._spawn(self._accept)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        assert self._server is not None
        host, _, port = self.target.rpartition(":")
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    def _late_by(self) -> float:
        with self._rng_lock:
            self.chunks += 1
            if self._rng.random() < self.shape.loss:
                self.stalls += 1
                return self.shape.delay_s + self.shape.stall_s
            return self.shape.delay_s

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Read as fast as the source sends; deliver each chunk at its due time, in order (a
        stalled chunk holds back the ones after it, as TCP's in-order delivery does)."""
        due: deque[tuple[float, bytes]] = deque()
        ready = threading.Condition()
        closed = threading.Event()

        def deliver() -> None:
            last = 0.0
            while True:
                with ready:
                    while not due and not closed.is_set():
                        ready.wait(0.5)
                    if not due:
                        break
                    at, data = due.popleft()
                at = max(at, last)
                last = at
                time.sleep(max(0.0, at - time.monotonic()))
                try:
                    sink.sendall(data)
                except OSError:
                    break
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=deliver, daemon=True)
        sender.start()
        try:
            while not self._stop.is_set():
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    break
                if not data:
                    break
                with ready:
                    due.append((time.monotonic() + self._late_by(), data))
                    ready.notify()
        finally:
            closed.set()
            with ready:
                ready.notify()
            sender.join(timeout=30)
            with contextlib.suppress(OSError):
                source.close()
