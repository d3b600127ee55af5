from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bluegreen.domain.config import (
    ENV_VAR,
    Config,
    config_from_dict,
    default_config_path,
    load_config,
    parse_config,
    resolve_config_path,
)
from bluegreen.errors import ConfigError

FULL = """\
[ssh]
known_hosts = "~/.ssh/known_hosts"
identity_file = "~/.ssh/id_ed25519"
ssh_config = "~/.ssh/config"
use_agent = true
connect_timeout_s = 10
command_timeout_s = 600

[haproxy]
ssh = "haproxy"
config_path = "/etc/haproxy/haproxy.cfg"
reload = ["systemctl", "reload", "haproxy"]
check = ["haproxy", "-c", "-f"]
runtime_socket = "/run/haproxy/admin.sock"
sudo = false
work_dir = "/var/lib/bluegreen"
cfg_backups = 10

[apps.jw-attendant]
state_file = "/var/lib/haproxy/jw-deployment-state.json"
frontend = "http-in"
app_dir = "/opt/theoshift"
branch = "main"
build = "npm ci && npm run build"
restart = "systemctl restart theoshift"
migrate = "npx prisma migrate deploy"
log_file = "/var/log/theoshift.log"
approval = "auto"
allow_unapproved = false
allow_emergency_without_approval = false
min_free_disk_mb = 500
backups_kept = 5
drain_s = 2
watch_s = 10
auto_rollback = true
health = { path = "/api/health", port = 3001, expect_status = 200, timeout_s = 5, attempts = 10 }

[apps.jw-attendant.servers.blue]
ssh = "root@10.92.3.22"
address = "10.92.3.22:3001"
backend = "bk_blue"
server = "blue"
sudo = false
[apps.jw-attendant.servers.green]
ssh = "root@10.92.3.24"
address = "10.92.3.24:3001"
"""

MINIMAL: dict[str, Any] = {
    "haproxy": {"ssh": "haproxy"},
    "apps": {
        "web": {
            "state_file": "/var/lib/haproxy/web-state.json",
            "frontend": "fe_web",
            "app_dir": "/srv/web",
            "restart": "systemctl restart web",
            "servers": {
                "blue": {"ssh": "deploy@blue.internal:2222", "address": "10.0.0.1:8080"},
                "green": {"ssh": "deploy@green.internal", "address": "10.0.0.2:8081"},
            },
        }
    },
}


