"""The README's MCP Inspector lines run as written against the lab as `bluegreen lab up` makes it (the Inspector from the npm
registry through `npx -y`, the server as `bluegreen serve` from this checkout's venv).

The lines are read from the README itself, so an edit there that breaks them fails here. Only the
web UI line (it opens a browser and never exits) is not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bluegreen.lab.controller import Lab, LabInfo

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Test it by hand with the MCP Inspector"
HTTP_PORT = 8765  # the README's address for `bluegreen serve --transport http`


def readme_lines() -> list[str]:
    text = README.read_text()
    block = text.split(SECTION, 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", "", block)  # shell line continuations
    return [line.split("  #", 1)[0].strip() for line in joined.splitlines()]


def cli_lines() -> list[str]:
    return [line for line in readme_lines() if line.startswith("npx") and "--cli" in line]


def run(line: str, config: str) -> dict[str, Any]:
    env = {**os.environ, "BLUEGREEN_CONFIG": config}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `bluegreen`
    done = subprocess.run(
        ["bash", "-c", line], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{line}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.fixture(scope="module")
def lab_info(shared_lab: Lab) -> LabInfo:
    """The README's lab: the default layout (`bluegreen lab up`), not the tests' single-app one."""
    return shared_lab.info()


@pytest.fixture
def http_server(lab_info: LabInfo) -> Iterator[None]:
    env = {**os.environ, "BLUEGREEN_CONFIG": lab_info.config_path}
    bluegreen = str(Path(sys.executable).parent / "bluegreen")
    server = subprocess.Popen(
        [bluegreen, "serve", "--transport", "http"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "bluegreen serve --transport http exited"
                assert time.monotonic() < deadline, "the HTTP server did not listen in 60 s"
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_readme_has_the_inspector_lines() -> None:
    assert shutil.which("npx"), "npx (Node.js) is needed for the README's Inspector lines"
    methods = [re.search(r"--method (\S+)", line) for line in cli_lines()]
    assert [m.group(1) for m in methods if m] == [
        "tools/list",
        "tools/call",
        "resources/read",
        "prompts/get",
        "tools/list",
    ]


def test_the_stdio_lines_run_as_written(lab_info: LabInfo) -> None:
    stdio = [line for line in cli_lines() if "bluegreen serve" in line]
    listed, status, plan, prompt = (run(line, lab_info.config_path) for line in stdio)
    names = {tool["name"] for tool in listed["tools"]}
    assert {"get_deployment_status", "deploy_to_standby", "switch_traffic"} <= names
    assert status["isError"] is False
    assert status["structuredContent"]["certain"] is True
    assert plan["contents"] and "to_live" in plan["contents"][0]["text"]
    assert prompt["messages"], prompt


def test_the_http_line_runs_as_written(lab_info: LabInfo, http_server: None) -> None:
    (line,) = [line for line in cli_lines() if f"127.0.0.1:{HTTP_PORT}/mcp" in line]
    listed = run(line, lab_info.config_path)
    assert "switch_traffic" in {tool["name"] for tool in listed["tools"]}
