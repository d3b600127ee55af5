"""What an MCP client may do: the server's safety mode (`bluegreen serve --read-only`,
`--allow deploy`) and each app's `mcp` key; the stricter of the two wins. Reads (status, list,
history, the resources) are always allowed. A person at the CLI is not bound by this policy.
Pure: the service asks `check` before it touches anything.
"""

from __future__ import annotations

from typing import Literal

from bluegreen.domain.config import McpLevel
from bluegreen.errors import PolicyRefused

Action = Literal["deploy", "switch"]

LEVELS: tuple[McpLevel, ...] = ("read-only", "deploy", "full")
NEEDS: dict[Action, McpLevel] = {"deploy": "deploy", "switch": "full"}
TOOLS: dict[Action, str] = {"deploy": "deploy_to_standby", "switch": "switch_traffic"}
SERVER_SWITCH: dict[McpLevel, str] = {
    "read-only": "bluegreen serve --read-only",
    "deploy": "bluegreen serve --allow deploy",
    "full": "bluegreen serve",
}


def allows(level: McpLevel, action: Action) -> bool:
    return LEVELS.index(level) >= LEVELS.index(NEEDS[action])


def hidden_tools(server: McpLevel) -> frozenset[str]:
    """The tools this server's mode refuses: left out of tools/list (and refused by name)."""
    return frozenset(TOOLS[action] for action in TOOLS if not allows(server, action))


def check(action: Action, app: str, *, server: McpLevel, app_level: McpLevel) -> None:
    """Raise PolicyRefused, naming the switch that refuses, unless both levels allow `action`."""
    tool = TOOLS[action]
    if not allows(server, action):
        raise PolicyRefused(
            f"{tool} is refused: this MCP server runs as `{SERVER_SWITCH[server]}` ({server})",
            hint=f"a person can run `bluegreen {action} {app}` at a terminal, or restart the "
            "server with a mode that allows it",
        )
    if not allows(app_level, action):
        raise PolicyRefused(
            f'{tool} is refused for {app}: its config sets mcp = "{app_level}" '
            f"(under [apps.{app}])",
            hint=f"a person can run `bluegreen {action} {app}` at a terminal, or change the "
            f'app\'s `mcp` key to "{NEEDS[action]}" or "full"',
        )
