from __future__ import annotations

import pytest

from bluegreen.domain.runtime import (
    ProcInfo,
    RuntimeOutputError,
    ServerState,
    StatRow,
    admin_state_words,
    op_state_word,
    parse_show_proc,
    parse_show_servers_state,
    parse_show_stat,
    status_word,
)
from bluegreen.domain.runtime_compare import CfgServer, RuntimeReport, runtime_disagreements

# ---- `show stat` as HAProxy 2.6 prints it ----------------------------------------------------

# The 2.6 column list, including the stats-module columns after the "-" separator.
STAT_COLUMNS = """
pxname svname qcur qmax scur smax slim stot bin bout dreq dresp ereq econ eresp wretr wredis
status weight act bck chkfail chkdown lastchg downtime qlimit pid iid sid throttle lbtot tracked
type rate rate_lim rate_max check_status check_code check_duration hrsp_1xx hrsp_2xx hrsp_3xx
hrsp_4xx hrsp_5xx hrsp_other hanafail req_rate req_rate_max req_tot cli_abrt srv_abrt comp_in
comp_out comp_byp comp_rsp lastsess last_chk last_agt qtime ctime rtime ttime agent_status
agent_code agent_duration check_desc agent_desc check_rise check_fall check_health agent_rise
agent_fall agent_health addr cookie mode algo conn_rate conn_rate_max conn_tot intercepted dcon
dses wrew connect reuse cache_lookups cache_hits srv_icur src_ilim qtime_max ctime_max rtime_max
ttime_max eint idle_conn_cur safe_conn_cur used_conn_cur need_conn_est uweight
agg_server_check_status - ssl_sess ssl_reused_sess ssl_failed_handshake h2_headers_rcvd
h2_data_rcvd h2_settings_rcvd h2_rst_stream_rcvd h2_goaway_rcvd h2_detected_conn_protocol_errors
h2_detected_strm_protocol_errors h2_rst_stream_resp h2_goaway_resp h2_open_connections
h2_backend_open_streams h2_total_connections h2_backend_total_streams h1_open_connections
h1_open_streams h1_total_connections h1_total_streams h1_bytes_in h1_bytes_out
h1_spliced_bytes_in h1_spliced_bytes_out
""".split()  # noqa: SIM905 (the real header, readable)
STAT_HEADER = "# " + ",".join(STAT_COLUMNS) + ","


def stat_line(**cells: str | int) -> str:
    """One CSV line in 2.6's column order; unnamed columns empty, trailing comma like HAProxy."""
    values = [str(cells.pop(name, "")) for name in STAT_COLUMNS]
    assert not cells, f"unknown columns {cells}"
    return ",".join(values) + ","


COUNTERS = {"qcur": 0, "qmax": 0, "smax": 12, "stot": 4411, "bin": 1893310, "bout": 90233411}


def server_line(px: str, sv: str, status: str, **cells: str | int) -> str:
    base: dict[str, str | int] = {
        **COUNTERS,
        "pxname": px,
        "svname": sv,
        "status": status,
        "weight": 1,
        "uweight": 1,
        "act": 1,
        "bck": 0,
        "scur": 0,
        "type": 2,
        "pid": 1,
        "iid": 3,
        "sid": 1,
        "lastchg": 1543,
        "check_status": "L7OK",
        "check_code": 200,
        "check_duration": 2,
        "check_desc": "Layer7 check passed",
        "last_chk": "HTTP status check returned code <3C>200<3E>",
        "check_rise": 2,
        "check_fall": 3,
        "check_health": 4,
        "mode": "http",
        "addr": "10.92.3.22:3001",
        "-": "-",
    }
    base.update(cells)
    return stat_line(**base)


def backend_line(px: str, status: str = "UP", **cells: str | int) -> str:
    base: dict[str, str | int] = {
        **COUNTERS,
        "pxname": px,
        "svname": "BACKEND",
        "status": status,
        "weight": 1,
        "uweight": 1,
        "act": 1,
        "bck": 0,
        "type": 1,
        "mode": "http",
        "algo": "roundrobin",
        "-": "-",
    }
    base.update(cells)
    return stat_line(**base)


