"""Commands as data: an argv list rendered with shlex, never string formatting.

A `Command` is what the engine asks a Runner to run. `render()` quotes every argument so no user
value can change the shape of the shell line; `display()` is the same line with secrets masked, for
logs, plans and results.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

MASK = "********"


@dataclass(frozen=True)
class Command:
    """One remote command.

    argv: the program and its arguments, each passed as one word.
    shell: a trusted snippet from the operator's config (e.g. `npm ci && npm run build`), run with
        `sh -c`; only config values go here, never values from a request.
    cwd: run in this directory (quoted; the command fails when it does not exist).
    env: extra environment variables (names validated, values quoted).
    sudo: prefix with `sudo -n` (never prompts; fails when sudo would need a password).
    secrets: substrings masked by `display()`.
    mutating: False for read-only probes. The engine uses it to guard LIVE hosts.
    stdin: bytes fed to the command's standard input.
    """

    argv: tuple[str, ...] = ()
    shell: str | None = None
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    sudo: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)
    mutating: bool = True
    stdin: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if bool(self.argv) == (self.shell is not None):
            raise ValueError("a Command has exactly one of argv or shell")
        for name, _ in self.env:
            if not name.replace("_", "a").isalnum() or name[0].isdigit():
                raise ValueError(f"invalid environment variable name: {name!r}")

    @classmethod
    def of(cls, *argv: str, mutating: bool = True, **kwargs: object) -> Command:
        return cls(argv=tuple(argv), mutating=mutating, **kwargs)  # type: ignore[arg-type]

    def render(self) -> str:
        """The exact line sent to the remote shell."""
        body = self.shell_body()
        prefix = ["sudo", "-n"] if self.sudo else []
        if self.sudo or self.env or self.cwd:
            inner = body
            if self.cwd:
                inner = f"cd {shlex.quote(self.cwd)} && {inner}"
            words = [*prefix, *(["env", *(f"{k}={v}" for k, v in self.env)] if self.env else [])]
            return (
                shlex.join([*words, "sh", "-c", inner]) if words else f"sh -c {shlex.quote(inner)}"
            )
        return body

    def shell_body(self) -> str:
        return self.shell if self.shell is not None else shlex.join(self.argv)

    def display(self) -> str:
        """The rendered line with every secret replaced by a mask."""
        return mask(self.render(), self.secrets)


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK).replace(shlex.quote(secret), MASK)
    return text
