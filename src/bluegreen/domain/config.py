"""The bluegreen config file: find it, read it, parse the TOML and validate it into Config.

The models live in config_models.py, their field types in config_fields.py, and the wording of
validation problems in config_errors.py; this module re-exports what callers import from it.
Scalars are strict (TOML has real types: `port = "3001"` is refused, not coerced). Validation
problems are gathered into one ConfigError that names each key path and what it expects; pydantic's
own wording never reaches the user.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import pydantic

from bluegreen.domain.config_errors import describe_errors
from bluegreen.domain.config_fields import McpLevel
from bluegreen.domain.config_models import (
    AppConfig,
    Config,
    HAProxySettings,
    HealthCheck,
    Member,
    PoolServer,
    ServerConfig,
    SshSettings,
)
from bluegreen.errors import ConfigError

ENV_VAR: Final = "BLUEGREEN_CONFIG"


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/bluegreen/config.toml`, else `~/.config/bluegreen/config.toml`.

    XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    """
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path("~/.config").expanduser()
    return base / "bluegreen" / "config.toml"


DEFAULT_CONFIG_PATH: Final[Path] = default_config_path()


def load_config(path: str | None = None) -> Config:
    """Find, read and validate the config: explicit path, then $BLUEGREEN_CONFIG, then default."""
    resolved, origin = resolve_config_path(path)
    if not resolved.is_file():
        what = "is not a file" if resolved.exists() else "does not exist"
        raise ConfigError(
            f"config file {resolved} ({origin}) {what}",
            hint=f"pass --config PATH, set {ENV_VAR}, or create {default_config_path()}",
        )
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {resolved}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {resolved} is not UTF-8 (byte {exc.start})") from None
    return parse_config(text, source=str(resolved))


def resolve_config_path(path: str | None, env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """Where the config is, and a few words on how that was decided (for error messages)."""
    env = os.environ if env is None else env
    if path:
        return Path(path).expanduser(), "given explicitly"
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR]).expanduser(), f"from ${ENV_VAR}"
    return default_config_path(env), f"the default; ${ENV_VAR} is not set"


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
    return config_from_dict(data, source)


def config_from_dict(data: Mapping[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = describe_errors(exc)
    noun = "problem" if len(problems) == 1 else "problems"
    lines = "\n".join(f"  - {p}" for p in problems)
    raise ConfigError(f"invalid config {source}: {len(problems)} {noun}:\n{lines}")


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ENV_VAR",
    "AppConfig",
    "Config",
    "HAProxySettings",
    "HealthCheck",
    "McpLevel",
    "Member",
    "PoolServer",
    "ServerConfig",
    "SshSettings",
    "config_from_dict",
    "default_config_path",
    "load_config",
    "parse_config",
    "resolve_config_path",
]
