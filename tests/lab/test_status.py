"""get_deployment_status against the real lab: haproxy.cfg decides, everything else is a witness."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bluegreen.domain.command import Command
from bluegreen.domain.config import load_config
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.service import Service
from bluegreen.transport.base import CommandResult

pytestmark = pytest.mark.lab

STATE = "/var/lib/haproxy/jw-deployment-state.json"
APP = "jw-attendant"


def sh(lab: Lab, role: str, script: str) -> str:
    return lab.exec(role, ["sh", "-c", script])


def test_initial_status(fresh_lab: Lab, lab_info: LabInfo, lab_service: Service) -> None:
    status = lab_service.status(APP)
    assert status.certain
    assert status.live and status.live.color == "blue"
    assert status.standby and status.standby.color == "green"
    assert status.routing.style == "backend-per-color"
    for server in (status.live, status.standby):
        assert server.reachable and server.healthy
        assert server.commit == lab_info.initial_commit
        assert server.health and server.health.commit == lab_info.initial_commit
        assert server.health.color == server.color
        assert server.runtime_state == "UP"
        assert server.deployed_at
    assert status.live.backend == "bk_blue" and status.standby.backend == "bk_green"
    # No state file yet: reported as drift, never a crash.
    assert not status.state_file.present
    assert [d.field for d in status.drift] == ["file"]
    assert status.lock is None
    assert status.runtime_disagreements == []


def test_hand_edited_cfg_routes_green_and_state_file_drifts(
    fresh_lab: Lab, lab_service: Service
) -> None:
    sh(
        fresh_lab,
        "haproxy",
        f"""printf '%s\\n' '{{"prod": "blue", "live": "blue", "standby": "green", "lastSwitch": null, "switchCount": 4, "owner": "ops"}}' > {STATE}""",
    )
    sh(
        fresh_lab,
        "haproxy",
        "sed -i 's/default_backend bk_blue/default_backend bk_green/' /etc/haproxy/haproxy.cfg && haproxy-reload",
    )
    status = lab_service.status(APP)
    assert status.certain
    assert status.live and status.live.color == "green"
    assert status.standby and status.standby.color == "blue"
    fields = {d.field: d for d in status.drift}
    assert set(fields) == {"live", "standby", "prod"}
    assert fields["live"].state_file == "blue" and fields["live"].haproxy == "green"
    assert status.switch_count == 4
    assert status.state_file.contents and status.state_file.contents["owner"] == "ops"
    assert any("haproxy.cfg wins" in p for p in status.problems)


def test_cfg_edited_but_not_reloaded_is_reported(fresh_lab: Lab, lab_service: Service) -> None:
    sh(
        fresh_lab,
        "haproxy",
        "sed -i 's/default_backend bk_blue/default_backend bk_green/' /etc/haproxy/haproxy.cfg",
    )
    status = lab_service.status(APP)
    # The file on disk is the truth for LIVE; the running process still serves BLUE and says so.
    assert status.live and status.live.color == "green"
    assert status.runtime_disagreements, status.model_dump()


def test_server_put_in_maintenance_by_hand_is_reported(
    fresh_lab: Lab, lab_service: Service
) -> None:
    sh(
        fresh_lab,
        "haproxy",
        "echo 'disable server bk_green/green' | socat stdio unix-connect:/run/haproxy/admin.sock",
    )
    status = lab_service.status(APP)
    assert status.standby and status.standby.runtime_state == "MAINT"
    assert any("green" in d for d in status.runtime_disagreements), status.runtime_disagreements


@pytest.mark.parametrize(
    ("content", "expect"),
    [(None, "does not exist"), ("{not json", "invalid JSON at line 1"), ("[1, 2]", "object")],
)
def test_state_file_missing_or_corrupt_is_reported(
    fresh_lab: Lab, lab_service: Service, content: str | None, expect: str
) -> None:
    if content is not None:
        sh(fresh_lab, "haproxy", f"printf '%s' '{content}' > {STATE}")
    status = lab_service.status(APP)
    assert status.certain and status.live and status.live.color == "blue"
    assert not status.state_file.valid
    assert [d.field for d in status.drift] == ["file"]
    assert expect.lower() in status.drift[0].message.lower(), status.drift[0].message


def test_green_container_stopped_status_still_answers(fresh_lab: Lab, lab_service: Service) -> None:
    fresh_lab.container("green").stop(timeout=2)
    try:
        status = lab_service.status(APP)
    finally:
        fresh_lab.container("green").start()
    assert status.certain
    assert status.live and status.live.color == "blue" and status.live.healthy
    green = status.standby
    assert green and green.color == "green"
    assert green.reachable is False and green.error
    assert green.healthy is False
    assert any("GREEN" in p and "unreachable" in p for p in status.problems)


def test_wrong_host_key_is_refused_clearly(
    fresh_lab: Lab, lab_info: LabInfo, tmp_path: Path
) -> None:
    # Swap the HAProxy host's key line for GREEN's key: a changed host key.
    lines = Path(lab_info.state_dir, "known_hosts").read_text().splitlines()
    hp = lab_info.hosts["haproxy"].ssh.split(":")[1]
    other_key = next(line for line in lines if f"]:{hp} " not in line).split(" ", 1)[1]
    forged = [f"[127.0.0.1]:{hp} {other_key}" if f"]:{hp} " in line else line for line in lines]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(forged) + "\n")
    config = load_config(lab_info.config_path)
    config = config.model_copy(update={"ssh": config.ssh.model_copy(update={"known_hosts": known})})
    with Service(config) as service:
        status = service.status(APP)
    assert not status.certain
    text = " ".join(status.problems)
    assert "host key" in text.lower() and "SHA256:" in text, text
    assert status.live is None


def test_status_cli_json_and_exit_code(fresh_lab: Lab, lab_info: LabInfo) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bluegreen",
            "--config",
            lab_info.config_path,
            "status",
            APP,
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["app"] == APP
    assert data["live"]["color"] == "blue" and data["live"]["healthy"] is True
    assert data["standby"]["color"] == "green"
    assert isinstance(data["drift"], list)


def test_probes_use_the_haproxy_hosts_own_connections(fresh_lab: Lab, lab_info: LabInfo) -> None:
    """A health probe is a TCP connection the HAProxy host opens (sshd direct-tcpip): no
    process is started there for it. A closed port is an unhealthy answer with the reason."""
    from bluegreen.errors import TargetUnreachable
    from bluegreen.transport.base import TcpRequest
    from bluegreen.transport.ssh import SSHOptions, SSHRunner

    state = Path(lab_info.state_dir)
    options = SSHOptions(
        known_hosts=str(state / "known_hosts"),
        identity_file=str(state / "id_ed25519"),
        use_agent=False,
    )
    hp = lab_info.hosts["haproxy"].ssh
    with SSHRunner(options) as runner:
        get = b"GET /health HTTP/1.0\r\nHost: green\r\n\r\n"
        answer = runner.exchange(hp, TcpRequest("green", 3001, get, 5))
        assert answer.data.startswith(b"HTTP/1.1 200 OK"), answer.data[:80]
        assert b'"color": "green"' in answer.data
        with pytest.raises(TargetUnreachable, match="green:3999"):
            runner.exchange(hp, TcpRequest("green", 3999, b"GET / HTTP/1.0\r\n\r\n", 5))
    fresh_lab.exec("green", ["supervisorctl", "stop", "jw-attendant"])
    try:
        with Service.from_path(lab_info.config_path) as service:
            status = service.status(APP)
    finally:
        fresh_lab.exec("green", ["supervisorctl", "start", "jw-attendant"])
    green = status.standby
    assert green and green.reachable and not green.healthy
    assert green.health and green.health.error
    assert green.health.error.startswith("connection failed"), green.health.error
    assert status.live and status.live.healthy


def test_probes_fall_back_to_curl_when_sshd_forbids_forwarding(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    # sshd takes the first value it reads: a file sorting first in sshd_config.d wins. Only the
    # listener is sent SIGHUP (it re-executes itself), so open connections stay as they are.
    sh(
        fresh_lab,
        "haproxy",
        "echo 'AllowTcpForwarding no' > /etc/ssh/sshd_config.d/00-test.conf && "
        "pkill -HUP -f '^sshd: /usr/sbin/sshd'",
    )
    from bluegreen.service import ssh_runner_for

    config = load_config(lab_info.config_path)
    runner = ssh_runner_for(config)
    programs: list[str] = []
    run = runner.run

    def recording_run(
        host: str, command: Command, *, timeout: float | None = None
    ) -> CommandResult:
        programs.append(command.argv[0])
        return run(host, command, timeout=timeout)

    runner.run = recording_run  # type: ignore[method-assign]
    try:
        time.sleep(0.5)  # sshd re-executes itself with the new config
        with Service(config, runner=runner) as service:
            first = service.status(APP)
            second = service.status(APP)
    finally:
        sh(
            fresh_lab,
            "haproxy",
            "rm -f /etc/ssh/sshd_config.d/00-test.conf && pkill -HUP -f '^sshd: /usr/sbin/sshd'",
        )
        time.sleep(0.5)
    for status in (first, second):
        assert status.certain
        for server in status.servers:
            assert server.healthy, server.health
            assert server.health and server.health.color == server.color
    assert programs.count("curl") == 4  # both probes of both statuses went through curl


def test_the_snapshot_sees_the_running_worker_and_a_cfg_touched_after_it(
    fresh_lab: Lab, lab_service: Service
) -> None:
    """The one-command read of the HAProxy host against the real HAProxy: the worker's start
    from /proc, the cfg's mtime, the three runtime answers."""
    from bluegreen.engine.status_reads import read_snapshot

    ctx = lab_service.context()
    snap = read_snapshot(ctx, ["/etc/haproxy/haproxy.cfg", STATE])
    assert snap.runtime_problem() is None
    assert "bk_blue,blue," in (snap.runtime_answer("show stat") or "")
    assert " bk_green " in (snap.runtime_answer("show servers state") or "")
    assert snap.files["/etc/haproxy/haproxy.cfg"].data
    assert snap.files[STATE].data is None  # no state file in a fresh lab
    ages = snap.ages()
    assert ages is not None
    cfg_age, worker_age = ages
    assert cfg_age >= worker_age - 0.05  # reloaded after the last edit
    time.sleep(0.2)
    sh(fresh_lab, "haproxy", "touch /etc/haproxy/haproxy.cfg")
    touched = read_snapshot(ctx, [])
    ages = touched.ages()
    assert ages is not None and ages[0] < ages[1] - 0.1, ages
