"""paramiko, socket and OS errors translated into the tool's exception tree (errors.py) at the
transport boundary: nothing paramiko raises leaves transport/."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import paramiko

from bluegreen.errors import (
    AuthenticationError,
    BlueGreenError,
    ForwardingRefused,
    HostKeyError,
    TransportError,
)
from bluegreen.transport import known_hosts


def sudo_failure(host: str, action: str, stderr: bytes) -> TransportError:
    reason = stderr.decode("utf-8", errors="replace").strip().splitlines()
    detail = reason[-1] if reason else "no error output"
    hint = (
        "allow the login user passwordless sudo (sudo -n) for these commands"
        if "password is required" in detail
        else "check the path and the host's permissions"
    )
    return TransportError(f"{action} on {host} failed: {detail}", host=host, hint=hint)


def forwarding_refused(host: str) -> ForwardingRefused:
    return ForwardingRefused(
        f"{host} does not allow TCP forwarding (direct-tcpip channels)",
        host=host,
        hint="allow it in sshd_config (AllowTcpForwarding local) to probe without curl",
    )


@contextmanager
def translated(host: str, action: str) -> Iterator[None]:
    """Turn library and OS errors into our exception tree, naming host and action."""
    try:
        yield
    except BlueGreenError:
        raise
    except paramiko.BadHostKeyException as exc:  # not raised by our own checks; kept as a net
        raise HostKeyError(
            f"{host}: host key has CHANGED: expected {known_hosts.fingerprint(exc.expected_key)}"
            f", offered {known_hosts.fingerprint(exc.key)}",
            host=host,
            hint="verify the new fingerprint out of band, then update known_hosts",
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise AuthenticationError(
            f"{host}: authentication failed while {action}: {exc}",
            host=host,
            hint="load the right key into ssh-agent or set IdentityFile in ~/.ssh/config",
        ) from exc
    except socket.gaierror as exc:
        raise TransportError(
            f"{host}: {action} failed: cannot resolve the host name ({exc.strerror})",
            host=host,
            hint="check the ssh target in the config and ~/.ssh/config",
        ) from exc
    except TimeoutError as exc:
        raise TransportError(
            f"{host}: {action} timed out",
            host=host,
            hint="check that the host is up and that the network or firewall lets SSH through",
        ) from exc
    except PermissionError as exc:
        raise TransportError(
            f"{host}: {action} failed: permission denied",
            host=host,
            hint="connect as a user allowed to do this, or set sudo = true",
        ) from exc
    except FileNotFoundError as exc:
        raise TransportError(
            f"{host}: {action} failed: no such file or directory",
            host=host,
            hint="check the path (and that its directory exists) on the host",
        ) from exc
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise TransportError(
            f"{host}: {action} failed: {reason(exc)}",
            host=host,
            hint="check that the host is up, sshd is running and the ssh target's port is right",
        ) from exc


def reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "host unreachable"
    if isinstance(exc, EOFError):
        return "the connection was closed by the other side"
    if isinstance(exc, paramiko.ChannelException):
        return f"the jump host could not open a connection to it ({exc.text})"
    text = str(exc).strip()
    return text or type(exc).__name__
