"""Waits on real signals that the lab is ready: a file in a container, sshd banners, and each
app answering as its colour on its host and through HAProxy. Never a fixed sleep."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx

from bluegreen.errors import LabError
from bluegreen.lab.lab_info import LabInfo
from bluegreen.lab.layouts import COLORS, SHARED_APPS, SHARED_HEALTH_PATH

READY_TIMEOUT_S = 90.0


def wait_for_file(container: Any, path: str) -> str:
    """The file's content once it exists and is not empty (e.g. a host key sshd generates)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        code, output = container.exec_run(["cat", path])
        if code == 0 and output.strip():
            return str(output.decode().strip())
        time.sleep(0.1)
    raise LabError(f"{container.name}: {path} did not appear")


def wait_until_served(info: LabInfo) -> None:
    """Every app answers on each host and, through every HAProxy node and the virtual IP, BLUE
    serves its users (and each preview host its own colour)."""
    frontends = [*info.frontends.values(), *([info.vip_url] if info.vip_url else [])]
    if info.layout == "shared":
        for frontend in frontends:
            url = frontend + SHARED_HEALTH_PATH
            for app in SHARED_APPS:
                wait_for_color(url, "blue", host=app.host)
                for color in COLORS:
                    wait_for_color(url, color, host=app.preview(color))
        return
    for color in COLORS:
        for role in info.topology.server_roles(color):
            app_url = info.hosts[role].app
            assert app_url is not None
            wait_for_color(app_url + "/health", color)
    for frontend in frontends:
        wait_for_color(frontend + "/health", "blue")


def wait_for_servers_up(node: Any) -> None:
    """Until the HAProxy node's health checks see every server UP (a pool server that is not yet
    would get no traffic, and a test would start on a half-ready pool)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    down: list[str] = []
    while time.monotonic() < deadline:
        code, output = node.exec_run(["sh", "-c", SHOW_STAT])
        down = servers_not_up(output.decode(errors="replace")) if code == 0 else ["(no stats)"]
        if not down:
            return
        time.sleep(0.2)
    raise LabError(f"{node.name}: servers never UP in HAProxy: {', '.join(down)}")


SHOW_STAT = "echo 'show stat' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock"


def servers_not_up(stat_csv: str) -> list[str]:
    """`backend/server` of every server that `show stat` (CSV) does not report UP."""
    lines = [line for line in stat_csv.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        return ["(no stats)"]
    columns = lines[0][2:].split(",")
    name, server, status = (columns.index(c) for c in ("pxname", "svname", "status"))
    return [
        f"{row[name]}/{row[server]}"
        for row in (line.split(",") for line in lines[1:])
        if row[server] not in ("FRONTEND", "BACKEND") and not row[status].startswith("UP")
    ]


def wait_for_ssh_banner(target: str, role: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until sshd at `[user@]host:port` sends its banner: a real signal, not a fixed sleep."""
    host, port = target.rpartition("@")[2].rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=2) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise LabError(f"sshd of {role} at {target} did not answer: {last}")


def wait_for_color(url: str, color: str, host: str | None = None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    headers = {"Host": host} if host else {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2, headers=headers)
            if response.status_code == 200 and response.json().get("color") == color:
                return
            last = f"HTTP {response.status_code} {response.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    via = f" (Host: {host})" if host else ""
    raise LabError(f"{url}{via} never answered as {color.upper()}: {last}")
