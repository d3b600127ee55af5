"""The one exception tree. Every message says what happened and what to do next.

Interfaces map these to results: MCP returns them as tool errors (isError), the CLI as exit codes
(`exit_code`). Library errors (paramiko, socket, OS) are translated at the transport boundary and
never escape as themselves. The tree, with each class's exit code:

    BlueGreenError ............................ 1
    ├── ValidationError ....................... 2  a user value refused at the boundary
    ├── ConfigError ........................... 3
    ├── TransportError ........................ 4  a host not reached / a command not run
    │   ├── HostKeyError, AuthenticationError, CommandTimeout
    │   └── ForwardingRefused, TargetUnreachable
    ├── CommandFailed ......................... 5  a command ran and exited non-zero
    ├── HAProxyConfigError .................... 6
    │   └── CfgChanged                             haproxy.cfg is not the file the plan read
    ├── StateFileError ........................ 7
    ├── LockedError ........................... 8
    ├── ApprovalError ......................... 9
    ├── UnsafeOperationError .................. 10
    ├── PolicyRefused ......................... 10 the MCP safety mode does not allow the call
    ├── LabError .............................. 11 the docker lab (dev and demo only)
    ├── CheckFailed ........................... 13 a step's own check said no
    │   ├── PreflightFailed                        STANDBY not fit to deploy to (disk, checkout)
    │   ├── HealthCheckFailed                      an app did not answer healthy
    │   └── TrafficCheckFailed                     traffic through HAProxy did not reach its server
    └── InternalError ......................... 70 a bug, caught in a step so it is reported

Exit codes of results that are not exceptions (the CLI's `sys.exit`):

    EXIT_ROUTING_UNCERTAIN .................... 12 inspect-cfg / check: routing not certain
    EXIT_DEPLOY_FAILED ........................ 20 a deploy ran and failed (the result says how)
    EXIT_SWITCH_FAILED ........................ 21 a switch ran or was refused (the result says how)
    EXIT_INTERNAL ............................. 70 an unexpected exception reached the CLI
"""

from __future__ import annotations

EXIT_ROUTING_UNCERTAIN = 12
EXIT_DEPLOY_FAILED = 20
EXIT_SWITCH_FAILED = 21
EXIT_INTERNAL = 70


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


class CfgChanged(HAProxyConfigError):
    """haproxy.cfg on the host is not the file the plan read (another writer came in between)."""


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


class LabError(BlueGreenError):
    """The docker lab could not be started, reached or changed."""

    exit_code = 11


class CheckFailed(BlueGreenError):
    """A step's own check failed (low disk, an unhealthy app): not a command or transport error."""

    exit_code = 13

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        output_tail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.output_tail = output_tail


class PreflightFailed(CheckFailed):
    """STANDBY is not fit to deploy to (not a checkout, too little disk)."""


class HealthCheckFailed(CheckFailed):
    """An app did not answer healthy in time."""


class TrafficCheckFailed(CheckFailed):
    """Requests through HAProxy did not reach the server they should (verify, watch)."""


class InternalError(BlueGreenError):
    """An unexpected exception (a bug) inside a step, turned into a failed step so the operation
    still reports, recovers and records what it did."""

    exit_code = EXIT_INTERNAL
