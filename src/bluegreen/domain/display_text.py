"""Text from outside (history fields, command output, commit subjects, lock holders) made safe for
the terminal or the model that reads it.

Such text may carry escape sequences (clear the screen, move the cursor), a carriage return or a
line separator (start a forged line that looks like a real one), or bidi overrides (show text in
another order than it is stored). Every such character is shown as a visible escape (`\\x1b`,
`\\r`, `\\u202e`) instead, and a field has a length cap. Only what people and models read goes
through here: JSON output keeps the exact text, escaped by JSON. Pure functions, no I/O.
"""

from __future__ import annotations

import unicodedata

# Cc: C0 and C1 controls (ESC, CR, LF, TAB, NEL U+0085...), DEL. Cf: formatting, which includes
# the bidi embeddings, overrides, isolates and marks, and zero-width characters. Zl, Zp: U+2028
# and U+2029, which many readers take as line breaks. Cs: lone surrogates (undecodable bytes).
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_KIND = {
    "Cc": "a control character",
    "Cf": "a bidi or invisible formatting character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "an undecodable byte",
}

FIELD_MAX = 200  # names, hosts, times, commits, lock holders
TEXT_MAX = 500  # reasons, health errors, history errors
MESSAGE_MAX = 2000  # our own messages and errors, which quote outside text
LINE_MAX = 500  # each line of a multi-line block (output tails, diffs)


def is_unsafe(char: str) -> bool:
    """A character that moves the cursor, breaks a line, reorders text or is invisible."""
    return unicodedata.category(char) in UNSAFE_CATEGORIES


def describe_char(char: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE, a bidi or invisible formatting character)`: how an error
    message names a refused character."""
    words = [unicodedata.name(char, ""), _KIND.get(unicodedata.category(char), "")]
    return f"U+{ord(char):04X} ({', '.join(w for w in words if w)})"


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def one_line(text: str | None, limit: int = FIELD_MAX) -> str:
    """`text` on one line: every unsafe character (line breaks included) escaped, at most about
    `limit` characters, with what was cut said."""
    if not text:
        return ""
    shown = text[:limit]
    safe = "".join(_escape(c) if is_unsafe(c) else c for c in shown)
    cut = len(text) - len(shown)
    return f"{safe} … ({cut} more characters)" if cut else safe


def block(text: str | None, line_limit: int = LINE_MAX, indent: str = "") -> str:
    """Multi-line text (an output tail, a diff): line breaks kept (CRLF read as one), every other
    unsafe character escaped per line, each line capped at `line_limit` and prefixed with
    `indent`, so no line of it can pass for a line of ours."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(indent + one_line(line, line_limit) for line in lines)