FRONTEND = stat_line(
    pxname="http-in", svname="FRONTEND", scur=3, slim=50000, status="OPEN", type=0, mode="http"
)


def show_stat(*lines: str) -> str:
    return "\n".join([STAT_HEADER, FRONTEND, *lines]) + "\n\n"


LAB_STAT = show_stat(
    server_line("bk_blue", "blue", "UP", scur=3),
    backend_line("bk_blue"),
    server_line(
        "bk_green",
        "green",
        "DOWN",
        addr="10.92.3.24:3001",
        check_status="L4CON",
        check_code="",
        check_desc="Layer4 connection problem",
        last_chk="Connection refused",
        check_health=0,
    ),
    backend_line("bk_green", "DOWN", weight=0, act=0),
)


def test_stat_header_is_the_real_width() -> None:
    assert len(STAT_COLUMNS) > 120
    assert FRONTEND.count(",") == len(STAT_COLUMNS)


def test_parse_show_stat_lab_dump() -> None:
    rows = parse_show_stat(LAB_STAT)
    assert [(r.pxname, r.svname, r.kind) for r in rows] == [
        ("http-in", "FRONTEND", "frontend"),
        ("bk_blue", "blue", "server"),
        ("bk_blue", "BACKEND", "backend"),
        ("bk_green", "green", "server"),
        ("bk_green", "BACKEND", "backend"),
    ]
    blue, green = rows[1], rows[3]
    assert blue.status == "UP" and blue.state == "UP"
    assert (blue.weight, blue.uweight, blue.act, blue.bck, blue.scur) == (1, 1, 1, 0, 3)
    assert (blue.check_status, blue.check_code) == ("L7OK", 200)
    assert blue.check_desc == "Layer7 check passed"
    assert green.state == "DOWN"
    assert (green.check_status, green.check_code) == ("L4CON", None)
    assert green.last_chk == "Connection refused"
    assert rows[0].status == "OPEN" and rows[0].weight is None
    assert blue.fields["h1_total_connections"] == ""
    assert blue.fields["addr"] == "10.92.3.22:3001"


def test_parse_show_stat_uses_the_header_not_positions() -> None:
    text = (
        "# svname,pxname,status,future_col,weight,check_status,\n"
        "blue,bk_app,UP,xyz,100,* L7OK,\n"
        "green,bk_app,DRAIN,,0,L7OK\n"  # missing trailing columns are tolerated
    )
    blue, green = parse_show_stat(text)
    assert (blue.pxname, blue.svname, blue.weight) == ("bk_app", "blue", 100)
    assert blue.check_status == "L7OK"  # the in-progress "* " marker is dropped
    assert blue.fields["future_col"] == "xyz"
    assert blue.kind == "server"  # no type column: inferred from svname
    assert green.state == "DRAIN"
    assert green.scur is None and green.type is None


def test_parse_show_stat_handles_quoted_fields() -> None:
    text = '# pxname,svname,status,last_chk,\nbk,s1,DOWN,"HTTP 503, Service Unavailable",\n'
    (row,) = parse_show_stat(text)
    assert row.last_chk == "HTTP 503, Service Unavailable"


def test_parse_show_stat_empty_proxy_list() -> None:
    assert parse_show_stat(STAT_HEADER + "\n\n") == ()


@pytest.mark.parametrize(
    "text", ["", "\n", "Permission denied.\n", "Unknown command: 'show stats'\n", "1\n# be_id x\n"]
)
def test_parse_show_stat_refuses_other_answers(text: str) -> None:
    with pytest.raises(RuntimeOutputError, match="unexpected answer to `show stat`"):
        parse_show_stat(text)


def test_error_quotes_what_haproxy_said() -> None:
    with pytest.raises(RuntimeOutputError, match="Permission denied"):
        parse_show_stat("Permission denied.\n")


