"""Boundary validators for values that come from users (MCP arguments, CLI flags, config keys).

Each returns the accepted value (colours lower-cased) or raises ValidationError saying why. They are
deliberately strict: these values end up in argv lists and file paths on remote hosts, so anything
outside a small, boring alphabet is refused rather than escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bluegreen.domain.display_text import describe_char, is_unsafe
from bluegreen.errors import ValidationError

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
NAME_MAX = 63
NAME_RULE = (
    f"use lowercase letters, digits, '-' and '_', starting with a letter or digit, "
    f"at most {NAME_MAX} characters"
)
REASON_MAX = 500
REASON_RULE = (
    f"write it as plain text on one line, at most {REASON_MAX} characters, without control, "
    "line-separator or bidi characters"
)
REF_MAX = 200
REF_ALPHABET = "A-Z a-z 0-9 . _ / -"
_REF_CHARS = re.compile(r"[A-Za-z0-9._/-]")
COLORS = ("blue", "green")


def show(value: object, limit: int = 60) -> str:
    """A value for an error message: repr (so newlines and quotes are visible), truncated."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_name(value: object, what: str = "name") -> str:
    """App and server names: `[a-z0-9][a-z0-9_-]*`, at most 63 characters."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(f"{what} is empty", hint=NAME_RULE)
    if len(value) > NAME_MAX or not NAME_RE.fullmatch(value):
        raise ValidationError(f"{what} {show(value)} is not allowed", hint=NAME_RULE)
    return value


def validate_app_name(name: object) -> str:
    return validate_name(name, "app name")


def validate_color(color: object, allowed: Iterable[str] = COLORS) -> str:
    """A server colour, case-insensitive (`BLUE` -> `blue`), that must be one of `allowed`."""
    options = tuple(allowed)
    if not isinstance(color, str):
        raise ValidationError(f"colour must be a string, got {type(color).__name__}")
    normalized = color.lower()
    if normalized not in options:
        raise ValidationError(
            f"colour {show(color)} is not one of {', '.join(options)}",
            hint="name a server of this app",
        )
    return normalized


def validate_ref(ref: object) -> str:
    """A git branch, tag or full commit sha, safe to pass as one argv word to git.

    Stricter than `git check-ref-format`: besides git's own rules it refuses every character that
    a shell or git's option parser could read as syntax (spaces, `;`, `$`, backticks, newlines).
    """
    if not isinstance(ref, str):
        raise ValidationError(f"git ref must be a string, got {type(ref).__name__}")
    reason = _ref_problem(ref)
    if reason:
        raise ValidationError(
            f"git ref {show(ref)} is refused: {reason}",
            hint="give a branch, tag or full commit sha",
        )
    return ref


def validate_reason(reason: object) -> str | None:
    """A switch's `reason`: it goes into the history, and from there to people and models."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise ValidationError(f"reason must be a string, got {type(reason).__name__}")
    if len(reason) > REASON_MAX:
        raise ValidationError(
            f"reason is {len(reason)} characters long, longer than {REASON_MAX}", hint=REASON_RULE
        )
    bad = next((c for c in reason if is_unsafe(c)), None)
    if bad is not None:
        raise ValidationError(f"reason contains {describe_char(bad)}", hint=REASON_RULE)
    return reason


def _ref_problem(ref: str) -> str | None:
    if not ref:
        return "it is empty"
    if len(ref) > REF_MAX:
        return f"it is longer than {REF_MAX} characters"
    if ref.startswith("-"):
        return "it starts with '-', which git would read as an option"
    if "@{" in ref:
        return "it contains '@{' (reflog syntax)"
    bad = _bad_chars(ref)
    if bad:
        return f"it contains {bad}; only {REF_ALPHABET} are allowed"
    if ".." in ref:
        return "it contains '..'"
    if ref.endswith(".lock"):
        return "it ends with '.lock'"
    if ref.endswith("/") or ref.startswith("/"):
        return "it starts or ends with '/'"
    if "//" in ref:
        return "it contains '//'"
    if ref.endswith("."):
        return "it ends with '.'"
    if any(part.startswith(".") for part in ref.split("/")):
        return "a path component starts with '.'"
    return None


def _bad_chars(text: str) -> str:
    seen: list[str] = []
    for char in text:
        if not _REF_CHARS.fullmatch(char) and char not in seen:
            seen.append(char)
    return ", ".join(_describe_char(c) for c in seen)


def _describe_char(char: str) -> str:
    names = {" ": "a space", "\n": "a newline", "\t": "a tab", "\r": "a carriage return"}
    return names.get(char, repr(char))
