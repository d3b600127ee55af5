"""haproxy.cfg model: lossless round trip, HAProxy tokenising rules, lookups and minimal edits."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluegreen.domain.haproxy_cfg import (
    HAProxyConfig,
    Line,
    parse,
    quote_arg,
    render,
    requote,
    server_line,
    tokenize,
)
from bluegreen.errors import HAProxyConfigError

CORPUS = Path(__file__).resolve().parent.parent / "data" / "haproxy"
CORPUS_FILES = sorted(CORPUS.glob("*.cfg"))


def read(name: str) -> str:
    # Bytes, not read_text(): universal newlines would turn CRLF into LF.
    return (CORPUS / name).read_bytes().decode()


def values(text: str) -> list[str]:
    return [t.value for t in tokenize(text).tokens]


# Round trip


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS_FILES) >= 8


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_round_trip(path: Path) -> None:
    text = path.read_bytes().decode()
    cfg = parse(text, strict=True)
    assert render(cfg) == text
    assert cfg.render() == text
    assert not cfg.errors


FRAGMENTS = [
    "global",
    "defaults",
    "frontend http-in",
    "backend bk_blue",
    "listen stats",
    "userlist admins",
    "peers p",
    "\tserver blue blue:3001 check",
    "    server green 10.0.0.2:3001 backup weight 0",
    "    default_backend bk_blue   # LIVE",
    "    use_backend bk_green if { path_beg /x }",
    "    bind :443 ssl crt '/etc/a b.pem' alpn h2",
    '    http-request set-header X "a \\" b # c"',
    "    log-format foo\\ bar\\#baz",
    "# comment",
    "",
    "   ",
    "'unterminated",
    '"unterminated',
    "\\x4g",
    ".if defined(FOO)",
    ".endif",
    "a\rb",
    "\x00",
    "\u2028",
    "\x0b\x0c",
]


@settings(max_examples=300)
@given(st.text())
def test_round_trip_any_text(text: str) -> None:
    assert render(parse(text)) == text


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.sampled_from(FRAGMENTS), st.sampled_from(["\n", "\r\n", "", "\r", " \n"])),
        max_size=30,
    )
)
def test_round_trip_haproxy_like_text(parts: list[tuple[str, str]]) -> None:
    text = "".join(fragment + end for fragment, end in parts)
    cfg = parse(text)
    assert render(cfg) == text
    assert [line.number for line in cfg.lines] == list(range(1, len(cfg.lines) + 1))


@given(st.text())
def test_token_spans_are_a_view_of_the_line(text: str) -> None:
    text = text.replace("\n", "")
    lexed = tokenize(text)
    previous_end = 0
    for token in lexed.tokens:
        assert text[token.start : token.end] == token.raw
        assert token.start >= previous_end and token.end > token.start
        previous_end = token.end
    if lexed.comment_start is not None:
        assert text[lexed.comment_start] == "#"
        assert lexed.comment_start >= previous_end


@given(st.text())
def test_quote_arg_reads_back_as_one_word(value: str) -> None:
    raw = quote_arg(value)
    lexed = tokenize(raw)
    assert lexed.error is None
    assert [(t.raw, t.value) for t in lexed.tokens] == [(raw, value)]


def test_line_endings_are_kept() -> None:
    crlf = parse(read("crlf_windows.cfg"))
    assert {line.eol for line in crlf.lines} == {"\r\n"}
    assert crlf.section("frontend", "http-in") is not None
    plain = parse(read("no_trailing_newline.cfg"))
    assert plain.lines[-1].eol == ""
    assert plain.lines[-1].comment == "# no newline at end of file"
    assert {line.eol for line in plain.lines[:-1]} == {"\n"}


def test_only_lf_ends_a_line() -> None:
    # \x0b, \x1c, \u2028 are line breaks for str.splitlines but not for HAProxy.
    cfg = parse("a\x0bb\u2028c\r\nd\re\n")
    assert [(line.text, line.eol) for line in cfg.lines] == [
        ("a\x0bb\u2028c", "\r\n"),
        ("d\re", "\n"),
    ]


# Tokenising


@pytest.mark.parametrize(
    ("text", "expected", "comment"),
    [
        ("server blue blue:3001 check", ["server", "blue", "blue:3001", "check"], None),
        ("\t  bind\t*:80  \t", ["bind", "*:80"], None),
        ("log-format foo\\ bar", ["log-format", "foo bar"], None),
        ("x a\\#b", ["x", "a#b"], None),
        ("x a#b c", ["x", "a"], "#b c"),
        ("x a # c", ["x", "a"], "# c"),
        ("# only a comment", [], "# only a comment"),
        ("x 'a b # c' d", ["x", "a b # c", "d"], None),
        ('x "a b # c" d', ["x", "a b # c", "d"], None),
        ("x 'a\\nb'", ["x", "a\\nb"], None),  # nothing is interpreted in single quotes
        ('x "a\\nb"', ["x", "a\nb"], None),
        ('x "say \\"hi\\""', ["x", 'say "hi"'], None),
        ("x it\\'s", ["x", "it's"], None),
        ("x pre'mid dle'post", ["x", "premid dlepost"], None),  # quotes concatenate
        ("x ''", ["x", ""], None),  # an empty quoted word is still a word
        ('x "$HOME" "\\$HOME" \\$HOME', ["x", "$HOME", "$HOME", "\\$HOME"], None),
        ("x \\x41\\x62", ["x", "Ab"], None),
        ("x \\1 \\d+", ["x", "\\1", "\\d+"], None),  # other pairs stay as written
        ("x \\\\ y", ["x", "\\", "y"], None),
        ("x a\rb c", ["x", "a"], None),  # HAProxy stops reading at \r
        ("x a\x00 b", ["x", "a"], None),
        ("", [], None),
    ],
)
def test_tokenize(text: str, expected: list[str], comment: str | None) -> None:
    line = Line.of(1, text)
    assert [t.value for t in line.tokens] == expected
    assert line.comment == comment
    assert line.error is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("x 'open", "unmatched ' quote at column 3"),
        ('x "open', 'unmatched " quote at column 3'),
        ("x \\x4g", "invalid \\x escape at column 3"),
        ("x 'a\rb'", "unmatched ' quote at column 3"),
    ],
)
def test_tokenize_errors(text: str, error: str) -> None:
    assert tokenize(text).error == error


def test_keyword_args_and_condition() -> None:
    line = Line.of(1, "    use_backend bk_green if { path_beg /api } !is_admin  # note")
    assert line.keyword == "use_backend"
    assert [a.value for a in line.args] == ["bk_green"]
    assert line.condition is not None
    assert line.condition.kind == "if"
    assert line.condition.text == "if { path_beg /api } !is_admin"
    assert [t.value for t in line.condition.tokens] == ["{", "path_beg", "/api", "}", "!is_admin"]
    unless = Line.of(1, "http-request redirect scheme https unless { ssl_fc }")
    assert unless.condition is not None and unless.condition.kind == "unless"
    assert [a.value for a in unless.args] == ["redirect", "scheme", "https"]
    plain = Line.of(1, "default_backend bk_blue")
    assert plain.condition is None
    # acl patterns may be the words if/unless: no condition there
    acl = Line.of(1, "acl weird path_beg if")
    assert acl.condition is None
    assert [a.value for a in acl.args] == ["weird", "path_beg", "if"]


def test_quote_arg_and_requote() -> None:
    assert quote_arg("bk_blue") == "bk_blue"
    assert quote_arg("a b") == "'a b'"
    assert quote_arg("") == "''"
    assert quote_arg("it's #1") == '"it\'s #1"'
    assert requote('"bk_blue"', "bk_green") == '"bk_green"'
    assert requote("'bk_blue'", "bk_green") == "'bk_green'"
    assert requote("bk_blue", "bk_green") == "bk_green"
    assert requote('"x"', "a$b") == "a$b"  # "$" would start a variable inside double quotes


# Sections and lookups


def test_sections_of_every_kind_are_kept() -> None:
    cfg = parse(read("sections_zoo.cfg"))
    assert [(s.kind, s.name) for s in cfg.sections] == [
        ("global", None),
        ("userlist", "admins"),
        ("peers", "mypeers"),
        ("resolvers", "dns"),
        ("mailers", "alerts"),
        ("program", "dataplaneapi"),
        ("http-errors", "site-errors"),
        ("ring", "buf1"),
        ("cache", "static-cache"),
        ("defaults", None),
        ("frontend", "http-in"),
        ("backend", "shop"),
    ]
    assert [s.known for s in cfg.sections[:3]] == [True, False, False]
    peers = cfg.section("peers", "mypeers")
    assert peers is not None
    assert [line.args[0].value for line in peers.directives("peer")] == ["lb1", "lb2"]


def test_preamble_and_indented_headers() -> None:
    cfg = parse(read("ssl_acl_style1.cfg"))
    assert [line.text for line in cfg.preamble] == [
        "# Managed by hand. Keep the comments: they are the only documentation we have."
    ]
    listen = parse(read("listen_weight_style2.cfg"))
    assert [(s.kind, s.name) for s in listen.sections] == [
        ("global", None),
        ("listen", "app-in"),
        ("listen", "stats"),
    ]
    # the comment above `listen app-in` belongs to the section before it
    assert (
        listen.sections[0].lines[-1].text == "# listen = frontend + backend; STANDBY has weight 0"
    )


def test_lookups() -> None:
    cfg = parse(read("ssl_acl_style1.cfg"))
    front = cfg.section("frontend", "fe_https")
    assert front is not None
    assert [line.number for line in front.directives("use_backend")] == [33, 34, 36]
    assert [line.args[0].value for line in front.directives("bind")] == [":::443", "127.0.0.1:8443"]
    assert len(front.directives()) == 13
    assert cfg.section("backend", "nope") is None
    assert [s.name for s in cfg.find_sections(("backend",))] == [
        "be_static",
        "be_api",
        "be_app_blue",
        "be_app_green",
        "be_stats",
    ]
    assert cfg.section_of(34) is front
    assert cfg.section_of(1) is None
    assert cfg.line(34).text.strip() == "use_backend be_stats if host_stats is_admin"
    with pytest.raises(IndexError):
        cfg.line(0)


def test_defaults_for() -> None:
    cfg = parse(
        "defaults base\n  mode http\ndefaults other\n  mode tcp\n"
        "frontend a\n  bind :1\nfrontend b from base\n  bind :2\n"
    )
    a, b = cfg.find_sections(("frontend",))
    assert b.parent_defaults == "base"
    assert cfg.defaults_for(a) is cfg.section("defaults", "other")
    assert cfg.defaults_for(b) is cfg.section("defaults", "base")


def test_conditional_block_depth() -> None:
    cfg = parse(
        ".if defined(X)\nbackend a\n  server s 1:1\n.else\n  server t 1:2\n.endif\nglobal\n"
    )
    assert [line.depth for line in cfg.lines] == [0, 1, 1, 0, 1, 0, 0]


def test_strict_parse_names_the_line() -> None:
    with pytest.raises(HAProxyConfigError, match="line 2 cannot be parsed: unmatched"):
        parse("global\n  log 'oops\n", strict=True)
    assert parse("global\n  log 'oops\n").errors[0].number == 2


# Server lines


def test_server_line_view() -> None:
    line = Line.of(1, "  server blue 10.0.0.1:3001 check cookie backup weight 10 backup disabled")
    server = server_line(line)
    assert server is not None
    assert (server.name, server.address) == ("blue", "10.0.0.1:3001")
    assert server.option("cookie") == "backup"
    assert server.option("weight") == "10"
    assert server.has_flag("backup") and server.has_flag("disabled") and server.has_flag("check")
    assert server.position("backup") == 3
    assert server_line(Line.of(1, "  cookie backup")) is None
    assert server_line(Line.of(1, "bind :80")) is None
    default = server_line(Line.of(1, "default-server inter 2s backup"))
    assert default is not None and default.name is None and default.has_flag("backup")


# Edits


LAB = """frontend http-in
    bind *:80
    default_backend   bk_blue   # LIVE