@pytest.mark.parametrize(
    ("status", "word", "detail"),
    [
        ("UP", "UP", None),
        ("UP 1/3", "UP", "1/3"),
        ("DOWN", "DOWN", None),
        ("DOWN 1/2", "DOWN", "1/2"),
        ("DOWN (agent)", "DOWN", "agent"),
        ("MAINT", "MAINT", None),
        ("MAINT (via bk_blue/blue)", "MAINT", "via bk_blue/blue"),
        ("MAINT (resolution)", "MAINT", "resolution"),
        ("DRAIN", "DRAIN", None),
        ("DRAIN (agent)", "DRAIN", "agent"),
        ("NOLB", "NOLB", None),
        ("no check", "no check", None),
        ("OPEN", "OPEN", None),
        ("", "unknown", None),
    ],
)
def test_status_words(status: str, word: str, detail: str | None) -> None:
    assert status_word(status) == word
    (row,) = parse_show_stat(f"# pxname,svname,status\nbk,s,{status}\n")
    assert row.state == word
    assert row.status_detail == detail


# ---- `show servers state` ---------------------------------------------------------------------

STATE_HEADER = (
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port"
)


def state_line(be: str, srv: str, op: int = 2, admin: int = 0, uw: int = 1, iw: int = 1) -> str:
    be_id = {"bk_blue": 3, "bk_green": 4}.get(be, 5)
    srv_id = 1 if srv in ("blue", "s1") else 2
    addr = "10.92.3.22" if srv == "blue" else "10.92.3.24"
    return f"{be_id} {be} {srv_id} {srv} {addr} {op} {admin} {uw} {iw} 1543 6 3 4 6 0 0 0 - 3001 - 0 0 - - 0"


def show_servers_state(*lines: str) -> str:
    return "\n".join(["1", STATE_HEADER, *lines]) + "\n\n"


def test_parse_show_servers_state() -> None:
    text = show_servers_state(
        state_line("bk_blue", "blue"),
        state_line("bk_green", "green", op=0, admin=5, uw=1, iw=1),
    )
    blue, green = parse_show_servers_state(text)
    assert (blue.backend_id, blue.backend, blue.server_id, blue.server) == (3, "bk_blue", 1, "blue")
    assert (blue.addr, blue.port, blue.uweight, blue.iweight) == ("10.92.3.22", 3001, 1, 1)
    assert blue.op_state_name == "running"
    assert blue.admin_flags == () and not blue.in_maintenance and not blue.draining
    assert green.op_state_name == "stopped"
    assert green.admin_flags == ("FMAINT", "CMAINT")
    assert green.in_maintenance
    assert green.fields["srv_check_state"] == "6"


def test_parse_show_servers_state_older_header_and_unresolved_address() -> None:
    text = (
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
        "srv_iweight\n5 app 1 s1 - 0 32 1 1\n"
    )
    (row,) = parse_show_servers_state(text)
    assert row.addr is None and row.port is None
    assert row.admin_flags == ("RMAINT",) and row.in_maintenance


def test_parse_show_servers_state_without_servers() -> None:
    assert parse_show_servers_state(show_servers_state()) == ()


@pytest.mark.parametrize(
    "text", ["", "Can't find backend.\n", "1\n3 bk 1 s 10.0.0.1 2 0 1 1\n", STAT_HEADER + "\n"]
)
def test_parse_show_servers_state_refuses_other_answers(text: str) -> None:
    with pytest.raises(RuntimeOutputError, match="show servers state"):
        parse_show_servers_state(text)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, ()),
        (0x01, ("FMAINT",)),
        (0x02, ("IMAINT",)),
        (0x04, ("CMAINT",)),
        (0x05, ("FMAINT", "CMAINT")),
        (0x08, ("FDRAIN",)),
        (0x0C, ("CMAINT", "FDRAIN")),
        (0x10, ("IDRAIN",)),
        (0x20, ("RMAINT",)),
        (0x40, ("HMAINT",)),
        (0x7F, ("FMAINT", "IMAINT", "CMAINT", "FDRAIN", "IDRAIN", "RMAINT", "HMAINT")),
    ],
)
def test_admin_state_words(value: int, words: tuple[str, ...]) -> None:
    assert admin_state_words(value) == words


