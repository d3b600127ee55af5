"""Security and robustness without the lab (fast): every command builder quotes hostile values (run
through a real `sh`, which must create no canary file), boundary validators refuse injection
payloads, secrets are masked, the HTTP transport never logs its bearer token, and the lock, restore
and history code paths behind the fault-injection lab tests (tests/lab/test_faults.py,
test_kill.py). docs/GUARANTEES.md lists what each test proves."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.unit.fake_hosts import (
    APP,
    CFG_PATH,
    HP,
    LAB_CFG,
    WORK,
    FakeHosts,
    config,
    serve_cfg_reads,
)

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain import lock as dlock
from bluegreen.domain.approval import consume_command, validate_token
from bluegreen.domain.command import MASK, Command
from bluegreen.domain.deployed_commit import deployed_command
from bluegreen.domain.haproxy_files import read_command
from bluegreen.domain.history_file import append_command
from bluegreen.domain.secrets import redact, snippet_secrets
from bluegreen.domain.snapshot import snapshot_command
from bluegreen.domain.switch_commands import backup_cfg_command, remove_command
from bluegreen.domain.validate import validate_app_name, validate_ref
from bluegreen.engine import lock as lock_engine
from bluegreen.engine import switch as switch_engine
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import LockedError, TransportError, ValidationError
from bluegreen.service import Service, SwitchRequest
from bluegreen.transport.base import CommandResult, Exchange, Runner, TcpRequest
from bluegreen.transport.fake import FakeRunner, Reply

CANARY = "pwned"
# Each one, if a shell ever read it as syntax, creates a file named pwned* in its cwd.
PAYLOADS = [
    f"x; touch {CANARY}-semicolon",
    f"x && touch {CANARY}-and",
    f"$(touch {CANARY}-dollar)",
    f"`touch {CANARY}-backtick`",
    f"x\ntouch {CANARY}-newline",
    f"' ; touch {CANARY}-quote ; '",
    f'" ; touch {CANARY}-dquote ; "',
    f"x | touch {CANARY}-pipe",
    f"x > {CANARY}-redirect",
    "-rf",
    f"--upload-pack=touch {CANARY}-option",
]


# ---- 7. every string reaching a shell is quoted --------------------------------------------------


def builders(root: Path, value: str) -> list[Command]:
    """Every command builder that takes a path or a user value, fed `value` inside a path under
    `root` (and as the ref / token where the builder takes one)."""
    path = str(root / value.replace("/", "_"))
    holder = dlock.new_holder("switch", "shop", datetime.now(UTC))
    return [
        dc.head_command(path),
        dc.dirty_command(path),
        dc.disk_command(path),
        dc.resolve_command(path, value),
        dc.fetch_command(path),
        dc.checkout_command(path, value),
        dc.clean_command(path),
        dc.log_tail_command(path),
        dc.backup_command(path, path + ".tar.gz", "shop", 2),
        dc.restore_command(path, path + ".tar.gz"),
        backup_cfg_command(path, path + "-work", "haproxy.cfg.x", 2, False),
        remove_command(path + ".candidate", False),
        dlock.acquire_command(path, "shop", holder),
        dlock.release_command(path, "shop", value),
        dlock.break_command(path, "shop"),
        consume_command(path, value),
        deployed_command(path),
        snapshot_command([path, value], path + ".sock", [path, path + ".state", value]),
        read_command([path, value], value + ".sock"),
        append_command(path + ".jsonl", b"{}\n", sudo=False),
        Command.of("printf", "%s", value, cwd=str(root), sudo=False),
    ]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_builder_quotes_hostile_values_for_a_real_shell(payload: str, tmp_path: Path) -> None:
    """Run every rendered line through /bin/sh in a scratch directory: the commands may fail
    (the paths do not exist, git has no repository), but none may run the payload."""
    for command in builders(tmp_path, payload):
        # The line parses back into exactly its argv: no value changed the shape of the line.
        if command.argv and not (command.cwd or command.env or command.sudo):
            assert shlex.split(command.render()) == list(command.argv), command.render()
        subprocess.run(
            ["sh", "-c", command.render()],
            cwd=tmp_path,
            input=command.stdin,
            capture_output=True,
            timeout=30,
            env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
        )
    assert sorted(p.name for p in tmp_path.rglob(f"{CANARY}*")) == []
    assert list(Path.cwd().glob(f"{CANARY}*")) == []


@pytest.mark.parametrize("payload", [*PAYLOADS, "JW-ATTENDANT", "", "a" * 64, "app/../x"])
def test_boundary_validators_refuse_injection(payload: str) -> None:
    for validate in (validate_app_name, validate_ref, validate_token):
        if validate is not validate_app_name and payload in ("JW-ATTENDANT", "a" * 64):
            continue  # a valid git ref; "a" * 64 is also a well-formed token
        with pytest.raises(ValidationError):
            validate(payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_service_refuses_hostile_names_before_any_host_is_touched(payload: str) -> None:
    fake = FakeRunner()  # no rule: any command or read would fail the test
    service = Service(config(), runner=fake)
    calls: list[Callable[[], object]] = [
        lambda: service.status(payload),
        lambda: service.history(payload),
        lambda: service.deploy(payload),
        lambda: service.deploy(APP, DeployOptions(ref=payload)),
        lambda: service.switch(payload),
        lambda: service.switch(APP, SwitchRequest(confirm_token=payload)),
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            call()
    assert fake.calls == []


def test_config_paths_refuse_control_characters_and_dot_dot() -> None:
    from bluegreen.domain.config import config_from_dict
    from bluegreen.errors import ConfigError

    base = {
        "haproxy": {"ssh": "root@h"},
        "apps": {"shop": {"state_file": "/var/lib/shop.json", "frontend": "f", "app_dir": "/opt/s",
                          "restart": "true", "servers": {"blue": {"ssh": "root@b", "address": "b:1"},
                                                         "green": {"ssh": "root@g", "address": "g:1"}}}},
    }  # fmt: skip
    for bad in ("/opt/s\ntouch /tmp/pwned", "/opt/../etc", "opt/relative", "/opt/s\x00x"):
        data = json.loads(json.dumps(base))
        data["apps"]["shop"]["app_dir"] = bad
        with pytest.raises(ConfigError, match="app_dir"):
            config_from_dict(data)


# ---- 8. no secret in outputs ---------------------------------------------------------------------

SNIPPET = (
    "export NPM_TOKEN=npm_S3CRET_abcdef && DB_PASSWORD='pw S3CRET 789' npm ci "
    "--registry-auth=Bearer_S3CRET_xyz && npm run build --api-key s3cret-KEY-42 PORT=3001"
)


def test_snippet_secrets_are_found_and_masked() -> None:
    secrets = snippet_secrets(SNIPPET)
    for value in ("npm_S3CRET_abcdef", "pw S3CRET 789", "Bearer_S3CRET_xyz", "s3cret-KEY-42"):
        assert value in secrets
    assert "3001" not in secrets and "ci" not in secrets
    command = dc.snippet_command(SNIPPET, "/opt/shop", sudo=True)
    shown = command.display()
    assert "S3CRET" not in shown and "s3cret" not in shown, shown
    assert "PORT=3001" in shown and MASK in shown
    assert "S3CRET" in command.render()  # the host still gets the real snippet
    assert dc.plan_line(command) == shown


def test_output_tails_are_redacted() -> None:
    tail = (
        "npm ERR! connecting with DB_PASSWORD=hunter2-long\n"
        'config: {"api_key": "abc123456", "registry": "https://r"}\n'
        "npm_S3CRET_abcdef was rejected\n"
        "token: tkn-0987654321 ok=yes\n"
    )
    out = redact(tail, snippet_secrets(SNIPPET)) or ""
    for secret in ("hunter2-long", "abc123456", "npm_S3CRET_abcdef", "tkn-0987654321"):
        assert secret not in out, out
    assert "registry" in out and "ok=yes" in out and "was rejected" in out


def test_dry_run_plan_masks_snippet_secrets() -> None:
    fake = FakeRunner(default=Reply(stdout="1" * 40 + "\n"))
    fake.put_file(HP, CFG_PATH, LAB_CFG)
    serve_cfg_reads(fake)
    result = Service(config(build=SNIPPET), runner=fake).deploy(APP, DeployOptions(dry_run=True))
    build = [p.command for p in result.plan if p.step == "build"]
    assert build and "S3CRET" not in build[0] and "s3cret" not in build[0], build
    assert "S3CRET" not in result.model_dump_json()


# ---- 9. HTTP transport: the token is never logged ------------------------------------------------

TOKEN = "s3cret-http-token-0123456789abcdef"
WRONG = "wrong-http-token-0123456789abcdef"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


@contextmanager
def http_server(tmp_path: Path, port: int) -> Iterator[tuple[str, list[str]]]:
    cfg = tmp_path / "bluegreen.toml"
    cfg.write_text(
        '[ssh]\nuse_agent = false\nconnect_timeout_s = 1\n[haproxy]\nssh = "root@127.0.0.1:1"\n'
        '[apps.shop]\nstate_file = "/s.json"\nfrontend = "f"\napp_dir = "/opt/s"\n'
        f'restart = "true"\nbuild = "NPM_TOKEN={TOKEN} npm run build"\n'
        '[apps.shop.servers.blue]\nssh = "root@127.0.0.1:1"\naddress = "b:1"\n'
        '[apps.shop.servers.green]\nssh = "root@127.0.0.1:1"\naddress = "g:1"\n'
    )
    env = {**os.environ, "BLUEGREEN_MCP_TOKEN": TOKEN}
    args = ["--config", str(cfg), "--debug", "serve", "--transport", "http", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "bluegreen", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    logs: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not listen"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", logs
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
        logs.append(out.decode(errors="replace") + err.decode(errors="replace"))


def post(url: str, headers: dict[str, str]) -> int:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", url + "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        as response,
    ):  # fmt: skip
        return response.status_code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_http_refusals_and_the_token_never_logged(tmp_path: Path) -> None:
    """Complements tests/unit/test_mcp_transports.py (no token / wrong token -> 401, foreign
    Host -> 421): a foreign Origin with the RIGHT token is refused too, and with --debug logging
    neither the real nor a wrong token (nor a snippet secret) appears in the server's logs."""
    port = free_port()
    with http_server(tmp_path, port) as (url, logs):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert post(url, {}) == 401
        assert post(url, {"Authorization": f"Bearer {WRONG}"}) == 401
        assert post(url, {**auth, "Origin": "http://evil.example"}) == 403
        assert post(url, {**auth, "Host": f"evil.example:{port}"}) == 421
        assert post(url, auth) == 200
    text = "".join(logs)
    assert "401 for POST /mcp" in text  # the refusals were logged, at --debug level
    assert TOKEN not in text and WRONG not in text, text[-2000:]


