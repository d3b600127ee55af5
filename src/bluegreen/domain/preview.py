"""Where a person tests a colour now, whatever is LIVE (pure).

The users' haproxy.cfg has a fixed preview rule per colour (`use_backend theoshift_green if
is_theoshift_green`, the ACL naming `green.theoshift.com`): a request to the frontend with that
Host reaches that colour before and after every switch. Without such a rule the colour is
reached straight at its address, as HAProxy reaches it (which may not be reachable from where
the person is: the status says so).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from bluegreen.domain.switch_commands import Bind

_TARGET = re.compile(r"(?:[^@]*@)?(?P<host>\[[^\]]+\]|[^:]+)(?::[0-9]+)?")


def ssh_host(target: str) -> str:
    """The host of an ssh target (`root@10.92.3.26:22` -> `10.92.3.26`; an alias stays as it is)."""
    match = _TARGET.fullmatch(target)
    return match.group("host") if match else target


def public_frontend_url(configured: str | None, bind: Bind | None, haproxy_ssh: str) -> str | None:
    """The app's `frontend_url` when configured, else the frontend's bind on the HAProxy host
    (a wildcard bind: the host the tool reaches over ssh); None when there is neither."""
    if configured:
        return configured
    return bind.url(ssh_host(haproxy_ssh)) if bind else None


@dataclass(frozen=True)
class HowToReach:
    command: str  # a curl, shell-quoted
    note: str  # which way it goes, in words


def preview_command(
    frontend_url: str | None, hosts: Sequence[str], where: str | None, address: str
) -> HowToReach:
    """A curl that reaches one colour: through the frontend with its preview Host (`where`: the
    rule's FILE:LINE), else (no preview rule with a Host, or no frontend address) straight at
    its address."""
    if hosts and frontend_url:
        return HowToReach(
            shlex.join(["curl", "-H", f"Host: {hosts[0]}", f"{frontend_url}/"]),
            f"through the frontend with its preview Host ({where})",
        )
    why = "no preview rule with a Host" if frontend_url else "no frontend address"
    return HowToReach(
        shlex.join(["curl", f"http://{address}/"]),
        f"straight at its address, as HAProxy reaches it ({why} in haproxy.cfg)",
    )
