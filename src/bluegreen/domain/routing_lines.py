"""The haproxy.cfg lines that route one app, each with why it matters (the `routing` resource).

Taken from the routing analysis: the frontend, the deciding rule(s), each colour's backend and
server line. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.domain.haproxy_cfg import HAProxyConfig
from bluegreen.domain.routing import RoutingAnalysis


@dataclass(frozen=True)
class CfgLine:
    number: int
    text: str
    why: str


def routing_lines(cfg: HAProxyConfig, analysis: RoutingAnalysis) -> list[CfgLine]:
    """The app's lines in file order; a line with several reasons lists them all."""
    reasons: dict[int, list[str]] = {}

    def add(number: int | None, why: str) -> None:
        if number is not None and why not in reasons.setdefault(number, []):
            reasons[number].append(why)

    add(analysis.frontend_line, f"frontend {analysis.frontend}")
    for number in analysis.deciding_lines:
        add(number, "decides LIVE")
    for route in analysis.colors:
        colour = route.color.upper()
        add(route.backend_line, f"{colour}'s backend")
        add(route.server_line, f"{colour}'s server")
        for number in set(route.deciding_lines) - set(analysis.deciding_lines):
            add(number, f"decides {colour}'s role")
    return [
        CfgLine(number, cfg.line(number).text, ", ".join(why))
        for number, why in sorted(reasons.items())
    ]
