"""Read every file HAProxy loads and show the lines that route one app (read-only)."""

from __future__ import annotations

from bluegreen.domain.preview import public_frontend_url
from bluegreen.domain.routing_lines import routing_lines
from bluegreen.domain.switch_commands import frontend_bind
from bluegreen.engine.context import Context
from bluegreen.engine.status import files_routing, routing_model
from bluegreen.engine.status_reads import read_cfg
from bluegreen.models import AppRouting, CfgLineView


def read_routing(ctx: Context, app_name: str) -> AppRouting:
    app = ctx.config.app(app_name)
    hp = ctx.config.haproxy
    files = read_cfg(ctx)
    loaded = files.loaded()
    analysis = files_routing(files, app, loaded)
    lines = []
    for line in routing_lines(loaded.cfg, analysis):
        source = loaded.file_of(line.number)
        lines.append(CfgLineView(number=line.number - source.first + 1, text=line.text,
                                 why=line.why, file=source.path))  # fmt: skip
    url = public_frontend_url(app.frontend_url, frontend_bind(loaded.cfg, app.frontend), hp.ssh)
    return AppRouting(app=app_name, config_path=hp.config_path, config_files=list(hp.files),
                      routing=routing_model(analysis, url), lines=lines)  # fmt: skip
