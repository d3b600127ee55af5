"""The switch edit: exactly the deciding lines change, in the one file that holds them."""

from __future__ import annotations

import difflib

from bluegreen.domain.haproxy_cfg import HAProxyConfig, server_line
from bluegreen.domain.routing.analysis import analyze_routing
from bluegreen.domain.routing.model import (
    BACKEND_PER_COLOR,
    ColorRoute,
    RoutingAnalysis,
    SwitchEdit,
)
from bluegreen.domain.routing.servers import FLAG_MARKERS
from bluegreen.domain.routing.sources import LoadedConfig, single
from bluegreen.errors import HAProxyConfigError, ValidationError


def plan_switch(
    cfg: HAProxyConfig | LoadedConfig, analysis: RoutingAnalysis, target: str
) -> SwitchEdit:
    """The minimal edit that makes `target` LIVE; refuses unless the analysis is certain."""
    loaded = cfg if isinstance(cfg, LoadedConfig) else single(cfg)
    if _analyze(loaded, analysis) != analysis:
        raise HAProxyConfigError(
            "The routing analysis does not match this haproxy.cfg.",
            hint="analyse the current file again before planning a switch",
        )
    if not analysis.certain:
        raise HAProxyConfigError(
            f"Refusing to switch: the routing of frontend {analysis.frontend} is uncertain. "
            + " ".join(analysis.problems),
            hint="fix haproxy.cfg or the bluegreen config so the routing is unambiguous",
        )
    assert analysis.live is not None
    colors = [route.color for route in analysis.colors]
    if target not in colors:
        raise ValidationError(f"Unknown colour {target!r}: expected one of {', '.join(colors)}.")
    if target == analysis.live:
        raise HAProxyConfigError(f"{target.upper()} is already LIVE; there is nothing to switch.")
    holders = sorted({loaded.file_of(n).path for n in analysis.deciding_lines})
    if len(holders) > 1:
        where = ", ".join(analysis.where(n) for n in analysis.deciding_lines)
        raise HAProxyConfigError(
            f"Refusing to switch: the lines that decide the routing are in several files ({where}).",
            hint="keep the app's routing lines in one file, so one file is replaced atomically",
        )
    new = analysis.route(target)
    old = analysis.route(analysis.live)
    if analysis.style == BACKEND_PER_COLOR:
        assert new.backend is not None
        edited = loaded.cfg
        for number in analysis.deciding_lines:
            edited = edited.replace_arg(number, 0, new.backend)
    else:
        edited = _swap_markers(loaded.cfg, old, new)
    after_loaded = loaded.with_cfg(edited)
    path = holders[0]
    before_text, after_text = loaded.text(path), after_loaded.text(path)
    if before_text == after_text:
        raise HAProxyConfigError(
            f"Refusing to switch: the edit that makes {target.upper()} LIVE would change "
            f"nothing in {path}.",
            hint="haproxy.cfg was not changed; report this as a bug",
        )
    after = _analyze(after_loaded, analysis)
    if not after.certain or after.live != target:
        raise HAProxyConfigError(
            f"Internal check failed: after the edit, {target.upper()} is not certainly LIVE. "
            + " ".join(after.problems),
            hint="haproxy.cfg was not changed; report this as a bug",
        )
    first = loaded.file_of(analysis.deciding_lines[0]).first
    changed = tuple(
        a.number - first + 1
        for a, b in zip(loaded.cfg.lines, edited.lines, strict=True)
        if a.text != b.text
    )
    return SwitchEdit(
        target=target,
        previous_live=analysis.live,
        text=after_text,
        diff=unified_diff(before_text, after_text, path),
        changed_lines=changed,
        analysis=after,
        path=path,
    )


def _analyze(loaded: LoadedConfig, analysis: RoutingAnalysis) -> RoutingAnalysis:
    traffic = analysis.traffic
    return analyze_routing(
        loaded, analysis.frontend, analysis.servers, rule=traffic.rule, hosts=traffic.hosts
    )


def _swap_markers(cfg: HAProxyConfig, old: ColorRoute, new: ColorRoute) -> HAProxyConfig:
    """Move the standby markers from the new LIVE server to the old one, keeping their kind and
    their place among the parameters (so switching back restores the original lines)."""
    assert old.server_line is not None and new.server_line is not None
    source = server_line(cfg.line(new.server_line))
    assert source is not None
    for flag in FLAG_MARKERS:
        if flag in new.markers:
            at = source.position(flag)
            cfg = cfg.remove_server_flag(new.server_line, flag)
            cfg = cfg.add_server_flag(old.server_line, flag, at)
    if "weight 0" in new.markers:
        if old.weight is None:
            # The old LIVE used the default weight: the new LIVE goes back to it too.
            cfg = cfg.remove_server_option(new.server_line, "weight")
        else:
            cfg = cfg.set_server_option(new.server_line, "weight", old.weight)
        cfg = cfg.set_server_option(old.server_line, "weight", "0", source.position("weight"))
    return cfg


def unified_diff(old: str, new: str, path: str = "haproxy.cfg") -> str:
    """A unified diff of two texts of one file (a/<path>, b/<path>), as git would show it."""
    name = path.lstrip("/")
    out: list[str] = []
    for chunk in difflib.unified_diff(_keep_ends(old), _keep_ends(new), f"a/{name}", f"b/{name}"):
        out.append(chunk if chunk.endswith("\n") else chunk + "\n\\ No newline at end of file\n")
    return "".join(out)


def _keep_ends(text: str) -> list[str]:
    # Split on "\n" only: str.splitlines would split inside lines HAProxy reads as one.
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def app_lines(cfg: HAProxyConfig, analysis: RoutingAnalysis, edit: SwitchEdit) -> bytes:
    """What an approval of this switch is about, and nothing else: every line that routes the
    app (its deciding lines, its frontend, its preview lines, each colour's backend and server
    line), each with its number and text, and the change itself (each changed line before and
    after). Other apps' lines are left out, so another app's switch between this plan and its
    execution does not make the plan stale; any change to this app's routing does."""
    numbers = {*analysis.deciding_lines, *(note.line for note in analysis.preview)}
    if analysis.frontend_line is not None:
        numbers.add(analysis.frontend_line)
    for route in analysis.colors:
        numbers.update(route.deciding_lines)
        numbers.update(n for n in (route.backend_line, route.server_line) if n is not None)
        numbers.update(pool.line for pool in route.pool_lines)
    by_number = {line.number: line.text for line in cfg.lines}
    after = edit.text.splitlines()
    parts = [f"{n}\t{by_number.get(n, '')}" for n in sorted(numbers)]
    parts += [f"{edit.path}:{n}\t{by_number.get(n, '')}\t->\t{after[n - 1] if n <= len(after) else ''}"
              for n in edit.changed_lines]  # fmt: skip
    parts.append(f"frontends\t{','.join(analysis.frontends)}")
    return "\n".join(parts).encode()