def with_value(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL with one dotted key set (or removed when value is DELETE)."""
    data = copy.deepcopy(MINIMAL)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


def problems_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "test.toml")
    return caught.value.message


# ---- the happy path ------------------------------------------------------------------------


def test_full_example_loads() -> None:
    config = parse_config(FULL)
    app = config.app("jw-attendant")
    assert config.haproxy.reload == ("systemctl", "reload", "haproxy")
    assert config.haproxy.check == ("haproxy", "-c", "-f")
    assert app.health.path == "/api/health"
    assert app.server_names == ("blue", "green")
    assert app.server("blue").backend == "bk_blue"
    assert app.server("green").backend is None
    assert app.build == "npm ci && npm run build"
    assert app.approval == "auto"
    assert app.drain_s == 2.0


def test_ssh_paths_expand_tilde_but_remote_paths_do_not() -> None:
    config = parse_config(FULL)
    home = Path("~").expanduser()
    assert config.ssh.known_hosts == home / ".ssh/known_hosts"
    assert config.ssh.identity_file == home / ".ssh/id_ed25519"
    assert config.ssh.ssh_config == home / ".ssh/config"
    assert config.haproxy.work_dir == "/var/lib/bluegreen"


def test_defaults_when_optional_keys_are_omitted() -> None:
    config = config_from_dict(MINIMAL)
    app = config.app("web")
    assert config.ssh.known_hosts == Path("~/.ssh/known_hosts").expanduser()
    assert config.ssh.identity_file is None
    assert config.ssh.use_agent is True
    assert config.ssh.connect_timeout_s == 10
    assert config.haproxy.config_path == "/etc/haproxy/haproxy.cfg"
    assert config.haproxy.reload == ("systemctl", "reload", "haproxy")
    assert config.haproxy.master_socket is None
    assert config.haproxy.cfg_backups == 10
    assert app.branch == "main"
    assert app.build is None and app.migrate is None and app.log_file is None
    assert app.approval == "auto"
    assert app.allow_unapproved is False
    assert app.auto_rollback is True
    assert app.health.path == "/health"
    assert app.health.port is None


def test_health_port_defaults_to_each_servers_port() -> None:
    app = config_from_dict(MINIMAL).app("web")
    assert app.health_port(app.members("blue")[0]) == 8080
    assert app.health_port(app.members("green")[0]) == 8081
    explicit = config_from_dict(with_value("apps.web.health", {"port": 9000})).app("web")
    assert explicit.health_port(explicit.members("blue")[0]) == 9000


def test_server_helpers() -> None:
    app = config_from_dict(MINIMAL).app("web")
    assert app.other("blue") == "green"
    assert app.other("green") == "blue"
    assert app.members("blue")[0].host == "10.0.0.1"
    assert app.members("blue")[0].port == 8080
    with pytest.raises(ConfigError, match="servers: blue, green"):
        app.server("red")


def test_ipv6_address() -> None:
    data = with_value("apps.web.servers.blue.address", "[2001:db8::1]:8080")
    server = config_from_dict(data).app("web").members("blue")[0]
    assert server.host == "[2001:db8::1]"
    assert server.port == 8080


@pytest.mark.parametrize(
    "target", ["haproxy", "root@10.92.3.22", "deploy@lb.example.com:2222", "lb-1", "[::1]:22"]
)
def test_ssh_targets_accepted(target: str) -> None:
    assert config_from_dict(with_value("haproxy.ssh", target)).haproxy.ssh == target


def test_models_are_frozen() -> None:
    config = config_from_dict(MINIMAL)
    with pytest.raises(Exception, match="frozen"):
        config.haproxy.sudo = True


def test_unknown_app_lists_configured_apps() -> None:
    config = parse_config(FULL)
    with pytest.raises(ConfigError) as caught:
        config.app("jw")
    assert "jw-attendant" in caught.value.message
    assert caught.value.exit_code == 3


# ---- one error per problem, each naming its key path ----------------------------------------

PROBLEMS = [
    ("haproxy.ssh", DELETE, "haproxy.ssh: required key is missing"),
    ("haproxy.ssh", "-oProxyCommand=id", "haproxy.ssh: expected an ssh alias or user@host"),
    ("haproxy.ssh", "root@host:99999", "haproxy.ssh: expected an ssh alias"),
    ("haproxy.ssh", "a b", "haproxy.ssh: expected an ssh alias"),
    ("haproxy.reload", [], "haproxy.reload: must not be empty"),
    ("haproxy.reload", "systemctl reload haproxy", "haproxy.reload: expected a list"),
    ("haproxy.reload", ["systemctl", ""], "haproxy.reload: argv words must not be empty"),
    ("haproxy.check", [1], "haproxy.check[0]: expected a string, got 1"),
    ("haproxy.config_path", "etc/haproxy.cfg", "haproxy.config_path: expected an absolute path"),
    ("haproxy.config_path", "~/haproxy.cfg", "haproxy.config_path: expected an absolute path"),
    ("haproxy.work_dir", "/var/../etc", "haproxy.work_dir: path must not contain '..'"),
    ("haproxy.cfg_backups", 0, "haproxy.cfg_backups: must be at least 1 (got 0)"),
    ("haproxy.sudo", "yes", "haproxy.sudo: expected true or false, got 'yes'"),
    ("haproxy.reload_cmd", ["x"], "haproxy.reload_cmd: unknown key"),
    ("ssh.known_hosts", "relative/file", "ssh.known_hosts: expected an absolute path"),
    ("ssh.connect_timeout_s", 0, "ssh.connect_timeout_s: must be greater than 0"),
    ("ssh.connect_timeout_s", "10", "ssh.connect_timeout_s: expected a number, got '10'"),
    ("ssh.use_agent", 1, "ssh.use_agent: expected true or false"),
    ("ssh.identity_file", 5, "ssh.identity_file: expected a path string"),
    ("apps.web.state_file", "state.json", "apps.web.state_file: expected an absolute path"),
    ("apps.web.frontend", "http in", "apps.web.frontend: expected an HAProxy name"),
    ("apps.web.branch", "--upload-pack=x", "apps.web.branch: git ref '--upload-pack=x'"),
    ("apps.web.branch", "main;id", "apps.web.branch: git ref 'main;id' is refused"),
    ("apps.web.restart", DELETE, "apps.web.restart: required key is missing"),
    ("apps.web.restart", "  ", "apps.web.restart: expected a shell command"),
    ("apps.web.approval", "maybe", "apps.web.approval: expected one of 'auto', 'elicit'"),
    ("apps.web.min_free_disk_mb", -1, "apps.web.min_free_disk_mb: must be at least 0"),
    ("apps.web.drain_s", -0.5, "apps.web.drain_s: must be at least 0"),
    ("apps.web.health.port", "3001", "apps.web.health.port: expected a whole number, got '3001'"),
    ("apps.web.health.port", 70000, "apps.web.health.port: must be at most 65535"),
    ("apps.web.health.attempts", 0, "apps.web.health.attempts: must be at least 1"),
    ("apps.web.health.path", "health", "apps.web.health.path: expected a URL path"),
    ("apps.web.health.expect_status", 42, "apps.web.health.expect_status: must be at least 100"),
    ("apps.web.health.timeout_s", 2.5e-1, None),  # fine: fractions allowed
    ("apps.web.health", "/health", "apps.web.health: expected a table, got '/health'"),
    ("apps.web.servers.blue.address", "10.0.0.1", "apps.web.servers.blue.address: expected host"),
    ("apps.web.servers.blue.address", "h:0", "apps.web.servers.blue.address: expected host"),
    ("apps.web.servers.blue.address", "h:x", "apps.web.servers.blue.address: expected host"),
    ("apps.web.servers.blue.backend", "bk blue", "apps.web.servers.blue.backend: expected an"),
    ("apps.web.servers.blue.ssh", DELETE, "apps.web.servers.blue.ssh: required key is missing"),
    ("apps.web.servers.green", DELETE, "apps.web.servers: expected exactly two servers"),
    ("apps.web.servers.green.address", "10.0.0.1:8080", "both servers have address"),
    ("apps.web.servers.Green", {}, "apps.web.servers.Green: server name 'Green'"),
    ("apps.web.servers.blue.adress", "x", "did you mean 'address'?"),
    ("apps.web.helth", {}, "apps.web.helth: unknown key (did you mean 'health'?)"),
    ("apps.Web", {}, "apps.Web: app name 'Web' is not allowed"),
    ("apps", {}, "apps: must not be empty"),
    ("haproxy", DELETE, "haproxy: required key is missing"),
    ("colour", "blue", "colour: unknown key; expected one of: ssh, haproxy, apps"),
]


@pytest.mark.parametrize(("path", "value", "expected"), PROBLEMS)
def test_each_problem_names_its_key_path(path: str, value: Any, expected: str | None) -> None:
    data = with_value(path, value)
    if expected is None:
        config_from_dict(data)
        return
    message = problems_of(data)
    assert expected in message
    assert message.startswith("invalid config test.toml: ")


def test_all_problems_are_reported_together_without_pydantic_noise() -> None:
    data = with_value("haproxy.reload", [])
    data["apps"]["web"]["servers"]["blue"]["address"] = "nowhere"
    data["apps"]["web"]["health"] = {"attempts": 0, "port": "x"}
    data["ssh"] = {"conect_timeout_s": 5}
    message = problems_of(data)
    assert "5 problems" in message
    for key in (
        "haproxy.reload",
        "apps.web.servers.blue.address",
        "apps.web.health.attempts",
        "apps.web.health.port",
        "ssh.conect_timeout_s",
    ):
        assert f"\n  - {key}: " in message
    for noise in ("Input should", "pydantic", "type=", "errors.pydantic.dev", "[key]"):
        assert noise not in message


def test_keys_that_need_quoting_are_quoted() -> None:
    data = copy.deepcopy(MINIMAL)
    data["apps"]["web"]["servers"]["bad name"] = data["apps"]["web"]["servers"].pop("green")
    assert 'apps.web.servers."bad name": server name' in problems_of(data)


def test_apps_must_not_share_a_state_file() -> None:
    data = copy.deepcopy(MINIMAL)
    data["apps"]["api"] = copy.deepcopy(data["apps"]["web"])
    assert "apps: apps web and api share state_file" in problems_of(data)


def test_long_app_name_refused() -> None:
    data = copy.deepcopy(MINIMAL)
    data["apps"]["a" * 64] = data["apps"].pop("web")
    assert "at most 63 characters" in problems_of(data)


def test_invalid_toml_reports_the_position() -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        parse_config('[haproxy]\nssh = "unterminated\n', source="x.toml")


def test_duplicate_keys_are_a_toml_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config('[haproxy]\nssh = "a"\nssh = "b"\n')


# ---- numbers: finite and within a sane range, each field's own -------------------------------

# (key path, lowest allowed, highest allowed, whether the lowest is excluded)
BOUNDED = [
    ("ssh.connect_timeout_s", 0, 300, True),
    ("ssh.command_timeout_s", 0, 86400, True),
    ("haproxy.cfg_backups", 1, 1000, False),
    ("apps.web.min_free_disk_mb", 0, 100_000_000, False),
    ("apps.web.backups_kept", 0, 1000, False),
    ("apps.web.drain_s", 0, 600, False),
    ("apps.web.watch_s", 0, 3600, False),
    ("apps.web.token_ttl_s", 0, 86400, True),
    ("apps.web.health.timeout_s", 0, 300, True),
    ("apps.web.health.attempts", 1, 1000, False),
    ("apps.web.health.interval_s", 0, 600, False),
]
WHOLE = {"haproxy.cfg_backups", "apps.web.min_free_disk_mb", "apps.web.backups_kept",
         "apps.web.health.attempts"}  # fmt: skip


def _range(low: int, high: int, open_low: bool) -> str:
    return f"allowed: above {low} up to {high}" if open_low else f"allowed: {low} to {high}"


@pytest.mark.parametrize(("path", "low", "high", "open_low"), BOUNDED)
def test_bounded_numbers_accept_their_range(path: str, low: int, high: int, open_low: bool) -> None:
    for value in (0.5 if open_low else low, high):
        config_from_dict(with_value(path, value))


@pytest.mark.parametrize(
    "value", [float("inf"), float("-inf"), float("nan"), 1e300, -1, "above", "at-or-below"]
)
@pytest.mark.parametrize(("path", "low", "high", "open_low"), BOUNDED)
def test_numbers_out_of_range_are_refused_naming_key_and_range(
    path: str, low: int, high: int, open_low: bool, value: Any
) -> None:
    if value == "above":
        value = high + 1
    elif value == "at-or-below":
        value = low if open_low else low - 1
    if path in WHOLE and isinstance(value, float):
        expected = f"{path}: expected a whole number"  # inf, nan and 1e300 are floats in TOML
    else:
        expected = f"{path}: must be "
    message = problems_of(with_value(path, value))
    assert expected in message
    if expected.endswith("must be "):
        assert _range(low, high, open_low) in message


def test_the_red_team_numbers_are_refused() -> None:
    """issue 16 item 7: each of these reached the engine and failed there, after traffic moved
    (drain_s), never (watch_s) or on every plan (token_ttl_s)."""
    for path, value, expected in [
        ("apps.web.drain_s", 1e300, "must be at most 600 (got 1e+300); allowed: 0 to 600"),
        ("apps.web.watch_s", float("inf"), "must be a finite number (got inf)"),
        ("apps.web.token_ttl_s", float("inf"), "must be a finite number (got inf)"),
    ]:
        assert f"{path}: {expected}" in problems_of(with_value(path, value))


def test_inf_and_nan_written_in_toml_are_refused() -> None:
    text = FULL.replace("drain_s = 2", "drain_s = nan").replace("watch_s = 10", "watch_s = +inf")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "x.toml")
    assert "apps.jw-attendant.drain_s: must be a finite number (got nan)" in caught.value.message
    assert "apps.jw-attendant.watch_s: must be a finite number (got inf)" in caught.value.message


# ---- finding the file ------------------------------------------------------------------------


def test_default_path_honours_xdg_config_home(tmp_path: Path) -> None:
    assert default_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "bluegreen" / "config.toml"
    )
    home_default = Path("~/.config/bluegreen/config.toml").expanduser()
    assert default_config_path({}) == home_default
    assert default_config_path({"XDG_CONFIG_HOME": ""}) == home_default
    assert default_config_path({"XDG_CONFIG_HOME": "relative/dir"}) == home_default


@pytest.mark.parametrize(
    ("explicit", "env", "expected", "origin"),
    [
        ("/etc/bg.toml", {ENV_VAR: "/env.toml"}, Path("/etc/bg.toml"), "given explicitly"),
        (None, {ENV_VAR: "/env.toml"}, Path("/env.toml"), "BLUEGREEN_CONFIG"),
        (None, {ENV_VAR: ""}, Path("/xdg/bluegreen/config.toml"), "the default"),
        (None, {}, Path("/xdg/bluegreen/config.toml"), "the default"),
    ],
)
def test_resolution_order(
    explicit: str | None, env: dict[str, str], expected: Path, origin: str
) -> None:
    path, how = resolve_config_path(explicit, {"XDG_CONFIG_HOME": "/xdg", **env})
    assert path == expected
    assert origin in how


def test_explicit_path_expands_tilde() -> None:
    path, _ = resolve_config_path("~/bg.toml", {})
    assert path == Path("~/bg.toml").expanduser()


def test_load_explicit_path(tmp_path: Path) -> None:
    file = tmp_path / "bg.toml"
    file.write_text(FULL, encoding="utf-8")
    assert isinstance(load_config(str(file)), Config)


def test_load_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "from-env.toml"
    file.write_text(FULL, encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(file))
    assert load_config(None).app("jw-attendant").frontend == "http-in"


def test_load_from_xdg_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bluegreen").mkdir()
    (tmp_path / "bluegreen" / "config.toml").write_text(FULL, encoding="utf-8")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config(None).haproxy.ssh == "haproxy"


def test_missing_file_says_where_it_looked_and_how_to_point_at_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        load_config(None)
    text = str(caught.value)
    assert str(tmp_path / "bluegreen" / "config.toml") in text
    assert "does not exist" in text
    assert "--config" in text and ENV_VAR in text


def test_missing_file_from_env_var_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml \(from \$BLUEGREEN_CONFIG\)"):
        load_config(None)


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        load_config(str(tmp_path))


def test_non_utf8_file(tmp_path: Path) -> None:
    file = tmp_path / "latin1.toml"
    file.write_bytes(b'[haproxy]\nssh = "h\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(file))


def test_invalid_file_names_the_file(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text('[haproxy]\nssh = "haproxy"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"invalid config {file}: 1 problem:\n  - apps: "):
        load_config(str(file))
