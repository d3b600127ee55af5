"""The per-app state file: `{"prod", "live", "standby", "lastSwitch", "switchCount"}` as JSON.

It is a secondary record (haproxy.cfg is the truth), written by hand in the past, so reading it
never raises: `parse_state` reports what is missing or malformed and keeps whatever was valid.
Writing keeps every key it does not own, in its original order, so other tools' data survives.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

from bluegreen.errors import StateFileError

PROD: Final = "prod"
LIVE: Final = "live"
STANDBY: Final = "standby"
LAST_SWITCH: Final = "lastSwitch"
SWITCH_COUNT: Final = "switchCount"
KNOWN_KEYS: Final = (PROD, LIVE, STANDBY, LAST_SWITCH, SWITCH_COUNT)  # the reference's order
COLOR_KEYS: Final = (PROD, LIVE, STANDBY)

StateStatus = Literal["ok", "missing", "corrupt", "invalid"]


@dataclass(frozen=True)
class StateFile:
    """The valid fields of a state file (None where absent or malformed) and the whole document."""

    prod: str | None = None
    live: str | None = None
    standby: str | None = None
    last_switch: datetime | None = None
    switch_count: int | None = None
    # The parsed JSON object as read, key order kept; the base for every rewrite.
    document: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    def color(self, key: str) -> str | None:
        value: str | None = getattr(self, key)
        return value

    @property
    def extra(self) -> dict[str, Any]:
        """Keys this tool does not own, in file order."""
        return {k: v for k, v in self.document.items() if k not in KNOWN_KEYS}


@dataclass(frozen=True)
class FieldProblem:
    key: str  # the JSON key, e.g. "live" or "switchCount"
    value: Any  # what the file holds there (None when the key is absent)
    message: str


@dataclass(frozen=True)
class StateReading:
    status: StateStatus
    state: StateFile
    message: str | None = None  # file-level problem: missing, or not a JSON object
    problems: tuple[FieldProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def problem(self, key: str) -> FieldProblem | None:
        return next((p for p in self.problems if p.key == key), None)

    def describe(self) -> list[str]:
        """One sentence per problem, for status output."""
        head = [self.message] if self.message else []
        return head + [p.message for p in self.problems]

    def as_error(self) -> StateFileError | None:
        """For callers that must stop on a bad file (most just report it)."""
        if self.ok:
            return None
        hint = "the next deploy or switch rewrites it from haproxy.cfg"
        return StateFileError("; ".join(self.describe()), hint=hint)


def parse_state(raw: bytes | None, colors: Collection[str] | None = None) -> StateReading:
    """Read state file bytes (None: the file does not exist). Never raises.

    colors: when given, the colour fields must be one of these names (case-insensitive).
    """
    if raw is None:
        return StateReading("missing", StateFile(), "the state file does not exist")
    document, error = _decode(raw)
    if document is None:
        return StateReading("corrupt", StateFile(), f"the state file is corrupt: {error}")
    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for key in COLOR_KEYS:
        values[key], problem = _color(document, key, colors)
        problems += [problem] if problem else []
    values["last_switch"], problem = _timestamp(document)
    problems += [problem] if problem else []
    values["switch_count"], problem = _count(document)
    problems += [problem] if problem else []
    state = StateFile(**values, document=MappingProxyType(dict(document)))
    return StateReading("invalid" if problems else "ok", state, None, tuple(problems))


def _decode(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    if not raw.strip():
        return None, "it is empty"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (bad byte at offset {exc.start})"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if not isinstance(document, dict):
        return None, f"expected a JSON object, got {_json_kind(document)}"
    return document, ""


def _color(
    document: Mapping[str, Any], key: str, colors: Collection[str] | None
) -> tuple[str | None, FieldProblem | None]:
    if key not in document:
        return None, FieldProblem(key, None, f"the state file has no {key!r}")
    value = document[key]
    if not isinstance(value, str) or not value.strip():
        message = f"the state file's {key!r} is {shown(value)}, expected a colour name"
        return None, FieldProblem(key, value, message)
    color = value.strip().lower()
    if colors is not None and color not in colors:
        names = ", ".join(colors)
        message = f"the state file's {key!r} is {shown(value)}, not one of {names}"
        return None, FieldProblem(key, value, message)
    return color, None


def _timestamp(document: Mapping[str, Any]) -> tuple[datetime | None, FieldProblem | None]:
    value = document.get(LAST_SWITCH)
    if value is None:  # absent or null: never switched
        return None, None
    parsed = parse_timestamp(value) if isinstance(value, str) else None
    if parsed is None:
        message = f"the state file's 'lastSwitch' is {shown(value)}, expected an ISO 8601 time"
        return None, FieldProblem(LAST_SWITCH, value, message)
    return parsed, None


def _count(document: Mapping[str, Any]) -> tuple[int | None, FieldProblem | None]:
    if SWITCH_COUNT not in document:
        return None, None
    value = document[SWITCH_COUNT]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, None
    message = f"the state file's 'switchCount' is {shown(value)}, expected a whole number >= 0"
    return None, FieldProblem(SWITCH_COUNT, value, message)


def parse_timestamp(text: str) -> datetime | None:
    """ISO 8601 as JavaScript and Python write it: `Z` or an offset; no offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """`2025-12-21T10:00:00Z`: UTC, whole seconds, like the reference file."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- writing -------------------------------------------------------------------------------


def updated_for_switch(state: StateFile, new_live: str, new_standby: str, now: datetime) -> bytes:
    """The file after a switch: new live/standby, prod = new live, lastSwitch = now, count + 1."""
    _check_pair(new_live, new_standby)
    return serialize(
        state.document,
        {
            PROD: new_live,
            LIVE: new_live,
            STANDBY: new_standby,
            LAST_SWITCH: format_timestamp(now),
            SWITCH_COUNT: (state.switch_count or 0) + 1,
        },
    )


def repaired(state: StateFile, live: str, standby: str) -> bytes:
    """The file brought in line with haproxy.cfg: colours fixed, history and unknown keys kept.

    A malformed lastSwitch becomes null and a malformed switchCount 0, so the result is valid.
    """
    _check_pair(live, standby)
    updates: dict[str, Any] = {PROD: live, LIVE: live, STANDBY: standby}
    if state.last_switch is None:
        updates[LAST_SWITCH] = None
    if state.switch_count is None:
        updates[SWITCH_COUNT] = 0
    return serialize(state.document, updates)


def serialize(document: Mapping[str, Any], updates: Mapping[str, Any]) -> bytes:
    """Pretty JSON (2-space indent, trailing newline). Updated keys keep their place in the file;
    new ones are appended in the reference's order."""
    merged = dict(document)
    for key in KNOWN_KEYS:
        if key in updates:
            merged[key] = updates[key]
    for key, value in updates.items():
        merged.setdefault(key, value)
    return (json.dumps(merged, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _check_pair(live: str, standby: str) -> None:
    if not live or not standby or live == standby:
        raise ValueError(f"live and standby must be two different servers: {live!r}, {standby!r}")


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def shown(value: Any, limit: int = 60) -> str:
    """A JSON value as it appears in the file, truncated for messages."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."
