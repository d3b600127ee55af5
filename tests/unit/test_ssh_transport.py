"""SSH transport without the Docker lab.

Pure parts (target parsing, ssh_config resolution, known_hosts matching) are tested directly.
The runner itself is tested against an in-process paramiko server on 127.0.0.1 that runs exec
requests with the local `sh`, serves SFTP from the local file system and forwards direct-tcpip
channels (so ProxyJump chains are real).
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bluegreen.domain.command import Command
from bluegreen.errors import (
    AuthenticationError,
    CommandTimeout,
    ConfigError,
    HostKeyError,
    TransportError,
)
from bluegreen.transport import known_hosts
from bluegreen.transport.base import Runner, TcpRequest
from bluegreen.transport.parallel import run_parallel
from bluegreen.transport.ssh import SSHOptions, SSHRunner
from bluegreen.transport.ssh_config import Endpoint, SshDestination, parse_target, resolve


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may see the real ~/.ssh or ssh-agent."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


# -- keys ---------------------------------------------------------------------------------


def new_key(
    path: Path | None = None,
    password: bytes | None = None,
    private: ed25519.Ed25519PrivateKey | None = None,
) -> paramiko.PKey:
    private = private or ed25519.Ed25519PrivateKey.generate()
    plain = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(plain))
    if path is not None:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        text = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
        )
        path.write_bytes(text)
        path.chmod(0o600)
        path.with_name(path.name + ".pub").write_text(f"{key.get_name()} {key.get_base64()}\n")
    return key


def known_line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}\n"


# -- the in-process server ----------------------------------------------------------------


class LocalSFTP(paramiko.SFTPServerInterface):
    """SFTP straight onto the local file system (tests use absolute tmp paths)."""

    def _attempt(self, action: Any) -> Any:
        try:
            return action()
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno or 0)

    def _done(self, action: Any, *args: Any) -> Any:
        return self._attempt(lambda: [action(*args), paramiko.sftp.SFTP_OK][1])

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> Any:
        def go() -> paramiko.SFTPHandle:
            mode = attr.st_mode if attr.st_mode is not None else 0o666
            fd = os.open(path, flags, mode)
            writing = flags & (os.O_WRONLY | os.O_RDWR)
            handle = paramiko.SFTPHandle(flags)
            handle.filename = path  # type: ignore[attr-defined]
            file = os.fdopen(fd, ("r+b" if flags & os.O_RDWR else "wb") if writing else "rb")
            handle.readfile = handle.writefile = file  # type: ignore[attr-defined]
            return handle

        return self._attempt(go)

    def stat(self, path: str) -> Any:
        return self._attempt(lambda: paramiko.SFTPAttributes.from_stat(os.stat(path)))

    def lstat(self, path: str) -> Any:
        return self._attempt(lambda: paramiko.SFTPAttributes.from_stat(os.lstat(path)))

    def remove(self, path: str) -> Any:
        return self._done(os.remove, path)

    def posix_rename(self, oldpath: str, newpath: str) -> Any:
        return self._done(os.rename, oldpath, newpath)

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> Any:
        return self._done(paramiko.SFTPServer.set_file_attr, path, attr)

    def canonicalize(self, path: str) -> str:
        return os.path.realpath(path)  # like OpenSSH: symlinks resolved


class _Handler(paramiko.ServerInterface):
    def __init__(self, box: SSHBox) -> None:
        self.box = box
        self.forwards: dict[int, tuple[str, int]] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.box.auth_attempts.append((username, key.get_base64()))
        if key.asbytes() == self.box.client_key.asbytes():
            return paramiko.common.AUTH_SUCCESSFUL
        return paramiko.common.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.common.OPEN_SUCCEEDED
        return paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        self.box.forwarded.append(destination)
        self.forwards[chanid] = destination
        time.sleep(self.box.open_delay_s)  # a busy sshd: the open is confirmed late
        return paramiko.common.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        line = command.decode()
        self.box.commands.append(line)
        threading.Thread(target=self.box.execute, args=(channel, line), daemon=True).start()
        return True


class SSHBox:
    """A tiny sshd: exec through the local sh, SFTP on local files, direct-tcpip forwarding."""

    def __init__(self, host_key: paramiko.PKey, client_key: paramiko.PKey, path: str = "") -> None:
        self.host_key = host_key
        self.client_key = client_key
        self.env = dict(
            os.environ, PATH=f"{path}:{os.environ['PATH']}" if path else os.environ["PATH"]
        )
        self.commands: list[str] = []
        self.auth_attempts: list[tuple[str, str]] = []
        self.forwarded: list[tuple[str, int]] = []
        self.open_delay_s = 0.0
        self.connections = 0
        self.transports: list[paramiko.Transport] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.channels: list[paramiko.Channel] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", paramiko.SFTPServer, LocalSFTP)
        handler = _Handler(self)
        self.transports.append(transport)
        try:
            transport.start_server(server=handler)
        except (paramiko.SSHException, EOFError, OSError):
            return
        while transport.is_active():
            channel = transport.accept(0.2)
            if channel is None:
                continue
            self.channels.append(channel)  # paramiko closes channels that get garbage-collected
            destination = handler.forwards.pop(channel.get_id(), None)
            if destination is not None:
                threading.Thread(target=_forward, args=(channel, destination), daemon=True).start()

    def execute(self, channel: paramiko.Channel, line: str) -> None:
        proc = subprocess.Popen(
            ["sh", "-c", line],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        self.procs.append(proc)
        assert proc.stdin and proc.stdout and proc.stderr

        def pump(fd: int, send: Any) -> None:
            while chunk := os.read(fd, 65536):
                try:
                    send(chunk)
                except (OSError, EOFError):
                    proc.kill()  # the client went away
                    return

        def feed() -> None:
            assert proc.stdin
            sink: Any = proc.stdin
            with contextlib.suppress(OSError, EOFError):
                while data := channel.recv(65536):
                    try:
                        sink.write(data)
                        sink.flush()
                    except OSError:
                        sink = io.BytesIO()  # the command stopped reading: drain and discard
            with contextlib.suppress(OSError):
                proc.stdin.close()

        threads = [
            threading.Thread(target=pump, args=(proc.stdout.fileno(), channel.sendall)),
            threading.Thread(target=pump, args=(proc.stderr.fileno(), channel.sendall_stderr)),
        ]
        feeder = threading.Thread(target=feed, daemon=True)
        for thread in [*threads, feeder]:
            thread.start()
        status = proc.wait()
        for thread in threads:
            thread.join()
        # The client sends EOF only after it saw the exec reply; closing earlier would race
        # paramiko's reply and look like a refused exec (real sshd never does that).
        feeder.join(timeout=30)
        try:
            if status >= 0:  # killed by a signal: like sshd, no exit status to send
                channel.send_exit_status(status)
            channel.close()
        except (OSError, EOFError):
            pass

    def drop(self) -> None:
        """Kill every connection from the server side (like an sshd restart)."""
        for transport in list(self.transports):
            transport.close()

    def close(self) -> None:
        self._stopping = True
        self.listener.close()
        self.drop()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _forward(channel: paramiko.Channel, destination: tuple[str, int]) -> None:
    with contextlib.suppress(OSError, EOFError):  # teardown races are not what we test
        _pipe(channel, socket.create_connection(destination))


def _pipe(channel: paramiko.Channel, upstream: socket.socket) -> None:

    def up() -> None:
        with contextlib.suppress(OSError, EOFError):
            while data := channel.recv(65536):
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)

    threading.Thread(target=up, daemon=True).start()
    with contextlib.suppress(OSError, EOFError):
        while data := upstream.recv(65536):
            channel.sendall(data)
    channel.close()
    upstream.close()


@dataclass
class Keys:
    host: paramiko.PKey
    client: paramiko.PKey
    client_path: Path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    path = tmp_path_factory.mktemp("keys") / "id_ed25519"
    return Keys(host=new_key(), client=new_key(path), client_path=path)


@pytest.fixture
def box(keys: Keys) -> Iterator[SSHBox]:
    server = SSHBox(keys.host, keys.client)
    yield server
    server.close()


def trusting(tmp_path: Path, *boxes: SSHBox, name: str = "127.0.0.1") -> str:
    path = tmp_path / "known_hosts"
    path.write_text("".join(known_line(f"[{name}]:{b.port}", b.host_key) for b in boxes))
    return str(path)


def make_runner(tmp_path: Path, keys: Keys, known: str, **overrides: Any) -> SSHRunner:
    options: dict[str, Any] = {
        "known_hosts": known,
        "identity_file": str(keys.client_path),
        "use_agent": False,
        "ssh_config": "none",
        "connect_timeout_s": 5,
        "keepalive_s": 0,
    }
    options.update(overrides)
    return SSHRunner(SSHOptions(**options))


@pytest.fixture
def runner(tmp_path: Path, keys: Keys, box: SSHBox) -> Iterator[SSHRunner]:
    with make_runner(tmp_path, keys, trusting(tmp_path, box)) as ssh:
        yield ssh


def target(box: SSHBox) -> str:
    return f"tester@127.0.0.1:{box.port}"


# -- target parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("haproxy", SshDestination("haproxy")),
        ("root@10.92.3.22", SshDestination("10.92.3.22", "root")),
        ("deploy@web1.example.com:2222", SshDestination("web1.example.com", "deploy", 2222)),
        ("web1:22", SshDestination("web1", None, 22)),
        ("[::1]:2200", SshDestination("::1", None, 2200)),
        ("root@[fe80::1]", SshDestination("fe80::1", "root")),
        ("fe80::1", SshDestination("fe80::1")),
        ("ssh://me@host:2022", SshDestination("host", "me", 2022)),
    ],
)
def test_parse_target(text: str, expected: SshDestination) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    "text", ["", "user@", "@host", "host:0", "host:70000", "host:ab", "[::1", "[::1]x", "a b"]
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(text)


# -- ssh_config resolution ----------------------------------------------------------------


def config(text: str) -> paramiko.SSHConfig:
    return paramiko.SSHConfig.from_text(text)


def test_resolve_alias_through_ssh_config(isolated_home: Path) -> None:
    cfg = config(
        """
