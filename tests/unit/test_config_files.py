"""Every file HAProxy loads (`[haproxy] config_files`): the one-command read (run through a real
shell here), the running HAProxy's arguments as the witness, and the engine on the fake hosts
with an app whose lines live in a conf.d file: status, deploy and switch read every file, the
switch replaces only the file holding the deciding line (checked with every file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.unit.fake_hosts import APP, CFG_PATH, CONF_D, CONFIG_TOML, HP, WORK, FakeHosts
from tests.unit.test_snapshot import run_locally

from bluegreen.domain import lock as dlock
from bluegreen.domain.config import Config, parse_config
from bluegreen.domain.haproxy_files import FileRead, collect, parse_read, read_command
from bluegreen.domain.routing import load_order
from bluegreen.domain.snapshot import parse_snapshot, snapshot_command
from bluegreen.domain.switch_commands import backup_cfg_command, cfg_backup_name
from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import resolve_roles
from bluegreen.engine.status import files_routing
from bluegreen.errors import ConfigError, HAProxyConfigError
from bluegreen.mcp_text import status_text
from bluegreen.service import Service, SwitchRequest

APP_FILE = f"{CONF_D}/50-jw.cfg"
MAIN = """global
    stats socket /run/haproxy/admin.sock mode 660 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend other-in
    bind *:8080
    default_backend pool_other

backend pool_other
    server other other:3002
"""
APP_LINES = """frontend http-in
    bind *:80
    default_backend bk_blue

backend bk_blue
    server blue blue:3001 check

backend bk_green
    server green green:3001 check