# ---- the code paths behind the fault-injection lab tests -----------------------------------------


class Faulty:
    """A Runner wrapper that raises TransportError for commands `when` picks (host unreachable)."""

    def __init__(self, inner: Runner, when: Callable[[str], bool]) -> None:
        self.inner, self.when, self.tripped = inner, when, 0

    def _check(self, what: str) -> None:
        if self.when(what):
            self.tripped += 1
            raise TransportError(f"{HP}: connecting failed: connection refused", host=HP)

    def run(self, host: str, command: Command, *, timeout: float | None = None) -> CommandResult:
        self._check(command.render())
        return self.inner.run(host, command, timeout=timeout)

    def read_file(self, host: str, path: str) -> bytes | None:
        self._check(f"read {path}")
        return self.inner.read_file(host, path)

    def exchange(self, host: str, request: TcpRequest) -> Exchange:
        self._check(f"tcp {request.where}")
        return self.inner.exchange(host, request)

    def write_file_atomic(
        self, host: str, path: str, data: bytes, *, mode: int | None = None
    ) -> None:
        self._check(f"write {path}")
        self.inner.write_file_atomic(host, path, data, mode=mode)

    def close(self) -> None:
        self.inner.close()


def test_a_lock_that_cannot_be_released_does_not_hide_the_result() -> None:
    hosts = FakeHosts()
    runner = Faulty(hosts.runner, lambda line: "bluegreen-unlock" in line)
    result = Service(config(), runner=runner).switch(APP, SwitchRequest(require_approval=False))
    assert result.ok and "could not be removed" in result.message, result.message
    lock = f"{WORK}/locks/{APP}.lock/holder.json"
    holder = dlock.parse_holder(hosts.runner.file(HP, lock))
    # This process no longer holds it: stale at once, reported, and broken only on request.
    assert holder and lock_engine.is_stale(holder, datetime.now(UTC))
    service = Service(config(), runner=hosts.runner)
    with pytest.raises(LockedError, match="STALE switch by"):
        service.switch(APP, SwitchRequest(require_approval=False))
    assert service.switch(APP, SwitchRequest(require_approval=False, break_lock=True)).ok
    entries = service.history(APP).entries
    assert [e.outcome for e in entries] == ["ok", "interrupted", "ok"]
    assert "did not finish" in (entries[1].error or "")


