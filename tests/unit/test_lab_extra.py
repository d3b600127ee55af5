"""The Docker SDK is the lab's extra (`bluegreen-mcp[lab]`): a lean install runs the CLI and the
MCP server without it, and the lab commands say how to add it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from bluegreen.cli import main


@pytest.fixture
def no_docker_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes an import raise ModuleNotFoundError, as on a lean install.
    monkeypatch.setitem(sys.modules, "docker", None)
    monkeypatch.setitem(sys.modules, "docker.errors", None)


@pytest.mark.usefixtures("no_docker_sdk")
@pytest.mark.parametrize(
    "command", [["lab", "up"], ["lab", "down"], ["lab", "status"], ["lab", "commit"], ["demo"]]
)
def test_lab_commands_without_the_sdk_say_how_to_install_the_extra(command: list[str]) -> None:
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 11, result.output
    assert "Traceback" not in result.output
    assert "Docker SDK" in result.output
    assert "pip install 'bluegreen-mcp[lab]'" in result.output


def test_cli_and_mcp_server_run_without_the_sdk() -> None:
    script = (
        "import sys\n"
        "sys.modules['docker'] = None  # any import of it fails\n"
        "import bluegreen.cli, bluegreen.mcp_server, bluegreen.service\n"
        "from click.testing import CliRunner\n"
        "result = CliRunner().invoke(bluegreen.cli.main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
