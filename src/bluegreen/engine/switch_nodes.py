"""A switch step on every HAProxy node at once ([haproxy.nodes]): the nodes change as one.

With one node a step runs as it always did (its host in the step). With several, the step runs
on every node in parallel and is ONE step in the report: its message names each node, and when
any node fails the step fails with an error naming every node that failed (the same kind of error,
so the switch's recovery decides as it would for one host). Step events stay on the caller's
thread: the MCP progress bridge only delivers from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from bluegreen.engine.steps import StepRecorder, internal_error
from bluegreen.errors import BlueGreenError, CfgChanged, TransportError
from bluegreen.transport.parallel import parallel


class Node(Protocol):
    """What a step on every node needs of each node: its name and its ssh target."""

    @property
    def name(self) -> str: ...

    @property
    def host(self) -> str: ...


N = TypeVar("N", bound=Node)


def on_every_node(
    steps: StepRecorder,
    name: str,
    changes: Sequence[N],
    action: Callable[[N], str],
) -> dict[str, float]:
    """Step `name`: `action` on every node (in parallel when several). Returns when each node's
    action finished (time.monotonic(), by node name); raises when any failed."""
    done: dict[str, float] = {}

    def timed(change: N) -> Callable[[], str]:
        def run() -> str:
            message = action(change)
            done[change.name] = time.monotonic()
            return message

        return run

    if len(changes) == 1:
        steps.run(name, timed(changes[0]), changes[0].host)
        return done

    def all_nodes() -> str:
        outcomes = parallel([timed(c) for c in changes])
        failed = [
            (c, o) for c, o in zip(changes, outcomes, strict=True) if isinstance(o, Exception)
        ]
        if failed:
            raise combined(failed, len(changes))
        return "; ".join(f"{c.name}: {o or 'done'}" for c, o in zip(changes, outcomes, strict=True))

    steps.run(name, all_nodes)
    return done


def combined(failed: Sequence[tuple[Node, Exception]], total: int) -> BlueGreenError:
    """One error for the nodes that failed, each named, of the kind that decides what follows:
    a cfg another writer changed first, then any other refusal, then a host not reached (which
    the restore retries)."""
    errors = [
        (c, e if isinstance(e, BlueGreenError) else internal_error(f"node {c.name}", e))
        for c, e in failed
    ]

    def rank(item: tuple[Node, BlueGreenError]) -> int:
        error = item[1]
        return 0 if isinstance(error, CfgChanged) else 2 if isinstance(error, TransportError) else 1

    first = min(errors, key=rank)[1]
    # The same class and fields (host, exit status, output), without its __init__ (keyword-only).
    lead = type(first).__new__(type(first))
    lead.__dict__.update(first.__dict__)
    said = "; ".join(f"node {c.name} ({c.host}): {e}" for c, e in errors)
    lead.message = f"{len(errors)} of {total} HAProxy nodes failed: {said}"
    lead.hint = None
    lead.args = (lead.message,)
    return lead


def spread_ms(done: dict[str, float]) -> float | None:
    """How far apart the nodes finished a step, in ms (None with one node)."""
    if len(done) < 2:
        return None
    return round((max(done.values()) - min(done.values())) * 1000, 1)
