"""Hostile input against the real lab: shell injection through MCP arguments, CLI arguments and
config values runs nothing (canary files prove it on every container); unknown or changed host keys
are refused for each host; no secret reaches an output, a log, the history or an error.
docs/GUARANTEES.md lists what each test proves."""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from mcp import Client

from bluegreen import mcp_text
from bluegreen.domain.config import load_config
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import HostKeyError
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import APP_DIR
from bluegreen.mcp_server import build_server
from bluegreen.service import Service, SwitchRequest

from .fault_tools import (
    APP,
    HISTORY,
    HOSTS,
    canaries,
    cat,
    cli,
    config_file,
    config_with,
    head,
    history_lines,
    remove_canaries,
    reset_haproxy,
    restore_lab,
    service_with,
    sh,
    wait_serving,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module", autouse=True)
def leave_the_lab_as_found(lab: Lab) -> Iterator[None]:
    yield
    restore_lab(lab)


# Each payload, if any layer ever handed it to a shell unquoted, would create a /tmp/pwned-* file.
PAYLOADS = [
    "jw-attendant; touch /tmp/pwned-semicolon",
    "jw-attendant && touch /tmp/pwned-and",
    "$(touch /tmp/pwned-dollar)",
    "`touch /tmp/pwned-backtick`",
    "jw-attendant\ntouch /tmp/pwned-newline",
    "' ; touch /tmp/pwned-quote ; '",
    "-rf",
    "--upload-pack=touch /tmp/pwned-option",
    "../../../tmp/pwned-path",
]
# A file name (no '/'): its payloads touch canaries in whatever directory a shell would run them.
HOSTILE = "bg-hostile $(touch pwned-a) `touch pwned-b`; touch pwned-c 'q\" -x"


@pytest.fixture(autouse=True)
def no_canaries_before(lab: Lab) -> None:
    remove_canaries(lab)
    assert canaries(lab) == {}


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def test_injection_through_mcp_arguments_runs_nothing(lab: Lab, lab_info: LabInfo) -> None:
    reset_haproxy(lab)
    config = config_with(lab_info, allow_unapproved=True, watch_s=0.0)
    server, holder = build_server(lambda: Service(config))
    reason = "$(touch /tmp/pwned-reason) `touch /tmp/pwned-reason2`; touch /tmp/pwned-reason3"
    calls: list[tuple[str, dict[str, Any]]] = []
    for payload in PAYLOADS:
        calls += [
            ("get_deployment_status", {"app": payload}),
            ("get_deployment_history", {"app": payload}),
            ("deploy_to_standby", {"app": payload}),
            ("deploy_to_standby", {"app": APP, "ref": payload}),
            ("deploy_to_standby", {"app": APP, "ref": payload, "dryRun": True}),
            ("switch_traffic", {"app": payload}),
            ("switch_traffic", {"app": APP, "confirmToken": payload}),
        ]

    async def main() -> tuple[list[types.CallToolResult], types.CallToolResult]:
        async with Client(server) as client:
            refused = [await client.call_tool(name, args) for name, args in calls]
            switched = await client.call_tool(
                "switch_traffic", {"app": APP, "requireApproval": False, "reason": reason}
            )
            return refused, switched

    try:
        refused, switched = anyio.run(main)
    finally:
        holder.close()
    for (name, args), result in zip(calls, refused, strict=True):
        assert result.is_error, (name, args, text_of(result))
        assert "ValidationError" in text_of(result), (name, args, text_of(result))
    assert switched.is_error is False, text_of(switched)
    # Free text is data: stored as written, never run.
    assert history_lines(lab)[-1]["reason"] == reason
    assert canaries(lab) == {}
    wait_serving(lab_info, "green")


def test_injection_through_cli_arguments_runs_nothing(
    lab: Lab, lab_info: LabInfo, tmp_path: Path
) -> None:
    config = config_file(lab_info, tmp_path)
    for args in (
        ["status", PAYLOADS[0]],
        ["deploy", APP, "--dry-run", "--ref", PAYLOADS[2]],
        ["switch", APP, "--confirm", PAYLOADS[3]],
    ):
        out = cli(config, *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
    assert canaries(lab) == {}


def test_hostile_paths_in_the_config_are_quoted_everywhere(
    fresh_lab: Lab, lab_info: LabInfo
) -> None:
    """Every path of the config holds `$()`, backticks, `;`, quotes and spaces, and the app really
    lives there: a deploy (backup, build, restart, health), a failed deploy (restore, log tail), a
    switch with the token flow (approvals, lock, cfg backup, state file, history) all work."""
    app_dir = f"/opt/{HOSTILE}"
    for color in ("blue", "green"):
        code, out = fresh_lab.container(color).exec_run(["cp", "-a", APP_DIR, app_dir])
        assert code == 0, out
    haproxy = {"work_dir": f"/var/lib/bluegreen/{HOSTILE}"}
    app = {
        "app_dir": app_dir,
        "state_file": f"/var/lib/haproxy/{HOSTILE}.json",
        "log_file": f"/var/log/{HOSTILE}.log",
    }
    try:
        with Service(config_with(lab_info, haproxy, **app)) as service:
            status = service.status(APP)
            assert status.certain and status.standby and status.standby.commit, status.problems
            dry = service.deploy(APP, DeployOptions(pull=False, dry_run=True))
            # Shown exactly as run: the path is one quoted word of the command line.
            assert dry.ok and any(app_dir in shlex.split(line.command) for line in dry.plan)
            done = service.deploy(APP, DeployOptions(pull=False))
            assert done.ok, (done.error, done.output_tail)
            assert done.backup_path and HOSTILE in done.backup_path
        broken = {**app, "build": "false"}
        with Service(config_with(lab_info, haproxy, **broken)) as service:
            failed = service.deploy(APP, DeployOptions(pull=False))
            assert not failed.ok and failed.restored is True, failed.standby_state
        with Service(config_with(lab_info, haproxy, **app)) as service:
            plan = service.switch(APP)
            assert plan.plan and plan.plan.confirm_token
            switched = service.switch(APP, SwitchRequest(confirm_token=plan.plan.confirm_token))
            assert switched.ok and switched.state_file_written, switched.error
            assert [e.outcome for e in service.history(APP).entries] == ["ok", "failed", "ok"]
        assert canaries(fresh_lab) == {}
        assert cat(fresh_lab, "haproxy", app["state_file"])
    finally:
        for role in ("blue", "green"):
            sh(fresh_lab, role, "rm -rf /opt/bg-hostile*")
        sh(fresh_lab, "haproxy", "rm -rf /var/lib/bluegreen /var/lib/haproxy/bg-hostile*")


def _known_hosts(lab_info: LabInfo) -> list[str]:
    return Path(lab_info.state_dir, "known_hosts").read_text().splitlines()


def _port(lab_info: LabInfo, role: str) -> str:
    return lab_info.hosts[role].ssh.rsplit(":", 1)[1]


@pytest.mark.parametrize("role", HOSTS)
@pytest.mark.parametrize("kind", ["unknown", "changed"])
def test_unknown_or_changed_host_key_is_refused(
    lab: Lab, lab_info: LabInfo, tmp_path: Path, role: str, kind: str
) -> None:
    reset_haproxy(lab)  # BLUE LIVE, GREEN STANDBY
    lines = _known_hosts(lab_info)
    mine = next(line for line in lines if f"]:{_port(lab_info, role)} " in line)
    other_key = next(line for line in lines if line != mine).split(" ", 1)[1]
    forged = [line for line in lines if line != mine]
    if kind == "changed":
        forged.append(f"{mine.split(' ', 1)[0]} {other_key}")
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(forged) + "\n")
    before = known.read_bytes()
    config = load_config(lab_info.config_path)
    config = config.model_copy(update={"ssh": config.ssh.model_copy(update={"known_hosts": known})})
    expect = "has CHANGED" if kind == "changed" else "is not known"
    with Service(config) as service:
        status = service.status(APP)
        text = " ".join(status.problems)
        assert expect in text and "SHA256:" in text, text
        if role == "haproxy":
            assert not status.certain and status.live is None
            with pytest.raises(HostKeyError, match=expect):
                service.deploy(APP)
            with pytest.raises(HostKeyError, match=expect):
                service.switch(APP)
        else:
            server = next(s for s in status.servers if s.color == role)
            assert server.reachable is False and server.error and expect in server.error
        if role == "green":  # the STANDBY: the deploy stops before changing anything
            result = service.deploy(APP)
            assert not result.ok and result.error_type == "HostKeyError", result.error
    assert known.read_bytes() == before  # nothing was added or "fixed"


SECRET_TOKEN = "mcp-token-S3CRET-0123456789abcdef"
BUILD_TOKEN = "tok-S3CRET-123456"
DB_PASSWORD = "pw S3CRET 789"
# The build fails after printing its secrets, as a verbose build tool may.
LEAKY_BUILD = (
    f"API_TOKEN={BUILD_TOKEN} DB_PASSWORD='{DB_PASSWORD}' sh -c 'python3 build.py >/dev/null && "
    'echo "connecting with DB_PASSWORD=$DB_PASSWORD token: $API_TOKEN" >&2; exit 3\''
)


def test_no_secret_in_outputs_logs_history_or_errors(
    fresh_lab: Lab,
    lab_info: LabInfo,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BLUEGREEN_MCP_TOKEN", SECRET_TOKEN)
    key = Path(lab_info.state_dir, "id_ed25519").read_text()
    key_lines = [line for line in key.splitlines() if line and not line.startswith("-----")]
    secrets = [SECRET_TOKEN, BUILD_TOKEN, DB_PASSWORD, *key_lines]
    seen: dict[str, str] = {}
    fresh_lab.commit()
    caplog.set_level(logging.DEBUG)  # every logger, paramiko's included
    with service_with(lab_info, build=LEAKY_BUILD) as service:
        dry = service.deploy(APP, DeployOptions(dry_run=True))
        result = service.deploy(APP)
        seen["status"] = service.status(APP).model_dump_json()
        seen["history"] = service.history(APP).model_dump_json()
    assert not result.ok and result.failed_step == "build" and result.restored is True
    assert result.output_tail and "connecting with DB_PASSWORD=********" in result.output_tail
    assert "token: ********" in result.output_tail
    seen["dry-run plan"] = dry.model_dump_json()
    seen["deploy result"] = result.model_dump_json()
    seen["deploy text (MCP)"] = mcp_text.deploy_text(result) + mcp_text.deploy_text(dry)
    seen["logs at DEBUG"] = caplog.text
    seen["history file"] = cat(fresh_lab, "haproxy", HISTORY) or ""
    config = config_file(lab_info, tmp_path, build=json.dumps(LEAKY_BUILD))
    env = {**os.environ, "BLUEGREEN_MCP_TOKEN": SECRET_TOKEN}
    for args in (["deploy", APP, "--dry-run"], ["deploy", APP, "--json"], ["history", APP]):
        out = cli(config, "--debug", *args, env=env)
        seen[f"CLI {' '.join(args)}"] = out.stdout + out.stderr
    assert "API_TOKEN=********" in seen["dry-run plan"]
    leaks = {(where, s[:12]) for where, text in seen.items() for s in secrets if s in text}
    assert leaks == set(), leaks
    assert head(fresh_lab, "green") == lab_info.initial_commit
