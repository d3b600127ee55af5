"""Secrets in the operator's snippets and in command output, masked before anything is shown.

A build snippet may carry a credential (`NPM_TOKEN=... npm ci`, `--password=...`). The snippet
runs as written; every place it is shown (plans, logs, step messages, history, errors) gets the
value masked. Output tails of failed commands are masked the same way, and any `NAME=value` or
`NAME: value` whose name looks like a secret is masked there too, since a build tool may print
its environment or its config. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bluegreen.domain.command import MASK, mask

# Names that hold secrets: DB_PASSWORD, API_TOKEN, npm_config__authToken, AWS_SECRET_ACCESS_KEY...
SECRET_NAME = re.compile(
    r"pass(?:word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|auth",
    re.IGNORECASE,
)
_VALUE = r"""(?P<value>'[^']*'|"[^"]*"|[^\s;&|()'"]+)"""
# NAME=value in a shell snippet (optionally after `export`), and --name=value / --name value.
_ASSIGNMENT = re.compile(rf"(?<![\w-])(?P<name>[A-Za-z_][A-Za-z0-9_]*)={_VALUE}")
_FLAG = re.compile(rf"(?<![\w-])--(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)(?:=|\s+){_VALUE}")
# In output: `name=value`, `name: value`, `"name": "value"` with a secret-looking name. The name
# starts where a word starts and its parts are bounded, so a long line (minified JS, base64) costs
# linear time: unbounded `[\w.-]*` around the keyword made a 3 MB line take hours.
_OUTPUT = re.compile(
    r"""(?P<key>(?<![\w.-])["']?[\w.-]{0,128}?(?:pass(?:word|wd)?|secret|token|api[_-]?key)"""
    r"""[\w.-]{0,128}["']?\s{0,16}[=:]\s{0,16})(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s,;]+)""",
    re.IGNORECASE,
)
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


def snippet_secrets(snippet: str | None) -> tuple[str, ...]:
    """Values assigned to secret-looking names in a shell snippet, longest first (quoted and
    unquoted forms, so either spelling is masked)."""
    if not snippet:
        return ()
    found: set[str] = set()
    for pattern in (_ASSIGNMENT, _FLAG):
        for match in pattern.finditer(snippet):
            if not SECRET_NAME.search(match["name"]):
                continue
            value = match["value"]
            inner = value[1:-1] if value[:1] in "'\"" else value
            for candidate in (value, inner):
                if len(candidate) >= MIN_SECRET_LENGTH:
                    found.add(candidate)
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str | None, secrets: Sequence[str] = ()) -> str | None:
    """`text` with the known secrets and any secret-looking `name=value` masked."""
    if text is None:
        return None
    text = mask(text, secrets)
    return _OUTPUT.sub(lambda m: m["key"] + MASK, text)
