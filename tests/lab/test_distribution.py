"""The server as users install it: a wheel built from the tree in an empty virtual environment,
and the container image (Dockerfile) run on the lab's network, both driven over stdio by the SDK's
client. Slow (a wheel build, a venv, an image build), hence here and not with the unit tests."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import anyio
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bluegreen.lab.controller import Lab, LabInfo
from bluegreen.lab.images import image_tag
from bluegreen.lab.keys import known_hosts_line
from bluegreen.models import AppStatus

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
APP = "jw-attendant"
TOOLS = {
    "list_apps",
    "get_deployment_status",
    "get_deployment_history",
    "deploy_to_standby",
    "switch_traffic",
}


def tool_names(params: StdioServerParameters) -> set[str]:
    async def main() -> set[str]:
        async with Client(params) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    return anyio.run(main)


def test_a_wheel_from_the_tree_installs_without_the_lab_extra_and_serves_stdio(
    tmp_path: Path,
) -> None:
    dist, env_dir = tmp_path / "dist", tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    [wheel] = dist.glob("bluegreen_mcp-*.whl")
    venv.create(env_dir, with_pip=True)
    python, pip = env_dir / "bin" / "python", [str(env_dir / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, "install", "-q", str(wheel)], check=True, timeout=600)

    installed = subprocess.run([*pip, "list"], capture_output=True, text=True, check=True).stdout
    names = {line.split()[0].lower() for line in installed.splitlines()[2:]}
    assert "bluegreen-mcp" in names
    assert not names & {"docker", "opentelemetry-sdk", "pytest"}, names  # no extra came along
    # The lab's build files came as package data: the same build context as this checkout's.
    tag = subprocess.run(
        [python, "-c", "from bluegreen.lab.images import image_tag; print(image_tag('haproxy'))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert tag == image_tag("haproxy")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["BLUEGREEN_CONFIG"] = str(tmp_path / "absent.toml")  # tools/list needs no config
    params = StdioServerParameters(command=str(env_dir / "bin" / "bluegreen-mcp"), env=env)
    assert tool_names(params) == TOOLS


def in_network_config(lab_info: LabInfo) -> str:
    """The lab's config as the server sees it from inside the lab's network: hosts by their
    network names on port 22, and the key and known_hosts where the container has them."""
    text = Path(lab_info.config_path).read_text()
    state = Path(lab_info.state_dir)
    text = text.replace(str(state / "known_hosts"), "/home/bluegreen/.ssh/known_hosts")
    text = text.replace(str(state / "id_ed25519"), "/run/lab-key/id_ed25519")
    for role, host in lab_info.hosts.items():
        if host.ssh:
            text = text.replace(f'"root@{host.ssh}"', f'"root@{role}"')
    # Where people reach the frontend (shown, never dialled): inside the network, HAProxy's bind.
    text = text.replace(
        f'frontend_url = "{lab_info.frontend}"', 'frontend_url = "http://haproxy:80"'
    )
    assert "127.0.0.1" not in text, text
    return text


def test_the_server_image_serves_the_lab_over_stdio(
    fresh_lab: Lab, lab_info: LabInfo, tmp_path: Path
) -> None:
    image = f"bluegreen-mcp:{lab_info.prefix}"
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-server-image.sh"), image],
        check=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
    )
    user = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Config.User}}", image],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert user == "bluegreen"  # not root
    (tmp_path / "config.toml").write_text(in_network_config(lab_info))
    (tmp_path / "known_hosts").write_text(
        "".join(
            known_hosts_line(
                role, 22, fresh_lab.exec(role, ["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
            )
            for role in ("haproxy", "blue", "green")
        )
    )
    key = tmp_path / "key" / "id_ed25519"
    key.parent.mkdir()
    key.write_bytes((Path(lab_info.state_dir) / "id_ed25519").read_bytes())
    key.chmod(0o644)  # the image's user is not the owner of the lab's key file
    params = StdioServerParameters(
        command="docker",
        args=[
            "run", "-i", "--rm", "--network", lab_info.network,
            "-v", f"{tmp_path / 'config.toml'}:/config/config.toml:ro",
            "-v", f"{tmp_path / 'known_hosts'}:/home/bluegreen/.ssh/known_hosts:ro",
            "-v", f"{key.parent}:/run/lab-key:ro",
            image,
        ],
    )  # fmt: skip

    async def main() -> tuple[set[str], types.CallToolResult]:
        async with Client(params) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            return tools, await client.call_tool("get_deployment_status", {"app": APP})

    tools, result = anyio.run(main)
    assert tools == TOOLS
    assert result.is_error is False, result.content
    status = AppStatus.model_validate(result.structured_content)
    assert status.certain and status.live and status.standby
    assert (status.live.color, status.standby.color) == ("blue", "green")
    assert status.live.healthy and status.standby.healthy
