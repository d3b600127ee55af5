"""get_statuses on the FakeRunner: one read round for many apps, probes shared only when they
would give the same verdict, and what each read's failure turns into (the lab tests run the same
against real hosts)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bluegreen.domain.command import Command
from bluegreen.domain.config import Config, config_from_dict
from bluegreen.engine.context import Context
from bluegreen.engine.status import get_statuses
from bluegreen.errors import TransportError
from bluegreen.transport.fake import FakeRunner

HP, BLUE, GREEN = "haproxy", "root@blue", "root@green"
CFG = (Path(__file__).parents[1] / "data" / "haproxy" / "lab_style1.cfg").read_bytes()
SHA = "a" * 40


def app(state: str, **health: Any) -> dict[str, Any]:
    return {
        "state_file": state,
        "frontend": "http-in",
        "app_dir": "/opt/jw-attendant",
        "restart": "true",
        "health": {"port": 3001, **health},
        "servers": {
            "blue": {"ssh": BLUE, "address": "blue:3001"},
            "green": {"ssh": GREEN, "address": "green:3001"},
        },
    }


def snapshot_files(command: Command) -> tuple[str, ...]:
    """The files a snapshot command reads: after its socket, query, and HAProxy's config files
    (their count first: those only give the cfg's age)."""
    count = int(command.argv[6])
    return command.argv[7 + count :]


def make_config(**apps: dict[str, Any]) -> Config:
    return config_from_dict({"haproxy": {"ssh": HP}, "apps": apps})


class Hosts:
    """The HAProxy host answers the snapshot from `files`; the apps answer their health GETs."""

    def __init__(self, files: dict[str, bytes | str]) -> None:
        self.files = files
        self.fake = FakeRunner()
        self.fake.on(lambda c: "bluegreen-snapshot" in c.argv, host=HP, respond=self.snapshot)
        for host in (BLUE, GREEN):
            self.fake.on(lambda c: "bluegreen-deployed" in c.argv, host=host, stdout=f"{SHA} HEAD@{{2026-11-27T10:00:00+00:00}}\n")  # fmt: skip
        self.fake.tcp_responder = self.get

    def snapshot(self, host: str, command: Command) -> Any:
        from bluegreen.transport.fake import Reply

        lines = ["bluegreen-snapshot 1"]
        for path in snapshot_files(command):
            data = self.files.get(path)
            if data is None:
                lines.append("file -")
            elif isinstance(data, str):
                lines.append(f"file !{data}")  # an unreadable file: the reason
            else:
                lines.append("file " + base64.b64encode(data).decode())
        lines += ["runtime 1", "socat: not found"]
        return Reply(stdout="\n".join(lines) + "\n")

    def get(self, host: str, address: str, port: int, request: bytes) -> bytes:
        body = json.dumps({"status": "ok", "color": address, "commit": SHA}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def ctx(self, config: Config) -> Context:
        return Context(config=config, runner=self.fake, now=lambda: datetime.now(UTC))


def test_many_apps_one_read_round_and_shared_probes() -> None:
    hosts = Hosts({"/etc/haproxy/haproxy.cfg": CFG})
    config = make_config(**{f"app-{i}": app(f"/var/lib/haproxy/app-{i}.json") for i in range(5)})
    statuses = get_statuses(hosts.ctx(config), [f"app-{i}" for i in range(5)])
    assert [s.live.color for s in statuses if s.live] == ["blue"] * 5
    assert all(s.live and s.live.healthy and s.live.commit == SHA for s in statuses)
    runs = hosts.fake.calls_to(HP, "run")
    assert len(runs) == 1  # ONE command on the HAProxy host for all five apps
    read = snapshot_files(runs[0].command) if runs[0].command else ()
    assert len(read) == 1 + 5 * 2  # the cfg, then a state file and a lock per app
    assert len(hosts.fake.calls_to(HP, "tcp")) == 2  # one GET per server, shared by all apps
    assert len(hosts.fake.calls_to(BLUE, "run")) == 1  # one `git log` per host and app dir


def test_apps_with_different_verdict_rules_do_not_share_a_probe() -> None:
    hosts = Hosts({"/etc/haproxy/haproxy.cfg": CFG})
    config = make_config(
        strict=app("/var/lib/haproxy/a.json", expect_status=204),
        plain=app("/var/lib/haproxy/b.json"),
    )
    strict, plain = get_statuses(hosts.ctx(config), ["strict", "plain"])
    assert strict.live and not strict.live.healthy
    assert strict.live.health and strict.live.health.error == "HTTP 200, expected 204"
    assert plain.live and plain.live.healthy
    assert len(hosts.fake.calls_to(HP, "tcp")) == 4


def test_what_each_failed_read_becomes() -> None:
    hosts = Hosts({"/etc/haproxy/haproxy.cfg": CFG, "/var/lib/haproxy/a.json": "permission denied"})
    (status,) = get_statuses(hosts.ctx(make_config(a=app("/var/lib/haproxy/a.json"))), ["a"])
    # haproxy.cfg decides; an unreadable state file and a silent runtime API are reported.
    assert status.certain and status.live and status.live.color == "blue"
    assert status.state_file.error and "permission denied" in status.state_file.error
    assert status.runtime_error and "socat exited 1: socat: not found" in status.runtime_error
    # Without the cfg nothing is certain, and it says why.
    hosts.files.pop("/etc/haproxy/haproxy.cfg")
    (status,) = get_statuses(hosts.ctx(make_config(a=app("/var/lib/haproxy/a.json"))), ["a"])
    assert not status.certain and status.live is None
    assert any("haproxy.cfg not found" in p for p in status.problems), status.problems


def test_a_probe_that_could_not_be_made_is_health_unknown_not_unhealthy() -> None:
    """Our SSH path to the HAProxy host was too busy to open GREEN's probe: status says the health
    is unknown (healthy None), never that GREEN is not healthy."""
    hosts = Hosts({"/etc/haproxy/haproxy.cfg": CFG})

    def get(host: str, address: str, port: int, request: bytes) -> bytes:
        if address == "green":
            raise TransportError(f"{host} did not open a connection to green:3001", host=host)
        return Hosts.get(hosts, host, address, port, request)

    hosts.fake.tcp_responder = get
    (status,) = get_statuses(hosts.ctx(make_config(a=app("/var/lib/haproxy/a.json"))), ["a"])
    assert status.certain and status.standby and status.standby.color == "green"
    assert status.standby.healthy is None
    assert status.standby.health and status.standby.health.unknown
    assert any(p.startswith("GREEN (STANDBY) health unknown: ") for p in status.problems)
    assert not any("not healthy" in p for p in status.problems), status.problems
    assert "unknown" in status.next_step and "deploy_to_standby" not in status.next_step
    assert status.live and status.live.healthy is True