Host haproxy
    HostName 10.0.0.5
    User admin
    Port 2222
    IdentityFile ~/.ssh/lb_key
    IdentityFile ~/.ssh/other
    IdentitiesOnly yes
    HostKeyAlias lb
"""
    )
    endpoint = resolve("haproxy", cfg)
    assert (endpoint.hostname, endpoint.user, endpoint.port) == ("10.0.0.5", "admin", 2222)
    assert endpoint.identity_files == (
        str(isolated_home / ".ssh/lb_key"),
        str(isolated_home / ".ssh/other"),
    )
    assert endpoint.identities_only
    assert endpoint.known_hosts_name == "lb"
    assert endpoint.via is None
    assert endpoint.known_hosts_files[0] == str(isolated_home / ".ssh/known_hosts")


def test_target_values_win_over_config_and_defaults_apply(isolated_home: Path) -> None:
    cfg = config("Host web\n  User admin\n  Port 2222\n")
    endpoint = resolve("root@web:2200", cfg, identity_file="~/k", known_hosts="~/kh")
    assert (endpoint.user, endpoint.port, endpoint.hostname) == ("root", 2200, "web")
    assert endpoint.known_hosts_name == "[web]:2200"
    assert endpoint.known_hosts_files == (str(isolated_home / "kh"),)
    assert endpoint.identity_files == (str(isolated_home / "k"),)  # no defaults when one is named
    plain = resolve("other", cfg)
    assert plain.port == 22 and plain.known_hosts_name == "other"
    assert plain.identity_files[0] == str(isolated_home / ".ssh/id_ed25519")


def test_known_hosts_files_from_config() -> None:
    cfg = config("Host *\n  UserKnownHostsFile /a /b\n  GlobalKnownHostsFile none\n")
    assert resolve("h", cfg).known_hosts_files == ("/a", "/b")


def test_proxyjump_chain() -> None:
    cfg = config(
        """