def test_unreachable_host_after_the_replace_is_restored_on_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bluegreen.engine.switch.time.sleep", lambda _s: None)
    hosts = FakeHosts()
    down = {"tripped": False, "left": 0}

    def unreachable(line: str) -> bool:
        if not down["tripped"] and "haproxy-reload" in line:
            down["tripped"], down["left"] = True, 3  # the reload and the next two calls fail
        if down["left"]:
            down["left"] -= 1
            return True
        return False

    runner = Faulty(hosts.runner, unreachable)
    result = Service(config(), runner=runner).switch(APP, SwitchRequest(require_approval=False))
    assert not result.ok and result.rolled_back, result.error
    assert "previous haproxy.cfg is back" in (result.error or "")
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()
    assert hosts.live_color() == "blue"


def test_restore_that_cannot_reach_the_host_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(switch_engine, "RESTORE_RETRY_S", 0.0)
    hosts = FakeHosts()
    gone = {"now": False}

    def unreachable(line: str) -> bool:
        gone["now"] = gone["now"] or "haproxy-reload" in line
        return gone["now"]

    result = Service(config(), runner=Faulty(hosts.runner, unreachable)).switch(
        APP, SwitchRequest(require_approval=False)
    )
    assert not result.ok and result.executed and not result.rolled_back
    assert result.message.startswith("SWITCH FAILED AND WAS NOT ROLLED BACK")
    error = result.error or ""
    assert "RESTORING THE PREVIOUS CFG ALSO FAILED" in error and "not reloaded" in error
    assert "history not written" in result.message and "could not be removed" in result.message


