"""A lossless model of haproxy.cfg: parse, look up, edit, render. Pure, no I/O.

Every line keeps its original text and line ending, so `render(parse(text)) == text` for any
string. Tokens are a view over a line (spans plus unquoted values), computed with HAProxy's own
rules (see `tokenize`). Edits rewrite only the spans they target and re-parse, so indentation,
comments, spacing of untouched tokens and line endings all survive.

`parse` never fails: a line HAProxy would reject (unmatched quote, bad `\\x` escape) keeps its
text and records `error`; `parse(text, strict=True)` raises HAProxyConfigError for it instead.

Why one module of ~570 lines: the tokenizer, the line/section model and the span edits share one
invariant (render(parse(t)) == t) and private helpers; split, each half would have to expose the
other's internals. What reads the model (routing, sources of several files) lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from bluegreen.errors import HAProxyConfigError

# Keywords that open a section, whatever the line's indentation (HAProxy ignores indentation).
PROXY_KINDS = frozenset({"defaults", "frontend", "backend", "listen"})
SECTION_KINDS = PROXY_KINDS | frozenset(
    {
        "global",
        "userlist",
        "peers",
        "resolvers",
        "mailers",
        "program",
        "http-errors",
        "ring",
        "cache",
        "fcgi-app",
        "log-forward",
        "crt-store",
        "traces",
        "acme",
    }
)
KNOWN_KINDS = PROXY_KINDS | {"global"}

_SEPARATORS = " \t\v\f"  # isspace() minus the line ends
_LINE_STOP = "\r\0"  # HAProxy stops reading a line at these, even mid-line
_HEX = "0123456789abcdefABCDEF"
_SIMPLE_ESCAPES = {" ": " ", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", "#": "#", "'": "'"}
_CONDITION_WORDS = ("if", "unless")
_UNSAFE_BARE = frozenset(_SEPARATORS + _LINE_STOP + "\n'\"\\#")


@dataclass(frozen=True)
class Token:
    """One word of a line: `raw` is line.text[start:end]; `value` is what HAProxy reads.

    Environment variables (`"${VAR}"`) are not expanded: `value` keeps them literally.
    """

    raw: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Lexed:
    tokens: tuple[Token, ...]
    comment_start: int | None
    error: str | None


def tokenize(text: str) -> Lexed:
    """Split one line (without its line ending) as HAProxy's parse_line does.

    Separators are unquoted blanks; `#` outside quotes starts a comment, even mid-word; single
    quotes protect everything; double quotes protect blanks and `#` but keep backslash escapes
    (`\\ `, `\\\\`, `\\t`, `\\n`, `\\r`, `\\#`, `\\'`, `\\"`, `\\xHH`, and `\\$` inside double
    quotes); other backslash pairs stay as written. Quoted parts concatenate with their word.
    """
    tokens: list[Token] = []
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in _SEPARATORS:
            i += 1
        if i >= n or text[i] in _LINE_STOP:
            return Lexed(tuple(tokens), None, None)
        if text[i] == "#":
            return Lexed(tuple(tokens), i, None)
        start = i
        value: list[str] = []
        quote: str | None = None
        quote_at = -1
        error: str | None = None
        while i < n:
            c = text[i]
            if c in _LINE_STOP:
                break
            if quote == "'":
                if c == "'":
                    quote = None
                else:
                    value.append(c)
                i += 1
                continue
            if quote is None and (c in _SEPARATORS or c == "#"):
                break
            if c == "\\":
                nxt = text[i + 1] if i + 1 < n else ""
                if nxt in _SIMPLE_ESCAPES or nxt == '"' or (nxt == "$" and quote == '"'):
                    value.append(_SIMPLE_ESCAPES.get(nxt, nxt))
                    i += 2
                elif nxt == "x":
                    digits = text[i + 2 : i + 4]
                    if len(digits) == 2 and all(d in _HEX for d in digits):
                        value.append(chr(int(digits, 16)))
                        i += 4
                    else:
                        error = error or f"invalid \\x escape at column {i + 1}"
                        value.append(c)
                        i += 1
                else:
                    value.append(c)
                    i += 1
                continue
            if c in "'\"" and quote in (None, c):
                if quote is None:
                    quote, quote_at = c, i
                else:
                    quote = None
                i += 1
                continue
            value.append(c)
            i += 1
        if quote is not None:
            error = f"unmatched {quote} quote at column {quote_at + 1}"
        tokens.append(Token(text[start:i], "".join(value), start, i))
        if error is not None:
            return Lexed(tuple(tokens), None, error)


def quote_arg(value: str) -> str:
    """The shortest spelling of `value` as one HAProxy word (tokenize reads back `value`)."""
    if value and not any(c in _UNSAFE_BARE for c in value):
        return value
    if not any(c in "'" + _LINE_STOP + "\n" for c in value):
        return f"'{value}'"
    out: list[str] = []
    for c in value:
        if c in '\\"$':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 and c != "\t":
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def requote(old_raw: str, value: str) -> str:
    """Spell `value` in the quoting style of the word it replaces, when that style can hold it,
    so that `default_backend "bk_blue"` becomes `default_backend "bk_green"`."""
    if len(old_raw) >= 2 and old_raw[0] == old_raw[-1] and old_raw[0] in "'\"":
        quote = old_raw[0]
        candidate = f"{quote}{value}{quote}"
        plain = quote == "'" or not any(c in "\\$" for c in value)
        if plain and tokenize(candidate).tokens == (Token(candidate, value, 0, len(candidate)),):
            return candidate
    return quote_arg(value)


@dataclass(frozen=True)
class Condition:
    """The `if`/`unless` tail of a rule; `text` is as written."""

    kind: str
    tokens: tuple[Token, ...]
    text: str


@dataclass(frozen=True)
class Line:
    """One physical line. `text` excludes the line ending `eol` ("\\n", "\\r\\n" or "")."""

    number: int  # 1-based
    text: str
    eol: str
    depth: int  # nesting inside `.if` blocks
    lexed: Lexed = field(repr=False, compare=False)  # tokenize(text)

    @classmethod
    def of(cls, number: int, text: str, eol: str = "\n", depth: int = 0) -> Line:
        return cls(number, text, eol, depth, tokenize(text))

    @property
    def tokens(self) -> tuple[Token, ...]:
        return self.lexed.tokens

    @property
    def error(self) -> str | None:
        return self.lexed.error

    @property
    def comment(self) -> str | None:
        start = self.lexed.comment_start
        return None if start is None else self.text[start:]

    @property
    def keyword(self) -> str | None:
        return self.tokens[0].value if self.tokens else None

    @cached_property  # read for every args/condition: many times per line in a routing analysis
    def _condition_index(self) -> int:
        # `acl` patterns may legitimately be the words if/unless.
        if self.keyword != "acl":
            for index, token in enumerate(self.tokens[1:], start=1):
                if token.value in _CONDITION_WORDS:
                    return index
        return len(self.tokens)

    @property
    def args(self) -> tuple[Token, ...]:
        """Words after the keyword, up to any `if`/`unless` condition."""
        return self.tokens[1 : self._condition_index]

    @property
    def condition(self) -> Condition | None:
        cut = self._condition_index
        if cut >= len(self.tokens):
            return None
        tail = self.tokens[cut:]
        return Condition(tail[0].value, tail[1:], self.text[tail[0].start : tail[-1].end])

    def render(self) -> str:
        return self.text + self.eol

    # Text-level edits: each returns the new `text`, touching only the targeted span.

    def replace_token(self, index: int, raw: str) -> str:
        token = self.tokens[index]
        return self.text[: token.start] + raw + self.text[token.end :]

    def remove_token(self, index: int) -> str:
        """Drop a token with the blanks before it (after it, for the first token)."""
        tokens = self.tokens
        token = tokens[index]
        if index > 0:
            return self.text[: tokens[index - 1].end] + self.text[token.end :]
        cut = tokens[1].start if len(tokens) > 1 else token.end
        return self.text[: token.start] + self.text[cut:]

    def insert_token(self, index: int, raw: str) -> str:
        """Insert `raw` as a new word before token `index` (or after the last one)."""
        tokens = self.tokens
        if not tokens:
            raise ValueError(f"line {self.number} has no words to insert next to")
        if index >= len(tokens):
            at = tokens[-1].end
            return self.text[:at] + " " + raw + self.text[at:]
        at = tokens[index].start
        return self.text[:at] + raw + " " + self.text[at:]


@dataclass(frozen=True)
class Section:
    """A section header line and the lines up to the next header."""

    kind: str
    name: str | None
    lines: tuple[Line, ...]  # header first

    @property
    def header(self) -> Line:
        return self.lines[0]

    @property
    def body(self) -> tuple[Line, ...]:
        return self.lines[1:]

    @cached_property
    def acl_bodies(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Each named ACL's bodies (the words after its name), one per defining line: a shared
        frontend's rules look them up once per app and rule."""
        bodies: dict[str, list[tuple[str, ...]]] = {}
        for line in self.directives("acl"):
            if line.args:
                bodies.setdefault(line.args[0].value, []).append(
                    tuple(token.value for token in line.args[1:])
                )
        return {name: tuple(found) for name, found in bodies.items()}

    @property
    def known(self) -> bool:
        """global/defaults/frontend/backend/listen; others are kept verbatim, unmodelled."""
        return self.kind in KNOWN_KINDS

    @property
    def parent_defaults(self) -> str | None:
        """The defaults section named by `from <name>` on a proxy header."""
        args = self.header.args
        if len(args) >= 3 and args[1].value == "from":
            return args[2].value
        return None

    def directives(self, *keywords: str) -> tuple[Line, ...]:
        """Body lines that hold words, optionally only those with one of `keywords`."""
        return tuple(
            line for line in self.body if line.tokens and (not keywords or line.keyword in keywords)
        )

    def render(self) -> str:
        return "".join(line.render() for line in self.lines)