Host app
    HostName 10.0.0.9
    ProxyJump bastion,deploy@inner:2022
Host bastion
    HostName bastion.example.com
    User jumper
    ProxyJump outer
Host inner
    ProxyJump ignored-because-it-is-a-later-hop
"""
    )
    endpoint = resolve("app", cfg)
    chain = endpoint.chain()
    assert [(e.target, e.hostname, e.port) for e in chain] == [
        ("outer", "outer", 22),
        ("bastion", "bastion.example.com", 22),
        ("deploy@inner:2022", "inner", 2022),
        ("app", "10.0.0.9", 22),
    ]
    assert chain[1].user == "jumper"
    assert chain[2].user == "deploy"
    assert chain[-1] is endpoint


def test_proxyjump_none_and_loops_and_proxycommand() -> None:
    assert resolve("a", config("Host a\n  ProxyJump none\n")).via is None
    with pytest.raises(ConfigError, match="ProxyJump"):
        resolve("a", config("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n"))
    with pytest.raises(ConfigError, match="ProxyCommand"):
        resolve("a", config("Host a\n  ProxyCommand nc %h %p\n"))


def test_include_is_expanded(isolated_home: Path) -> None:
    from bluegreen.transport.ssh_config import load_ssh_config

    ssh_dir = isolated_home / ".ssh"
    (ssh_dir / "config.d").mkdir()
    (ssh_dir / "config.d" / "10-lb.conf").write_text("Host lb\n  HostName 10.1.1.1\n")
    (ssh_dir / "config").write_text("Include config.d/*.conf\nHost *\n  User ops\n")
    cfg = load_ssh_config(str(ssh_dir / "config"))
    endpoint = resolve("lb", cfg)
    assert (endpoint.hostname, endpoint.user) == ("10.1.1.1", "ops")
    with pytest.raises(ConfigError, match="cannot read ssh config"):
        load_ssh_config(str(ssh_dir / "missing"))


# -- known_hosts ----------------------------------------------------------------------------


def endpoint_for(name: str, port: int = 22, files: tuple[str, ...] = ("/kh",)) -> Endpoint:
    return Endpoint(target=name, hostname=name, port=port, user="u", known_hosts_files=files)


def entries_from(tmp_path: Path, text: str) -> list[known_hosts.KnownHost]:
    path = tmp_path / "kh"
    path.write_text(text)
    return known_hosts.load([str(path), str(tmp_path / "missing")])


def test_fingerprint_matches_ssh_keygen(keys: Keys) -> None:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(keys.client_path) + ".pub"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        pytest.fail("ssh-keygen is needed: apt-get install openssh-client")
    assert known_hosts.fingerprint(keys.client) == out.stdout.split()[1]


def test_known_hosts_matching_forms(tmp_path: Path) -> None:
    a, b, c, d = new_key(), new_key(), new_key(), new_key()
    hashed = paramiko.HostKeys.hash_host("secret.example")
    entries = entries_from(
        tmp_path,
        "# comment\n\n"
        + known_line("web1,10.0.0.1", a)
        + known_line(hashed, b)
        + known_line("[web2]:2222", c)
        + known_line("*.prod.example,!db.prod.example", d)
        + "@cert-authority *.example ssh-ed25519 AAAA\n"
        + "web1 ssh-ed25519 not-base64!!\n"
        + "web1 sk-unknown-type AAAA\n"
        + "short line\n",
    )
    assert len(entries) == 4
    known_hosts.verify(endpoint_for("web1"), a, entries)
    known_hosts.verify(endpoint_for("WEB1"), a, entries)  # names are case-insensitive
    known_hosts.verify(endpoint_for("10.0.0.1"), a, entries)
    known_hosts.verify(endpoint_for("secret.example"), b, entries)
    known_hosts.verify(endpoint_for("web2", 2222), c, entries)
    known_hosts.verify(endpoint_for("app.prod.example"), d, entries)
    with pytest.raises(HostKeyError):  # [web2]:2222 does not vouch for web2 on port 22
        known_hosts.verify(endpoint_for("web2"), c, entries)
    with pytest.raises(HostKeyError):  # negated pattern
        known_hosts.verify(endpoint_for("db.prod.example"), d, entries)


def test_unknown_host_key_message(tmp_path: Path) -> None:
    offered = new_key()
    with pytest.raises(HostKeyError) as info:
        known_hosts.verify(endpoint_for("web9", 2200, ("/my/kh",)), offered, [])
    error = info.value
    assert error.host == "web9"
    assert "not known" in error.message
    assert "ssh-ed25519" in error.message
    assert known_hosts.fingerprint(offered) in error.message
    assert error.hint is not None
    assert "ssh-keyscan -p 2200 -t ed25519 web9 >> /my/kh" in error.hint
    assert "out of band" in error.hint


def test_changed_and_revoked_host_keys(tmp_path: Path) -> None:
    old, new, revoked = new_key(), new_key(), new_key()
    entries = entries_from(
        tmp_path, known_line("web1", old) + "@revoked * " + known_line("", revoked).lstrip()
    )
    with pytest.raises(HostKeyError) as info:
        known_hosts.verify(endpoint_for("web1"), new, entries)
    message = info.value.message
    assert "CHANGED" in message
    assert known_hosts.fingerprint(old) in message and known_hosts.fingerprint(new) in message
    assert f"{tmp_path / 'kh'}:1" in message
    assert info.value.hint and "ssh-keygen -R 'web1'" in info.value.hint
    with pytest.raises(HostKeyError, match="REVOKED"):
        known_hosts.verify(endpoint_for("web1"), revoked, entries)


def test_other_key_type_known_is_still_rejected(tmp_path: Path) -> None:
    rsa_line = "web1 ssh-rsa " + paramiko.RSAKey.generate(1024).get_base64() + "\n"
    entries = entries_from(tmp_path, rsa_line)
    with pytest.raises(HostKeyError, match="only has ssh-rsa keys"):
        known_hosts.verify(endpoint_for("web1"), new_key(), entries)
    offered = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert known_hosts.preferred_algorithms(entries, "web1", offered)[:3] == [
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
    ]
    assert known_hosts.preferred_algorithms(entries, "other", offered) == offered


# -- connecting: host keys and authentication -----------------------------------------------


def test_runner_satisfies_protocol(runner: SSHRunner) -> None:
    as_protocol: Runner = runner
    assert as_protocol is runner


def test_unknown_host_key_is_rejected_before_authenticating(
    tmp_path: Path, keys: Keys, box: SSHBox
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with make_runner(tmp_path, keys, str(empty)) as ssh, pytest.raises(HostKeyError) as info:
        ssh.run(target(box), Command.of("true"))
    assert known_hosts.fingerprint(keys.host) in info.value.message
    assert info.value.hint and f"ssh-keyscan -p {box.port}" in info.value.hint
    assert box.auth_attempts == []  # no signature was sent to an unverified host
    assert box.commands == []


def test_changed_host_key_is_rejected(tmp_path: Path, keys: Keys, box: SSHBox) -> None:
    other = new_key()
    path = tmp_path / "kh"
    path.write_text(known_line(f"[127.0.0.1]:{box.port}", other))
    with make_runner(tmp_path, keys, str(path)) as ssh, pytest.raises(HostKeyError) as info:
        ssh.run(target(box), Command.of("true"))
    assert "CHANGED" in info.value.message
    assert known_hosts.fingerprint(other) in info.value.message
    assert known_hosts.fingerprint(keys.host) in info.value.message
    assert box.auth_attempts == []


def test_hashed_known_hosts_entry_is_accepted(tmp_path: Path, keys: Keys, box: SSHBox) -> None:
    path = tmp_path / "kh"
    name = paramiko.HostKeys.hash_host(f"[127.0.0.1]:{box.port}")
    path.write_text(known_line(name, keys.host))
    with make_runner(tmp_path, keys, str(path)) as ssh:
        assert ssh.run(target(box), Command.of("true")).ok


def test_wrong_key_is_an_authentication_error(tmp_path: Path, keys: Keys, box: SSHBox) -> None:
    wrong = tmp_path / "wrong"
    new_key(wrong)
    known = trusting(tmp_path, box)
    with (
        make_runner(tmp_path, keys, known, identity_file=str(wrong)) as ssh,
        pytest.raises(AuthenticationError) as info,
    ):
        ssh.run(target(box), Command.of("true"))
    assert "no key was accepted" in info.value.message
    assert "tester@127.0.0.1" in info.value.message
    assert info.value.hint and "ssh-add" in info.value.hint


def test_passphrase_protected_key_gets_a_hint(tmp_path: Path, keys: Keys, box: SSHBox) -> None:
    locked = tmp_path / "locked"
    new_key(locked, password=b"pw")
    known = trusting(tmp_path, box)
    with (
        make_runner(tmp_path, keys, known, identity_file=str(locked)) as ssh,
        pytest.raises(AuthenticationError) as info,
    ):
        ssh.run(target(box), Command.of("true"))
    assert info.value.hint and f"ssh-add {locked}" in info.value.hint


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A throwaway ssh-agent; returns `add(path)` to load keys into it."""
    sock = tmp_path / "agent.sock"
    try:
        proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        pytest.fail("ssh-agent is needed: apt-get install openssh-client")
    # Ready when it accepts a connection: the socket file exists from bind(), before listen(),
    # and an `ssh-add` in that gap is refused (seen under load as a rare failure of these tests).
    deadline = time.monotonic() + 30
    while True:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(sock))
                break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"ssh-agent did not listen on {sock} within 30 s")
        time.sleep(0.02)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))

    def add(path: Path) -> None:
        subprocess.run(["ssh-add", str(path)], check=True, capture_output=True)

    yield add
    proc.kill()
    proc.wait()


