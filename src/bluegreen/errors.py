"""The one exception tree. Every message says what happened and what to do next.

Interfaces map these to results: MCP returns them as tool errors (isError), the CLI as exit codes
(`exit_code`). Library errors (paramiko, socket, OS) are translated at the transport boundary and
never escape as themselves.
"""

from __future__ import annotations


class BlueGreenError(Exception):
    """Base of every error this tool raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(BlueGreenError):
    """The bluegreen config file is missing, unreadable or invalid."""

    exit_code = 3


class ValidationError(BlueGreenError):
    """A user-supplied value (app name, ref, path) was refused at the boundary."""

    exit_code = 2


class TransportError(BlueGreenError):
    """A host could not be reached or a command could not be run on it."""

    exit_code = 4

    def __init__(self, message: str, *, host: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host


class HostKeyError(TransportError):
    """The host offered an unknown or changed host key: never accepted silently."""


class AuthenticationError(TransportError):
    """SSH authentication failed (no agent key, no usable key file, wrong user)."""


class CommandTimeout(TransportError):
    """A remote command did not finish within its timeout."""


class ForwardingRefused(TransportError):
    """The host does not allow TCP connections through it (sshd `AllowTcpForwarding no`)."""


class TargetUnreachable(TransportError):
    """A TCP connection made from the host to a target address failed (refused, no route)."""


class CommandFailed(BlueGreenError):
    """A remote command ran and exited non-zero where success was required."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        host: str,
        exit_status: int,
        output_tail: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.exit_status = exit_status
        self.output_tail = output_tail


class HAProxyConfigError(BlueGreenError):
    """haproxy.cfg could not be parsed, or its routing for the app is ambiguous."""

    exit_code = 6


class StateFileError(BlueGreenError):
    """The state file is missing or corrupt (reported; repaired by the next write action)."""

    exit_code = 7


class LockedError(BlueGreenError):
    """Another deploy or switch holds the lock for this app."""

    exit_code = 8


class ApprovalError(BlueGreenError):
    """An action needs approval that was not given, or a confirmation token was refused."""

    exit_code = 9


class UnsafeOperationError(BlueGreenError):
    """The engine refused an action that would break a safety rule (e.g. a mutation on LIVE)."""

    exit_code = 10


class PolicyRefused(BlueGreenError):
    """The MCP safety mode (the server's or the app's) does not allow this call."""

    exit_code = 10