"""
BOTH = (CFG_PATH, CONF_D)


def files_config(paths: tuple[str, ...] = BOTH) -> Config:
    listed = ", ".join(f'"{p}"' for p in paths)
    return parse_config(
        CONFIG_TOML.replace("[haproxy]\n", f"[haproxy]\nconfig_files = [{listed}]\n"), "test"
    )


def conf_d_hosts(paths: tuple[str, ...] = BOTH) -> tuple[FakeHosts, Service]:
    """haproxy.cfg with global, defaults and another app; the app's lines in conf.d; HAProxy
    runs with `-f haproxy.cfg -f conf.d`."""
    hosts = FakeHosts()
    hosts.runner.put_file(HP, CFG_PATH, MAIN)
    hosts.runner.put_file(HP, APP_FILE, APP_LINES)
    hosts.runner.put_file(HP, f"{CONF_D}/notes.txt", "not loaded by HAProxy")
    hosts.running_args = ("/usr/sbin/haproxy", "-Ws", "-f", CFG_PATH, "-f", CONF_D, "-p", "/x")
    hosts.running_cfg = hosts.loaded_text()
    hosts.snapshots = True
    return hosts, Service(files_config(paths), runner=hosts.runner)


# ---- config ------------------------------------------------------------------------------------


def test_config_files_default_to_config_path_and_are_checked_at_the_boundary() -> None:
    assert parse_config(CONFIG_TOML, "test").haproxy.files == (CFG_PATH,)
    assert files_config().haproxy.files == BOTH
    for bad, said in [
        (("etc/haproxy.cfg",), "absolute path"),
        (("/etc/../haproxy.cfg",), "'..'"),
        ((CFG_PATH, CFG_PATH + "/"), "listed twice"),
        (tuple(f"/etc/haproxy/{i}.cfg" for i in range(65)), "at most 64"),
    ]:
        with pytest.raises(ConfigError, match="config_files") as caught:
            files_config(bad)
        assert said in str(caught.value)


# ---- the read, through a real shell ------------------------------------------------------------


def loaded_dir(tmp_path: Path) -> tuple[Path, Path]:
    main = tmp_path / "haproxy.cfg"
    main.write_text("global\n")
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "20-b.cfg").write_text("backend b\n")
    (conf / "10-a.cfg").write_bytes(b"backend a\n\xff")
    (conf / ".10-hidden.cfg").write_text("skipped: HAProxy skips dot-files\n")
    (conf / "notes.txt").write_text("skipped: not *.cfg\n")
    (conf / "sub.cfg").mkdir()  # skipped: not a regular file
    return main, conf


def test_one_command_reads_every_file_in_haproxys_load_order(tmp_path: Path) -> None:
    main, conf = loaded_dir(tmp_path)
    paths = (str(main), str(conf))
    # A "running HAProxy": a process whose arguments carry the -f list; socat gives its pid.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                             "-f", str(main), "-f", str(conf)])  # fmt: skip
    try:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "socat").write_text(f"#!/bin/sh\ncat >/dev/null\necho 'Pid: {proc.pid}'\n")
        (bin_dir / "socat").chmod(0o755)
        command = read_command(paths, str(tmp_path / "admin.sock"))
        assert not command.mutating
        done = run_locally(command.render(), bin_dir)
    finally:
        proc.kill()
        proc.wait()
    assert done.returncode == 0, done.stderr
    reads, argv = parse_read(done.stdout, paths)
    files = collect(paths, reads, argv, "h")
    assert files.paths == (str(main), f"{conf}/10-a.cfg", f"{conf}/20-b.cfg")
    assert files.data(f"{conf}/10-a.cfg") == b"backend a\n\xff"
    assert files.running == paths and files.mismatch() is None and files.note() is None


def test_without_the_runtime_api_the_arguments_are_unknown_not_a_failure(tmp_path: Path) -> None:
    main, conf = loaded_dir(tmp_path)
    paths = (str(main), str(conf / "10-a.cfg"))
    done = run_locally(read_command(paths, str(tmp_path / "no.sock")).render())
    reads, argv = parse_read(done.stdout, paths)
    files = collect(paths, reads, argv, "h")
    assert argv is None and files.mismatch() is None
    assert files.note() and "could not be read" in files.note()  # type: ignore[operator]


def test_the_cfg_age_is_the_newest_file_haproxy_loads(tmp_path: Path) -> None:
    """An edit of a conf.d file after the worker started is an edit not reloaded, like one of
    haproxy.cfg; a file HAProxy does not load (a switch's candidate next to it) is not."""
    main, conf = loaded_dir(tmp_path)
    old = time.time() - 3600
    for path in (main, conf, *conf.iterdir()):
        os.utime(path, (old, old))
    command = snapshot_command((str(main), str(conf)), str(tmp_path / "no.sock"), [])
    (conf / ".50-jw.cfg.bluegreen-candidate").write_text("a switch's candidate, not loaded\n")
    snap = parse_snapshot(run_locally(command.render()).stdout, [])
    assert snap.cfg_mtime is not None and abs(snap.cfg_mtime - old) < 1
    (conf / "20-b.cfg").write_text("backend b2\n")
    snap = parse_snapshot(run_locally(command.render()).stdout, [])
    assert snap.cfg_mtime is not None and abs(snap.cfg_mtime - time.time()) < 60


def test_a_directory_is_its_cfg_files_in_lexical_order_without_dot_files() -> None:
    names = ["20-b.cfg", ".10-hidden.cfg", "10-a.cfg", "notes.txt"]
    assert load_order((CFG_PATH, CONF_D), {CONF_D: names}) == (
        CFG_PATH,
        f"{CONF_D}/10-a.cfg",
        f"{CONF_D}/20-b.cfg",
    )


def test_a_missing_or_unreadable_file_is_named() -> None:
    with pytest.raises(HAProxyConfigError, match=r"not found at /etc/x\.cfg on h"):
        collect(("/etc/x.cfg",), [FileRead(None)], None, "h")
    with pytest.raises(HAProxyConfigError, match=r"reading /d/a\.cfg on h failed: permission"):
        collect(("/d",), [FileRead(None, entries=(("a.cfg", FileRead(None, "permission denied")),))], None, "h")  # fmt: skip


def test_other_running_arguments_name_the_files_and_the_key_to_set() -> None:
    reads = [FileRead(b"global\n")]
    running = ("haproxy", "-W", "-f", CFG_PATH, "-f", CONF_D)
    files = collect((CFG_PATH,), reads, running, "h")
    problem = files.mismatch()
    assert problem is not None
    assert f"also loads {CONF_D}, which bluegreen does not read" in problem
    assert f'Set config_files = ["{CFG_PATH}", "{CONF_D}"]' in problem
    reordered = collect(BOTH, [FileRead(b"a\n"), FileRead(b"b\n")], ("h", "-f", CONF_D, "-f", CFG_PATH), "h")  # fmt: skip
    assert "in another order" in (reordered.mismatch() or "")
    fewer = collect(BOTH, [FileRead(b"a\n"), FileRead(b"b\n")], ("h", "-f", CFG_PATH), "h")
    assert f"does not load {CONF_D}" in (fewer.mismatch() or "")


def test_relative_running_paths_are_said_plainly_and_match_the_absolute_paths_ending_in_them() -> (
    None
):
    reads = [FileRead(b"a\n"), FileRead(b"b\n")]
    running = ("haproxy", "-f", "haproxy.cfg", "-f", "./conf.d")
    unmatched = collect((CFG_PATH,), reads[:1], running, "h")
    problem = unmatched.mismatch() or ""
    assert "haproxy.cfg, conf.d are relative paths" in problem
    assert 'Set config_files = ["<dir>/haproxy.cfg", "<dir>/conf.d"]' in problem
    assert "or start HAProxy with absolute -f paths" in problem
    matched = collect(BOTH, reads, running, "h")
    assert matched.mismatch() is None
    assert "taken to be config_files' -f /etc/haproxy/haproxy.cfg" in (matched.note() or "")
    elsewhere = collect(("/srv/haproxy.cfg", "/srv/other.d"), reads, running, "h")
    assert "relative paths" in (elsewhere.mismatch() or "")
    absolute = collect(BOTH, reads, ("haproxy", "-f", CFG_PATH, "-f", CONF_D), "h")
    assert absolute.mismatch() is None and absolute.note() is None
    hosts, service = conf_d_hosts()  # status, on the fake host, with HAProxy's relative paths
    hosts.running_args = ("haproxy", "-f", "haproxy.cfg", "-f", "conf.d")
    status = service.status(APP)
    assert status.certain, status.problems
    assert any("relative paths" in n for n in status.routing.notes)


def test_each_file_keeps_its_own_newest_backups(tmp_path: Path) -> None:
    """The backup prunes the copies of the file it backs up, never another file's."""
    source = tmp_path / "50-jw.cfg"
    backups = tmp_path / "work" / "cfg-backups"
    backups.mkdir(parents=True)
    (backups / "haproxy.cfg.20260101T000000.000000Z.blue-to-green").write_text("other file")
    for i in range(4):
        source.write_text(f"version {i}\n")
        os.utime(source, (1_000_000 + i, 1_000_000 + i))
        name = cfg_backup_name(
            datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC), "blue", "green", str(source)
        )
        command = backup_cfg_command(str(source), str(tmp_path / "work"), name, 2, False)
        assert run_locally(command.render()).returncode == 0
    kept = sorted(p.name for p in backups.iterdir())
    assert kept == [
        "50-jw.cfg.20260101T000002.000000Z.blue-to-green",
        "50-jw.cfg.20260101T000003.000000Z.blue-to-green",
        "haproxy.cfg.20260101T000000.000000Z.blue-to-green",
    ]


