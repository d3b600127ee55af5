"""Which colour HAProxy routes an app's users to, and the minimal edit that switches it.

Pure, no I/O. Modules: `sources` (every file HAProxy loads, as one configuration), `acl` (does a
condition match the app's users), `frontends` (HAProxy's rule order), `servers` (each colour's
server line and markers), `analysis` (the answer), `edit` (the switch), `model` (the data).
"""

from bluegreen.domain.routing.analysis import analyze_routing, describe
from bluegreen.domain.routing.edit import app_lines, plan_switch, unified_diff
from bluegreen.domain.routing.model import (
    BACKEND_PER_COLOR,
    SHARED_BACKEND,
    AppTraffic,
    ColorRoute,
    PoolLine,
    RoutingAnalysis,
    RuleNote,
    ServerSpec,
    Style,
    SwitchEdit,
)
from bluegreen.domain.routing.sources import LoadedConfig, config_args, load, load_order

__all__ = [
    "BACKEND_PER_COLOR",
    "SHARED_BACKEND",
    "AppTraffic",
    "ColorRoute",
    "LoadedConfig",
    "PoolLine",
    "RoutingAnalysis",
    "RuleNote",
    "ServerSpec",
    "Style",
    "SwitchEdit",
    "analyze_routing",
    "app_lines",
    "config_args",
    "describe",
    "load",
    "load_order",
    "plan_switch",
    "unified_diff",
]
