"""Routing with HAProxy's semantics on the users' layouts: one shared frontend for many apps chosen
by Host ACL with fixed preview lines, several frontends, several files, variables, templates."""

from __future__ import annotations

import pytest

from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.routing import (
    RuleNote,
    ServerSpec,
    analyze_routing,
    config_args,
    describe,
    load,
    load_order,
    plan_switch,
)
from bluegreen.errors import HAProxyConfigError

THEOSHIFT = (ServerSpec("blue", "10.92.3.24:3001"), ServerSpec("green", "10.92.3.22:3001"))

SHARED = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend https_frontend
    bind *:80
    acl is_theoshift       hdr(host) -i theoshift.com
    acl is_theoshift_blue  hdr(host) -i blue.theoshift.com
    acl is_theoshift_green hdr(host) -i green.theoshift.com
    acl is_ldc_tools       hdr(host) -i ldc-tools.com
    use_backend theoshift_green if is_theoshift          # LIVE
    use_backend theoshift_blue  if is_theoshift_blue     # preview, fixed
    use_backend theoshift_green if is_theoshift_green    # preview, fixed
    use_backend ldc-tools-blue  if is_ldc_tools
    default_backend homepage

backend theoshift_blue
    server blue1 10.92.3.24:3001 check inter 5s fall 3 rise 2
backend theoshift_green
    server green1 10.92.3.22:3001 check inter 5s fall 3 rise 2
backend ldc-tools-blue
    server blue1 10.92.3.23:3001 check
backend homepage
    server web 10.92.3.40:80 check
"""


@pytest.mark.parametrize(
    "app",
    [{"rule": "is_theoshift"}, {"hosts": ["theoshift.com"]}, {"hosts": ["TheoShift.com"]}],
    ids=["rule", "hosts", "hosts-any-case"],
)
def test_shared_frontend_answers_by_the_apps_own_rule(app: dict[str, object]) -> None:
    a = analyze_routing(parse(SHARED), "https_frontend", THEOSHIFT, **app)  # type: ignore[arg-type]
    assert a.problems == ()
    assert a.certain and (a.live, a.standby) == ("green", "blue")
    assert a.deciding_lines == (13,)
    assert a.routed_backend == "theoshift_green"
    assert a.preview == (
        RuleNote(14, "use_backend theoshift_blue  if is_theoshift_blue     # preview, fixed",
                 "theoshift_blue", "blue", ("blue.theoshift.com",)),
        RuleNote(15, "use_backend theoshift_green if is_theoshift_green    # preview, fixed",
                 "theoshift_green", "green", ("green.theoshift.com",)),
    )  # fmt: skip
    assert [(o.line, o.backend) for o in a.others] == [(16, "ldc-tools-blue"), (17, "homepage")]
    assert describe(a) == (
        "frontend https_frontend routes to backend theoshift_green (server green1, "
        "10.92.3.22:3001): GREEN is LIVE, BLUE is STANDBY (2 preview line(s) stay as they are)"
    )


def test_switch_moves_only_the_deciding_line() -> None:
    cfg = parse(SHARED)
    a = analyze_routing(cfg, "https_frontend", THEOSHIFT, rule="is_theoshift")
    edit = plan_switch(cfg, a, "blue")
    before, after = SHARED.splitlines(keepends=True), edit.text.splitlines(keepends=True)
    changed = [n for n, (x, y) in enumerate(zip(before, after, strict=True), 1) if x != y]
    assert changed == [13] and edit.changed_lines == (13,)
    assert after[12] == "    use_backend theoshift_blue if is_theoshift          # LIVE\n"
    body = edit.diff.splitlines()[3:]  # after ---, +++ and @@
    assert [line for line in body if line[0] in "-+"] == [
        "-    use_backend theoshift_green if is_theoshift          # LIVE",
        "+    use_backend theoshift_blue if is_theoshift          # LIVE",
    ]
    assert "-    use_backend theoshift_green if is_theoshift          # LIVE\n" in edit.diff
    assert edit.analysis.live == "blue" and edit.analysis.preview == a.preview
    assert plan_switch(parse(edit.text), edit.analysis, "green").text == SHARED


def test_without_rule_or_hosts_the_shared_frontend_is_uncertain() -> None:
    a = analyze_routing(parse(SHARED), "https_frontend", THEOSHIFT)
    assert not a.certain
    joined = " ".join(a.problems)
    assert "Line 13 of frontend https_frontend sends traffic to theoshift_green" in joined
    assert "name the app's ACL (`rule`) or `hosts` in the config" in joined
    with pytest.raises(HAProxyConfigError, match="uncertain"):
        plan_switch(parse(SHARED), a, "blue")


def test_acl_names_are_matched_exactly() -> None:
    only_preview = SHARED.replace("if is_theoshift  ", "if is_theoshift_x").replace(
        "acl is_theoshift  ", "acl is_theoshift_x"
    )
    a = analyze_routing(parse(only_preview), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert not a.certain
    assert "The app's rule is_theoshift is not an ACL of frontend https_frontend." in a.problems


def test_preview_before_the_deciding_line_is_still_a_preview() -> None:
    lines = SHARED.splitlines(keepends=True)
    lines[12], lines[13] = lines[13], lines[12]
    text = "".join(lines)
    a = analyze_routing(parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert a.certain and a.live == "green" and a.deciding_lines == (14,)
    assert [p.line for p in a.preview] == [13, 15]


def test_a_host_suffix_acl_may_catch_the_apps_users() -> None:
    # hdr_dom(host) also matches blue.theoshift.com: before the deciding line, the preview rule
    # can only be told apart when the app's hosts are configured.
    lines = SHARED.splitlines(keepends=True)
    lines[8] = "    acl is_theoshift       hdr_dom(host) -i theoshift.com\n"
    lines[12], lines[13] = lines[13], lines[12]
    text = "".join(lines)
    by_rule = analyze_routing(parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert not by_rule.certain
    assert any("Line 13" in p and "cannot reason" in p for p in by_rule.problems)
    with_hosts = analyze_routing(
        parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift", hosts=["theoshift.com"]
    )
    assert with_hosts.certain and with_hosts.live == "green"


def test_rule_and_hosts_must_agree() -> None:
    a = analyze_routing(
        parse(SHARED), "https_frontend", THEOSHIFT, rule="is_theoshift", hosts=["theoshift.org"]
    )
    assert "The app's rule is_theoshift does not match its hosts theoshift.org" in a.problems[0]


def test_an_unconditional_use_backend_makes_later_lines_dead() -> None:
    text = SHARED.replace("    acl is_ldc_tools", "    use_backend homepage\n    acl is_ldc_tools")
    a = analyze_routing(parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert not a.certain
    joined = " ".join(a.problems)
    assert "routes to backend homepage (line 12), it is not a colour backend" in joined.replace(
        ";", ","
    )
    assert "Line 14 of frontend https_frontend" in joined and "is never used" in joined


def test_default_backend_to_the_other_colour_is_uncertain() -> None:
    text = SHARED.replace("default_backend homepage", "default_backend theoshift_blue")
    a = analyze_routing(parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert not a.certain
    assert "sends the requests no rule matches to theoshift_blue (line 17)" in a.problems[0]
    same = SHARED.replace("default_backend homepage", "default_backend theoshift_green")
    b = analyze_routing(parse(same), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert b.certain and b.deciding_lines == (13, 17)
    edit = plan_switch(parse(same), b, "blue")
    assert edit.changed_lines == (13, 17)


HTTPS = """\
frontend https_in
    bind *:443
    acl is_theoshift hdr(host) -i theoshift.com
    use_backend theoshift_{color} if is_theoshift
    default_backend homepage
