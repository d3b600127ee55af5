"""Where a frontend sends the app's users, with HAProxy's semantics.

The first `use_backend` whose condition matches wins; `default_backend` (the proxy's own, else the
one of the defaults section it inherits) takes whatever no rule matched. A rule that provably never
sees the app's users is a preview line (to a colour) or another app's line; a rule that may see
them, to a colour, makes the answer uncertain; lines after an unconditional `use_backend` are dead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bluegreen.domain.haproxy_cfg import Line, Section
from bluegreen.domain.routing.acl import ALL, NONE, matches, rule_hosts
from bluegreen.domain.routing.context import Work

# backend name -> (who, colour): who names it in sentences ("BLUE", "backend app"); colour is
# set for a colour's own backend (its rules are preview lines when no user of the app hits them).
Targets = Mapping[str, tuple[str, str | None]]


@dataclass(frozen=True)
class Decision:
    """The line that routes the app's users in one frontend, and lines that move with it."""

    front: Section
    line: Line
    backend: str | None  # None: a name built at run time (`%[...]`)
    also: tuple[Line, ...] = ()  # a default_backend sending other users to the same backend


def backend_of(line: Line) -> str | None:
    name = line.args[0].value if line.args else None
    return None if name is None or "%[" in name else name


def _label(front: Section) -> str:
    return f"{front.kind} {front.name}"


def _cannot_reason(work: Work, front: Section, line: Line, backend: str | None) -> None:
    what = "a backend chosen at run time" if backend is None else backend
    hint = (
        ""
        if work.traffic.rule or work.traffic.hosts
        else " If it is for other users, name the app's ACL (`rule`) or `hosts` in the config."
    )
    work.problem(
        f"{work.at(line.number, opening=True)} of {_label(front)} sends traffic to {what} "
        f"({line.text.strip()!r}); the tool cannot reason about that rule.{hint}"
    )


def _conflict(work: Work, front: Section, first: Line, who: str, dead: Line, dead_who: str) -> None:
    work.problem(
        f"The {_label(front)} routes to more than one colour: {who} ({work.at(first.number)}), "
        f"{dead_who} ({work.at(dead.number)}); {work.at(dead.number)} is never used, which "
        "misleads every reader: remove it."
    )


def decide(work: Work, front: Section, targets: Targets) -> Decision | None:
    """The line deciding where `front` sends the app's users (None: nowhere)."""
    users = work.users(front)
    decision: Line | None = None
    for line in front.directives("use_backend"):
        backend = backend_of(line)
        target = targets.get(backend) if backend is not None else ("a run-time backend", None)
        if line.depth and (target is not None or line.condition is None):
            work.problem(
                f"{work.at(line.number, opening=True)} of {_label(front)} "
                f"({line.text.strip()!r}) is inside a .if block; the tool cannot tell whether "
                "HAProxy reads it."
            )
        match = matches(users, front, line.condition)
        if decision is None and match == ALL:
            decision = line
            if backend is None:
                _cannot_reason(work, front, line, None)
            continue
        if target is None:
            work.keep("other", line, backend)
        elif match == NONE:
            work.keep("preview", line, backend, target[1], rule_hosts(front, line.condition))
        elif decision is not None and (
            decision.condition is None or _same_condition(decision, line)
        ):
            _dead(work, front, decision, line, targets)
        else:
            _cannot_reason(work, front, line, backend)  # it may see some of the app's users
    return _with_default(work, front, decision, targets)


def _same_condition(a: Line, b: Line) -> bool:
    def words(line: Line) -> list[str]:
        condition = line.condition
        return [] if condition is None else [condition.kind, *(t.value for t in condition.tokens)]

    return words(a) == words(b)


def _dead(work: Work, front: Section, decision: Line, line: Line, targets: Targets) -> None:
    """A line the decision shadows for the app's users: harmless when it agrees, else misleading."""
    decided = targets.get(backend_of(decision) or "")
    target = targets.get(backend_of(line) or "")
    if decided is not None and target is not None and decided[0] == target[0]:
        work.note(
            f"{work.at(line.number, opening=True)} of {_label(front)} is never used for the "
            f"app's users: {work.at(decision.number)} decides first."
        )
    elif decided is not None and target is not None:
        _conflict(work, front, decision, decided[0], line, target[0])
    else:
        work.problem(
            f"{work.at(line.number, opening=True)} of {_label(front)} ({line.text.strip()!r}) is "
            f"never used: {work.at(decision.number)} ({decision.text.strip()!r}) catches every "
            "request first; remove the dead line or the one before it."
        )


def _with_default(
    work: Work, front: Section, decision: Line | None, targets: Targets
) -> Decision | None:
    own = front.directives("default_backend")
    if len(own) > 1:
        work.problem(
            f"The {_label(front)} has several default_backend lines "
            f"({work.lines([line.number for line in own]).removeprefix('lines ')})."
        )
    parent = work.cfg.defaults_for(front)
    inherited = parent.directives("default_backend") if parent is not None and not own else ()
    fallback = (own or inherited or (None,))[-1]
    if fallback is not None and fallback.depth:
        work.problem(
            f"{work.at(fallback.number, opening=True)} of {_label(front)} "
            f"({fallback.text.strip()!r}) is inside a .if block; the tool cannot tell whether "
            "HAProxy reads it."
        )
    if decision is None:
        if fallback is None:
            return None
        if inherited:
            work.note(
                f"The {_label(front)} takes its default_backend from the defaults section "
                f"({work.at(fallback.number)}): a switch edits that line, for every proxy that "
                "inherits it."
            )
        return Decision(front, fallback, backend_of(fallback))
    backend = backend_of(decision)
    if fallback is None or backend_of(fallback) not in targets:
        if fallback is not None and decision.condition is not None:
            work.keep("other", fallback, backend_of(fallback))
        return Decision(front, decision, backend)
    if decision.condition is None:
        _dead(work, front, decision, fallback, targets)
        return Decision(front, decision, backend)
    if backend_of(fallback) == backend:
        return Decision(front, decision, backend, (fallback,))  # both move at a switch
    work.problem(
        f"The {_label(front)} sends the requests no rule matches to {backend_of(fallback)} "
        f"({work.at(fallback.number)}) while the app's users go to {backend} "
        f"({work.at(decision.number)}); a switch would leave those requests where they are."
    )
    return Decision(front, decision, backend)