@pytest.mark.parametrize(
    ("value", "maint", "drain"),
    [(0, False, False), (1, True, False), (2, True, False), (4, False, False), (8, False, True)],
)
def test_maintenance_follows_haproxys_mask(value: int, maint: bool, drain: bool) -> None:
    (row,) = parse_show_servers_state(show_servers_state(state_line("bk", "s1", admin=value)))
    assert (row.in_maintenance, row.draining) == (maint, drain)


@pytest.mark.parametrize(
    ("value", "word"), [(0, "stopped"), (1, "starting"), (2, "running"), (3, "stopping")]
)
def test_op_state_words(value: int, word: str) -> None:
    assert op_state_word(value) == word
    assert op_state_word(9) == "unknown(9)"


def test_hex_admin_state_is_accepted() -> None:
    text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n1 b 1 s - 2 0x8\n"
    assert parse_show_servers_state(text)[0].admin_flags == ("FDRAIN",)


# ---- `show proc` (master CLI) -----------------------------------------------------------------


def proc_line(*cols: str | int) -> str:
    return " ".join(f"{c!s:<15}" for c in cols).rstrip()


PROC_26 = "\n".join(
    [
        proc_line("#<PID>", "<type>", "<reloads>", "<uptime>", "<version>"),
        proc_line(1, "master", "3 [failed: 1]", "0d02h11m05s", "2.6.12-1"),
        "# workers",
        proc_line(4127, "worker", 0, "0d00h04m10s", "2.6.12-1"),
        "# old workers",
        proc_line(3990, "worker", 1, "0d00h31m44s", "2.6.12-1"),
        proc_line(3801, "worker", 2, "1d00h00m01s", "2.6.9-1"),
        "# programs",
        proc_line(4130, "dataplaneapi", 0, "0d00h04m10s", "-"),
        "",
    ]
)

PROC_24 = "\n".join(
    [
        proc_line("#<PID>", "<type>", "<relative PID>", "<reloads>", "<uptime>", "<version>"),
        proc_line(1, "master", 0, 2, "0d00h10m00s", "2.4.22"),
        "# workers",
        proc_line(210, "worker", 1, 0, "0d00h01m00s", "2.4.22"),
        "# old workers",
        proc_line(150, "worker", "[was: 1]", 1, "0d00h05m00s", "2.4.22"),
        "# programs",
        "",
    ]
)


def test_parse_show_proc_26() -> None:
    proc = parse_show_proc(PROC_26)
    assert proc.master is not None and proc.master.pid == 1 and proc.master.kind == "master"
    assert proc.master_reloads == 3
    assert proc.failed_reloads == 1
    assert proc.master.version == "2.6.12-1"
    assert proc.worker_pids == (4127,)
    assert proc.old_worker_pids == (3990, 3801)
    assert proc.old_workers[1].uptime_s == 86401
    assert proc.workers[0].uptime_s == 250
    assert [(p.pid, p.kind, p.version) for p in proc.programs] == [(4130, "dataplaneapi", None)]


def test_parse_show_proc_24_with_relative_pids() -> None:
    proc = parse_show_proc(PROC_24)
    assert proc.master_reloads == 2
    assert proc.failed_reloads is None  # not printed before 2.5
    assert proc.worker_pids == (210,)
    assert proc.old_worker_pids == (150,)
    assert proc.old_workers[0].reloads == 1
    assert proc.old_workers[0].version == "2.4.22"


def test_parse_show_proc_without_old_workers() -> None:
    text = "\n".join(
        [
            proc_line("#<PID>", "<type>", "<reloads>", "<uptime>", "<version>"),
            proc_line(1, "master", "0 [failed: 0]", "0d00h00m09s", "2.6.12-1"),
            "# workers",
            proc_line(8, "worker", 0, "0d00h00m09s", "2.6.12-1"),
            "# programs",
        ]
    )
    proc = parse_show_proc(text)
    assert (proc.master_reloads, proc.failed_reloads) == (0, 0)
    assert proc.worker_pids == (8,) and proc.old_workers == ()


