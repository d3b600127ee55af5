"""A bounded load generator for lab tests: requests through the HAProxy frontend from threads,
each answer recorded with its send time and the colour that served it.

Half the threads keep connections alive. Like browsers and RFC 9110 section 9.2.2 allow, a GET
that fails on a REUSED keep-alive connection before any response byte arrived (the server closed
the idle connection as the request left, which HAProxy 2.6's old worker does at a reload) is
retried once on a new connection, and counted in `stale_retries`. Any other error is a failure.
With `more_urls` (every HAProxy node's frontend, when the lab has no virtual IP) the threads are
spread over the URLs, each URL getting keep-alive and fresh-connection threads alike."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Sample:
    sent: float
    done: float
    color: str | None
    error: str | None
    url: str | None = None  # where it went, when the load is spread over several


@dataclass
class Load:
    url: str
    threads: int = 4
    more_urls: tuple[str, ...] = ()  # the same apps behind other frontends
    host: str | None = None  # the Host header (a shared frontend picks the app by it)
    max_seconds: float = 300.0  # a hard stop, whatever the test does
    samples: list[Sample] = field(default_factory=list)
    stale_retries: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        urls = [self.url, *self.more_urls]
        for i in range(self.threads):
            url = urls[i // 2 % len(urls)]
            worker = threading.Thread(target=self._run, args=(url, i % 2 == 0), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join()

    def _run(self, url: str, keep_alive: bool) -> None:
        # http.client, not httpx: it is light enough for a few hundred requests/s on 2 cores.
        parts = urlsplit(url)
        host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
        conn: http.client.HTTPConnection | None = None
        reused = False
        deadline = self.started + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            sent = time.monotonic()
            color = error = None
            for attempt in (1, 2):
                try:
                    if conn is None:
                        conn, reused = http.client.HTTPConnection(host, port, timeout=10), False
                    conn.request("GET", path, headers={"Host": self.host} if self.host else {})
                    response = conn.getresponse()
                    body = response.read()
                    if response.status == 200:
                        color = json.loads(body).get("color")
                    else:
                        error = f"HTTP {response.status}"
                    if keep_alive and not response.will_close:
                        reused = True
                    else:
                        conn.close()
                        conn = None
                    break
                except (
                    http.client.RemoteDisconnected,
                    ConnectionResetError,
                    BrokenPipeError,
                ) as exc:
                    stale = reused and attempt == 1
                    if conn is not None:
                        conn.close()
                    conn = None
                    if stale:
                        with self._lock:
                            self.stale_retries += 1
                        continue
                    error = repr(exc)
                    break
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    error = repr(exc)
                    if conn is not None:
                        conn.close()
                    conn = None
                    break
            with self._lock:
                self.samples.append(Sample(sent, time.monotonic(), color, error, url))
        if conn is not None:
            conn.close()

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.snapshot() if s.error]

    def rate(self) -> float:
        samples = self.snapshot()
        if len(samples) < 2:
            return 0.0
        return len(samples) / (samples[-1].done - samples[0].sent)
