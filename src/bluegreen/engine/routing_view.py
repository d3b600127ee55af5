"""Read haproxy.cfg and show the lines that route one app (read-only)."""

from __future__ import annotations

from bluegreen.domain.haproxy_cfg import parse
from bluegreen.domain.preview import public_frontend_url
from bluegreen.domain.routing_lines import routing_lines
from bluegreen.domain.switch_commands import frontend_bind
from bluegreen.engine.context import Context
from bluegreen.engine.status import app_routing, routing_model
from bluegreen.errors import HAProxyConfigError
from bluegreen.models import AppRouting, CfgLineView


def read_routing(ctx: Context, app_name: str) -> AppRouting:
    app = ctx.config.app(app_name)
    hp = ctx.config.haproxy
    raw = ctx.runner.read_file(hp.ssh, hp.config_path)
    if raw is None:
        raise HAProxyConfigError(f"haproxy.cfg not found at {hp.config_path} on {hp.ssh}")
    cfg = parse(raw.decode(errors="replace"))
    analysis = app_routing(cfg, app)
    lines = [CfgLineView(number=line.number, text=line.text, why=line.why)
             for line in routing_lines(cfg, analysis)]  # fmt: skip
    url = public_frontend_url(app.frontend_url, frontend_bind(cfg, app.frontend), hp.ssh)
    return AppRouting(app=app_name, config_path=hp.config_path,
                      routing=routing_model(analysis, url), lines=lines)  # fmt: skip