@pytest.mark.parametrize("text", ["", "Unknown command, but maybe one of the following:\n"])
def test_parse_show_proc_refuses_other_answers(text: str) -> None:
    with pytest.raises(RuntimeOutputError, match="show proc"):
        parse_show_proc(text)


# ---- runtime vs haproxy.cfg --------------------------------------------------------------------

BLUE = CfgServer("blue", "bk_blue", "blue", routed=True)
GREEN = CfgServer("green", "bk_green", "green")
# style 2: one backend, the standby disabled
BLUE_2 = CfgServer("blue", "bk_app", "blue", routed=True)
GREEN_2 = CfgServer("green", "bk_app", "green", disabled=True)

HEALTHY = parse_show_stat(
    show_stat(
        server_line("bk_blue", "blue", "UP"),
        backend_line("bk_blue"),
        server_line("bk_green", "green", "UP", addr="10.92.3.24:3001"),
        backend_line("bk_green"),
    )
)


def stats_with(green_status: str, **cells: str | int) -> tuple[StatRow, ...]:
    return parse_show_stat(
        show_stat(
            server_line("bk_blue", "blue", "UP"),
            backend_line("bk_blue"),
            server_line("bk_green", "green", green_status, **cells),
            backend_line("bk_green"),
        )
    )


def states_with(green_admin: int, op: int = 2, uw: int = 1, iw: int = 1) -> tuple[ServerState, ...]:
    return parse_show_servers_state(
        show_servers_state(
            state_line("bk_blue", "blue"),
            state_line("bk_green", "green", op=op, admin=green_admin, uw=uw, iw=iw),
        )
    )


def only(report: RuntimeReport, kind: str) -> str:
    messages = {
        "disagreement": report.disagreements,
        "health": report.health,
        "info": report.info,
    }[kind]
    assert len(messages) == 1, report.findings
    others = [f for f in report.findings if f.kind != kind]
    assert others == [], others
    return messages[0]


def test_in_sync_style1() -> None:
    report = runtime_disagreements([BLUE, GREEN], HEALTHY, states_with(0))
    assert report == RuntimeReport(())
    assert report.in_sync


def test_in_sync_style2_disabled_standby() -> None:
    stats = parse_show_stat(
        show_stat(
            server_line("bk_app", "blue", "UP"),
            server_line("bk_app", "green", "MAINT", check_status="", check_code=""),
            backend_line("bk_app"),
        )
    )
    states = parse_show_servers_state(
        show_servers_state(
            state_line("bk_app", "blue"), state_line("bk_app", "green", op=0, admin=5)
        )
    )
    assert runtime_disagreements([BLUE_2, GREEN_2], stats, states).findings == ()
    assert runtime_disagreements([BLUE_2, GREEN_2], stats).findings == ()
    assert runtime_disagreements([BLUE_2, GREEN_2], None, states).findings == ()


def test_nothing_fetched_means_nothing_to_say() -> None:
    assert runtime_disagreements([BLUE, GREEN]).findings == ()


