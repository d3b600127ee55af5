"""Several HAProxy nodes ([haproxy.nodes]): each node's own view of an app, and whether the nodes
agree. Users reach whichever node holds the virtual IP, so LIVE is only certain when every node
is read, routes the app for certain to the same colour, and runs the cfg on its disk.

Pure assessment here (node_view, node_problems); status reads the nodes in its own round, deploy
through read_nodes; a switch plans every node itself (switch_plan.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bluegreen.domain.config import AppConfig, HAProxySettings
from bluegreen.domain.haproxy_files import HAProxyFiles
from bluegreen.domain.routing import RoutingAnalysis
from bluegreen.domain.snapshot import Snapshot
from bluegreen.domain.state_file import parse_state
from bluegreen.engine.context import Context
from bluegreen.engine.status_reads import NodeSnapshot, node_snapshot, read_snapshot
from bluegreen.errors import BlueGreenError, TransportError, UnsafeOperationError
from bluegreen.models import NodeStatus
from bluegreen.transport.parallel import parallel

RECONCILE_HINT = (
    "bring them back to one answer with an approved reconcile plan (`bluegreen switch APP "
    "--reconcile`, MCP switch_traffic reconcile=true), which shows every node's diff"
)


@dataclass(frozen=True)
class NodeRead:
    """What was read from one node for one app: its cfg, its state file, and the findings when
    its cfg was edited and not reloaded."""

    name: str
    host: str
    files: HAProxyFiles | Exception  # every file HAProxy loads there
    state: bytes | Exception | None
    not_reloaded: Sequence[str] = ()

    @classmethod
    def of(cls, node: NodeSnapshot, app: AppConfig, hp: HAProxySettings) -> NodeRead:
        return cls(node.name, node.host, node.haproxy_files(hp.files), node.file(app.state_file),
                   node.not_reloaded)  # fmt: skip


# The files HAProxy loads -> how they route the app (status.files_routing).
Analyse = Callable[[HAProxyFiles], RoutingAnalysis]


def node_view(read: NodeRead, app: AppConfig, hp: HAProxySettings, analyse: Analyse) -> NodeStatus:
    """One node's LIVE for `app`, or why it is not known."""
    problems: list[str] = []
    live = cfg_file = None
    if isinstance(read.files, Exception):
        problems.append(f"cannot be read: {read.files}")
    else:
        try:
            analysis = analyse(read.files)
        except BlueGreenError as exc:
            problems.append(f"its haproxy.cfg cannot be analysed: {exc}")
        else:
            if analysis.certain:
                live, cfg_file = analysis.live, analysis.deciding_file
            else:
                problems.append("its routing is not certain: " + "; ".join(analysis.problems))
    problems += read.not_reloaded
    state_live = None
    if isinstance(read.state, bytes):
        state_live = parse_state(read.state, list(app.servers)).state.live
    return NodeStatus(
        name=read.name,
        ssh=read.host,
        primary=read.host == hp.ssh,
        reachable=not isinstance(read.files, TransportError),
        live=live,
        certain=live is not None and not read.not_reloaded,
        not_reloaded=bool(read.not_reloaded),
        state_file_live=state_live,
        cfg_file=cfg_file,
        problems=problems,
    )


def node_problems(views: Sequence[NodeStatus]) -> list[str]:
    """What makes LIVE uncertain across the nodes, each naming its node. The primary's own
    problems are the status's own, so only the other nodes' are listed, then the disagreement."""
    out = [
        f"HAProxy node {v.name} ({v.ssh}) {p}" for v in views if not v.primary for p in v.problems
    ]
    lives = {v.live for v in views if v.live}
    if len(lives) > 1:
        said = ", ".join(f"{v.name} routes to {v.live.upper()}" for v in views if v.live)
        out.append(
            f"the HAProxy nodes disagree ({said}): after a failover users would reach the other "
            f"colour; {RECONCILE_HINT}"
        )
    return out


def state_drift(views: Sequence[NodeStatus]) -> list[str]:
    """Other nodes whose state file says another LIVE than their cfg (the next switch repairs
    it; the primary's drift is the status's own)."""
    return [
        f"HAProxy node {v.name}'s state file says {v.state_file_live.upper()} is LIVE but its "
        f"haproxy.cfg routes to {v.live.upper()}"
        for v in views
        if not v.primary and v.live and v.state_file_live and v.state_file_live != v.live
    ]


def files_apart(views: Sequence[NodeStatus]) -> list[str]:
    """Other nodes holding the app's deciding line in another file than the primary: their LIVE
    may agree, but a switch (one file, the same on every node) refuses them."""
    primary = next((v for v in views if v.primary), None)
    if primary is None or primary.cfg_file is None:
        return []
    return [
        file_apart(v.name, v.ssh, v.cfg_file, primary.name, primary.cfg_file)
        + ": a switch refuses until it is the same file on every node"
        for v in views
        if not v.primary and v.cfg_file and v.cfg_file != primary.cfg_file
    ]


def file_apart(name: str, host: str, path: str, primary: str, primary_path: str) -> str:
    return (
        f"HAProxy node {name} ({host}) holds this app's deciding line in {path}, the primary "
        f"{primary} in {primary_path}"
    )


def read_nodes(ctx: Context, app: AppConfig) -> list[NodeRead]:
    """Every node's cfg and state file for `app`, and its not-reloaded findings, in parallel."""
    hp = ctx.config.haproxy
    files = [*hp.files, app.state_file]

    def read(host: str) -> Callable[[], Snapshot]:
        return lambda: read_snapshot(ctx, files, host)

    targets = hp.node_targets
    snaps = parallel([read(host) for host in targets.values()])
    return [
        NodeRead.of(node_snapshot(ctx, name, host, snap), app, hp)
        for (name, host), snap in zip(targets.items(), snaps, strict=True)
    ]


def refuse_disagreeing_nodes(ctx: Context, app: AppConfig, action: str, analyse: Analyse) -> None:
    """Several nodes: refuse `action` unless every node routes the app for certain to the same
    colour (with one node the primary's own checks cover it)."""
    hp = ctx.config.haproxy
    if not hp.several_nodes:
        return
    views = [node_view(r, app, hp, analyse) for r in read_nodes(ctx, app)]
    primary = [
        f"HAProxy node {v.name} ({v.ssh}) {p}" for v in views if v.primary for p in v.problems
    ]
    problems = primary + node_problems(views)
    if problems:
        raise UnsafeOperationError(
            f"refusing to {action}: LIVE is not the same for certain on every HAProxy node: "
            + "; ".join(problems),
            hint="run status; fix or reload the node named, or " + RECONCILE_HINT,
        )
