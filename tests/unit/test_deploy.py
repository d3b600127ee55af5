"""deploy_to_standby on the fake runner: exact commands, LIVE untouched, every failure path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.unit.fake_hosts import serve_cfg_reads

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, config_from_dict
from bluegreen.engine.context import Context, StepEvent
from bluegreen.engine.deploy import deploy_to_standby
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.engine.guard import GuardedRunner, machine
from bluegreen.engine.standby_host import StandbyHost
from bluegreen.errors import (
    ConfigError,
    HAProxyConfigError,
    LockedError,
    TransportError,
    UnsafeOperationError,
    ValidationError,
)
from bluegreen.models import DeployResult
from bluegreen.service import Service
from bluegreen.transport.fake import FakeRunner, Reply

CORPUS = Path(__file__).resolve().parent.parent / "data" / "haproxy"
CFG_PATH = "/etc/haproxy/haproxy.cfg"
BLUE_LIVE = (CORPUS / "lab_style1.cfg").read_text()
GREEN_LIVE = BLUE_LIVE.replace("default_backend bk_blue", "default_backend bk_green")
OLD = "1" * 40
NEW = "2" * 40
HP, BLUE, GREEN = "haproxy", "root@blue", "root@green"
NOW = datetime(2025, 12, 21, 9, 30, 5, tzinfo=UTC)
BACKUP = "/opt/shop.bluegreen-backups/shop-20251221T093005Z-111111111111.tar.gz"
DF = (
    "Filesystem     1048576-blocks  Used Available Capacity Mounted on\n"
    "/dev/sda1               100000 25000     75000      25% /\n"
)


def make_config(**app: Any) -> Config:
    base: dict[str, Any] = {
        "state_file": "/var/lib/haproxy/shop.json",
        "frontend": "http-in",
        "app_dir": "/opt/shop",
        "build": "npm ci && npm run build",
        "restart": "systemctl restart shop",
        "migrate": "npx prisma migrate deploy",
        "log_file": "/var/log/shop.log",
        "min_free_disk_mb": 500,
        "backups_kept": 3,
        "health": {"attempts": 3, "interval_s": 1.0, "timeout_s": 2},
        "servers": {
            "blue": {"ssh": BLUE, "address": "blue:3001"},
            "green": {"ssh": GREEN, "address": "green:3001"},
        },
    }
    base.update(app)
    return config_from_dict({"haproxy": {"ssh": HP}, "apps": {"shop": base}})


def probe_reply(code: int, color: str, commit: str) -> Reply:
    body = json.dumps(
        {"status": "ok" if code == 200 else "failing", "color": color, "commit": commit}
    )
    return Reply(stdout=f"{body}\n{'__bluegreen_probe__'} {code} 0.004\n")


def is_probe(color: str) -> Callable[[Command], bool]:
    return lambda c: c.argv[:1] == ("curl",) and c.argv[-1] == f"http://{color}:3001/health"


def snapshot(cfg_age: float, worker: float) -> str:
    """The HAProxy host's snapshot (domain/snapshot.py) with a cfg last changed `cfg_age`
    seconds ago and a worker started `worker` seconds ago."""
    return (
        f"bluegreen-snapshot 1\nnow 10000.0\nuptime 1000.0\nticks 100\n"
        f"cfgmtime {10000.0 - cfg_age}\nworkerstart {int((1000.0 - worker) * 100)}\n"
        "runtime 0\nName: HAProxy\n\n# pxname,svname\n\n1\n"
    )


def has_word(word: str) -> Callable[[Command], bool]:
    return lambda c: word in c.argv


class FakeDeployHosts:
    """A fake BLUE-LIVE setup where every command succeeds unless a test scripts otherwise."""

    def __init__(self, cfg: str = BLUE_LIVE) -> None:
        self.fake = FakeRunner()
        self.fake.put_file(HP, CFG_PATH, cfg)
        serve_cfg_reads(self.fake, HP)
        self.events: list[StepEvent] = []
        self.sleeps: list[float] = []
        self.scripted = False

    def script_defaults(self, live: str = "blue", standby: str = "green") -> None:
        """Every command succeeds. Rules a test adds before this one win (first match)."""
        self.scripted = True
        fake, std = self.fake, f"root@{standby}"
        fake.on(has_word("bluegreen-lock"), host=HP)
        fake.on(has_word("bluegreen-unlock"), host=HP)
        fake.on(has_word("bluegreen-snapshot"), host=HP, stdout=snapshot(cfg_age=600, worker=500))
        fake.on(has_word("bluegreen-history"), host=HP)
        fake.on(is_probe(live), host=HP, respond=lambda h, c: probe_reply(200, live, OLD))
        fake.on(is_probe(standby), host=HP, respond=lambda h, c: probe_reply(200, standby, NEW))
        fake.on(dc.head_command("/opt/shop"), host=std, stdout=OLD + "\n")
        fake.on(dc.dirty_command("/opt/shop"), host=std, stdout="")
        fake.on(dc.disk_command("/opt/shop"), host=std, stdout=DF)
        fake.on(dc.resolve_command("/opt/shop", "main"), host=std, stdout=NEW + "\n")
        fake.on(re.compile(r"^(git|sh -c|sh )"), host=std)
        fake.on(dc.log_tail_command("/var/log/shop.log"), host=std, stdout="app log line\n")

    def ctx(self, config: Config | None = None) -> Context:
        return Context(
            config=config or make_config(),
            runner=self.fake,
            now=lambda: NOW,
            progress=self.events.append,
        )

    def deploy(self, config: Config | None = None, **options: Any) -> DeployResult:
        if not self.scripted:
            self.script_defaults()
        return deploy_to_standby(
            self.ctx(config), "shop", DeployOptions(**options), sleep=self.sleeps.append
        )

    def lines(self, host: str) -> list[str]:
        return self.fake.commands(host)

    def history(self) -> list[dict[str, Any]]:
        calls = [c for c in self.fake.calls if c.command and "bluegreen-history" in c.command.argv]
        return [json.loads((c.command.stdin or b"").decode()) for c in calls if c.command]

    def lock_calls(self) -> list[str]:
        return [
            word
            for c in self.fake.calls
            if c.command
            for word in c.command.argv
            if word in ("bluegreen-lock", "bluegreen-unlock")
        ]


@pytest.fixture
def hosts() -> FakeDeployHosts:
    return FakeDeployHosts()


GREEN_HAPPY = [
    "git -C /opt/shop rev-parse --verify HEAD",
    "git --no-optional-locks -C /opt/shop status --porcelain",
    "df -Pm -- /opt/shop",
    dc.backup_command("/opt/shop", BACKUP, "shop", 3).render(),
    "git -C /opt/shop fetch --prune --tags origin",
    dc.resolve_command("/opt/shop", "main").render(),
    f"git -C /opt/shop checkout --force --detach {NEW}",
    "git -C /opt/shop clean -fd",
    "sh -c 'cd /opt/shop && npm ci && npm run build'",
    "sh -c 'cd /opt/shop && systemctl restart shop'",
]


# ---- the happy path ------------------------------------------------------------------------------


def test_happy_path_runs_exactly_the_pipeline_on_standby_only(hosts: FakeDeployHosts) -> None:
    result = hosts.deploy()
    assert result.ok, result.error
    # Preflight reads run in parallel; their order among themselves is not fixed.
    green = hosts.lines(GREEN)
    assert sorted(green[:3]) == sorted(GREEN_HAPPY[:3])
    assert green[3:] == GREEN_HAPPY[3:]
    # Nothing at all reached LIVE: its health is probed from the HAProxy host.
    assert hosts.fake.calls_to(BLUE) == []
    hosts.fake.assert_read_only(BLUE)
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]
    assert (result.color, result.host, result.address, result.live_color) == (
        "green", GREEN, "green:3001", "blue",
    )  # fmt: skip
    assert (result.ref, result.commit_before, result.commit_after) == ("main", OLD, NEW)
    assert result.backup_path == BACKUP
    assert [(s.name, s.status) for s in result.steps] == [
        ("preflight", "ok"), ("backup", "ok"), ("fetch", "ok"), ("build", "ok"),
        ("migrate", "skipped"), ("restart", "ok"), ("health", "ok"),
    ]  # fmt: skip
    assert result.live_healthy_after is True
    assert result.next_step == (
        "Test GREEN at green:3001 (commit 222222222222), then switch_traffic to make it LIVE."
    )
    assert result.restored is None and result.failed_step is None and result.error is None
    assert hosts.sleeps == []


def test_happy_path_reports_progress_and_history(hosts: FakeDeployHosts) -> None:
    result = hosts.deploy()
    started = [e.step for e in hosts.events if e.status == "start"]
    assert started == ["preflight", "backup", "fetch", "build", "restart", "health"]
    done = [e for e in hosts.events if e.status == "ok"]
    assert all(e.duration_s is not None and e.total == 7 for e in done)
    assert [e.step for e in hosts.events if e.status == "skipped"] == ["migrate"]
    (entry,) = hosts.history()
    assert entry["operation"] == "deploy" and entry["outcome"] == "ok"
    assert (entry["app"], entry["color"], entry["ref"]) == ("shop", "green", "main")
    assert (entry["commit_before"], entry["commit_after"]) == (OLD, NEW)
    assert entry["time"] == "2025-12-21T09:30:05Z"
    assert [s["name"] for s in entry["steps"]] == [s.name for s in result.steps]


def test_the_history_line_is_written_before_the_lock_is_released(hosts: FakeDeployHosts) -> None:
    hosts.deploy()
    marks = ("bluegreen-lock", "bluegreen-history", "bluegreen-unlock")
    words = [w for c in hosts.fake.calls if c.command for w in c.command.argv if w in marks]
    assert words == ["bluegreen-lock", "bluegreen-history", "bluegreen-unlock"]


def test_deploy_follows_haproxy_cfg_not_names() -> None:
    hosts = FakeDeployHosts(GREEN_LIVE)
    hosts.script_defaults(live="green", standby="blue")
    result = hosts.deploy()
    assert result.ok and result.color == "blue" and result.live_color == "green"
    assert hosts.fake.calls_to(GREEN) == []
    assert len(hosts.lines(BLUE)) == len(GREEN_HAPPY)


def test_migrate_runs_after_build_and_warns(hosts: FakeDeployHosts) -> None:
    result = hosts.deploy(migrate=True)
    assert result.ok
    green = hosts.lines(GREEN)
    build = green.index("sh -c 'cd /opt/shop && npm ci && npm run build'")
    assert green[build + 1] == "sh -c 'cd /opt/shop && npx prisma migrate deploy'"
    assert any(
        w.startswith("migrations run against the database LIVE uses") for w in result.warnings
    )


def test_a_ref_is_resolved_on_origin_first_and_checked_out_by_sha(hosts: FakeDeployHosts) -> None:
    hosts.fake.on(dc.resolve_command("/opt/shop", "v1.4.2"), host=GREEN, stdout=NEW + "\n")
    result = hosts.deploy(ref="v1.4.2")
    assert result.ok and result.ref == "v1.4.2"
    assert f"git -C /opt/shop checkout --force --detach {NEW}" in hosts.lines(GREEN)


def test_pull_off_rebuilds_what_is_there(hosts: FakeDeployHosts) -> None:
    hosts.fake.on(is_probe("green"), host=HP, respond=lambda h, c: probe_reply(200, "green", OLD))
    result = hosts.deploy(pull=False)
    assert result.ok, result.error
    assert not any("fetch" in line or "checkout" in line for line in hosts.lines(GREEN))
    assert result.commit_after == OLD and result.ref is None
    assert any("pull is off" in w for w in result.warnings)


def test_local_changes_are_reported_as_discarded(hosts: FakeDeployHosts) -> None:
    hosts.fake.on(dc.dirty_command("/opt/shop"), host=GREEN, stdout=" M config.js\n?? x\n")
    result = hosts.deploy()
    assert any("2 local change(s)" in w and "in the backup" in w for w in result.warnings)


def test_unhealthy_live_before_is_a_warning_not_a_refusal(hosts: FakeDeployHosts) -> None:
    hosts.fake.on(is_probe("blue"), host=HP, respond=lambda h, c: probe_reply(503, "blue", OLD))
    result = hosts.deploy()
    assert result.ok
    assert any("LIVE BLUE was not healthy before" in w for w in result.warnings)
    assert result.live_healthy_after is False
    assert "BLUE is not healthy now" in " ".join(result.warnings)


# ---- the guard -----------------------------------------------------------------------------------


def test_guard_refuses_changes_to_live_before_sending_anything() -> None:
    fake = FakeRunner(default=Reply())
    guard = GuardedRunner(fake, "root@10.0.0.1")
    with pytest.raises(UnsafeOperationError, match="refused to run `systemctl restart app`"):
        guard.run("root@10.0.0.1", Command.of("systemctl", "restart", "app"))
    with pytest.raises(UnsafeOperationError):
        guard.run("deploy@10.0.0.1:22", Command(shell="npm run build"))  # same machine
    with pytest.raises(UnsafeOperationError, match="write /etc/x"):
        guard.write_file_atomic("10.0.0.1", "/etc/x", b"data")
    assert fake.calls == []
    # Read-only commands and reads pass; other hosts pass.
    guard.run("root@10.0.0.1", Command.of("git", "rev-parse", "HEAD", mutating=False))
    guard.read_file("root@10.0.0.1", "/etc/x")
    guard.run("root@10.0.0.2", Command.of("systemctl", "restart", "app"))
    guard.write_file_atomic("root@10.0.0.1:2222", "/etc/x", b"other sshd, other machine")
    assert len(fake.calls) == 4
    guard.close()
    assert not fake.closed  # the wrapped runner is not the guard's to close


def test_machine_normalizes_user_and_default_port() -> None:
    assert machine("root@Host:22") == machine("host") == "host"
    assert machine("127.0.0.1:2222") != machine("127.0.0.1:2223")


def test_a_bug_aiming_at_live_is_stopped_by_the_guard(
    hosts: FakeDeployHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate an engine bug: every STANDBY command is sent to LIVE's host instead.
    def wrong_host(self: Any, command: Command, timeout: float | None = None) -> Any:
        return self.runner.run(BLUE, command, timeout=timeout)

    monkeypatch.setattr(StandbyHost, "run", wrong_host)
    result = hosts.deploy()
    assert not result.ok and result.failed_step == "backup"
    assert result.error_type == "UnsafeOperationError"
    assert "refused to run" in (result.error or "")
    hosts.fake.assert_read_only(BLUE)
    assert hosts.fake.calls_to(BLUE) == []
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]


def test_servers_sharing_one_host_are_refused(hosts: FakeDeployHosts) -> None:
    config = make_config(
        servers={
            "blue": {"ssh": "root@box", "address": "blue:3001"},
            "green": {"ssh": "deploy@box", "address": "green:3001"},
        }
    )
    with pytest.raises(UnsafeOperationError, match="same ssh host"):
        hosts.deploy(config)
    assert hosts.fake.calls_to("root@box") == [] and hosts.fake.calls_to("deploy@box") == []
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]


# ---- refusals before anything runs --------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        (CORPUS / "conditional_green.cfg").read_text(),
        BLUE_LIVE.replace("    default_backend bk_blue\n", ""),
        BLUE_LIVE.replace("frontend http-in", "frontend other"),
    ],
    ids=["conditional", "nothing-routed", "no-frontend"],
)
def test_unclear_routing_is_refused_with_the_problems(cfg: str) -> None:
    hosts = FakeDeployHosts(cfg)
    hosts.script_defaults()
    with pytest.raises(HAProxyConfigError, match="does not say for certain") as info:
        hosts.deploy()
    assert len(info.value.message) > 80  # the analysis' sentences are included
    assert hosts.fake.calls_to(GREEN) == [] and hosts.fake.calls_to(BLUE) == []
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]
    assert hosts.history() == []


def test_missing_haproxy_cfg_is_refused() -> None:
    hosts = FakeDeployHosts()
    hosts.fake.remove_file(HP, CFG_PATH)
    hosts.script_defaults()
    with pytest.raises(HAProxyConfigError, match="not found"):
        hosts.deploy()
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]


BAD_REFS = [
    "-oProxyCommand=touch /tmp/pwned",
    "--upload-pack=touch /tmp/pwned",
    "main;touch /tmp/pwned",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "main\ntouch /tmp/pwned",
    "main && reboot",
    "../../etc/passwd",
    "main@{1}",
    "",
]


@pytest.mark.parametrize("ref", BAD_REFS)
def test_ref_injection_is_refused_with_nothing_run(ref: str) -> None:
    fake = FakeRunner()  # any call at all would fail: nothing is scripted
    fake.put_file(HP, CFG_PATH, BLUE_LIVE)
    with pytest.raises(ValidationError, match="refused"):
        deploy_to_standby(
            Context(config=make_config(), runner=fake), "shop", DeployOptions(ref=ref)
        )
    with pytest.raises(ValidationError):
        Service(make_config(), runner=fake).deploy("shop", DeployOptions(ref=ref))
    assert fake.calls == []


@pytest.mark.parametrize("app", ["../shop", "shop;reboot", "Shop", "-shop", ""])
def test_bad_app_names_are_refused_with_nothing_run(app: str) -> None:
    fake = FakeRunner()
    with pytest.raises(ValidationError):
        Service(make_config(), runner=fake).deploy(app)
    assert fake.calls == []


def test_migrate_requested_but_not_configured_is_refused_first() -> None:
    fake = FakeRunner()
    config = make_config(migrate=None)
    with pytest.raises(ConfigError, match="migrate is not configured"):
        deploy_to_standby(Context(config=config, runner=fake), "shop", DeployOptions(migrate=True))
    assert fake.calls == []


def test_a_ref_without_pull_is_refused() -> None:
    fake = FakeRunner()
    with pytest.raises(ValidationError, match="only deployed together with pull"):
        Service(make_config(), runner=fake).deploy("shop", DeployOptions(ref="main", pull=False))
    assert fake.calls == []


def test_lock_held_is_refused_naming_the_holder() -> None:
    hosts = FakeDeployHosts()
    hosts.fake.on(has_word("bluegreen-lock"), host=HP, exit_status=1)
    holder = {
        "operation": "switch", "app": "shop", "user": "ana", "host": "laptop", "pid": 42,
        "since": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": "t",
    }  # fmt: skip
    hosts.fake.put_file(HP, "/var/lib/bluegreen/locks/shop.lock/holder.json", json.dumps(holder))
    with pytest.raises(LockedError, match="switch by ana@laptop"):
        hosts.deploy()
    assert hosts.fake.calls_to(GREEN) == []
    assert hosts.lock_calls() == ["bluegreen-lock"]


# ---- dry run -------------------------------------------------------------------------------------


def test_dry_run_plans_everything_and_changes_nothing(hosts: FakeDeployHosts) -> None:
    result = hosts.deploy(dry_run=True, migrate=True)
    assert result.ok and result.dry_run and result.color == "green"
    for host in (HP, BLUE, GREEN):
        hosts.fake.assert_read_only(host)
    assert hosts.lock_calls() == [] and hosts.history() == []
    assert hosts.lines(GREEN) == ["git -C /opt/shop rev-parse --verify HEAD"]
    steps = [p.step for p in result.plan]
    assert steps == [
        "preflight", "preflight", "preflight", "preflight", "backup", "fetch", "fetch", "fetch",
        "fetch", "build", "migrate", "restart", "health",
        "restore (only on failure)", "restore (only on failure)",
    ]  # fmt: skip
    assert result.plan[3].host == HP and "http://blue:3001/health" in result.plan[3].command
    assert result.plan[7].command == (f"git -C /opt/shop checkout --force --detach {dc.UNRESOLVED}")
    assert result.backup_path == BACKUP and result.commit_before == OLD
    assert any(
        w.startswith("migrations run against the database LIVE uses") for w in result.warnings
    )
    assert hosts.events == []


def test_dry_run_lines_are_the_lines_a_real_deploy_runs(hosts: FakeDeployHosts) -> None:
    planned = {p.command for p in hosts.deploy(dry_run=True).plan if p.host == GREEN}
    hosts.fake.reset_calls()
    hosts.deploy()
    ran = set(hosts.lines(GREEN))
    # Only the checkout differs (the sha is known after the fetch); restore runs only on failure.
    planned.remove(dc.plan_line(dc.checkout_command("/opt/shop", dc.UNRESOLVED)))
    planned.remove(dc.restore_command("/opt/shop", BACKUP).render())
    assert ran == planned | {f"git -C /opt/shop checkout --force --detach {NEW}"}


def test_dry_run_with_an_unreachable_standby_still_plans(hosts: FakeDeployHosts) -> None:
    hosts.fake.on(
        dc.head_command("/opt/shop"), host=GREEN, raises=TransportError("down", host=GREEN)
    )
    result = hosts.deploy(dry_run=True)
    assert result.ok and result.plan and result.commit_before is None
    assert any("GREEN could not be read" in w for w in result.warnings)


# ---- failures ------------------------------------------------------------------------------------


def fail_first(hosts: FakeDeployHosts, match: Any, **reply: Any) -> None:
    """Script an answer on GREEN (before the defaults, so it wins)."""
    hosts.fake.on(match, host=GREEN, **reply)


BUILD = "sh -c 'cd /opt/shop && npm ci && npm run build'"
RESTART = "sh -c 'cd /opt/shop && systemctl restart shop'"


def test_build_failure_reports_the_tail_restores_and_releases_the_lock(
    hosts: FakeDeployHosts,
) -> None:
    out = "\n".join(f"line {i}" for i in range(100))
    fail_first(hosts, BUILD, exit_status=2, stdout=out, stderr="npm ERR! missing script: build")
    hosts.fake.on(is_probe("green"), host=HP, respond=lambda h, c: probe_reply(200, "green", OLD))
    result = hosts.deploy()
    assert not result.ok
    assert (result.failed_step, result.exit_status, result.error_type) == (
        "build",
        2,
        "CommandFailed",
    )
    assert result.output_tail and result.output_tail.endswith("npm ERR! missing script: build")
    assert "line 99" in result.output_tail and "line 50" not in result.output_tail
    assert result.error == "the build `npm ci && npm run build` failed on GREEN (exit 2)"
    green = hosts.lines(GREEN)
    assert green[green.index(BUILD) + 1 :] == [
        dc.restore_command("/opt/shop", BACKUP).render(),
        RESTART,
    ]
    assert result.restored is True and result.commit_after == OLD
    assert result.standby_state == (
        f"GREEN was restored from {BACKUP} to 111111111111 and restarted; it is healthy again"
    )
    assert [s.name for s in result.steps][-1] == "restore"
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]
    (entry,) = hosts.history()
    assert entry["outcome"] == "failed" and entry["error"] == result.error
    assert entry["commit_after"] == OLD
    assert result.live_healthy_after is True
    assert (
        result.next_step.startswith("Fix the build")
        and "BLUE stays LIVE and healthy" in result.next_step
    )
    hosts.fake.assert_read_only(BLUE)


def test_failure_before_any_change_restores_nothing(hosts: FakeDeployHosts) -> None:
    fail_first(hosts, dc.resolve_command("/opt/shop", "nope"), exit_status=1)
    result = hosts.deploy(ref="nope")
    assert result.failed_step == "fetch" and result.restored is None
    assert "'nope' is neither a branch on origin nor a tag or commit" in (result.error or "")
    assert result.standby_state == "GREEN was not changed: it still runs 111111111111"
    assert not any("bluegreen-restore" in line or "restart" in line for line in hosts.lines(GREEN))
    assert result.commit_after == OLD


def test_no_restore_when_disabled_says_what_is_left(hosts: FakeDeployHosts) -> None:
    fail_first(hosts, BUILD, exit_status=1)
    result = hosts.deploy(restore_on_failure=False)
    assert result.restored is False
    assert result.standby_state == (
        "GREEN is left with files at 222222222222 but not restarted (the previous process still "
        "runs) (restore_on_failure is off)"
    )
    assert not any("bluegreen-restore" in line for line in hosts.lines(GREEN))
    assert result.commit_after == NEW


def test_no_restore_without_a_backup(hosts: FakeDeployHosts) -> None:
    fail_first(hosts, BUILD, exit_status=1)
    result = hosts.deploy(backup=False)
    assert result.restored is False and "no backup was made" in (result.standby_state or "")
    assert any("no backup" in w for w in result.warnings)


def test_restore_failure_is_reported_with_the_backup_path(hosts: FakeDeployHosts) -> None:
    fail_first(hosts, BUILD, exit_status=1)
    fail_first(hosts, has_word("bluegreen-restore"), exit_status=1, stderr="tar: short read")
    result = hosts.deploy()
    assert result.restored is False
    assert result.standby_state and "restoring GREEN failed" in result.standby_state
    assert BACKUP in result.standby_state
    assert result.steps[-1].name == "restore" and result.steps[-1].status == "failed"


def test_restart_failure_includes_the_app_log(hosts: FakeDeployHosts) -> None:
    fail_first(hosts, RESTART, exit_status=7, stdout="shop: ERROR (spawn error)", times=1)
    result = hosts.deploy()
    assert result.failed_step == "restart" and result.exit_status == 7
    assert (
        result.output_tail == "shop: ERROR (spawn error)\n--- /var/log/shop.log ---\napp log line\n"
    )
    assert result.restored is True


CURL_TIMEOUT = "curl: (28) Operation timed out after 2001 milliseconds"


@pytest.mark.parametrize(
    ("reply", "sentence"),
    [
        (probe_reply(503, "green", NEW), "GREEN answered HTTP 503 (expected 200)"),
        (
            probe_reply(200, "green", OLD),
            "GREEN still reports commit 111111111111 (expected 222222222222): "
            "the restart did not take",
        ),
        (
            Reply(stdout="\n__bluegreen_probe__ 000 2.001\n", stderr=CURL_TIMEOUT, exit_status=28),
            f"GREEN did not answer http://green:3001/health: {CURL_TIMEOUT}",
        ),
    ],
    ids=["status", "commit", "timeout"],
)
def test_health_failure_says_why_with_backoff_and_log(
    hosts: FakeDeployHosts, reply: Reply, sentence: str
) -> None:
    hosts.fake.on(is_probe("green"), host=HP, respond=lambda h, c: reply, times=3)
    result = hosts.deploy(restore_on_failure=False)
    assert result.failed_step == "health" and result.error_type == "HealthCheckFailed"
    assert result.error == f"{sentence}; still failing after 3 attempt(s) from the HAProxy host"
    assert result.output_tail == "app log line\n"
    assert hosts.sleeps == [1.0, 1.5]
    infos = [e.message for e in hosts.events if e.status == "info" and e.step == "health"]
    assert len(infos) == 2 and infos[0].startswith("attempt 1/3: ")
    assert result.restored is False and "restarted but not proven healthy" in (
        result.standby_state or ""
    )


def test_health_that_recovers_within_the_attempts_is_ok(hosts: FakeDeployHosts) -> None:
    hosts.fake.on(
        is_probe("green"), host=HP, respond=lambda h, c: probe_reply(503, "green", NEW), times=2
    )
    result = hosts.deploy()
    assert result.ok and result.steps[-1].message.endswith("(attempt 3/3)")
    assert hosts.sleeps == [1.0, 1.5]


def test_health_failure_restores_and_probes_the_old_commit(hosts: FakeDeployHosts) -> None:
    answers = iter([probe_reply(503, "green", NEW)] * 3 + [probe_reply(200, "green", OLD)])
    hosts.fake.on(is_probe("green"), host=HP, respond=lambda h, c: next(answers), times=4)
    result = hosts.deploy()
    assert result.failed_step == "health" and result.restored is True
    assert result.standby_state and result.standby_state.endswith("it is healthy again")
    assert hosts.lines(GREEN)[-2:] == [dc.restore_command("/opt/shop", BACKUP).render(), RESTART]


def test_low_disk_stops_preflight(hosts: FakeDeployHosts) -> None:
    fail_first(hosts, dc.disk_command("/opt/shop"), stdout=DF.replace("75000", "120"))
    result = hosts.deploy()
    assert result.failed_step == "preflight" and result.error_type == "PreflightFailed"
    assert "only 120 MB free for /opt/shop on GREEN; min_free_disk_mb is 500" in (
        result.error or ""
    )
    assert result.restored is None and len(hosts.lines(GREEN)) == 3


def test_not_a_git_checkout_stops_preflight(hosts: FakeDeployHosts) -> None:
    fail_first(
        hosts, dc.head_command("/opt/shop"), exit_status=128,
        stderr="fatal: not a git repository (or any of the parent directories): .git",
    )  # fmt: skip
    result = hosts.deploy()
    assert result.failed_step == "preflight" and result.exit_status == 128
    assert "/opt/shop on GREEN is not a git checkout: fatal: not a git repository" in (
        result.error or ""
    )


def test_unreachable_standby_fails_preflight_cleanly(hosts: FakeDeployHosts) -> None:
    down = TransportError("cannot connect to root@green: Connection refused", host=GREEN)
    fail_first(hosts, re.compile("."), raises=down)
    result = hosts.deploy()
    assert result.failed_step == "preflight" and result.error_type == "TransportError"
    assert "Connection refused" in (result.error or "")
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]
    assert hosts.history()[0]["outcome"] == "failed"
    assert result.live_healthy_after is True


def test_connection_lost_during_the_build(hosts: FakeDeployHosts) -> None:
    dropped = TransportError("the connection to root@green dropped", host=GREEN)
    fail_first(hosts, BUILD, raises=dropped)
    fail_first(hosts, has_word("bluegreen-restore"), raises=dropped)
    result = hosts.deploy()
    assert result.failed_step == "build" and result.error_type == "TransportError"
    assert result.restored is False and "restoring GREEN failed" in (result.standby_state or "")
    assert hosts.lock_calls() == ["bluegreen-lock", "bluegreen-unlock"]
    assert result.live_healthy_after is True


def test_a_hand_switch_mid_deploy_stops_before_the_restart(hosts: FakeDeployHosts) -> None:
    def build_then_switch(host: str, command: Command) -> Reply:
        hosts.fake.put_file(HP, CFG_PATH, GREEN_LIVE)  # someone switches by hand meanwhile
        return Reply(stdout="built")

    fail_first(hosts, BUILD, respond=build_then_switch)
    result = hosts.deploy()
    assert result.failed_step == "restart" and result.error_type == "UnsafeOperationError"
    assert "now routes users to GREEN" in (result.error or "")
    green = hosts.lines(GREEN)
    assert green[-1] == BUILD  # no restart and no restore on what is now LIVE
    assert result.restored is False
    assert "check status" in (result.standby_state or "")


def test_a_cfg_edited_and_not_reloaded_stops_the_deploy_before_anything(
    hosts: FakeDeployHosts,
) -> None:
    """The file may call BLUE STANDBY while the running HAProxy still sends users to it."""
    hosts.fake.on(has_word("bluegreen-snapshot"), host=HP, stdout=snapshot(cfg_age=5, worker=600))
    hosts.fake.on(lambda c: c.argv[0] == "haproxy", host=HP)  # the cfg passes `haproxy -c`
    with pytest.raises(UnsafeOperationError, match="changed and not reloaded"):
        hosts.deploy()
    assert hosts.lines(GREEN) == [] and hosts.lines(BLUE) == []  # nothing reached an app host
    # Reloaded since (the worker is younger than the cfg): the deploy goes ahead.
    hosts2 = FakeDeployHosts()
    hosts2.fake.on(has_word("bluegreen-snapshot"), host=HP, stdout=snapshot(cfg_age=5, worker=1))
    assert hosts2.deploy().ok
