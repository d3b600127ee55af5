"""One SSH channel's I/O for SSHRunner: feeding stdin and draining stdout/stderr together, the
end-of-input sent safely before a close, an HTTP answer read off a direct-tcpip channel, and
remote output streamed line by line (`bluegreen -v`, secrets masked, bounded)."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable

import paramiko

from bluegreen.domain.secrets import redact

# Remote output line by line (`bluegreen -v`), secrets masked.
remote_log = logging.getLogger("bluegreen.remote")
_CHUNK = 32768
EXCHANGE_MAX_BYTES = 1 << 20


class LineStreamer:
    """Remote output, a line at a time, to the `bluegreen.remote` logger (`bluegreen -v`).

    A line is shown up to SHOWN_LINE_CHARS; a line longer than LONG_LINE_BYTES (a minified bundle,
    a progress bar without newlines) is shown when it gets that long and the rest of it skipped,
    so memory and work stay bounded whatever the command prints."""

    SHOWN_LINE_CHARS = 2000
    LONG_LINE_BYTES = 65536

    def __init__(self, host: str, secrets: tuple[str, ...]) -> None:
        self.host = host
        self.secrets = secrets
        self.partial = {"out": b"", "err": b""}
        self.skipping = {"out": False, "err": False}

    def feed(self, stream: str, chunk: bytes) -> None:
        if self.skipping[stream]:
            end = chunk.find(b"\n")
            if end < 0:
                return
            self.skipping[stream] = False
            chunk = chunk[end + 1 :]
        *lines, rest = (self.partial[stream] + chunk).split(b"\n")
        for line in lines:
            self._emit(stream, line)
        if len(rest) > self.LONG_LINE_BYTES:
            self._emit(stream, rest)
            rest, self.skipping[stream] = b"", True
        self.partial[stream] = rest

    def flush(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._emit(stream, rest)
        self.partial = {"out": b"", "err": b""}
        self.skipping = {"out": False, "err": False}

    def _emit(self, stream: str, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        if len(text) > self.SHOWN_LINE_CHARS:
            text = f"{text[: self.SHOWN_LINE_CHARS]} … (a {len(line)}+ byte line, cut)"
        text = redact(text, self.secrets) or ""
        remote_log.debug("%s %s| %s", self.host, "!" if stream == "err" else " ", text)


def collect(
    channel: paramiko.Channel,
    stdin: bytes,
    deadline: float,
    streamer: LineStreamer | None = None,
) -> tuple[bytes, bytes] | None:
    """Feed stdin and drain stdout and stderr together until EOF; None when the deadline passes.

    Reading both streams while writing avoids the classic deadlock where the remote blocks on a
    full stderr pipe while we wait on stdout (or it waits for us to read before taking stdin).
    """
    out, err = bytearray(), bytearray()
    pending = memoryview(stdin)
    if not pending:
        shutdown_write(channel)
    # The channel's fd is readable when either stream has data, at EOF or on close. poll() rather
    # than select(): a long-lived server may hold file descriptors above FD_SETSIZE.
    poller = select.poll()
    poller.register(channel.fileno(), select.POLLIN)
    while True:
        if pending and channel.send_ready():
            try:
                sent = channel.send(bytes(pending[:_CHUNK]))
            except OSError:
                sent = len(pending)  # the command closed its stdin: drop the rest
            pending = pending[sent:]
            if not pending:
                shutdown_write(channel)
        while channel.recv_ready():
            chunk = channel.recv(_CHUNK)
            out += chunk
            if streamer is not None:
                streamer.feed("out", chunk)
        while channel.recv_stderr_ready():
            chunk = channel.recv_stderr(_CHUNK)
            err += chunk
            if streamer is not None:
                streamer.feed("err", chunk)
        if (channel.eof_received or channel.closed) and not (
            channel.recv_ready() or channel.recv_stderr_ready()
        ):
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        # While stdin waits for window space there is no fd to wait on: poll briefly.
        poller.poll(1000 * min(remaining, 0.01 if pending else 1.0))
    # The exit status usually follows EOF by a packet or two.
    if not channel.status_event.wait(max(deadline - time.monotonic(), 0)):
        return None
    return bytes(out), bytes(err)


def shutdown_write(channel: paramiko.Channel) -> None:
    """`channel.shutdown_write()` without its race. paramiko builds the EOF under the channel's
    lock but sends it after releasing it; when the command has already finished, paramiko's own
    thread can answer sshd's CLOSE in that gap, so our CLOSE goes out before our EOF. sshd has
    freed the channel by then and drops the WHOLE connection ("ieof packet referred to
    nonexistent channel"), cutting every command on it (seen with 50 concurrent statuses).
    Here the EOF is sent while the lock is held, so a CLOSE always follows it. The lock order
    (send lock, then channel lock) is the one paramiko's own threads never invert, and nothing
    is sent during a key exchange (the same wait as paramiko's `_send_user_message`)."""
    transport = channel.get_transport()
    started = time.monotonic()
    while True:
        transport.clear_to_send.wait(0.1)
        if not transport.is_active():
            return
        with transport.clear_to_send_lock:
            if transport.clear_to_send.is_set():
                # paramiko's private halves of shutdown_write (unchanged from paramiko 2 to 5.1).
                with channel.lock:
                    message = None if channel.closed else channel._send_eof()  # type: ignore[attr-defined]
                    if message is not None:
                        transport._send_message(message)  # type: ignore[attr-defined]
                return
        if time.monotonic() > started + transport.clear_to_send_timeout:
            raise paramiko.SSHException("Key-exchange timed out waiting for key negotiation")


def read_answer(
    channel: paramiko.Channel, deadline: float, complete: Callable[[bytes], bool] | None
) -> bytes | None:
    """What the peer sends until it closes, `complete` says it is whole, or EXCHANGE_MAX_BYTES;
    None past the deadline."""
    chunks: list[bytes] = []
    size = 0
    while size < EXCHANGE_MAX_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        channel.settimeout(remaining)
        try:
            chunk = channel.recv(_CHUNK)
        except TimeoutError:
            return None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if complete is not None and complete(b"".join(chunks)):
            break
    return b"".join(chunks)