@pytest.mark.parametrize(
    ("stats", "states", "expected"),
    [
        # MAINT by hand, seen through show stat only: the cause is ambiguous, say both
        (
            stats_with("MAINT"),
            None,
            "is in maintenance (MAINT) while haproxy.cfg enables it: "
            "set by hand on the runtime API, or haproxy.cfg was changed and not reloaded",
        ),
        # the admin flags make it precise
        (stats_with("MAINT"), states_with(0x01, op=0), "is in maintenance (MAINT), set by hand"),
        # cfg no longer says disabled, process still has it from the last load
        (
            stats_with("MAINT"),
            states_with(0x05, op=0),
            "was loaded with `disabled`, which "
            "haproxy.cfg no longer has; haproxy.cfg was changed and not reloaded",
        ),
        (stats_with("DRAIN"), None, "is draining (DRAIN), set by hand on the runtime API"),
        (HEALTHY, states_with(0x08), "is draining (DRAIN), set by hand on the runtime API"),
        (
            stats_with("UP", uweight=50, weight=50),
            None,
            "has weight 50 at runtime but 1 in "
            "haproxy.cfg: set by hand on the runtime API, or haproxy.cfg was changed and not reloaded",
        ),
        (
            HEALTHY,
            states_with(0, uw=0, iw=1),
            "has weight 0 at runtime, set by hand on the runtime API; haproxy.cfg says 1",
        ),
        (
            HEALTHY,
            states_with(0, uw=10, iw=10),
            "has weight 1 in haproxy.cfg, but the running "
            "HAProxy loaded weight 10; haproxy.cfg was changed and not reloaded",
        ),
        (
            stats_with("UP", bck=1, act=0),
            None,
            "is a backup server at runtime but an active one "
            "in haproxy.cfg; haproxy.cfg was changed and not reloaded",
        ),
    ],
)
def test_disagreements_on_the_standby(
    stats: tuple[StatRow, ...] | None, states: tuple[ServerState, ...] | None, expected: str
) -> None:
    message = only(runtime_disagreements([BLUE, GREEN], stats, states), "disagreement")
    assert message.startswith("green (bk_green/green) ")
    assert expected in message


def test_live_server_is_labelled_live() -> None:
    stats = parse_show_stat(
        show_stat(
            server_line("bk_blue", "blue", "MAINT"),
            backend_line("bk_blue", "DOWN"),
            server_line("bk_green", "green", "UP"),
            backend_line("bk_green"),
        )
    )
    message = only(runtime_disagreements([BLUE, GREEN], stats), "disagreement")
    assert message.startswith("blue (bk_blue/blue, LIVE) is in maintenance")


@pytest.mark.parametrize(
    ("stats", "states", "expected"),
    [
        (
            stats_with("UP"),
            None,
            "is `disabled` in haproxy.cfg but in service at runtime (UP): "
            "enabled by hand on the runtime API, or haproxy.cfg was changed and not reloaded",
        ),
        (
            None,
            states_with(0),
            "is `disabled` in haproxy.cfg, but the running HAProxy loaded it "
            "enabled; haproxy.cfg was changed and not reloaded",
        ),
        (
            None,
            states_with(0x04),
            "is `disabled` in haproxy.cfg, but was taken out of "
            "maintenance by hand on the runtime API",
        ),
    ],
)
def test_disabled_in_cfg_but_running(
    stats: tuple[StatRow, ...] | None, states: tuple[ServerState, ...] | None, expected: str
) -> None:
    green_disabled = CfgServer("green", "bk_green", "green", disabled=True)
    message = only(runtime_disagreements([BLUE, green_disabled], stats, states), "disagreement")
    assert expected in message


def test_cfg_weight_zero_standby_in_sync() -> None:
    green_w0 = CfgServer("green", "bk_green", "green", weight=0)
    stats = stats_with("UP", weight=0, uweight=0)
    assert runtime_disagreements([BLUE, green_w0], stats, states_with(0, uw=0, iw=0)).in_sync


def test_slowstart_scaled_weight_is_not_a_disagreement_without_uweight() -> None:
    stats = parse_show_stat(
        "# pxname,svname,status,weight,throttle,type\n"
        "bk_blue,blue,UP,1,,2\nbk_green,green,UP,3,30,2\n"
    )
    green_w10 = CfgServer("green", "bk_green", "green", weight=10)
    assert runtime_disagreements([BLUE, green_w10], stats).findings == ()


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], "the running HAProxy has no such backend"),
        ([backend_line("bk_green")], "backend bk_green has no server green in the running"),
        (
            [server_line("bk_green", "green-new", "UP"), backend_line("bk_green")],
            "backend bk_green has no server green in the running HAProxy",
        ),
    ],
)
def test_cfg_edited_but_not_reloaded(lines: list[str], expected: str) -> None:
    text = show_stat(server_line("bk_blue", "blue", "UP"), backend_line("bk_blue"), *lines)
    message = only(runtime_disagreements([BLUE, GREEN], parse_show_stat(text)), "disagreement")
    assert message.startswith("green (bk_green/green) is missing at runtime")
    assert expected in message
    assert message.endswith("haproxy.cfg was changed and not reloaded")


