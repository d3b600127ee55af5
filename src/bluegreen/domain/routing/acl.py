"""Whether a rule's condition matches the app's users: all of them, none, or it cannot be told.

Only what can be proven counts. A named ACL equal to the app's rule matches all of its users; an
ACL that compares the Host header exactly (`hdr(host) -i a b`) matches all of them when it lists
every app host and none of them when it lists none. Everything else is "maybe".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bluegreen.domain.haproxy_cfg import Condition, Section

Match = Literal["all", "none", "maybe"]
ALL: Match = "all"
NONE: Match = "none"
MAYBE: Match = "maybe"

_HOST_FETCHES = frozenset({"hdr(host)", "req.hdr(host)", "hdr(host,-1)", "req.hdr(host,-1)"})
_BUILTIN: dict[str, Match] = {"TRUE": ALL, "FALSE": NONE}
_FLIP: dict[Match, Match] = {ALL: NONE, NONE: ALL, MAYBE: MAYBE}


@dataclass(frozen=True)
class Users:
    """The app's users as a frontend sees them."""

    rule: str | None  # the ACL that selects them, by name
    hosts: frozenset[str]  # lower-cased Host values; empty when unknown


def exact_hosts(words: Sequence[str]) -> frozenset[str] | None:
    """The hosts an ACL body (`<fetch> [flags] <patterns>`) compares exactly, else None."""
    if not words or words[0].lower() not in _HOST_FETCHES:
        return None
    rest = list(words[1:])
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--":
            break
        if flag == "-m" and rest and rest[0] == "str":
            rest.pop(0)
        elif flag != "-i":
            return None  # -f file, -m beg/dom/reg..., -M: not an exact list
    return frozenset(host.lower() for host in rest) if rest else None


def acl_hosts(section: Section, name: str) -> frozenset[str] | None:
    """Hosts of a named ACL: every line defining it must be an exact Host comparison."""
    bodies = section.acl_bodies.get(name, ())
    hosts: set[str] = set()
    for body in bodies:
        found = exact_hosts(body)
        if found is None:
            return None
        hosts |= found
    return frozenset(hosts) if bodies else None


def defined(section: Section, name: str) -> bool:
    return name in section.acl_bodies


def _term(users: Users, section: Section, words: Sequence[str]) -> Match:
    """A single ACL term: a name, or the words of an anonymous `{ ... }` ACL."""
    if len(words) == 1:
        name = words[0]
        if name in _BUILTIN:
            return _BUILTIN[name]
        hosts = acl_hosts(section, name)
        if users.rule is not None and name == users.rule and (hosts is None or not users.hosts):
            return ALL  # the app's own rule, as the config names it
    else:
        hosts = exact_hosts(words)
    if hosts is None or not users.hosts:
        return MAYBE
    if users.hosts <= hosts:
        return ALL
    return NONE if not users.hosts & hosts else MAYBE


def _branches(condition: Condition) -> list[list[tuple[bool, list[str]]]]:
    """The condition as OR-ed branches of AND-ed (negated, words) terms."""
    branches: list[list[tuple[bool, list[str]]]] = [[]]
    words = iter(token.value for token in condition.tokens)
    negate = False
    for word in words:
        if word in ("||", "or"):
            branches.append([])
            continue
        if word == "!":
            negate = not negate
            continue
        if word.startswith("!"):
            negate, word = not negate, word[1:]
        if word == "{":
            body: list[str] = []
            for inner in words:
                if inner == "}":
                    break
                body.append(inner)
            branches[-1].append((negate, body))
        else:
            branches[-1].append((negate, [word]))
        negate = False
    return branches


def rule_hosts(section: Section, condition: Condition | None) -> tuple[str, ...]:
    """The Host values that make a rule apply, when its condition is exactly "Host is one of
    these" (`if is_x_blue`, `if { hdr(host) -i a }`, OR-ed); () when it is anything else."""
    if condition is None or condition.kind != "if":
        return ()
    hosts: set[str] = set()
    for branch in _branches(condition):
        if len(branch) != 1 or branch[0][0]:
            return ()
        words = branch[0][1]
        found = acl_hosts(section, words[0]) if len(words) == 1 else exact_hosts(words)
        if found is None:
            return ()
        hosts |= found
    return tuple(sorted(hosts))


def matches(users: Users, section: Section, condition: Condition | None) -> Match:
    """Does a rule with this condition (None: unconditional) apply to the app's users?"""
    if condition is None:
        return ALL
    results: list[Match] = []
    for branch in _branches(condition):
        terms = [
            _FLIP[_term(users, section, words)] if negate else _term(users, section, words)
            for negate, words in branch
        ]
        if not terms:
            results.append(MAYBE)
        elif NONE in terms:
            results.append(NONE)
        elif all(term == ALL for term in terms):
            results.append(ALL)
        else:
            results.append(MAYBE)
    if ALL in results:
        found = ALL
    elif all(result == NONE for result in results):
        found = NONE
    else:
        found = MAYBE
    return _FLIP[found] if condition.kind == "unless" else found