# ---- the engine on the fake hosts --------------------------------------------------------------


def test_status_and_deploy_read_the_app_from_its_conf_d_file() -> None:
    hosts, service = conf_d_hosts()
    status = service.status(APP)
    assert status.certain and status.live and status.live.color == "blue", status.problems
    assert not status.routing.notes
    reads = [
        c for c in hosts.runner.calls_to(HP, "run") if c.command and c.command.argv[0] != "curl"
    ]
    assert len(reads) == 1  # still ONE read of the HAProxy host (besides the health probes)
    roles = resolve_roles(service.context(), files_config().apps[APP])
    assert (roles.live, roles.standby) == ("blue", "green")


def test_a_file_haproxy_loads_but_config_files_misses_makes_status_deploy_and_switch_refuse() -> (
    None
):
    hosts, service = conf_d_hosts()
    hosts.runner.put_file(HP, CFG_PATH, MAIN + "\n" + APP_LINES)  # answerable from haproxy.cfg
    hosts.runner.remove_file(HP, APP_FILE)
    hosts.runner.put_file(HP, f"{CONF_D}/60-more.cfg", "backend bk_more\n    server m m:1\n")
    service = Service(files_config((CFG_PATH,)), runner=hosts.runner)
    status = service.status(APP)
    assert not status.certain and status.live is None
    assert any(CONF_D in p and "config_files" in p for p in status.routing.problems)
    with pytest.raises(HAProxyConfigError, match=r"refusing to deploy.*config_files"):
        resolve_roles(service.context(), files_config((CFG_PATH,)).apps[APP])
    before = hosts.runner.file(HP, CFG_PATH)
    with pytest.raises(HAProxyConfigError, match=r"refusing to switch.*Set config_files"):
        service.switch(APP, SwitchRequest(require_approval=False))
    assert hosts.runner.file(HP, CFG_PATH) == before
    assert not [c for c in hosts.runner.calls_to(HP) if c.kind == "write"]


def test_arguments_that_cannot_be_read_are_a_note() -> None:
    hosts, service = conf_d_hosts()
    hosts.running_args = None
    status = service.status(APP)
    assert status.certain
    assert any("could not be read" in n for n in status.routing.notes)
    assert "Routing note: The running HAProxy's arguments could not be read" in status_text(status)