"""


def test_every_frontend_that_reaches_a_colour_is_part_of_the_answer() -> None:
    other = SHARED + HTTPS.format(color="blue")
    a = analyze_routing(parse(other), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert not a.certain
    assert a.problems == (
        "The frontend https_in sends the app's users to BLUE (line 30) while frontend "
        "https_frontend sends them to GREEN (line 13): users reach both colours.",
    )
    agree = SHARED + HTTPS.format(color="green")
    b = analyze_routing(parse(agree), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert b.certain and b.deciding_lines == (13, 30)
    assert b.frontends == ("https_frontend", "https_in")
    edit = plan_switch(parse(agree), b, "blue")
    assert edit.changed_lines == (13, 30)
    assert edit.analysis.certain and edit.analysis.live == "blue"


MAIN = """\
global
    setenv THEOSHIFT_BLUE 10.92.3.24:3001
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend https_frontend
    bind *:80
    acl is_theoshift hdr(host) -i theoshift.com
    use_backend theoshift_blue if is_theoshift
    default_backend homepage
backend homepage
    server web 10.92.3.40:80
"""
APP = """\
# theoshift, managed by hand
backend theoshift_blue
    server blue1 "${THEOSHIFT_BLUE}" check
backend theoshift_green
    server-template green 1 10.92.3.22:3001 check"""


def test_several_files_read_as_one_configuration() -> None:
    files = [("/etc/haproxy/haproxy.cfg", MAIN), ("/etc/haproxy/conf.d/10-theoshift.cfg", APP)]
    loaded = load(files)
    assert loaded.text(files[1][0]) == APP  # no final newline, kept
    a = analyze_routing(loaded, "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert a.problems == ()
    assert a.certain and a.live == "blue"
    assert a.route("blue").server == "blue1"  # found through the global setenv
    assert a.route("green").server == "green"  # the server-template's prefix
    assert a.where(a.route("green").server_line or 0) == (
        "line 5 of /etc/haproxy/conf.d/10-theoshift.cfg"
    )
    edit = plan_switch(loaded, a, "green")
    assert edit.path == "/etc/haproxy/haproxy.cfg"
    assert edit.changed_lines == (11,)
    assert edit.text == MAIN.replace("use_backend theoshift_blue", "use_backend theoshift_green")
    assert edit.diff.startswith("--- a/etc/haproxy/haproxy.cfg\n+++ b/etc/haproxy/haproxy.cfg\n")


def test_several_files_name_the_file_of_each_problem() -> None:
    https = HTTPS.format(color="green").replace("default_backend homepage\n", "")
    files = [
        ("haproxy.cfg", MAIN),
        ("conf.d/10-app.cfg", APP + "\n"),
        ("conf.d/20-https.cfg", https),
    ]
    a = analyze_routing(load(files), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert a.problems == (
        "The frontend https_in sends the app's users to GREEN (line 4 of conf.d/20-https.cfg) "
        "while frontend https_frontend sends them to BLUE (line 11 of haproxy.cfg): users reach "
        "both colours.",
    )
    dangling = [("haproxy.cfg", MAIN), ("conf.d/x.cfg", "    timeout server 1m\n")]
    b = analyze_routing(load(dangling), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert b.problems[0].startswith("conf.d/x.cfg starts with 'timeout server 1m' before any")


def test_variables_only_from_the_global_section() -> None:
    text = MAIN.replace("setenv THEOSHIFT_BLUE", "setenv OTHER") + APP
    a = analyze_routing(parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert not a.certain
    assert "Server blue1 (line 17) takes its address from a variable" in " ".join(a.problems)
    preset = MAIN.replace("setenv THEOSHIFT_BLUE", "presetenv THEOSHIFT_BLUE") + APP + "\n"
    b = analyze_routing(parse(preset), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert b.certain
    assert b.notes == (
        "Server blue1 (line 17) takes its address from THEOSHIFT_BLUE, set by presetenv: a "
        "THEOSHIFT_BLUE in HAProxy's own environment would win.",
    )


def test_server_template_cannot_hold_a_standby_marker() -> None:
    text = (
        "frontend fe\n  bind :80\n  default_backend app\nbackend app\n"
        "  server blue 10.92.3.24:3001 check\n  server-template green 2 10.92.3.22:3001 backup\n"
    )
    a = analyze_routing(parse(text), "fe", THEOSHIFT)
    assert not a.certain
    assert "The server-template at line 6 makes several servers from one line" in a.problems[0]


def test_the_process_command_line_gives_the_files_in_load_order() -> None:
    argv = ["/usr/sbin/haproxy", "-Ws", "-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/h.pid",
            "-f", "/etc/haproxy/conf.d", "-S", "/run/haproxy-master.sock"]  # fmt: skip
    paths = config_args(argv)
    assert paths == ("/etc/haproxy/haproxy.cfg", "/etc/haproxy/conf.d")
    listing = {"/etc/haproxy/conf.d": ["20-b.cfg", "10-a.cfg", "README", "09.cfg.bak"]}
    assert load_order(paths, listing) == (
        "/etc/haproxy/haproxy.cfg",
        "/etc/haproxy/conf.d/10-a.cfg",
        "/etc/haproxy/conf.d/20-b.cfg",
    )
    assert config_args(["haproxy", "-c", "--", "a.cfg", "b.cfg"]) == ("a.cfg", "b.cfg")


def test_an_acl_of_the_same_name_elsewhere_is_judged_by_its_hosts() -> None:
    other = SHARED + HTTPS.format(color="blue").replace("-i theoshift.com", "-i other.example")
    a = analyze_routing(parse(other), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert a.problems == ()
    assert a.certain and a.deciding_lines == (13,)  # https_in's is_theoshift is another host
    assert [p.line for p in a.preview] == [14, 15, 30]


def test_a_colour_listen_section_with_its_own_bind_is_an_entry_to_that_colour() -> None:
    text = SHARED.replace("backend theoshift_blue\n", "listen theoshift_blue\n    bind *:8081\n")
    a = analyze_routing(parse(text), "https_frontend", THEOSHIFT, rule="is_theoshift")
    assert a.problems == (
        "The listen theoshift_blue holds BLUE's server and accepts connections itself (line 20): "
        "its users reach BLUE whichever colour is LIVE.",
    )


@pytest.mark.parametrize("line", ["force-persist if { src 10.0.0.0/8 }", "option persist"])
def test_persistence_that_reaches_even_a_disabled_server(line: str) -> None:
    text = (
        "frontend fe\n  bind :80\n  default_backend app\nbackend app\n"
        f"  cookie SRV insert indirect nocache\n  {line}\n"
        "  server blue 10.92.3.24:3001 check cookie b\n"
        "  server green 10.92.3.22:3001 check cookie g disabled\n"
    )
    a = analyze_routing(parse(text), "fe", THEOSHIFT)
    assert not a.certain
    assert a.problems == (
        f"Backend app keeps clients on the server they used before (line 6: {line!r}), so "
        "disabled on green does not keep them off it: remove that line.",
    )
    without = analyze_routing(parse(text.replace(f"  {line}\n", "")), "fe", THEOSHIFT)
    assert without.certain and without.live == "blue"
