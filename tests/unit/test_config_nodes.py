"""The config's several HAProxy nodes ([haproxy.nodes]) and the README's configuration example
(a pair with config_files and a pool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_config import FULL, MINIMAL, problems_of, with_value

from bluegreen.domain.config import config_from_dict, parse_config

PAIR_TOML = """
[haproxy]
config_path = "/etc/haproxy/haproxy.cfg"
[haproxy.nodes.haproxy]
ssh = "root@10.92.3.26"
[haproxy.nodes.haproxy-standby]
ssh = "root@10.92.3.32"
"""


def test_a_pair_of_nodes_keeps_its_order_and_the_first_is_the_primary() -> None:
    config = parse_config(PAIR_TOML + "[apps." + FULL.split("[apps.", 1)[1], "pair.toml")
    assert config.haproxy.node_targets == {
        "haproxy": "root@10.92.3.26",
        "haproxy-standby": "root@10.92.3.32",
    }
    assert config.haproxy.ssh == "root@10.92.3.26" and config.haproxy.several_nodes


def test_one_ssh_is_one_node_named_after_its_host() -> None:
    config = config_from_dict(with_value("haproxy.ssh", "root@10.92.3.26:2222"))
    assert config.haproxy.node_targets == {"10.92.3.26": "root@10.92.3.26:2222"}
    assert not config.haproxy.several_nodes


@pytest.mark.parametrize(
    ("haproxy", "expected"),
    [
        (
            {"ssh": "a", "nodes": {"n": {"ssh": "b"}}},
            "haproxy: both haproxy.ssh and haproxy.nodes are given",
        ),
        ({"nodes": {}}, "haproxy.nodes: must not be empty"),
        ({"nodes": {"a b": {"ssh": "x"}}}, 'haproxy.nodes."a b": expected a node name'),
        ({"nodes": {"n": {"ssh": "-oProxyCommand=id"}}}, "haproxy.nodes.n.ssh: expected an ssh"),
        ({"nodes": {"n": {}}}, "haproxy.nodes.n.ssh: required key is missing"),
        ({"nodes": {"a": {"ssh": "x"}, "b": {"ssh": "x"}}}, "nodes a and b share ssh x"),
        ({"nodes": {f"n{i}": {"ssh": f"h{i}"} for i in range(17)}}, "at most 16 nodes, got 17"),
    ],
)
def test_node_problems_name_their_key(haproxy: dict[str, Any], expected: str) -> None:
    message = problems_of({**MINIMAL, "haproxy": haproxy})
    assert expected in message
    assert message.count("\n  - ") == 1, message  # no second error about a key not written


def test_the_readme_configuration_example_loads() -> None:
    """The configuration reference's one example: a pair, config_files, a pool and its keys."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Configuration reference", 1)[1]
    config = parse_config(section.split("```toml\n", 1)[1].split("```", 1)[0], "README.md")
    assert list(config.haproxy.node_targets) == ["haproxy", "haproxy-standby"]
    assert config.haproxy.ssh == "root@10.92.3.26"  # the PRIMARY
    assert config.haproxy.files == ("/etc/haproxy/haproxy.cfg", "/etc/haproxy/conf.d")
    app = config.apps["theoshift"]
    assert [m.server for m in app.members("green")] == ["green1", "green2"]
    assert app.is_pool("green") and not app.is_pool("blue")
    assert (app.min_healthy, app.frontend_url) == (1, "http://10.92.3.33")
