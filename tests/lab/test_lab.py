"""The lab is real: sshd with strict host keys, HAProxy serving BLUE, a runtime API, git commits,
and reloads that hand sockets over without a single failed request."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bluegreen.domain.command import Command
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.load import Load
from bluegreen.transport.ssh import SSHOptions, SSHRunner

pytestmark = pytest.mark.lab


def runner_for(info: LabInfo) -> SSHRunner:
    state = Path(info.state_dir)
    return SSHRunner(
        SSHOptions(
            known_hosts=str(state / "known_hosts"),
            identity_file=str(state / "id_ed25519"),
            use_agent=False,
            ssh_config="none",
        )
    )


def test_reads_haproxy_cfg_over_ssh_with_strict_host_keys(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    with runner_for(lab_info) as runner:
        cfg = runner.read_file(f"root@{lab_info.hosts['haproxy'].ssh}", "/etc/haproxy/haproxy.cfg")
    assert cfg is not None
    text = cfg.decode()
    assert "frontend http-in" in text
    assert re.search(r"^\s*default_backend bk_blue\s*$", text, re.M)


def test_frontend_is_answered_by_blue(fresh_lab: Lab, lab_info: LabInfo) -> None:
    # `fresh_lab`: the lab as `up` left it, whatever ran before in the session (a switch, a deploy)
    response = httpx.get(lab_info.frontend + "/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["color"] == "blue"
    assert body["status"] == "ok"
    assert body["commit"] == lab_info.initial_commit
    page = httpx.get(lab_info.frontend + "/", timeout=5)
    assert "Served by <strong>blue</strong>" in page.text


def test_green_health_answers_directly_and_from_the_haproxy_host(lab_info: LabInfo) -> None:
    green = lab_info.hosts["green"].app
    assert green is not None
    body = httpx.get(green + "/health", timeout=5).json()
    assert body["color"] == "green"
    assert body["commit"] == lab_info.initial_commit
    with runner_for(lab_info) as runner:
        result = runner.run(
            f"root@{lab_info.hosts['haproxy'].ssh}",
            Command.of("curl", "-sS", "http://green:3001/health", mutating=False),
        )
    assert result.ok, result.stderr
    assert json.loads(result.stdout)["color"] == "green"


def test_stats_socket_answers_show_stat(lab_info: LabInfo) -> None:
    with runner_for(lab_info) as runner:
        result = runner.run(
            f"root@{lab_info.hosts['haproxy'].ssh}",
            Command.of(
                "socat",
                "stdio",
                "unix-connect:/run/haproxy/admin.sock",
                stdin=b"show stat\n",
                mutating=False,
            ),
        )
    assert result.ok, result.stderr
    assert result.stdout.startswith("# pxname,svname,")
    rows = {tuple(line.split(",")[:2]) for line in result.stdout.splitlines()}
    assert ("bk_blue", "blue") in rows
    assert ("bk_green", "green") in rows


def test_500_requests_while_haproxy_reloads_10_times_none_fail(lab: Lab, lab_info: LabInfo) -> None:
    lab.reset()
    reload_outputs = []
    # Load: half the clients keep connections alive; a GET that meets an idle keep-alive
    # connection closed by the old worker is retried once, as RFC 9110 9.2.2 allows (counted).
    with Load(lab_info.frontend + "/health", threads=4) as load, runner_for(lab_info) as runner:
        for _ in range(10):
            result = runner.run(
                f"root@{lab_info.hosts['haproxy'].ssh}", Command.of("haproxy-reload")
            )
            assert result.ok, result.tail()
            reload_outputs.append(result.stdout)
            target = len(load.snapshot()) + 50  # let traffic flow between reloads
            while len(load.snapshot()) < target:
                time.sleep(0.01)
        while len(load.snapshot()) < 500:
            time.sleep(0.01)
    samples = load.snapshot()
    assert len(reload_outputs) == 10
    assert all("new worker" in out for out in reload_outputs)
    assert len(samples) >= 500
    assert load.failures == [], load.failures[:5]
    assert {s.color for s in samples} == {"blue"}
    print(f"{len(samples)} requests, 0 failed, {load.stale_retries} stale keep-alive retries")


def test_lab_status_json_via_cli(lab: Lab, lab_info: LabInfo) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bluegreen", "lab", "--prefix", lab.prefix, "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "BLUEGREEN_LAB_DIR": str(Path(lab.state_dir).parent)},
    )
    status = json.loads(out.stdout)
    assert status["frontend"] == lab_info.frontend
    assert set(status["hosts"]) == {"haproxy", "blue", "green", "origin"}
    for role in ("haproxy", "blue", "green"):
        assert re.fullmatch(r"127\.0\.0\.1:\d+", status["hosts"][role]["ssh"])
        assert status["hosts"][role]["state"] == "running"
        assert status["hosts"][role]["container"] == f"{lab.prefix}-{role}"


def test_published_ports_are_on_loopback_only(lab: Lab) -> None:
    for role in ("haproxy", "blue", "green", "origin"):
        container = lab.container(role)
        for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", (role, binding)


def test_lab_commit_good_and_broken(lab: Lab) -> None:
    def origin(*argv: str) -> str:
        return lab.exec("origin", list(argv))

    repo = "/srv/git/jw-attendant.git"
    broken_build = lab.commit("build")
    broken_health = lab.commit("health")
    good = lab.commit()
    for sha in (broken_build, broken_health, good):
        assert re.fullmatch(r"[0-9a-f]{40}", sha)
        assert origin("git", "-C", repo, "cat-file", "-t", sha).strip() == "commit"
    assert origin("git", "-C", repo, "rev-parse", "main").strip() == good
    # The broken build really fails to build; the good one builds.
    script = (
        'set -e; rm -rf /tmp/b; git clone -q "$1" /tmp/b; cd /tmp/b; git checkout -q "$2"; '
        "python3 build.py"
    )
    container = lab.container("origin")
    code, output = container.exec_run(["sh", "-c", script, "x", repo, broken_build])
    assert code != 0 and b"build failed" in output
    code, output = container.exec_run(["sh", "-c", script, "x", repo, good])
    assert code == 0, output
    settings = origin("git", "-C", repo, "show", f"{broken_health}:settings.json")
    assert json.loads(settings) == {"healthy": False}
    assert json.loads(origin("git", "-C", repo, "show", f"{good}:settings.json")) == {
        "healthy": True
    }


def test_up_removes_leftovers_and_down_removes_everything(tmp_path: Path) -> None:
    other = Lab("bluegreen-test-leftovers", state_dir=tmp_path)
    other.up(layout="single")
    # A killed session leaves containers behind; the next `up` must cope.
    other.container("blue").stop(timeout=1)
    info = other.up(layout="single")
    assert httpx.get(info.frontend + "/health", timeout=5).json()["color"] == "blue"
    other.down()
    client = other.client
    assert (
        client.containers.list(
            all=True, filters={"label": "bluegreen.lab=bluegreen-test-leftovers"}
        )
        == []
    )
    assert client.networks.list(names=["bluegreen-test-leftovers-net"]) == []
    assert not (tmp_path / "id_ed25519").exists()
