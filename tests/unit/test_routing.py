"""Routing analysis (both styles, every ambiguity) and the switch edit (byte-exact diffs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bluegreen.domain import routing
from bluegreen.domain.haproxy_cfg import HAProxyConfig, parse
from bluegreen.domain.routing import (
    ColorRoute,
    RoutingAnalysis,
    ServerSpec,
    analyze_routing,
    describe,
    plan_switch,
)
from bluegreen.errors import HAProxyConfigError, ValidationError

CORPUS = Path(__file__).resolve().parent.parent / "data" / "haproxy"

BG = (ServerSpec("blue", "blue:3001"), ServerSpec("green", "green:3001"))

LAB = """\
frontend http-in
    bind *:80
    default_backend bk_blue
backend bk_blue
    server blue blue:3001 check inter 1s fall 2 rise 2
backend bk_green
    server green green:3001 check inter 1s fall 2 rise 2
"""


def read(name: str) -> str:
    return (CORPUS / name).read_bytes().decode()


def analyze(
    text: str, frontend: str = "http-in", servers: tuple[ServerSpec, ...] = BG
) -> RoutingAnalysis:
    return analyze_routing(parse(text), frontend, servers)


def style1(front: str, extra: str = "", green: str = "") -> str:
    """The lab shape with `front` as the frontend body (after bind)."""
    return (
        f"frontend http-in\n    bind *:80\n{front}"
        "backend bk_blue\n    server blue blue:3001 check\n"
        f"backend bk_green\n    server green green:3001 check{green}\n{extra}"
    )


def style2(blue: str, green: str, extra: str = "", front: str = "    default_backend app\n") -> str:
    return (
        f"frontend http-in\n    bind *:80\n{front}"
        f"backend app\n    server blue blue:3001 check{blue}\n"
        f"    server green green:3001 check{green}\n{extra}"
    )


# Certain analyses


def test_lab_config() -> None:
    a = analyze(LAB)
    assert a.certain
    assert (a.style, a.live, a.standby) == ("backend-per-color", "blue", "green")
    assert a.frontend_line == 1
    assert a.routed_backend == "bk_blue"
    assert a.deciding_lines == (3,)
    blue, green = a.route("blue"), a.route("green")
    assert (blue.backend, blue.server, blue.address) == ("bk_blue", "blue", "blue:3001")
    assert (blue.backend_line, blue.server_line, blue.deciding_lines) == (4, 5, (3,))
    assert (green.backend, green.server, green.server_line, green.deciding_lines) == (
        "bk_green",
        "green",
        7,
        (),
    )
    assert a.problems == ()
    assert describe(a) == (
        "frontend http-in routes to backend bk_blue (server blue, blue:3001): "
        "BLUE is LIVE, GREEN is STANDBY"
    )


def specs(blue: str, green: str) -> tuple[ServerSpec, ...]:
    return (ServerSpec("blue", blue), ServerSpec("green", green))


CORPUS_CASES = [
    # file, frontend, servers, style, live, deciding lines
    ("lab_style1.cfg", "http-in", BG, "backend-per-color", "blue", (16,)),
    (
        "debian_default.cfg",
        "http-in",
        specs("10.92.3.22:3001", "10.92.3.24:3001"),
        "backend-per-color",
        "green",
        (40,),
    ),
    (
        "ssl_acl_style1.cfg",
        "fe_https",
        specs("10.0.2.21:3001", "10.0.2.22:3001"),
        "backend-per-color",
        "blue",
        (37,),
    ),
    (
        "listen_weight_style2.cfg",
        "app-in",
        specs("192.168.50.10:3001", "192.168.50.11:3001"),
        "shared-backend",
        "green",
        (10, 11),
    ),
    # addresses do not match: the servers are found by their colour names
    ("sections_zoo.cfg", "http-in", specs("x:1", "y:1"), "shared-backend", "green", (59, 60)),
    ("crlf_windows.cfg", "http-in", BG, "backend-per-color", "green", (13,)),
    ("no_trailing_newline.cfg", "http-in", BG, "backend-per-color", "blue", (12,)),
    ("quoting_escapes.cfg", "http-in", BG, "backend-per-color", "blue", (24,)),
]


@pytest.mark.parametrize(
    ("name", "frontend", "servers", "style", "live", "lines"),
    CORPUS_CASES,
    ids=[case[0] for case in CORPUS_CASES],
)
def test_corpus_analysis(
    name: str,
    frontend: str,
    servers: tuple[ServerSpec, ...],
    style: str,
    live: str,
    lines: tuple[int, ...],
) -> None:
    a = analyze(read(name), frontend, servers)
    assert a.problems == ()
    assert a.certain
    assert (a.style, a.live, a.deciding_lines) == (style, live, lines)
    assert a.standby == ({"blue", "green"} - {live}).pop()


def test_shared_backend_details() -> None:
    servers = specs("10.92.3.22:3001", "10.92.3.24:3001")
    text = read("shared_backup_style2.cfg")
    a = analyze(text, "www", servers)
    # `cookie backup` on the blue line is a cookie value, not a marker
    assert a.route("blue").markers == ()
    assert a.route("green").markers == ("backup",)
    # ...and `backup` does not keep clients whose cookie names green off it: uncertain
    assert (a.live, a.certain) == ("blue", False)
    assert a.problems == (
        "Backend app keeps clients on the server they used before (line 25: "
        "'cookie SRV insert indirect nocache'), so backup on green does not keep them off it: "
        "mark the STANDBY server `disabled` instead.",
    )
    # `disabled` as the marker: certain, with the same cookie persistence
    disabled = analyze(
        text.replace("check backup cookie g", "check disabled cookie g"), "www", servers
    )
    assert disabled.certain and disabled.deciding_lines == (26, 27)
    assert describe(disabled) == (
        "frontend www routes to backend app: server blue (10.92.3.22:3001) is active, "
        "server green (10.92.3.24:3001) is disabled: BLUE is LIVE, GREEN is STANDBY"
    )
    listen = analyze(
        read("listen_weight_style2.cfg"),
        "app-in",
        specs("192.168.50.10:3001", "192.168.50.11:3001"),
    )
    assert listen.route("blue").markers == ("weight 0",)
    assert listen.route("green").weight == "100"


def test_explicit_names_resolve_shared_server_names() -> None:
    text = (
        "frontend http-in\n  default_backend bk_green\n"
        "backend bk_blue\n  server app 10.0.0.1:1\nbackend bk_green\n  server app 10.0.0.2:1\n"
    )
    by_name = (ServerSpec("blue", "a:1", server="app"), ServerSpec("green", "b:1", server="app"))
    assert not analyze(text, servers=by_name).certain
    explicit = (
        ServerSpec("blue", "a:1", backend="bk_blue", server="app"),
        ServerSpec("green", "b:1", backend="bk_green", server="app"),
    )
    a = analyze(text, servers=explicit)
    assert a.certain and a.live == "green"
    by_address = analyze(text, servers=specs("10.0.0.1:1", "10.0.0.2:1"))
    assert by_address.certain and by_address.live == "green"
    assert by_address.route("blue").server == "app"


def test_address_match_ignores_case_and_family_prefix() -> None:
    text = style1("    default_backend bk_blue\n").replace("blue:3001", "ipv4@BLUE:3001")
    a = analyze(text)
    assert a.certain and a.route("blue").address == "ipv4@BLUE:3001"


def test_use_backend_beats_default_backend() -> None:
    a = analyze(read("no_trailing_newline.cfg"))
    assert a.routed_backend == "bk_blue"
    assert a.deciding_lines == (12,)


# Ambiguities: every one is reported, and certain is False


AMBIGUOUS = [
    (
        "frontend not found",
        LAB,
        "web",
        BG,
        ["Frontend web not found", "http-in"],
    ),
    (
        "frontend defined twice",
        LAB + "frontend http-in\n    bind :81\n",
        "http-in",
        BG,
        ["Frontend http-in is defined 2 times", "lines 1, 8"],
    ),
    (
        "both routed (backend per colour)",
        style1("    use_backend bk_blue\n    default_backend bk_green\n"),
        "http-in",
        BG,
        ["routes to more than one colour", "BLUE (line 3)", "GREEN (line 4)"],
    ),
    (
        "neither routed (backend per colour)",
        style1(""),
        "http-in",
        BG,
        ["routes to neither colour", "no default_backend", "bk_blue or bk_green"],
    ),
    (
        "conditional use_backend (if)",
        read("conditional_green.cfg"),
        "http-in",
        BG,
        ["Line 5", "bk_green", "use_backend bk_green if staging", "cannot reason"],
    ),
    (
        "conditional use_backend (unless)",
        style1("    use_backend bk_blue unless { src 10.0.0.0/8 }\n    default_backend bk_green\n"),
        "http-in",
        BG,
        ["Line 3", "unless { src 10.0.0.0/8 }", "cannot reason"],
    ),
    (
        "dynamic use_backend",
        style1("    use_backend bk_%[req.hdr(x-color)]\n    default_backend bk_blue\n"),
        "http-in",
        BG,
        ["Line 3", "a backend chosen at run time", "cannot reason"],
    ),
    (
        "unknown backend",
        style1("    default_backend bk_old\n", "backend bk_old\n    server old 10.1.1.1:80\n"),
        "http-in",
        BG,
        ["routes to backend bk_old (line 3)", "not a colour backend", "bk_blue or bk_green"],
    ),
    (
        "undefined backend",
        style1("    default_backend bk_missing\n"),
        "http-in",
        BG,
        ["routes to backend bk_missing (line 3), which is not defined"],
    ),
    (
        "colour server not found",
        LAB,
        "http-in",
        (ServerSpec("blue", "blue:3001", server="app-blue"), BG[1]),
        ["No server line for BLUE", "named app-blue"],
    ),
    (
        "colour server not found by address nor name",
        LAB.replace("server blue ", "server app-blue "),
        "http-in",
        (ServerSpec("blue", "10.9.9.9:1"), BG[1]),
        ["No server line for BLUE", "address 10.9.9.9:1 or named blue"],
    ),
    (
        "same server name in several backends",
        "frontend http-in\n  default_backend a\n"
        "backend a\n  server blue 10.0.0.1:1\n  server green 10.0.0.2:1\n"
        "backend b\n  server blue 10.0.0.3:1\n",
        "http-in",
        specs("x:1", "y:1"),
        ["Several server lines match BLUE", "a (line 4), b (line 7)", "set `backend` for blue"],
    ),
    (
        "same address in several backends",
        LAB + "backend bk_blue_direct\n    server blue blue:3001\n",
        "http-in",
        BG,
        ["Several server lines match BLUE", "bk_blue (line 5), bk_blue_direct (line 9)"],
    ),
    (
        "same address twice in one backend",
        LAB.replace("rise 2\nbackend", "rise 2\n    server blue2 blue:3001\nbackend", 1),
        "http-in",
        BG,
        ["Several server lines match BLUE", "bk_blue (line 5), bk_blue (line 6)", "set `server`"],
    ),
    (
        "track",
        style1("    default_backend bk_blue\n", green=" track bk_blue/blue"),
        "http-in",
        BG,
        ["Server green for GREEN (line 7) uses `track`"],
    ),
    (
        "default_backend from defaults, another frontend overrides it with the other colour",
        "defaults\n    default_backend bk_blue\n"
        + style1("")
        + "frontend https-in\n    bind *:443\n    default_backend bk_green\n",
        "http-in",
        BG,
        ["frontend https-in sends the app's users to GREEN (line 11)", "BLUE (line 2)"],
    ),
    (
        "several default_backend lines",
        style1("    default_backend bk_green\n    default_backend bk_blue\n"),
        "http-in",
        BG,
        ["several default_backend lines (3, 4)"],
    ),
    (
        "routing inside .if",
        style1(".if defined(BLUE)\n    default_backend bk_blue\n.endif\n"),
        "http-in",
        BG,
        ["Line 4", "inside a .if block"],
    ),
    (
        "line HAProxy cannot parse",
        style1("    http-request set-header X 'oops\n    default_backend bk_blue\n"),
        "http-in",
        BG,
        ["Line 3 cannot be parsed", "unmatched ' quote"],
    ),
    (
        "both colours match one server",
        LAB,
        "http-in",
        specs("blue:3001", "blue:3001"),
        ["BLUE and GREEN both match the server at line 5"],
    ),
    (
        "one colour only",
        LAB,
        "http-in",
        BG[:1],
        ["Exactly two distinct colours", "['blue']"],
    ),
    (
        "invalid colour",
        LAB,
        "http-in",
        (ServerSpec("Blue", "blue:3001"), BG[1]),
        ["Colour name 'Blue' is invalid"],
    ),
    (
        "explicit backend missing",
        LAB,
        "http-in",
        (ServerSpec("blue", "blue:3001", backend="bk_nope"), BG[1]),
        ["Backend bk_nope (configured for BLUE) not found"],
    ),
    (
        "disabled server with a backend per colour",
        style1("    default_backend bk_blue\n", green=" disabled"),
        "http-in",
        BG,
        ["Server green for GREEN (line 7) is disabled", "both servers must be"],
    ),
    (
        "disabled frontend",
        style1("    disabled\n    default_backend bk_blue\n"),
        "http-in",
        BG,
        ["The frontend http-in is disabled (line 3)"],
    ),
    (
        "both active (shared backend)",
        style2("", ""),
        "http-in",
        BG,
        ["Both colours are routed", "blue (line 5) and green (line 6)", "balanced"],
    ),
    (
        "both marked (shared backend)",
        style2(" backup", " weight 0"),
        "http-in",
        BG,
        ["Neither colour is routed", "backup, disabled or weight 0"],
    ),
    (
        "third active server (shared backend)",
        style2("", " backup", "    server canary 10.0.0.9:3001 check\n"),
        "http-in",
        BG,
        ["also sends traffic to server canary (line 7)"],
    ),
    (
        "default-server marker (shared backend)",
        style2("", " backup").replace(
            "\nbackend app\n", "\nbackend app\n    default-server disabled\n"
        ),
        "http-in",
        BG,
        ["default-server at line 5 sets disabled"],
    ),
    (
        "counter marker (shared backend)",
        style2(" no-backup", " backup"),
        "http-in",
        BG,
        ["uses `no-backup`"],
    ),
    (
        "frontend routes elsewhere (shared backend)",
        style2(
            "", " backup", "backend other\n    server o 1.1.1.1:1\n", "    default_backend other\n"
        ),
        "http-in",
        BG,
        ["routes to backend other (line 3), not to app"],
    ),
    (
        "frontend routes nowhere (shared backend)",
        style2("", " backup", front=""),
        "http-in",
        BG,
        ["routes nowhere"],
    ),
    (
        "conditional use_backend (shared backend)",
        style2("", " backup", front="    use_backend app if { path /a }\n"),
        "http-in",
        BG,
        ["Line 3", "sends traffic to app", "cannot reason"],
    ),
    (
        "use-server (shared backend)",
        style2("", " backup", "    use-server green if { hdr(x-canary) -m found }\n"),
        "http-in",
        BG,
        ["Line 7 of backend app picks server green", "overriding backup and weight"],
    ),
    (
        "weight not a number",
        style2(" weight 1a", " backup"),
        "http-in",
        BG,
        ["has weight '1a', which is not a number"],
    ),
]


@pytest.mark.parametrize(
    ("text", "frontend", "servers", "words"),
    [case[1:] for case in AMBIGUOUS],
    ids=[case[0] for case in AMBIGUOUS],
)
def test_ambiguity_is_reported(
    text: str, frontend: str, servers: tuple[ServerSpec, ...], words: list[str]
) -> None:
    a = analyze(text, frontend, servers)
    assert not a.certain
    assert a.problems
    joined = " ".join(a.problems)
    for word in words:
        assert word in joined
    for problem in a.problems:
        assert problem[0].isupper() and problem.endswith(".")
    assert describe(a).startswith(f"Routing of frontend {frontend} is uncertain: ")
    with pytest.raises(HAProxyConfigError, match="uncertain"):
        plan_switch(parse(text), a, "green")


def test_ambiguity_keeps_the_facts() -> None:
    # Conditional routing to GREEN: still reported LIVE per default_backend, but not certain.
    a = analyze(read("conditional_green.cfg"))
    assert (a.live, a.standby, a.certain) == ("blue", "green", False)
    both = analyze(style2("", ""))
    assert (both.live, both.standby) == (None, None)


# plan_switch: byte-exact diffs


def test_switch_backend_per_color_both_ways() -> None:
    cfg = parse(LAB)
    edit = plan_switch(cfg, analyze_routing(cfg, "http-in", BG), "green")
    assert edit.diff == (
        "--- a/haproxy.cfg\n"
        "+++ b/haproxy.cfg\n"
        "@@ -1,6 +1,6 @@\n"
        " frontend http-in\n"
        "     bind *:80\n"
        "-    default_backend bk_blue\n"
        "+    default_backend bk_green\n"
        " backend bk_blue\n"
        "     server blue blue:3001 check inter 1s fall 2 rise 2\n"
        " backend bk_green\n"
    )
    assert edit.text == LAB.replace("default_backend bk_blue", "default_backend bk_green")
    assert edit.changed_lines == (3,)
    assert (edit.target, edit.previous_live) == ("green", "blue")
    assert edit.analysis.live == "green" and edit.analysis.certain
    back = plan_switch(parse(edit.text), edit.analysis, "blue")
    assert back.text == LAB
    assert back.changed_lines == (3,)


@pytest.mark.parametrize(
    ("name", "frontend", "servers"),
    [(case[0], case[1], case[2]) for case in CORPUS_CASES if case[3] == "backend-per-color"],
)
def test_switch_twice_is_identity(
    name: str, frontend: str, servers: tuple[ServerSpec, ...]
) -> None:
    text = read(name)
    cfg = parse(text)
    a = analyze_routing(cfg, frontend, servers)
    assert a.standby is not None and a.live is not None
    there = plan_switch(cfg, a, a.standby)
    assert len(there.changed_lines) == 1
    back = plan_switch(parse(there.text), there.analysis, a.live)
    assert back.text == text


def test_switch_keeps_comment_spacing_crlf_and_quotes() -> None:
    crlf = parse(read("crlf_windows.cfg"))
    edit = plan_switch(crlf, analyze_routing(crlf, "http-in", BG), "blue")
    assert (
        "-    default_backend bk_green   # LIVE\r\n+    default_backend bk_blue   # LIVE\r\n"
        in (edit.diff)
    )
    assert edit.text.count("\r\n") == crlf.render().count("\r\n")
    quoted = parse(read("quoting_escapes.cfg"))
    edit = plan_switch(quoted, analyze_routing(quoted, "http-in", BG), "green")
    assert '-    default_backend "bk_blue"\n+    default_backend "bk_green"\n' in edit.diff
    tabs = parse(read("debian_default.cfg"))
    servers = specs("10.92.3.22:3001", "10.92.3.24:3001")
    edit = plan_switch(tabs, analyze_routing(tabs, "http-in", servers), "blue")
    assert "+\tdefault_backend jw_blue\t# switched 2025-12-21\n" in edit.diff


def test_switch_without_trailing_newline() -> None:
    text = (
        read("no_trailing_newline.cfg")
        .replace("    use_backend bk_blue\n", "")
        .replace("default_backend bk_fallback", "default_backend bk_blue")
    )
    text = text.replace("backend bk_fallback\n", "backend bk_fallback  # unused\n")
    cfg = parse(text)
    a = analyze_routing(cfg, "http-in", BG)
    assert a.certain, a.problems
    edit = plan_switch(cfg, a, "green")
    assert edit.text.endswith("# no newline at end of file")
    assert plan_switch(parse(edit.text), edit.analysis, "blue").text == text
    last = "+    server green green:3001 check  # no newline at end of file\n"
    assert last not in edit.diff  # untouched last line is not in the diff


def test_diff_marks_missing_newline() -> None:
    assert routing.unified_diff("a\nb", "a\nc") == (
        "--- a/haproxy.cfg\n+++ b/haproxy.cfg\n@@ -1,2 +1,2 @@\n a\n"
        "-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    )


SHARED_SWITCHES = [
    (
        "backup",
        "    server blue blue:3001 check   # LIVE\n"
        "    server green green:3001 check backup inter 2s\n",
        "green",
        "    server blue blue:3001 check backup   # LIVE\n"
        "    server green green:3001 check inter 2s\n",
    ),
    (
        "disabled",
        "    server blue blue:3001 check disabled\n    server green green:3001 check\n",
        "blue",
        "    server blue blue:3001 check\n    server green green:3001 check disabled\n",
    ),
    (
        "weight 0, explicit weights",
        "\tserver\tblue\tblue:3001  weight 0   check\n\tserver\tgreen\tgreen:3001  weight 50 check\n",
        "blue",
        "\tserver\tblue\tblue:3001  weight 50   check\n\tserver\tgreen\tgreen:3001  weight 0 check\n",
    ),
    (
        "weight 0, default weight on LIVE",
        "    server blue blue:3001 check\n    server green green:3001 weight 0 check\n",
        "green",
        "    server blue blue:3001 weight 0 check\n    server green green:3001 check\n",
    ),
    (
        "backup and weight 0 together",
        "    server blue blue:3001 check backup weight 0\n    server green green:3001 check\n",
        "blue",
        "    server blue blue:3001 check\n    server green green:3001 check backup weight 0\n",
    ),
]


@pytest.mark.parametrize(
    ("before", "target", "after"),
    [case[1:] for case in SHARED_SWITCHES],
    ids=[case[0] for case in SHARED_SWITCHES],
)
def test_switch_shared_backend_both_ways(before: str, target: str, after: str) -> None:
    head = "frontend http-in  # entry\n    bind *:80\n    default_backend app\nbackend app\n"
    text = head + before
    cfg = parse(text)
    edit = plan_switch(cfg, analyze_routing(cfg, "http-in", BG), target)
    assert edit.text == head + after
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert edit.diff == (
        "--- a/haproxy.cfg\n+++ b/haproxy.cfg\n@@ -2,5 +2,5 @@\n"
        "     bind *:80\n     default_backend app\n backend app\n"
        + "".join("-" + line for line in old_lines)
        + "".join("+" + line for line in new_lines)
    )
    assert edit.changed_lines == (5, 6)
    assert edit.analysis.live == target
    back = plan_switch(parse(edit.text), edit.analysis, edit.previous_live)
    assert back.text == text


def test_switch_refusals() -> None:
    cfg = parse(LAB)
    a = analyze_routing(cfg, "http-in", BG)
    with pytest.raises(HAProxyConfigError, match="BLUE is already LIVE"):
        plan_switch(cfg, a, "blue")
    with pytest.raises(ValidationError, match="Unknown colour 'red'"):
        plan_switch(cfg, a, "red")
    other = parse(LAB.replace("bk_blue\nbackend", "bk_green\nbackend", 1))
    with pytest.raises(HAProxyConfigError, match=r"does not match this haproxy\.cfg"):
        plan_switch(other, a, "green")


def test_switch_checks_its_own_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_op(cfg: HAProxyConfig, *_: object) -> HAProxyConfig:
        return cfg

    def only_unmark(cfg: HAProxyConfig, old: ColorRoute, new: ColorRoute) -> HAProxyConfig:
        assert new.server_line is not None
        return cfg.remove_server_flag(new.server_line, "backup")  # both active afterwards

    cfg = parse(style2("", " backup"))
    monkeypatch.setattr(routing.edit, "_swap_markers", only_unmark)
    with pytest.raises(HAProxyConfigError, match="Internal check failed"):
        plan_switch(cfg, analyze_routing(cfg, "http-in", BG), "green")
    # An edit that changes nothing is an error, never a success.
    monkeypatch.setattr(routing.edit, "_swap_markers", no_op)
    with pytest.raises(HAProxyConfigError, match=r"would change nothing in haproxy\.cfg"):
        plan_switch(cfg, analyze_routing(cfg, "http-in", BG), "green")


def test_default_backend_inherited_from_defaults() -> None:
    text = "defaults\n    default_backend bk_blue\n" + style1("")
    a = analyze(text)
    assert a.certain and a.live == "blue" and a.deciding_lines == (2,)
    assert a.notes == (
        "The frontend http-in takes its default_backend from the defaults section (line 2): a "
        "switch edits that line, for every proxy that inherits it.",
    )
    edit = plan_switch(parse(text), a, "green")
    assert edit.changed_lines == (2,)
    assert edit.text == text.replace("default_backend bk_blue", "default_backend bk_green")


# Property: whatever the spacing and comments, a switch edits one line and switching back
# restores the exact text (backend per colour).

blank = st.sampled_from([" ", "  ", "\t", " \t "])
comment = st.sampled_from(["", "  # LIVE", "\t# switched by hand", " #"])
eol = st.sampled_from(["\n", "\r\n"])


@given(blank, blank, comment, comment, eol, st.sampled_from(["blue", "green"]), st.booleans())
def test_switch_round_trip_property(
    indent: str, gap: str, note: str, other: str, end: str, live: str, use: bool
) -> None:
    keyword = "use_backend" if use else "default_backend"
    lines = [
        f"# preamble{other}",
        "frontend http-in" + other,
        f"{indent}bind{gap}*:80",
        f"{indent}{keyword}{gap}bk_{live}{note}",
        "backend bk_blue",
        f"{indent}server{gap}blue{gap}blue:3001 check{note}",
        f"backend bk_green{other}",
        f"{indent}server{gap}green{gap}green:3001 check",
    ]
    text = end.join(lines) + end
    cfg = parse(text)
    a = analyze_routing(cfg, "http-in", BG)
    assert a.certain and a.live == live
    target = "green" if live == "blue" else "blue"
    there = plan_switch(cfg, a, target)
    assert there.changed_lines == (4,)
    assert there.text.replace(f"bk_{target}", f"bk_{live}", 1) == text
    assert plan_switch(parse(there.text), there.analysis, live).text == text


@given(
    st.sampled_from(["backup", "disabled", "weight 0"]),
    st.integers(min_value=0, max_value=2),
    st.sampled_from(["", " weight 10"]),
    comment,
)
def test_switch_shared_property(marker: str, at: int, live_weight: str, note: str) -> None:
    params = ["check", "inter 2s", "rise 2"]
    standby = " ".join([*params[:at], marker, *params[at:]])
    live = " ".join(params) + (live_weight if marker == "weight 0" else "")
    text = (
        "frontend http-in\n  default_backend app\nbackend app\n"
        f"  server blue blue:3001 {live}{note}\n  server green green:3001 {standby}{note}\n"
    )
    cfg = parse(text)
    a = analyze_routing(cfg, "http-in", BG)
    assert a.certain and a.live == "blue"
    edit = plan_switch(cfg, a, "green")
    assert edit.changed_lines == (4, 5)
    assert edit.analysis.live == "green" and edit.analysis.certain
    assert edit.text.splitlines()[:3] == text.splitlines()[:3]
    assert plan_switch(parse(edit.text), edit.analysis, "blue").text == text
