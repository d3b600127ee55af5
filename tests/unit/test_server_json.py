"""server.json (the MCP registry entry) stays true to the package it describes: its name is the one
the registry verifies in the README and the image's label, its versions are the package's, and its
inputs are the variables the server reads, the token marked secret."""

from __future__ import annotations

import inspect
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from bluegreen import __version__
from bluegreen.domain.config import ENV_VAR
from bluegreen.mcp_server import serve

ROOT = Path(__file__).resolve().parents[2]
SERVER = json.loads((ROOT / "server.json").read_text())
TOKEN_ENV = "BLUEGREEN_MCP_TOKEN"


def packages(registry: str) -> list[dict[str, Any]]:
    return [p for p in SERVER["packages"] if p["registryType"] == registry]


def env_inputs(package: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in package.get("environmentVariables", [])}


def test_the_name_is_the_one_the_registry_verifies_in_the_readme_and_the_image() -> None:
    name = SERVER["name"]
    assert re.fullmatch(r"io\.github\.[A-Za-z0-9-]+/[A-Za-z0-9._-]+", name)
    assert f"<!-- mcp-name: {name} -->" in (ROOT / "README.md").read_text()
    assert (
        f'LABEL io.modelcontextprotocol.server.name="{name}"' in (ROOT / "Dockerfile").read_text()
    )
    assert len(SERVER["description"]) <= 100


def test_every_version_is_the_packages_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SERVER["version"] == __version__ == project["version"]
    for package in packages("pypi"):
        assert (package["identifier"], package["version"]) == (project["name"], __version__)
    [image] = packages("oci")
    assert image["identifier"].endswith(f"/bluegreen-mcp:{__version__}")


def test_stdio_takes_the_config_path_and_http_also_the_secret_token() -> None:
    stdio = [p for p in packages("pypi") if p["transport"]["type"] == "stdio"]
    http = [p for p in packages("pypi") if p["transport"]["type"] == "streamable-http"]
    assert len(stdio) == len(http) == 1
    config = env_inputs(stdio[0])[ENV_VAR]
    assert config["format"] == "filepath" and config["isRequired"] is True
    assert inspect.signature(serve).parameters["token_env"].default == TOKEN_ENV
    inputs = env_inputs(http[0])
    assert set(inputs) == {ENV_VAR, TOKEN_ENV}
    assert inputs[TOKEN_ENV]["isSecret"] is True
    [header] = http[0]["transport"]["headers"]
    assert header["value"] == f"Bearer {{{TOKEN_ENV}}}" and header["isSecret"] is True
    assert [(a["name"], a["value"]) for a in http[0]["packageArguments"]] == [
        ("--transport", "http"),
        ("--port", "8765"),
    ]
    assert http[0]["transport"]["url"] == "http://127.0.0.1:8765/mcp"


def test_the_image_mounts_what_the_dockerfile_says() -> None:
    [image] = packages("oci")
    assert image["transport"] == {"type": "stdio"}
    targets = [arg["value"].split(":")[1] for arg in image["runtimeArguments"]]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert targets == ["/config/config.toml", "/home/bluegreen/.ssh/known_hosts", "/ssh-agent"]
    assert "BLUEGREEN_CONFIG=/config/config.toml" in dockerfile
    assert "SSH_AUTH_SOCK=/ssh-agent" in dockerfile
    assert "USER bluegreen" in dockerfile