backend bk_blue
\tserver blue blue:3001 check  backup  inter 1s # standby marker
\tserver green green:3001 check weight  7 cookie backup
"""


def edited(cfg: HAProxyConfig) -> list[str]:
    return cfg.render().split("\n")


def test_replace_arg_keeps_spacing_and_comment() -> None:
    cfg = parse(LAB)
    new = cfg.replace_arg(3, 0, "bk_green")
    assert edited(new)[2] == "    default_backend   bk_green   # LIVE"
    assert edited(new)[:2] + edited(new)[3:] == edited(cfg)[:2] + edited(cfg)[3:]


def test_server_flag_edits() -> None:
    cfg = parse(LAB)
    removed = cfg.remove_server_flag(5, "backup")
    assert edited(removed)[4] == "\tserver blue blue:3001 check  inter 1s # standby marker"
    # `cookie backup` is a value, not the flag: the flag is appended
    added = cfg.add_server_flag(6, "backup")
    assert edited(added)[5] == "\tserver green green:3001 check weight  7 cookie backup backup"
    placed = cfg.add_server_flag(6, "disabled", at=1)
    assert edited(placed)[5] == "\tserver green green:3001 check disabled weight  7 cookie backup"
    assert cfg.add_server_flag(5, "backup") is cfg
    assert cfg.remove_server_flag(6, "backup") is cfg
    with pytest.raises(ValueError, match="not a server line"):
        cfg.add_server_flag(3, "backup")


def test_server_option_edits() -> None:
    cfg = parse(LAB)
    assert edited(cfg.set_server_option(6, "weight", "0"))[5] == (
        "\tserver green green:3001 check weight  0 cookie backup"
    )
    assert edited(cfg.set_server_option(5, "weight", "0"))[4] == (
        "\tserver blue blue:3001 check  backup  inter 1s weight 0 # standby marker"
    )
    assert edited(cfg.set_server_option(5, "weight", "0", at=0))[4] == (
        "\tserver blue blue:3001 weight 0 check  backup  inter 1s # standby marker"
    )
    assert edited(cfg.remove_server_option(6, "weight"))[5] == (
        "\tserver green green:3001 check cookie backup"
    )


def test_replace_line_keeps_line_ending() -> None:
    cfg = parse(read("crlf_windows.cfg"))
    new = cfg.replace_line(13, "    default_backend bk_blue")
    assert new.line(13).render() == "    default_backend bk_blue\r\n"
    assert new.render().count("\r\n") == cfg.render().count("\r\n")
    with pytest.raises(ValueError, match="newline"):
        cfg.replace_line(13, "a\nb")


def test_remove_first_token() -> None:
    line = Line.of(1, "  no option httplog")
    assert line.remove_token(0) == "  option httplog"
    assert line.insert_token(0, "x") == "  x no option httplog"
    with pytest.raises(ValueError):
        Line.of(1, "   ").insert_token(0, "x")
