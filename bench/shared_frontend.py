"""The status benchmark's apps on the users' layout: N apps on ONE shared frontend, each chosen by
its Host ACL with a preview rule per colour (reference/production-topology.md), added to the
benchmark lab's haproxy.cfg for the run and removed afterwards. Every app reaches the lab's BLUE
and GREEN hosts through backends of its own, so a status reads the same hosts as the lab's app,
but its routing answer comes from a frontend that routes all N apps."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import APP

FRONTEND = "https_frontend"
PORT = 8090  # inside the HAProxy container; nothing is published
CFG = "/etc/haproxy/haproxy.cfg"
COLORS = ("blue", "green")


def names(apps: int) -> list[str]:
    return [f"app{i}" for i in range(apps)]


def shared_cfg(apps: list[str]) -> str:
    """The frontend (three ACLs and three rules per app, a default that is no app) and backends."""
    acls, rules, backends = [], [], []
    for app in apps:
        acls.append(f"    acl is_{app} hdr(host) -i {app}.example")
        rules.append(f"    use_backend {app}_blue if is_{app}")
        for color in COLORS:
            acls.append(f"    acl is_{app}_{color} hdr(host) -i {color}.{app}.example")
            rules.append(f"    use_backend {app}_{color} if is_{app}_{color}")
            backends += [
                "",
                f"backend {app}_{color}",
                "    option httpchk GET /health",
                f"    server {color}1 {color}:3001 check inter 5s fall 2 rise 2",
            ]
    return "\n".join(
        ["", f"# bench.status: {len(apps)} apps on one shared frontend", f"frontend {FRONTEND}",
         f"    bind *:{PORT}", *acls, *rules, "    default_backend bk_blue", *backends, ""]
    )  # fmt: skip


def write_shared_config(lab_config: str, apps: list[str], directory: Path) -> Path:
    """The lab's config with its app copied once per shared-frontend app: own state file, rule,
    Host and backends."""
    data = tomllib.loads(Path(lab_config).read_text())
    template = data["apps"][APP]
    lines = [f"# {len(apps)} apps on the shared frontend {FRONTEND}, written by bench.status"]
    lines += toml_table("ssh", data["ssh"])
    lines += toml_table("haproxy", data["haproxy"])
    for app in apps:
        table = {k: v for k, v in template.items() if k != "servers"}
        table.update(
            state_file=f"/var/lib/haproxy/{app}-deployment-state.json",
            frontend=FRONTEND,
            rule=f"is_{app}",
            hosts=[f"{app}.example"],
        )
        lines += toml_table(f"apps.{app}", table)
        for color, server in template["servers"].items():
            own = {**server, "backend": f"{app}_{color}", "server": f"{color}1"}
            lines += toml_table(f"apps.{app}.servers.{color}", own)
    path = directory / f"bluegreen-{len(apps)}-shared-apps.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def added_to_lab(lab: Any, apps: list[str]) -> Iterator[None]:
    """The shared frontend in the lab's haproxy.cfg (reloaded) for the block; the cfg as it was
    afterwards, so a reused lab starts clean."""
    saved = f"{CFG}.bench-saved"
    append = f'cp {CFG} {saved} && printf "%s" "$1" >> {CFG} && haproxy-reload'
    lab.exec("haproxy", ["sh", "-c", append, "-", shared_cfg(apps)])
    try:
        yield
    finally:
        lab.exec("haproxy", ["sh", "-c", f"mv {saved} {CFG} && haproxy-reload"])


def toml_table(name: str, table: dict[str, Any]) -> list[str]:
    return ["", f"[{name}]", *(f"{key} = {toml_value(value)}" for key, value in table.items())]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