def test_agent_keys_are_used(tmp_path: Path, keys: Keys, box: SSHBox, agent: Any) -> None:
    agent(keys.client_path)
    known = trusting(tmp_path, box)
    with make_runner(tmp_path, keys, known, identity_file=None, use_agent=True) as ssh:
        assert ssh.run(target(box), Command.of("true")).ok


def test_identities_only_limits_agent_keys(
    tmp_path: Path, keys: Keys, box: SSHBox, agent: Any
) -> None:
    agent(keys.client_path)
    wrong = tmp_path / "wrong"
    wrong_key = new_key(wrong)
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host 127.0.0.1\n  IdentitiesOnly yes\n  IdentityFile {wrong}\n")
    known = trusting(tmp_path, box)
    options = {"identity_file": None, "use_agent": True, "ssh_config": str(cfg)}
    with (
        make_runner(tmp_path, keys, known, **options) as ssh,
        pytest.raises(AuthenticationError),
    ):
        ssh.run(target(box), Command.of("true"))
    assert [key for _, key in box.auth_attempts] == [wrong_key.get_base64()]


def test_passphrase_protected_identity_is_used_through_the_agent(
    tmp_path: Path, keys: Keys, agent: Any
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    plain, locked = tmp_path / "plain", tmp_path / "locked"
    client = new_key(plain, private=private)
    new_key(locked, password=b"pw", private=private)
    agent(plain)
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host 127.0.0.1\n  IdentitiesOnly yes\n  IdentityFile {locked}\n")
    server = SSHBox(keys.host, client)
    try:
        known = trusting(tmp_path, server)
        options = {"identity_file": None, "use_agent": True, "ssh_config": str(cfg)}
        with make_runner(tmp_path, keys, known, **options) as ssh:
            assert ssh.run(target(server), Command.of("true")).ok
    finally:
        server.close()


def test_connection_refused_is_a_transport_error(tmp_path: Path, keys: Keys) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with (
        make_runner(tmp_path, keys, str(tmp_path / "none")) as ssh,
        pytest.raises(TransportError) as info,
    ):
        ssh.run(f"127.0.0.1:{port}", Command.of("true"))
    assert "connection refused" in info.value.message
    assert info.value.host == f"127.0.0.1:{port}"
    assert info.value.hint


# -- running commands -----------------------------------------------------------------------


def test_run_collects_streams_status_and_masks(runner: SSHRunner, box: SSHBox) -> None:
    command = Command(
        shell="printf 'out %s' \"$TOKEN\"; printf 'err\\n' >&2; exit 3",
        env=(("TOKEN", "hunter2"),),
        secrets=("hunter2",),
    )
    result = runner.run(target(box), command)
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out hunter2", "err\n")
    assert "hunter2" not in result.command
    assert result.host == target(box)
    assert result.duration_s > 0
    assert box.commands == [command.render()]


def test_run_feeds_stdin_and_decodes_leniently(runner: SSHRunner, box: SSHBox) -> None:
    result = runner.run(target(box), Command.of("cat", stdin=b"caf\xc3\xa9 \xff"))
    assert result.stdout == "café \ufffd"
    # A command that never reads stdin still ends (stdin is closed for it).
    assert runner.run(target(box), Command.of("true", stdin=b"x" * 300_000)).ok


def test_large_output_on_both_streams_and_large_input(runner: SSHRunner, box: SSHBox) -> None:
    shell = "head -c 3000000 /dev/zero | tr '\\0' o; head -c 3000000 /dev/zero | tr '\\0' e >&2"
    result = runner.run(target(box), Command(shell=shell), timeout=60)
    assert (len(result.stdout), len(result.stderr)) == (3_000_000, 3_000_000)
    echoed = runner.run(
        target(box), Command(shell="cat; cat >&2 </dev/null", stdin=b"z" * 4_000_000)
    )
    assert len(echoed.stdout) == 4_000_000


def test_timeout_closes_the_channel(runner: SSHRunner, box: SSHBox) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        runner.run(target(box), Command.of("sleep", "30"), timeout=0.5)
    assert time.monotonic() - started < 5
    assert "0.5s" in info.value.message
    assert runner.run(target(box), Command.of("true")).ok  # the connection is still usable


def test_connection_is_pooled_and_shared_by_threads(runner: SSHRunner, box: SSHBox) -> None:
    calls = [(target(box), Command.of("echo", str(i))) for i in range(6)]
    outcomes = run_parallel(runner, calls)
    assert [o.stdout if not isinstance(o, Exception) else o for o in outcomes] == [
        f"{i}\n" for i in range(6)
    ]
    runner.run(target(box), Command.of("true"))
    assert box.connections == 1


def test_dropped_connection_is_replaced_transparently(runner: SSHRunner, box: SSHBox) -> None:
    assert runner.run(target(box), Command.of("echo", "one")).stdout == "one\n"
    box.drop()
    time.sleep(0.1)
    assert runner.run(target(box), Command.of("echo", "two")).stdout == "two\n"
    assert box.connections == 2
    assert box.commands.count("echo two") == 1


def test_dead_but_active_looking_connection_is_retried_before_sending(
    runner: SSHRunner, box: SSHBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.run(target(box), Command.of("true"))
    # Opening the channel fails (as on a half-dead socket) while the transport still looks
    # alive: nothing was sent, so the runner reconnects and runs the command exactly once.
    original = paramiko.Transport.open_session
    failures = iter([paramiko.SSHException("Timeout opening channel.")])

    def flaky(self: paramiko.Transport, *args: Any, **kwargs: Any) -> paramiko.Channel:
        error = next(failures, None)
        if error is not None:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(paramiko.Transport, "open_session", flaky)
    assert runner.run(target(box), Command.of("echo", "once")).stdout == "once\n"
    assert box.commands.count("echo once") == 1
    assert box.connections == 2


def test_command_interrupted_by_a_drop_is_not_rerun(runner: SSHRunner, box: SSHBox) -> None:
    runner.run(target(box), Command.of("true"))
    threading.Timer(0.3, box.drop).start()
    with pytest.raises(TransportError) as info:
        runner.run(target(box), Command.of("sleep", "5"), timeout=10)
    assert not isinstance(info.value, CommandTimeout)
    assert "may or may not have completed" in info.value.message
    assert box.commands.count("sleep 5") == 1


def test_debug_log_shows_masked_command(
    runner: SSHRunner, box: SSHBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bluegreen.transport")
    runner.run(target(box), Command.of("echo", "pw=topsecret", secrets=("topsecret",)))
    lines = [r.getMessage() for r in caplog.records if r.name == "bluegreen.transport"]
    assert any("echo pw=******** -> exit 0" in line for line in lines)
    assert not any("topsecret" in line for line in lines)


def test_close_disconnects_and_runner_can_reconnect(runner: SSHRunner, box: SSHBox) -> None:
    runner.run(target(box), Command.of("true"))
    runner.close()
    deadline = time.monotonic() + 5
    while any(t.is_active() for t in box.transports) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.is_active() for t in box.transports)
    assert runner.run(target(box), Command.of("true")).ok
    assert box.connections == 2


# -- files over SFTP ------------------------------------------------------------------------


def files_dir(tmp_path: Path) -> Path:
    path = tmp_path / "files"
    path.mkdir()
    return path


def test_read_file(runner: SSHRunner, box: SSHBox, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_bytes(b"global\n\xff")
    assert runner.read_file(target(box), str(path)) == b"global\n\xff"
    assert runner.read_file(target(box), str(tmp_path / "missing")) is None
    with pytest.raises(TransportError):
        runner.read_file(target(box), str(tmp_path))  # a directory


def test_write_new_file_with_mode(runner: SSHRunner, box: SSHBox, tmp_path: Path) -> None:
    tmp_path = files_dir(tmp_path)
    default = tmp_path / "default.json"
    runner.write_file_atomic(target(box), str(default), b"{}")
    assert default.read_bytes() == b"{}"
    assert stat.S_IMODE(default.stat().st_mode) == 0o644
    chosen = tmp_path / "chosen.json"
    runner.write_file_atomic(target(box), str(chosen), b"{}", mode=0o640)
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if "bluegreen-tmp" in p.name) == []


def test_write_replaces_atomically_keeping_mode_and_owner(
    runner: SSHRunner, box: SSHBox, tmp_path: Path
) -> None:
    tmp_path = files_dir(tmp_path)
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, 1234, 4321)
    before = path.stat().st_ino
    runner.write_file_atomic(target(box), str(path), b"new", mode=0o644)
    info = path.stat()
    assert path.read_bytes() == b"new"
    assert info.st_ino != before  # renamed over, not rewritten in place
    assert stat.S_IMODE(info.st_mode) == 0o600
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (1234, 4321)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_write_through_a_symlink_keeps_the_link(
    runner: SSHRunner, box: SSHBox, tmp_path: Path
) -> None:
    real = tmp_path / "real.cfg"
    real.write_bytes(b"old")
    link = tmp_path / "link.cfg"
    link.symlink_to(real)
    runner.write_file_atomic(target(box), str(link), b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


def test_failed_write_leaves_no_temp_file(
    runner: SSHRunner, box: SSHBox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_path = files_dir(tmp_path)
    (tmp_path / "dir").mkdir()
    with pytest.raises(TransportError):
        runner.write_file_atomic(target(box), str(tmp_path / "dir"), b"x")  # not a regular file
    with pytest.raises(TransportError):
        runner.write_file_atomic(target(box), str(tmp_path / "nodir" / "f"), b"x")
    (tmp_path / "dir" / "keep").write_text("k")

    def rename_fails(self: paramiko.SFTPClient, old: str, new: str) -> None:
        raise OSError("rename failed")

    target_path = tmp_path / "f.cfg"
    target_path.write_bytes(b"old")
    monkeypatch.setattr(paramiko.SFTPClient, "posix_rename", rename_fails)
    with pytest.raises(TransportError, match="rename failed"):
        runner.write_file_atomic(target(box), str(target_path), b"new")
    assert target_path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "f.cfg"]


# -- sudo mode --------------------------------------------------------------------------------


@pytest.fixture
def sudo_box(keys: Keys, tmp_path: Path) -> Iterator[SSHBox]:
    """A server with a stand-in `sudo` that just runs its command, so the scripts really run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_sudo = bin_dir / "sudo"
    fake_sudo.write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    fake_sudo.chmod(0o755)
    server = SSHBox(keys.host, keys.client, path=str(bin_dir))
    yield server
    server.close()


def test_sudo_mode_runs_commands_and_files_through_sudo(
    tmp_path: Path, keys: Keys, sudo_box: SSHBox
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    existing = files / "state.json"
    existing.write_bytes(b"old")
    existing.chmod(0o600)
    host = target(sudo_box)
    with make_runner(tmp_path, keys, trusting(tmp_path, sudo_box), sudo=True) as ssh:
        result = ssh.run(host, Command.of("echo", "hi"))
        assert result.stdout == "hi\n"
        assert result.command.startswith("sudo -n ")
        assert ssh.read_file(host, str(existing)) == b"old"
        assert ssh.read_file(host, str(files / "missing")) is None
        ssh.write_file_atomic(host, str(existing), b"new \x00 bytes")
        ssh.write_file_atomic(host, str(files / "fresh"), b"f", mode=0o640)
    assert existing.read_bytes() == b"new \x00 bytes"
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert stat.S_IMODE((files / "fresh").stat().st_mode) == 0o640
    assert sorted(p.name for p in files.iterdir()) == ["fresh", "state.json"]
    assert all(line.startswith("sudo -n ") for line in sudo_box.commands)


def test_sudo_for_some_hosts_only(tmp_path: Path, keys: Keys, sudo_box: SSHBox) -> None:
    """The config's per-host `sudo = true`: that host's commands and files go through sudo, any
    other host's do not (the same box, listed as a sudo host by one runner and not the other)."""
    host = target(sudo_box)
    known = trusting(tmp_path, sudo_box)
    state = tmp_path / "state.json"
    state.write_bytes(b"x")
    with make_runner(tmp_path, keys, known, sudo_hosts=frozenset({host})) as ssh:
        assert ssh.run(host, Command.of("true")).command.startswith("sudo -n ")
        assert ssh.read_file(host, str(state)) == b"x"
    sudo_lines = len(sudo_box.commands)
    assert sudo_lines == 2 and all(line.startswith("sudo -n ") for line in sudo_box.commands)
    with make_runner(tmp_path, keys, known, sudo_hosts=frozenset({"someone@elsewhere"})) as ssh:
        assert not ssh.run(host, Command.of("true")).command.startswith("sudo")
        assert ssh.read_file(host, str(state)) == b"x"  # over SFTP: no command at all
    assert sudo_box.commands[sudo_lines:] == ["true"]


def test_the_config_sudo_flags_become_the_runners_sudo_hosts() -> None:
    from bluegreen.domain.config import config_from_dict
    from bluegreen.service import ssh_runner_for

    server = {"address": "10.0.0.1:80"}
    config = config_from_dict(
        {
            "haproxy": {"ssh": "lb", "sudo": True},
            "apps": {
                "shop": {
                    "state_file": "/s.json",
                    "frontend": "fe",
                    "app_dir": "/opt/shop",
                    "restart": "true",
                    "servers": {
                        "blue": {**server, "ssh": "deploy@blue", "sudo": True},
                        "green": {**server, "ssh": "deploy@green", "address": "10.0.0.2:80"},
                    },
                }
            },
        }
    )
    runner = ssh_runner_for(config)
    assert isinstance(runner, SSHRunner)
    assert runner.options.sudo_hosts == {"lb", "deploy@blue"}
    assert not runner.options.sudo


def test_sudo_failure_is_explained(tmp_path: Path, keys: Keys, sudo_box: SSHBox) -> None:
    host = target(sudo_box)
    with (
        make_runner(tmp_path, keys, trusting(tmp_path, sudo_box), sudo=True) as ssh,
        pytest.raises(TransportError) as info,
    ):
        ssh.write_file_atomic(host, str(tmp_path / "nodir" / "x"), b"x")
    assert "writing" in info.value.message
    assert info.value.hint


# -- TCP exchanges (direct-tcpip) -------------------------------------------------------------


def answering_peer(answer: bytes, after_s: float = 0.0) -> tuple[socket.socket, int]:
    """A TCP peer that reads one request and answers `answer` `after_s` later, then closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                time.sleep(after_s)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_slow_channel_open_is_our_path_not_the_peers_time(
    tmp_path: Path, keys: Keys, box: SSHBox
) -> None:
    """The host's sshd confirms the channel 1 s late (busy): the peer's 0.5 s start once it is
    open, and the answer's way back through the same busy path gets that 1 s again, so a peer
    answering 0.8 s after the connection still answers in time, while a silent one times out.
    An open past the connect budget is a TransportError that is not a CommandTimeout (the peer
    was never measured)."""
    box.open_delay_s = 1.0
    server, port = answering_peer(b"HTTP/1.0 200 OK\r\n\r\nok", after_s=0.8)
    with server, make_runner(tmp_path, keys, trusting(tmp_path, box)) as ssh:
        answer = ssh.exchange(target(box), TcpRequest("127.0.0.1", port, b"GET /\r\n\r\n", 0.5))
        assert answer.data.endswith(b"ok") and answer.duration_s >= 1.8
    server, port = answering_peer(b"late", after_s=5)
    with (
        server,
        make_runner(tmp_path, keys, trusting(tmp_path, box)) as ssh,
        pytest.raises(CommandTimeout, match=r"within 0.5s \+ 1\.\ds for our path"),
    ):
        ssh.exchange(target(box), TcpRequest("127.0.0.1", port, b"GET /\r\n\r\n", 0.5))
    box.open_delay_s = 2.5
    server, port = answering_peer(b"never read")
    with (
        server,
        make_runner(tmp_path, keys, trusting(tmp_path, box), connect_timeout_s=1) as ssh,
        pytest.raises(TransportError) as info,
    ):
        ssh.exchange(target(box), TcpRequest("127.0.0.1", port, b"GET /\r\n\r\n", 5))
    assert not isinstance(info.value, CommandTimeout)
    assert "did not open a connection" in info.value.message


def test_a_connection_dropped_mid_answer_is_our_path_not_a_closed_peer(
    tmp_path: Path, keys: Keys, box: SSHBox
) -> None:
    """Our SSH connection drops while the peer is still thinking: that is a TransportError, never
    an empty answer (which a probe would read as the server closing the connection on us)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    with server, make_runner(tmp_path, keys, trusting(tmp_path, box)) as ssh:
        threading.Timer(0.5, box.drop).start()
        request = TcpRequest("127.0.0.1", server.getsockname()[1], b"GET /\r\n\r\n", 5)
        with pytest.raises(TransportError) as info:
            ssh.exchange(target(box), request)
    assert not isinstance(info.value, CommandTimeout)
    assert "dropped while talking to" in info.value.message
    for conn in accepted:
        conn.close()


# -- ProxyJump ---------------------------------------------------------------------------------


def test_proxyjump_chain_over_real_connections(tmp_path: Path, keys: Keys) -> None:
    jump, app = SSHBox(new_key(), keys.client), SSHBox(keys.host, keys.client)
    try:
        cfg = tmp_path / "ssh_config"
        cfg.write_text(
            f"Host jump\n  HostName 127.0.0.1\n  Port {jump.port}\n  User hopper\n"
            f"Host app\n  HostName 127.0.0.1\n  Port {app.port}\n  User tester\n"
            "  ProxyJump jump\n"
        )
        known = trusting(tmp_path, jump, app)
        with make_runner(tmp_path, keys, known, ssh_config=str(cfg)) as ssh:
            assert ssh.run("app", Command.of("echo", "via")).stdout == "via\n"
            data = tmp_path / "d"
            data.write_text("x")
            assert ssh.read_file("app", str(data)) == b"x"
        assert jump.forwarded == [("127.0.0.1", app.port)]
        assert jump.commands == []
        assert [user for user, _ in jump.auth_attempts] == ["hopper"]

        # An unknown key on the jump host is refused just the same, naming the jump host.
        only_app = tmp_path / "only_app"
        only_app.write_text(known_line(f"[127.0.0.1]:{app.port}", keys.host))
        with (
            make_runner(tmp_path, keys, str(only_app), ssh_config=str(cfg)) as ssh,
            pytest.raises(HostKeyError) as info,
        ):
            ssh.run("app", Command.of("true"))
        assert info.value.host == "jump"
        assert known_hosts.fingerprint(jump.host_key) in info.value.message
    finally:
        jump.close()
        app.close()


def test_endpoint_reports_resolution(tmp_path: Path, keys: Keys) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host lb\n  HostName 10.9.9.9\n  User ops\n  Port 2200\n")
    ssh = SSHRunner(SSHOptions(ssh_config=str(cfg)))
    assert ssh.endpoint("lb").address == "ops@10.9.9.9:2200"
    assert ssh.endpoint("[::1]:2222").address.endswith("@[::1]:2222")


def test_base64_helper_sanity() -> None:
    # known_line writes what paramiko's parser reads back (guards the helpers above).
    key = new_key()
    blob = base64.b64decode(known_line("h", key).split()[2])
    assert paramiko.PKey.from_type_string("ssh-ed25519", blob) == key


def test_verbose_streaming_logs_whole_lines_with_secrets_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bluegreen.transport.ssh_channel import LineStreamer

    caplog.set_level(logging.DEBUG, logger="bluegreen.remote")
    streamer = LineStreamer("root@green", ("s3cr3t-value",))
    streamer.feed("out", b"building with s3cr3t-va")
    streamer.feed("out", b"lue\nstep 2\nAPI_TOKEN=abcdef123456\npart")
    streamer.feed("err", b"warning: x\n")
    streamer.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == "bluegreen.remote"]
    assert lines[0] == "root@green  | building with ********"
    assert lines[1] == "root@green  | step 2"
    assert "abcdef123456" not in lines[2]
    assert "root@green !| warning: x" in lines
    assert lines[-1] == "root@green  | part"
    assert all("s3cr3t" not in line for line in lines)


class RacingTransport:
    """Just enough of a paramiko Transport to replay the race: while our EOF is on its way out,
    paramiko's own thread handles sshd's CLOSE (the command has finished) and sends our CLOSE."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self.sent: list[int] = []  # message types in wire order
        self.clear_to_send = threading.Event()
        self.clear_to_send.set()
        self.clear_to_send_lock = threading.Lock()
        self.clear_to_send_timeout = 5.0
        self.raced = False

    def is_active(self) -> bool:
        return True

    def _unlink_channel(self, chanid: int) -> None:
        return None

    def race(self) -> None:
        """Our thread is preempted here, once: sshd's CLOSE arrives and paramiko's thread handles
        it (given 0.3 s to get ahead of us, unless a lock holds it back)."""
        if not self.raced:
            self.raced = True
            handle_close = self.channel._handle_close  # type: ignore[attr-defined]  # private, untyped
            closer = threading.Thread(target=handle_close, args=(paramiko.Message(),))
            closer.start()
            closer.join(0.3)

    def _send_message(self, message: paramiko.Message) -> None:
        self.race()
        self.sent.append(message.asbytes()[0])

    def _send_user_message(self, message: paramiko.Message) -> None:
        self.race()  # paramiko's shutdown_write gets here after releasing the channel's lock
        with self.clear_to_send_lock:
            self._send_message(message)


def test_eof_always_goes_out_before_close() -> None:
    """sshd drops the whole connection on an EOF for a channel it has freed: our EOF must never
    follow our CLOSE, however the threads interleave (paramiko's shutdown_write lets it)."""
    from bluegreen.transport.ssh_channel import shutdown_write

    channel = paramiko.Channel(1)
    transport = RacingTransport(channel)
    channel.transport = transport  # type: ignore[assignment]
    channel.active, channel.remote_chanid = True, 7
    shutdown_write(channel)
    for _ in range(50):
        if len(transport.sent) == 2:
            break
        time.sleep(0.01)
    eof, close = paramiko.common.MSG_CHANNEL_EOF, paramiko.common.MSG_CHANNEL_CLOSE
    assert transport.sent == [eof, close]