def test_the_switch_replaces_only_the_file_holding_the_deciding_line() -> None:
    hosts, service = conf_d_hosts()
    main_before = hosts.runner.file(HP, CFG_PATH)
    plan = service.plan_switch(APP)
    assert plan.cfg_file == APP_FILE
    assert f"+++ b{APP_FILE}" in plan.diff
    result = service.switch(APP, SwitchRequest(require_approval=False))
    assert result.ok, result.error
    assert hosts.runner.file(HP, CFG_PATH) == main_before  # byte-identical
    assert hosts.runner.file(HP, APP_FILE) == APP_LINES.replace("bk_blue\n\nbackend", "bk_green\n\nbackend", 1).encode()  # fmt: skip
    writes = [c.line for c in hosts.runner.calls_to(HP) if c.kind == "write"]
    assert APP_FILE in writes and CFG_PATH not in writes
    # The candidate is checked with every file HAProxy loads, staged next to the one it replaces.
    candidate = f"{CONF_D}/.50-jw.cfg.bluegreen-candidate"
    assert hosts.checks == [("haproxy", "-c", "-f", CFG_PATH, "-f", candidate)]
    assert hosts.runner.file(HP, candidate) is None
    # Its backup and its lock are that file's.
    backups = [p for p in hosts.runner.paths(HP) if p.startswith(f"{WORK}/cfg-backups/")]
    assert len(backups) == 1 and backups[0].split("/")[-1].startswith("50-jw.cfg.")
    locks = [c.line for c in hosts.runner.calls_to(HP) if "bluegreen-lock" in c.line]
    assert any(dlock.cfg_lock_key(APP_FILE) in line for line in locks)
    assert not any(dlock.cfg_lock_key(CFG_PATH) in line for line in locks)


def test_a_failed_candidate_check_leaves_every_file_unchanged() -> None:
    hosts, service = conf_d_hosts()
    hosts.check_fails = True
    before = {p: hosts.runner.file(HP, p) for p in (CFG_PATH, APP_FILE)}
    result = service.switch(APP, SwitchRequest(require_approval=False))
    assert not result.ok and not result.executed
    assert "haproxy -c" in (result.error or "")
    assert {p: hosts.runner.file(HP, p) for p in before} == before
    assert not any(p.endswith("bluegreen-candidate") for p in hosts.runner.paths(HP))


def test_another_file_locked_does_not_hold_this_switch() -> None:
    """Another app's switch holds haproxy.cfg's lock: this app's lines live in conf.d, so it
    switches at once."""
    hosts, service = conf_d_hosts()
    other = f"{WORK}/locks/{dlock.cfg_lock_key(CFG_PATH)}.lock"
    holder = dlock.new_holder("switch", "other", service.context().now())
    hosts.runner.put_file(HP, other + "/", b"")
    hosts.runner.put_file(HP, other + "/holder.json", holder.to_json())
    result = service.switch(APP, SwitchRequest(require_approval=False))
    assert result.ok, result.error
    assert hosts.runner.file(HP, other + "/holder.json") == holder.to_json()


def test_the_analysis_numbers_lines_through_every_file() -> None:
    files = collect(BOTH, [FileRead(MAIN.encode()), FileRead(None, entries=(("50-jw.cfg", FileRead(APP_LINES.encode())),))], None, "h")  # fmt: skip
    analysis = files_routing(files, files_config().apps[APP])
    assert (
        analysis.certain and analysis.where(analysis.deciding_lines[0]) == f"line 3 of {APP_FILE}"
    )


def test_an_auto_rollback_puts_back_only_that_file() -> None:
    """The new LIVE fails the post-switch watch: the rollback re-reads every file under that
    file's lock and writes back only the conf.d file, byte for byte."""
    hosts, _ = conf_d_hosts()
    config = files_config()
    app = config.apps[APP].model_copy(update={"watch_s": 5.0, "auto_rollback": True})
    service = Service(config.model_copy(update={"apps": {APP: app}}), runner=hosts.runner)
    before = {p: hosts.runner.file(HP, p) for p in (CFG_PATH, APP_FILE)}

    def break_green(event: StepEvent) -> None:
        if event.step == "indicators" and event.status == "ok":
            hosts.healthy["green"] = False

    result = service.switch(APP, SwitchRequest(require_approval=False), progress=break_green)
    assert not result.ok and result.auto_rollback, result.error
    assert hosts.live_color() == "blue"
    assert {p: hosts.runner.file(HP, p) for p in before} == before
    writes = [c.line for c in hosts.runner.calls_to(HP, "write")]
    assert writes.count(APP_FILE) == 2 and CFG_PATH not in writes  # the switch, the rollback
    locks = [c.line for c in hosts.runner.calls_to(HP) if "bluegreen-lock" in c.line]
    assert sum(dlock.cfg_lock_key(APP_FILE) in line for line in locks) == 2
