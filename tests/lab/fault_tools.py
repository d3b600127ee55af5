"""Helpers of the fault-injection and security lab tests (tests/lab/test_faults*.py,
tests/lab/test_security.py): fault injectors, config variants and the production invariants
every fault test checks afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bluegreen.domain.config import AppConfig, Config, load_config
from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.layouts import APP_DIR
from bluegreen.lab.readiness import wait_for_ssh_banner
from bluegreen.service import Service

APP = "jw-attendant"
CFG = "/etc/haproxy/haproxy.cfg"
STATE = "/var/lib/haproxy/jw-deployment-state.json"
WORK = "/var/lib/bluegreen"
LOCK_DIR = f"{WORK}/locks/{APP}.lock"
HISTORY = f"{WORK}/history/{APP}.jsonl"
# Every container of the lab that runs an ssh server (the origin has none).
HOSTS = ("haproxy", "blue", "green")
# The sshd children serving sessions; the bracket keeps pkill from matching its own shell.
SESSIONS = "sshd: roo[t]@"
SLOW_BUILD = "sleep 3 && python3 build.py"

# What `lab.reset()` does on the HAProxy host only (0.5 s instead of 4 s: the app hosts are not
# restarted). Tests that change an app host use the `fresh_lab` fixture instead.
RESET_HAPROXY = f"""set -e
rm -rf {WORK} /var/lib/haproxy/*.json /dev/shm/bluegreen-*
[ -L /etc/haproxy ] && {{ rm /etc/haproxy; mv /dev/shm/etc-haproxy /etc/haproxy; }}
cp /etc/haproxy/haproxy.cfg.lab-initial {CFG}
pgrep -x sshd >/dev/null || /usr/sbin/sshd -e
haproxy-reload >/dev/null
"""


# ---- the lab --------------------------------------------------------------------------------


def own_lab(tmp_path_factory: pytest.TempPathFactory, suffix: str) -> Lab:
    """A lab of a test's own: the test prefix (BLUEGREEN_TEST_LAB_PREFIX) and `-suffix`, its
    state in a temporary directory."""
    prefix = os.environ.get("BLUEGREEN_TEST_LAB_PREFIX", "bluegreen-test") + f"-{suffix}"
    return Lab(prefix, state_dir=Path(tmp_path_factory.mktemp(suffix)) / prefix)


@contextmanager
def running_lab(tmp_path_factory: pytest.TempPathFactory, suffix: str, **up: Any) -> Iterator[Lab]:
    """`own_lab` brought up (`up`: Lab.up's arguments), and down again afterwards."""
    lab = own_lab(tmp_path_factory, suffix)
    try:
        lab.up(**up)
        yield lab
    finally:
        lab.down()


def app_of_its_own_cfg(name: str, port: int, comment: str) -> str:
    """An app of its own for the lab's HAProxy: frontend `<name>-in` on `port`, its backends
    bk_<name>_blue and bk_<name>_green to the lab's BLUE and GREEN app hosts."""
    return f"""# {comment}
frontend {name}-in
    bind *:{port}
    default_backend bk_{name}_blue

backend bk_{name}_blue
    option httpchk GET /health
    server blue blue:3001 check inter 1s fall 2 rise 2

backend bk_{name}_green
    option httpchk GET /health
    server green green:3001 check inter 1s fall 2 rise 2
"""


def app_of_its_own(own: AppConfig, name: str) -> AppConfig:
    """`own` (the lab's app) as the app `name` of app_of_its_own_cfg: the same app hosts, its own
    frontend, backends and state file."""
    return own.model_copy(
        update={
            "frontend": f"{name}-in",
            "state_file": f"/var/lib/haproxy/{name}-deployment-state.json",
            "servers": {
                color: server.model_copy(update={"backend": f"bk_{name}_{color}"})
                for color, server in own.servers.items()
            },
        }
    )


def sh(lab: Lab, role: str, script: str) -> tuple[int, str]:
    """Run a shell script in a lab container as root; (exit code, output)."""
    code, output = lab.container(role).exec_run(["sh", "-c", script])
    return int(code), output.decode(errors="replace") if output else ""


def reset_haproxy(lab: Lab) -> None:
    container = lab.container("haproxy")
    if container.status != "running":
        container.start()
        wait_for_ssh(lab.info(), "haproxy")
    code, out = sh(lab, "haproxy", RESET_HAPROXY)
    assert code == 0, out
    wait_serving(lab.info(), "blue")


def restore_lab(lab: Lab) -> None:
    """Leave the lab as `up` left it for the test modules that run next (some of them only read
    it): sshd running, /etc/haproxy in place, the initial cfg, both hosts on the first commit."""
    reset_haproxy(lab)
    lab.reset()


def wait_for_ssh(info: LabInfo, role: str, timeout: float = 30) -> None:
    wait_for_ssh_banner(info.hosts[role].ssh, role, timeout)


def wait_serving(
    info: LabInfo, color: str | None = None, timeout: float = 30, *, at: str | None = None
) -> str:
    """Wait until the frontend (`at`, e.g. one HAProxy node's; else the lab's) answers 200 (from
    `color`, when given); the colour serving."""
    url = (at or info.frontend) + "/health"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            served = str(response.json().get("color")) if response.status_code == 200 else ""
            if served and (color is None or served == color):
                return served
            last = f"HTTP {response.status_code} {response.text[:100]}"
        except (httpx.HTTPError, ValueError) as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise AssertionError(f"the frontend at {url} did not serve {color or 'anything'}: {last}")


def kill_sessions(lab: Lab, role: str) -> None:
    """Drop every SSH session to `role` (the client sees its connection cut); sshd stays up."""
    sh(lab, role, f"pkill -f '{SESSIONS}'")


def kill_sshd(lab: Lab, role: str = "haproxy") -> None:
    """Take sshd away completely (listener and sessions): the host cannot be reached over SSH."""
    code, out = sh(lab, role, "pkill -x sshd; sleep 0.1; ! pgrep -x sshd")
    assert code == 0, out


def start_sshd(lab: Lab, role: str = "haproxy") -> None:
    code, out = sh(lab, role, "pgrep -x sshd >/dev/null || /usr/sbin/sshd -e")
    assert code == 0, out
    wait_for_ssh(lab.info(), role)


def later(delay: float, action: Any, *args: Any) -> threading.Thread:
    """Run `action(*args)` in `delay` seconds, in the background."""

    def run() -> None:
        time.sleep(delay)
        action(*args)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def cat(lab: Lab, role: str, path: str) -> str | None:
    """A file's text in a container (no shell: any path works), or None when unreadable."""
    code, output = lab.container(role).exec_run(["cat", "--", path])
    return output.decode(errors="replace") if code == 0 and output is not None else None


CANARY = "pwned-*"  # what every injection payload would create (in /tmp, or in its cwd)


def canaries(lab: Lab) -> dict[str, str]:
    """Canary files the injection payloads would create, anywhere on any container's file
    system, and in this machine's /tmp (empty: none)."""
    found = {}
    for role in (*HOSTS, "origin"):
        _, out = sh(lab, role, f"find / -xdev -name '{CANARY}' 2>/dev/null")
        if out.strip():
            found[role] = out.strip()
    local = sorted(str(p) for p in Path("/tmp").glob(CANARY))
    if local:
        found["local"] = " ".join(local)
    return found


def remove_canaries(lab: Lab) -> None:
    for role in (*HOSTS, "origin"):
        sh(lab, role, f"find / -xdev -name '{CANARY}' -delete 2>/dev/null")


# ---- configs --------------------------------------------------------------------------------


def config_with(info: LabInfo, haproxy: dict[str, Any] | None = None, **app: Any) -> Config:
    config = load_config(info.config_path)
    changed = config.apps[APP].model_copy(update=app)
    hp = config.haproxy.model_copy(update=haproxy or {})
    return config.model_copy(update={"apps": {APP: changed}, "haproxy": hp})


def service_with(info: LabInfo, haproxy: dict[str, Any] | None = None, **app: Any) -> Service:
    return Service(config_with(info, haproxy, **app))


def config_file(info: LabInfo, tmp: Path, **replace: str) -> Path:
    """A copy of the lab's config file with some `key = value` lines of the app replaced."""
    text = Path(info.config_path).read_text()
    for key, value in replace.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, f"{key} not in the lab config"
    path = tmp / "bluegreen.toml"
    path.write_text(text)
    return path


def cli(
    config: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bluegreen", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# ---- the invariants -------------------------------------------------------------------------


def cfg_valid(lab: Lab) -> tuple[bool, str]:
    code, out = sh(lab, "haproxy", f"haproxy -c -f {CFG}")
    return code == 0, out


def cfg_live(lab: Lab) -> str:
    text = cat(lab, "haproxy", CFG) or ""
    match = re.search(r"^\s*default_backend bk_(\w+)\s*$", text, re.M)
    assert match, text
    return match.group(1)


def assert_production_ok(
    lab: Lab,
    info: LabInfo,
    service: Service,
    *,
    live: str | None = None,
    lock: bool = False,
) -> Any:
    """After any fault: LIVE answers through the frontend, haproxy.cfg passes `haproxy -c`, status
    is certain and agrees with what the frontend serves, the state file (when present and valid)
    names the same LIVE, the history reads without bad lines, and no lock is left behind (unless
    `lock`). Returns the status."""
    served = wait_serving(info, live)
    ok, out = cfg_valid(lab)
    assert ok, f"haproxy.cfg is invalid after the fault:\n{out}"
    status = service.status(APP)
    assert status.certain, status.problems
    assert status.live is not None and status.live.color == served == cfg_live(lab)
    assert status.live.healthy, status.live.health
    contents = status.state_file.contents
    if status.state_file.valid and contents:
        assert contents.get("live") == served, contents
    history = service.history(APP, 50)
    assert history.unreadable_lines == 0
    if not lock:
        assert status.lock is None, status.lock
        assert cat(lab, "haproxy", f"{LOCK_DIR}/holder.json") is None
    return status


def history_lines(lab: Lab) -> list[dict[str, Any]]:
    raw = cat(lab, "haproxy", HISTORY) or ""
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


@contextmanager
def fails_nothing(info: LabInfo, threads: int = 2) -> Iterator[Any]:
    """Users keep being served while the block runs: a light load through the frontend."""
    from bluegreen.lab.load import Load

    with Load(info.frontend + "/health", threads=threads) as load:
        yield load
    failures = load.failures
    assert failures == [], failures[:5]


def head(lab: Lab, color: str) -> str:
    return lab.exec(color, ["git", "-C", APP_DIR, "rev-parse", "HEAD"]).strip()