def test_missing_from_servers_state_alone() -> None:
    states = parse_show_servers_state(show_servers_state(state_line("bk_blue", "blue")))
    message = only(runtime_disagreements([BLUE, GREEN], None, states), "disagreement")
    assert "no server bk_green/green" in message


@pytest.mark.parametrize(
    ("status", "cells", "expected"),
    [
        (
            "DOWN",
            {"check_status": "L4CON", "check_code": "", "last_chk": "Connection refused"},
            "is DOWN by health check: L4CON (Connection refused)",
        ),
        (
            "DOWN",
            {"check_status": "L7STS", "check_code": 503, "last_chk": "HTTP status check returned"},
            "is DOWN by health check: L7STS 503 (HTTP status check returned",
        ),
        ("DOWN 1/2", {}, "is DOWN, coming back: 1/2 of the checks needed passed"),
        ("DOWN (agent)", {}, "is DOWN: its agent check fails"),
        ("UP 1/3", {}, "is UP but its latest health checks failed (1/3)"),
        ("NOLB", {}, "is soft-stopped (NOLB)"),
        ("MAINT (via bk_blue/blue)", {}, "tracks (bk_blue/blue)"),
        ("MAINT (resolution)", {}, "its address does not resolve"),
        ("DRAIN", {"tracked": "bk_blue/blue"}, "draining because the server it tracks"),
        ("DRAIN (agent)", {}, "at its agent check's request"),
    ],
)
def test_health_facts_are_not_disagreements(
    status: str, cells: dict[str, str | int], expected: str
) -> None:
    report = runtime_disagreements([BLUE, GREEN], stats_with(status, **cells))
    assert report.in_sync
    assert expected in only(report, "health")


def test_health_from_servers_state_alone() -> None:
    report = runtime_disagreements([BLUE, GREEN], None, states_with(0, op=0))
    assert "is stopped (DOWN) at runtime" in only(report, "health")
    inherited = runtime_disagreements([BLUE, GREEN], None, states_with(0x02, op=0))
    assert "because the server it tracks is" in only(inherited, "health")


def test_down_on_the_live_server_is_reported_with_its_role() -> None:
    stats = parse_show_stat(
        show_stat(
            server_line("bk_blue", "blue", "DOWN", check_status="L7TOUT", check_code=""),
            backend_line("bk_blue", "DOWN"),
            server_line("bk_green", "green", "UP"),
            backend_line("bk_green"),
        )
    )
    message = only(runtime_disagreements([BLUE, GREEN], stats), "health")
    assert message.startswith("blue (bk_blue/blue, LIVE) is DOWN by health check: L7TOUT")


def test_fqdn_change_is_info() -> None:
    report = runtime_disagreements([BLUE, GREEN], None, states_with(0x40))
    assert "FQDN changed" in only(report, "info")


def test_master_process_findings() -> None:
    report = runtime_disagreements([], proc=parse_show_proc(PROC_26))
    assert report.disagreements == (
        "the HAProxy master counts 1 failed reload(s): if the latest reload failed, HAProxy "
        "still runs an older configuration than haproxy.cfg on disk (`haproxy -c -f` says why)",
    )
    assert report.info == (
        "2 HAProxy worker(s) from earlier reloads are still finishing their connections "
        "(pid 3990, 3801)",
    )
    no_workers = ProcInfo(parse_show_proc(PROC_26).master, 0, (), (), ())
    assert "no current worker" in only(runtime_disagreements([], proc=no_workers), "health")


def test_findings_carry_their_colour() -> None:
    report = runtime_disagreements(
        [BLUE, GREEN], stats_with("MAINT"), proc=parse_show_proc(PROC_26)
    )
    assert [(f.kind, f.color) for f in report.findings] == [
        ("disagreement", "green"),
        ("disagreement", None),
        ("info", None),
    ]