@dataclass(frozen=True)
class HAProxyConfig:
    preamble: tuple[Line, ...]
    sections: tuple[Section, ...]

    @cached_property
    def lines(self) -> tuple[Line, ...]:
        return self.preamble + tuple(line for s in self.sections for line in s.lines)

    @property
    def errors(self) -> tuple[Line, ...]:
        """Lines HAProxy would reject (see Line.error)."""
        return tuple(line for line in self.lines if line.error)

    def render(self) -> str:
        return "".join(line.render() for line in self.lines)

    def line(self, number: int) -> Line:
        if not 1 <= number <= len(self.lines):
            raise IndexError(f"haproxy.cfg has no line {number}")
        return self.lines[number - 1]

    def find_sections(
        self, kinds: Iterable[str] | None = None, name: str | None = None
    ) -> tuple[Section, ...]:
        wanted = None if kinds is None else frozenset(kinds)
        return tuple(
            s
            for s in self.sections
            if (wanted is None or s.kind in wanted) and (name is None or s.name == name)
        )

    def section(self, kind: str, name: str | None = None) -> Section | None:
        """The first section of `kind` (named `name` when given)."""
        found = self.find_sections((kind,), name)
        return found[0] if found else None

    def section_of(self, number: int) -> Section | None:
        for s in self.sections:
            if s.lines[0].number <= number <= s.lines[-1].number:
                return s
        return None

    def defaults_for(self, proxy: Section) -> Section | None:
        """The defaults section a proxy inherits from: `from <name>`, else the last one above it."""
        named = proxy.parent_defaults
        if named is not None:
            return self.section("defaults", named)
        above = [
            s
            for s in self.sections
            if s.kind == "defaults" and s.header.number < proxy.header.number
        ]
        return above[-1] if above else None

    # Edits: each returns a new config where only line `number` changed.

    def replace_line(self, number: int, text: str) -> HAProxyConfig:
        old = self.line(number)
        if "\n" in text:
            raise ValueError("a replacement line must not contain a newline")
        rendered = [line.render() for line in self.lines]
        rendered[number - 1] = text + old.eol
        return parse("".join(rendered))

    def replace_arg(self, number: int, index: int, value: str) -> HAProxyConfig:
        """Set argument `index` (0 = first word after the keyword) to `value`."""
        line = self.line(number)
        token = line.tokens[index + 1]
        return self.replace_line(number, line.replace_token(index + 1, requote(token.raw, value)))

    def add_server_flag(self, number: int, flag: str, at: int | None = None) -> HAProxyConfig:
        """Add a valueless parameter (`backup`, `disabled`...) to a server line, as its
        parameter number `at` (default: last)."""
        server = _require_server(self.line(number))
        if server.has_flag(flag):
            return self
        return self.replace_line(number, server.line.insert_token(server.slot(at), flag))

    def remove_server_flag(self, number: int, flag: str) -> HAProxyConfig:
        server = _require_server(self.line(number))
        indexes = [server.index_of(p.name) for p in server.params if p.is_flag(flag)]
        return self._drop_tokens(server.line, indexes)

    def set_server_option(
        self, number: int, name: str, value: str, at: int | None = None
    ) -> HAProxyConfig:
        """Set `name <value>` on a server line: rewrite every existing value (keeping its
        quoting), else add it as parameter number `at` (default: last)."""
        server = _require_server(self.line(number))
        line = server.line
        found = [p.value for p in server.params if p.name.value == name and p.value is not None]
        if not found:
            pair = f"{name} {quote_arg(value)}"
            return self.replace_line(number, line.insert_token(server.slot(at), pair))
        text = line.text
        for token in reversed(found):  # right to left keeps earlier spans valid
            text = text[: token.start] + requote(token.raw, value) + text[token.end :]
        return self.replace_line(number, text)

    def remove_server_option(self, number: int, name: str) -> HAProxyConfig:
        server = _require_server(self.line(number))
        indexes: list[int] = []
        for param in server.params:
            if param.name.value == name:
                indexes.append(server.index_of(param.name))
                if param.value is not None:
                    indexes.append(server.index_of(param.value))
        return self._drop_tokens(server.line, indexes)

    def _drop_tokens(self, line: Line, indexes: list[int]) -> HAProxyConfig:
        if not indexes:
            return self
        current = line
        for index in sorted(indexes, reverse=True):
            current = Line.of(line.number, current.remove_token(index), line.eol)
        return self.replace_line(line.number, current.text)