def test_restore_after_a_failed_replace_does_not_rewrite_an_untouched_cfg() -> None:
    hosts = FakeHosts()
    hosts.runner.fail_file(HP, CFG_PATH, TransportError("disk full", host=HP), kind="write")
    result = Service(config(), runner=hosts.runner).switch(
        APP, SwitchRequest(require_approval=False)
    )
    assert not result.ok and result.rolled_back, result.error
    steps = {s.name: s for s in result.steps}
    assert steps["replace-cfg"].status == "failed"
    assert steps["restore-cfg"].message == "haproxy.cfg is the previous one"
    assert hosts.runner.file(HP, CFG_PATH) == LAB_CFG.encode()


def test_history_append_after_a_line_cut_short(tmp_path: Path) -> None:
    """The real append script, run by a real shell: a last line without its newline (a crash
    mid-write) does not swallow the next entry."""
    path = tmp_path / "h" / "app.jsonl"

    def append(line: str) -> None:
        command = append_command(str(path), line.encode(), sudo=False)
        subprocess.run(["sh", "-c", command.render()], input=command.stdin, check=True)

    append('{"a": 1}\n')
    with path.open("a") as handle:
        handle.write('{"cut": ')
    append('{"b": 2}\n')
    append('{"c": 3}\n')
    lines = path.read_text().splitlines()
    assert lines == ['{"a": 1}', '{"cut": ', '{"b": 2}', '{"c": 3}']


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "line",
    [
        "o" * 3_000_000,  # a minified bundle or a base64 blob on one line
        "a." * 1_500_000,
        "tokenizer " * 300_000,  # the keyword everywhere, no `=` after it
        "x" * 200 + "_password" + "y" * 200,
    ],
)
def test_redacting_a_very_long_line_finishes_and_changes_nothing(line: str) -> None:
    """Output tails and `-v` streaming pass every line through redact: a regex that backtracks on
    a long line would hang a deploy (it did: a 3 MB line took hours)."""
    assert redact(line) == line


def test_secrets_in_output_are_still_masked() -> None:
    assert redact("DB_PASSWORD=hunter22 next") == f"DB_PASSWORD={MASK} next"
    assert redact('{"api_key": "abc123"}') == '{"api_key": ' + MASK + "}"
    assert redact("export NPM_TOKEN=xyz789;") == "export NPM_TOKEN=" + MASK + ";"
    assert MASK in (redact("user.password : s3cret") or "")
