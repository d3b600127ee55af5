"""SSHRunner: the Runner protocol over paramiko, one pooled connection per host target.

- Targets resolve through ~/.ssh/config (ssh_config.py); ProxyJump hops are connected with the
  same strict rules and chained with direct-tcpip channels.
- Host keys are checked strictly against known_hosts (known_hosts.py): unknown, changed or revoked
  keys raise HostKeyError. There is no auto-add and no warn-and-continue.
- Authentication uses ssh-agent and key files only (ssh_auth.py).
- Connections are reused across calls and threads (paramiko multiplexes channels); a per-host
  lock only guards connecting. A dead connection is replaced once, and only while nothing of the
  command has been sent: a command that may have started is never run a second time.
- `sudo=True` prefixes every command with `sudo -n` and moves file reads/writes from SFTP (which
  cannot escalate) to sudo'd shell commands (sudo_files.py). With `sudo=False` a Command can still
  ask for sudo itself (`Command.sudo`), and files are read and written over SFTP as the login user.

Why ~530 lines: SSHRunner is one class whose connect, exec, exchange and file paths share the
pool's per-host locks and channel slots. What does not need them lives beside it: one channel's I/O
(ssh_channel.py), atomic SFTP writes (ssh_files.py), error translation (ssh_errors.py),
authentication (ssh_auth.py), ~/.ssh/config (ssh_config.py), host keys (known_hosts.py).
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TypeVar

import paramiko

from bluegreen.domain.command import Command
from bluegreen.errors import (
    CommandTimeout,
    TargetUnreachable,
    TransportError,
)
from bluegreen.transport import known_hosts, ssh_auth, ssh_config, sudo_files
from bluegreen.transport.base import CommandResult, Exchange, TcpRequest
from bluegreen.transport.ssh_channel import (
    LineStreamer,
    collect,
    read_answer,
    remote_log,
)
from bluegreen.transport.ssh_errors import forwarding_refused, sudo_failure, translated
from bluegreen.transport.ssh_files import sftp_write_atomic

log = logging.getLogger("bluegreen.transport")

T = TypeVar("T")
_NEW_FILE_MODE = 0o644
MAX_CHANNELS_PER_HOST = 6
# A connection dropped before sshd's banner (MaxStartups) is retried: 0.1-0.3 s, doubling.
HANDSHAKE_RETRIES = 5
CHANNEL_OPEN_RETRIES = 6  # a refused channel open is retried with backoff (50 ms, doubling)


@dataclass(frozen=True)
class SSHOptions:
    """How to reach hosts. Paths accept `~`.

    known_hosts: the only known_hosts file to trust; None means OpenSSH's defaults
        (UserKnownHostsFile/GlobalKnownHostsFile from ssh_config, else ~/.ssh/known_hosts and
        /etc/ssh/ssh_known_hosts).
    identity_file: a key file tried before the ssh_config IdentityFile entries.
    ssh_config: an ssh_config file; None means ~/.ssh/config when it exists, "none" means none.
    sudo: run every command with `sudo -n` and do file operations through sudo (see module doc).
    sudo_hosts: the same, for these ssh targets only (the config's per-host `sudo = true`).
    """

    known_hosts: str | None = None
    identity_file: str | None = None
    use_agent: bool = True
    ssh_config: str | None = None
    connect_timeout_s: float = 10
    command_timeout_s: float = 120
    sudo: bool = False
    sudo_hosts: frozenset[str] = frozenset()
    keepalive_s: int = 15


@dataclass
class _Connection:
    """Transports from the first jump host to the target; the last one runs our channels."""

    transports: list[paramiko.Transport]

    @property
    def transport(self) -> paramiko.Transport:
        return self.transports[-1]

    def active(self) -> bool:
        return all(t.is_active() for t in self.transports)

    def close(self) -> None:
        for transport in reversed(self.transports):
            transport.close()


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    connection: _Connection | None = None
    # sshd refuses channels past MaxSessions (default 10) per connection, and frees a closed
    # channel's slot a little late: keep the number open at once below that.
    channels: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_CHANNELS_PER_HOST)
    )


class SSHRunner:
    """Runs commands and moves files over SSH. Thread-safe; use as a context manager or close()."""

    def __init__(self, options: SSHOptions | None = None) -> None:
        self.options = options or SSHOptions()
        self._slots: dict[str, _Slot] = {}
        self._retired: list[_Connection] = []  # replaced but maybe still running commands
        self._lock = threading.Lock()
        self._config: paramiko.SSHConfig | None = None
        self._no_forwarding: set[str] = set()  # hosts whose sshd refused a direct-tcpip channel

    def __enter__(self) -> SSHRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- Runner protocol ------------------------------------------------------------------

    def run(self, host: str, command: Command, *, timeout: float | None = None) -> CommandResult:
        if self._sudo(host) and not command.sudo:
            command = replace(command, sudo=True)
        display = command.display()
        started = time.monotonic()
        status, out, err = self._exec(
            host, command.render(), command.stdin, display, timeout, stream=command.secrets
        )
        duration = time.monotonic() - started
        log.debug("%s: %s -> exit %d in %.2fs", host, display, status, duration)
        return CommandResult(
            host=host,
            command=display,
            exit_status=status,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            duration_s=duration,
        )

    def read_file(self, host: str, path: str) -> bytes | None:
        started = time.monotonic()
        data = self._sudo_read(host, path) if self._sudo(host) else self._sftp_read(host, path)
        log.debug(
            "%s: read %s -> %s in %.2fs",
            host,
            path,
            "missing" if data is None else f"{len(data)} bytes",
            time.monotonic() - started,
        )
        return data

    def exchange(self, host: str, request: TcpRequest) -> Exchange:
        if host in self._no_forwarding:
            raise forwarding_refused(host)
        where, timeout = request.where, request.timeout
        # Opening the channel is our path (the host's sshd, busy or not, makes the connection):
        # it gets the budget of opening any channel, and the peer's own time starts after it.
        open_timeout = self.options.connect_timeout_s

        def opener(transport: paramiko.Transport) -> paramiko.Channel:
            try:
                return transport.open_channel(
                    "direct-tcpip",
                    (request.address, request.port),
                    ("127.0.0.1", 0),
                    timeout=open_timeout,
                )
            except paramiko.ChannelException as exc:
                if exc.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
                    self._no_forwarding.add(host)
                    raise forwarding_refused(host) from exc
                if exc.code == paramiko.common.OPEN_FAILED_CONNECT_FAILED:
                    raise TargetUnreachable(
                        f"{host} could not connect to {where}: {exc.text}",
                        host=host,
                        hint="is the service listening there, and reachable from this host?",
                    ) from exc
                raise
            except paramiko.SSHException as exc:
                if "Timeout opening channel" not in str(exc):
                    raise  # a dead connection: _open reconnects once
                raise TransportError(
                    f"{host} did not open a connection to {where} within {open_timeout:g}s "
                    "(its SSH connection is busy, or connecting to that address hangs)",
                    host=host,
                    hint="retry; if it persists, is the address right and reachable from there?",
                ) from exc

        with self._slot(host).channels:
            self._connection(host)  # connecting is not part of the exchange's duration
            started = time.monotonic()
            channel = self._open(host, opener)
            # The peer's time starts once the channel is open. Its answer crosses our path again
            # (sshd's queue there, ours here): the delay the open just took is allowed once more.
            path_delay = time.monotonic() - started
            deadline = time.monotonic() + timeout + path_delay
            try:
                with translated(host, f"talking to {where} through it"):
                    channel.sendall(request.payload)
                    data = read_answer(channel, deadline, request.complete)
                # A channel that ends without the peer's EOF was cut by our own connection
                # dropping: the peer did not close it, so its answer (if any) says nothing.
                whole = data is not None and request.complete is not None and request.complete(data)
                if not (whole or channel.eof_received or channel.get_transport().is_active()):
                    raise TransportError(
                        f"the connection to {host} dropped while talking to {where}",
                        host=host,
                        hint="retry; the SSH connection is reopened",
                    )
            finally:
                channel.close()
        if data is None:
            path = f" + {path_delay:.1f}s for our path" if path_delay >= 0.05 else ""
            raise CommandTimeout(
                f"{where} did not answer within {timeout:g}s{path} (connected from {host})",
                host=host,
                hint="the service accepted the connection but did not respond in time",
            )
        duration = time.monotonic() - started
        log.debug("%s: exchange with %s -> %d bytes in %.3fs", host, where, len(data), duration)
        return Exchange(data, duration)

    def write_file_atomic(
        self, host: str, path: str, data: bytes, *, mode: int | None = None
    ) -> None:
        started = time.monotonic()
        new_mode = _NEW_FILE_MODE if mode is None else mode
        if self._sudo(host):
            self._sudo_write(host, path, data, new_mode)
        else:
            self._sftp_write(host, path, data, new_mode)
        log.debug(
            "%s: wrote %s (%d bytes) in %.2fs", host, path, len(data), time.monotonic() - started
        )

    def close(self) -> None:
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
            retired, self._retired = self._retired, []
        for connection in retired:
            connection.close()
        for slot in slots:
            with slot.lock:
                if slot.connection is not None:
                    slot.connection.close()
                    slot.connection = None

    # -- resolution and connecting --------------------------------------------------------

    def endpoint(self, host: str) -> ssh_config.Endpoint:
        """How `host` will be reached (after ~/.ssh/config), without connecting."""
        return ssh_config.resolve(
            host,
            self._ssh_config(),
            identity_file=self.options.identity_file,
            known_hosts=self.options.known_hosts,
        )

    def _ssh_config(self) -> paramiko.SSHConfig:
        with self._lock:
            if self._config is None:
                path = self.options.ssh_config
                if path is None:
                    path = ssh_config.default_ssh_config_path()
                elif path.lower() == "none":
                    path = None
                self._config = ssh_config.load_ssh_config(path)
            return self._config

    def _slot(self, host: str) -> _Slot:
        with self._lock:
            return self._slots.setdefault(host, _Slot())

    def _connection(self, host: str) -> _Connection:
        slot = self._slot(host)
        with slot.lock:
            if slot.connection is not None:
                if slot.connection.active():
                    return slot.connection
                log.debug("%s: pooled connection dropped, reconnecting", host)
                slot.connection.close()
                slot.connection = None
            slot.connection = self._connect(self.endpoint(host))
            return slot.connection

    def _discard(self, host: str, connection: _Connection) -> None:
        """Take a suspect connection out of the pool. One that still looks alive is retired, not
        closed: other threads may be running commands on it, and closing it would cut them off."""
        slot = self._slot(host)
        with slot.lock:
            if slot.connection is connection:
                slot.connection = None
        if not connection.active():
            connection.close()
            return
        with self._lock:
            dead = [c for c in self._retired if not c.active()]
            self._retired = [c for c in self._retired if c.active()] + [connection]
        for old in dead:
            old.close()  # also closes jump-host transports that may still be up

    def _connect(self, endpoint: ssh_config.Endpoint) -> _Connection:
        transports: list[paramiko.Transport] = []
        try:
            for hop in endpoint.chain():
                role = "" if hop is endpoint else f" (jump host for {endpoint.target})"
                with translated(hop.target, f"connecting to {hop.address}{role}"):
                    transports.append(
                        self._connect_hop(hop, transports[-1] if transports else None)
                    )
        except BaseException:
            for transport in reversed(transports):
                transport.close()
            raise
        log.debug("%s: connected to %s", endpoint.target, endpoint.address)
        return _Connection(transports)

    def _connect_hop(
        self, hop: ssh_config.Endpoint, previous: paramiko.Transport | None
    ) -> paramiko.Transport:
        """Connect and authenticate one hop. sshd drops connections beyond its MaxStartups
        (many clients at once) before its banner: that is retried with a jittered backoff, since
        nothing was sent; refused connections, bad host keys and failed logins are not."""
        for attempt in range(HANDSHAKE_RETRIES + 1):
            sock = self._open_socket(hop, previous)
            try:
                return self._handshake(hop, sock)
            except (paramiko.SSHException, EOFError, ConnectionResetError) as exc:
                dropped = isinstance(exc, EOFError | ConnectionResetError) or "banner" in str(exc)
                if not dropped or isinstance(exc, paramiko.AuthenticationException):
                    raise
                if attempt == HANDSHAKE_RETRIES:
                    raise
                log.debug("%s: dropped before its banner (%s), retrying", hop.target, exc)
                time.sleep(random.uniform(0.1, 0.3) * 2**attempt)
        raise AssertionError("unreachable")

    def _open_socket(
        self, hop: ssh_config.Endpoint, previous: paramiko.Transport | None
    ) -> socket.socket | paramiko.Channel:
        if previous is None:
            sock = socket.create_connection(
                (hop.hostname, hop.port), timeout=self.options.connect_timeout_s
            )
            # Without it, Nagle's algorithm and delayed ACKs add ~40 ms to every small command.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        return previous.open_channel(
            "direct-tcpip",
            dest_addr=(hop.hostname, hop.port),
            src_addr=("127.0.0.1", 0),
            timeout=self.options.connect_timeout_s,
        )

    def _handshake(
        self, hop: ssh_config.Endpoint, sock: socket.socket | paramiko.Channel
    ) -> paramiko.Transport:
        timeout = self.options.connect_timeout_s
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = transport.handshake_timeout = timeout
            transport.auth_timeout = max(timeout, 30.0)  # agent keys may wait for a touch
            entries = known_hosts.load(hop.known_hosts_files)
            security = transport.get_security_options()
            security.key_types = known_hosts.preferred_algorithms(
                entries, hop.known_hosts_name, security.key_types
            )
            transport.start_client(timeout=timeout)
            # Checked before authenticating: no key signature goes to an unverified host.
            known_hosts.verify(hop, transport.get_remote_server_key(), entries)
            ssh_auth.authenticate(transport, hop, use_agent=self.options.use_agent)
            if self.options.keepalive_s > 0:
                transport.set_keepalive(self.options.keepalive_s)
        except BaseException:
            transport.close()
            sock.close()  # not owned by the transport until it started
            raise
        return transport

    def _open(self, host: str, opener: Callable[[paramiko.Transport], T]) -> T:
        """Open a channel on the pooled connection, replacing a dead connection once.

        Safe to retry: nothing of the command or file operation has been sent yet.
        """
        connection = self._connection(host)
        try:
            for attempt in range(CHANNEL_OPEN_RETRIES + 1):
                try:
                    return opener(connection.transport)
                except paramiko.ChannelException as exc:
                    if attempt == CHANNEL_OPEN_RETRIES:
                        raise TransportError(
                            f"{host} refused a new SSH channel: {exc.text}",
                            host=host,
                            hint="the host may limit sessions per connection (sshd MaxSessions)",
                        ) from exc
                    time.sleep(0.05 * 2**attempt)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("%s: opening a channel failed (%s), reconnecting once", host, exc)
            self._discard(host, connection)
        connection = self._connection(host)
        with translated(host, "opening an SSH channel"):
            return opener(connection.transport)

    # -- commands -------------------------------------------------------------------------

    def _exec(
        self,
        host: str,
        line: str,
        stdin: bytes | None,
        display: str,
        timeout: float | None,
        stream: tuple[str, ...] | None = None,
    ) -> tuple[int, bytes, bytes]:
        """`stream`: log the remote output line by line as it arrives (at DEBUG on
        `bluegreen.remote`, masking these secrets); None for file transfers, never streamed."""
        with self._slot(host).channels:
            return self._exec_in_slot(host, line, stdin, display, timeout, stream)

    def _exec_in_slot(
        self,
        host: str,
        line: str,
        stdin: bytes | None,
        display: str,
        timeout: float | None,
        stream: tuple[str, ...] | None,
    ) -> tuple[int, bytes, bytes]:
        streamer = (
            LineStreamer(host, stream)
            if stream is not None and remote_log.isEnabledFor(logging.DEBUG)
            else None
        )
        limit = self.options.command_timeout_s if timeout is None else timeout
        timeout_s = self.options.connect_timeout_s
        channel = self._open(host, lambda t: t.open_session(timeout=timeout_s))
        try:
            with translated(host, f"running `{display}`"):
                channel.exec_command(line)
                outcome = collect(channel, stdin or b"", time.monotonic() + limit, streamer)
                if streamer is not None:
                    streamer.flush()
            if outcome is None:
                raise CommandTimeout(
                    f"`{display}` on {host} did not finish within {limit:g}s; the channel was "
                    "closed, but the command may still be running there",
                    host=host,
                    hint="raise the timeout or check the host for a hung process",
                )
            transport = channel.get_transport()
            # -1 means no exit-status arrived: a dead connection, or a command killed by a signal.
            if channel.exit_status == -1 and (
                not transport.is_active() or transport.saved_exception is not None
            ):
                raise TransportError(
                    f"the connection to {host} dropped while `{display}` was running; it may or "
                    "may not have completed",
                    host=host,
                    hint="check the host's state before retrying",
                )
            return channel.exit_status, outcome[0], outcome[1]
        finally:
            channel.close()

    # -- files over SFTP ------------------------------------------------------------------

    def _sftp(self, host: str) -> paramiko.SFTPClient:
        def opener(transport: paramiko.Transport) -> paramiko.SFTPClient:
            client = paramiko.SFTPClient.from_transport(transport)
            if client is None:
                raise paramiko.SSHException("the SFTP subsystem did not start")
            return client

        return self._open(host, opener)

    def _sftp_read(self, host: str, path: str) -> bytes | None:
        with self._slot(host).channels:
            return self._sftp_read_in_slot(host, path)

    def _sftp_read_in_slot(self, host: str, path: str) -> bytes | None:
        sftp = self._sftp(host)
        try:
            with translated(host, f"reading {path}"):
                try:
                    with sftp.open(path, "rb") as handle:
                        return handle.read()
                except FileNotFoundError:
                    return None
        finally:
            sftp.close()

    def _sftp_write(self, host: str, path: str, data: bytes, new_mode: int) -> None:
        with self._slot(host).channels:
            sftp = self._sftp(host)
            try:
                with translated(host, f"writing {path}"):
                    sftp_write_atomic(sftp, host, path, data, new_mode)
            finally:
                sftp.close()

    # -- files through sudo ---------------------------------------------------------------

    def _sudo(self, host: str) -> bool:
        return self.options.sudo or host in self.options.sudo_hosts

    def _sudo_read(self, host: str, path: str) -> bytes | None:
        command = sudo_files.read_command(path)
        status, out, err = self._exec(host, command.render(), None, f"read {path}", None)
        if status == sudo_files.MISSING_STATUS:
            return None
        if status != 0:
            raise sudo_failure(host, f"reading {path}", err)
        return out

    def _sudo_write(self, host: str, path: str, data: bytes, new_mode: int) -> None:
        command = sudo_files.write_command(path, data, new_mode)
        status, _, err = self._exec(host, command.render(), data, f"write {path}", None)
        if status != 0:
            raise sudo_failure(host, f"writing {path}", err)