# `server` lines: name, address, then parameters; some parameters take one value.

# Parameters that take a value, so that value is never read as a flag (`cookie backup`).
SERVER_VALUED_PARAMS = frozenset(
    {
        "addr", "agent-addr", "agent-inter", "agent-port", "agent-send", "alpn", "ca-file",
        "check-alpn", "check-pool-conn-name", "check-proto", "check-sni", "ciphers",
        "ciphersuites", "client-sigalgs", "cookie", "crl-file", "crt", "curves", "downinter",
        "error-limit", "fall", "fastinter", "guid", "hash-key", "id", "idle-ping", "init-addr",
        "init-state", "inter", "interface", "log-bufsize", "log-proto", "max-reuse", "maxconn",
        "maxqueue", "minconn", "namespace", "npn", "observe", "on-error", "on-marked-down",
        "on-marked-up", "pool-conn-name", "pool-low-conn", "pool-max-conn", "pool-purge-delay",
        "port", "proto", "proxy-v2-options", "redir", "resolve-net", "resolve-opts",
        "resolve-prefer", "resolvers", "rise", "shard", "sigalgs", "slowstart", "sni", "socks4",
        "source", "ssl-max-ver", "ssl-min-ver", "tcp-ut", "track", "usesrc", "verify",
        "verifyhost", "weight", "ws",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ServerParam:
    name: Token
    value: Token | None  # None for flags

    def is_flag(self, flag: str) -> bool:
        return self.value is None and self.name.value == flag


@dataclass(frozen=True)
class ServerLine:
    """A view of a `server` line (`server-template`: name is its prefix, address its FQDN;
    `default-server`: no name nor address)."""

    line: Line
    name: str | None
    address: str | None
    params: tuple[ServerParam, ...]

    def has_flag(self, flag: str) -> bool:
        return any(p.is_flag(flag) for p in self.params)

    def option(self, name: str) -> str | None:
        """The value of the last `name <value>` (HAProxy keeps the last)."""
        values = [p.value.value for p in self.params if p.name.value == name and p.value]
        return values[-1] if values else None

    def index_of(self, token: Token) -> int:
        return self.line.tokens.index(token)

    def slot(self, at: int | None) -> int:
        """The token index where a new parameter number `at` goes (None or too big: last)."""
        if at is None or at >= len(self.params):
            return len(self.line.tokens)
        return self.index_of(self.params[max(at, 0)].name)

    def position(self, flag: str) -> int | None:
        """The parameter number of `flag` (a flag or an option name), if present."""
        for at, param in enumerate(self.params):
            if param.name.value == flag:
                return at
        return None


def server_line(line: Line) -> ServerLine | None:
    """Read a `server`, `server-template` or `default-server` line; None for anything else."""
    if line.keyword == "server" and len(line.args) >= 2:
        name, address, rest = line.args[0].value, line.args[1].value, line.args[2:]
    elif line.keyword == "server-template" and len(line.args) >= 3:
        name, address, rest = line.args[0].value, line.args[2].value, line.args[3:]
    elif line.keyword == "default-server":
        name, address, rest = None, None, line.args
    else:
        return None
    params: list[ServerParam] = []
    words = iter(rest)
    for word in words:
        takes_value = word.value in SERVER_VALUED_PARAMS or word.value.startswith(
            "set-proxy-v2-tlv-fmt("
        )
        params.append(ServerParam(word, next(words, None) if takes_value else None))
    return ServerLine(line, name, address, tuple(params))


def _require_server(line: Line) -> ServerLine:
    server = server_line(line)
    if server is None or line.keyword != "server":
        raise ValueError(f"line {line.number} is not a server line: {line.text!r}")
    return server


def _split_lines(text: str) -> Iterator[tuple[str, str]]:
    """(text, eol) pairs. Only "\\n" ends a line, as in HAProxy; str.splitlines would also
    split on \\x0b, \\x1c, \\u2028... and lose the round trip."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:], ""
            return
        body = text[start:end]
        if body.endswith("\r"):
            yield body[:-1], "\r\n"
        else:
            yield body, "\n"
        start = end + 1


def parse(text: str, *, strict: bool = False) -> HAProxyConfig:
    """Parse haproxy.cfg text. With strict=True, a line HAProxy would reject raises."""
    lines: list[Line] = []
    depth = 0
    for number, (body, eol) in enumerate(_split_lines(text), start=1):
        lexed = tokenize(body)
        keyword = lexed.tokens[0].value if lexed.tokens else None
        if keyword == ".endif":
            depth = max(depth - 1, 0)
        inner = depth - 1 if keyword in (".elif", ".else") and depth else depth
        lines.append(Line(number, body, eol, inner, lexed))
        if keyword == ".if":
            depth += 1
        if strict and lexed.error:
            raise HAProxyConfigError(
                f"haproxy.cfg line {number} cannot be parsed: {lexed.error}",
                hint="fix the quoting on that line; HAProxy would refuse this file too",
            )
    preamble: list[Line] = []
    groups: list[list[Line]] = []
    for line in lines:
        if line.keyword in SECTION_KINDS:
            groups.append([line])
        elif groups:
            groups[-1].append(line)
        else:
            preamble.append(line)
    return HAProxyConfig(tuple(preamble), tuple(_section(group) for group in groups))


def _section(lines: list[Line]) -> Section:
    header = lines[0]
    kind = header.keyword or ""
    name = header.args[0].value if header.args and kind != "global" else None
    return Section(kind, name, tuple(lines))


def render(cfg: HAProxyConfig) -> str:
    return cfg.render()
