"""One round of status reads: everything the statuses of some apps need, read all at once.

ONE command on the HAProxy host (every file HAProxy loads and its arguments, state files, lock
holders, runtime API, clocks), one on each other HAProxy node (its files and the state files), the
health probes and one `git log` per app host and app dir (every server of a pool) run in parallel,
so status costs about one round trip. A read that fails is kept as its exception: status reports
it, it never fails the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain import lock as lock_mod
from bluegreen.domain.config import AppConfig, HAProxySettings, Member
from bluegreen.domain.deployed_commit import deployed_command
from bluegreen.domain.haproxy_files import (
    FileReadError,
    HAProxyFiles,
    collect,
    parse_read,
    read_command,
)
from bluegreen.domain.probe import HealthResult, unknown_health
from bluegreen.domain.prompt_snippet import snippet_path
from bluegreen.domain.routing import LoadedConfig
from bluegreen.domain.runtime import (
    RuntimeOutputError,
    ServerState,
    StatRow,
    parse_show_servers_state,
    parse_show_stat,
)
from bluegreen.domain.snapshot import Snapshot, SnapshotError, parse_snapshot, snapshot_command
from bluegreen.domain.switch_commands import COMMAND_NOT_FOUND, check_command, not_found
from bluegreen.engine.context import Context
from bluegreen.engine.probing import http_probe
from bluegreen.errors import BlueGreenError, HAProxyConfigError, TransportError
from bluegreen.transport.base import CommandResult, Runner
from bluegreen.transport.parallel import parallel

# 50 ms: the kernel's process start time ticks in 10 ms.
_CLOCK_SLACK_S = 0.05


def lock_holder_path(hp: HAProxySettings, app_name: str) -> str:
    return lock_mod.holder_path(hp.work_dir, app_name)


@dataclass(frozen=True)
class NodeSnapshot:
    """Another HAProxy node's snapshot (the files it loads, the apps' state files), and the
    findings when its cfg was edited and not reloaded."""

    name: str
    host: str
    snapshot: Snapshot | Exception
    not_reloaded: list[str]

    def file(self, path: str) -> bytes | Exception | None:
        return snapshot_file(self.snapshot, self.host, path)

    def haproxy_files(self, configured: Sequence[str]) -> HAProxyFiles | Exception:
        return snapshot_haproxy_files(self.snapshot, self.host, configured)


@dataclass
class Reads:
    """What one round of reads brought back, shared by every app of a multi-app status."""

    host: str
    snapshot: Snapshot | Exception
    not_reloaded: list[str]
    health: dict[tuple[str, int, float], HealthResult]  # by probe_key()
    deployed: dict[tuple[str, str], CommandResult | Exception]  # by (ssh target, app dir)
    others: list[NodeSnapshot] = field(default_factory=list)  # the other HAProxy nodes
    _loaded: dict[tuple[tuple[str, bytes], ...], LoadedConfig] = field(
        default_factory=dict, repr=False
    )

    @cached_property
    def runtime_tables(
        self,
    ) -> tuple[tuple[StatRow, ...], tuple[ServerState, ...] | None, str | None]:
        """`show stat` and `show servers state` parsed once for every app of the round, and
        why they could not be read."""
        rows: tuple[StatRow, ...] = ()
        states: tuple[ServerState, ...] | None = None
        errors: list[str] = []
        snap = self.snapshot
        if isinstance(snap, Exception):
            errors.append(str(snap))
        elif problem := snap.runtime_problem():
            errors.append(problem)
        else:
            try:
                rows = parse_show_stat(snap.runtime_answer("show stat") or "")
            except RuntimeOutputError as exc:
                errors.append(str(exc))
            try:
                states = parse_show_servers_state(snap.runtime_answer("show servers state") or "")
            except RuntimeOutputError as exc:
                errors.append(str(exc))
        error = ("HAProxy's runtime API did not answer: " + "; ".join(errors)) if errors else None
        return rows, states, error

    def file(self, path: str) -> bytes | Exception | None:
        return snapshot_file(self.snapshot, self.host, path)

    def haproxy_files(self, configured: Sequence[str]) -> HAProxyFiles | Exception:
        """Every file HAProxy loads (read in this round) and the running HAProxy's arguments,
        or why they could not be read (a missing or unreadable file: HAProxyConfigError)."""
        return snapshot_haproxy_files(self.snapshot, self.host, configured)

    def all_nodes(self, primary: str) -> list[NodeSnapshot]:
        """Every HAProxy node's snapshot, the primary (named `primary`) first."""
        return [NodeSnapshot(primary, self.host, self.snapshot, self.not_reloaded), *self.others]

    def loaded(self, files: HAProxyFiles) -> LoadedConfig:
        """The files parsed once for all the apps of this round (the parse is immutable)."""
        if files.files not in self._loaded:
            self._loaded[files.files] = files.loaded()
        return self._loaded[files.files]


def snapshot_file(snap: Snapshot | Exception, host: str, path: str) -> bytes | Exception | None:
    """One file of a snapshot: its bytes, None when absent, or why it could not be read."""
    if isinstance(snap, Exception):
        return snap
    read = snap.files[path]
    if read.error is not None or read.entries is not None:
        why = read.error or "is a directory"
        return TransportError(f"reading {path} failed: {why}", host=host)
    return read.data


def snapshot_haproxy_files(
    snap: Snapshot | Exception, host: str, configured: Sequence[str]
) -> HAProxyFiles | Exception:
    """Every file HAProxy loads, from a snapshot, or why they could not be read."""
    if isinstance(snap, Exception):
        return snap
    reads = [snap.files[path] for path in configured]
    try:
        return collect(configured, reads, snap.cmdline, host)
    except HAProxyConfigError as exc:
        return exc


def read_everything(ctx: Context, apps: Sequence[tuple[str, AppConfig]]) -> Reads:
    """Every read the statuses of `apps` need, all at once: ONE command on the HAProxy host
    (cfg, state files, lock holders, runtime API, clocks), one on each other HAProxy node (its
    files, state files), the health probes (over the HAProxy host's own connections) and one
    `git log` per app host and app dir."""
    hp = ctx.config.haproxy
    runner = ctx.runner
    files = list(
        dict.fromkeys(
            [*hp.files]
            + [p for name, app in apps for p in (app.state_file, lock_holder_path(hp, name))]
        )
    )
    # One probe per distinct URL and verdict rule: apps sharing a server share its probe.
    members = [(app, c, m) for _, app in apps for c in app.servers for m in app.members(c)]
    probes = {probe_key(app, m): app for app, _, m in members}
    checkouts = list(dict.fromkeys((m.ssh, app.on(c).app_dir) for app, c, m in members))

    others = list(hp.node_targets.items())[1:]
    node_files = list(dict.fromkeys([*hp.files, *(app.state_file for _, app in apps)]))

    def snapshot() -> Snapshot:
        return read_snapshot(ctx, files)

    def read_node(host: str) -> Callable[[], Snapshot]:
        return lambda: read_snapshot(ctx, node_files, host)

    def probe(key: tuple[str, int, float]) -> Callable[[], HealthResult]:
        url, expect_status, timeout_s = key
        return lambda: http_probe(runner, hp.ssh, url, timeout_s, expect_status)

    def deployed(host: str, app_dir: str) -> Callable[[], CommandResult]:
        # The same read says whether the prompt snippet is installed (`bluegreen prompt`).
        command = deployed_command(app_dir, snippet_path(app_dir))
        return lambda: runner.run(host, command, timeout=30)

    out = parallel(
        [
            snapshot,
            *(read_node(host) for _, host in others),
            *(probe(key) for key in probes),
            *(deployed(host, app_dir) for host, app_dir in checkouts),
        ]
    )
    snap = out[0]
    nodes = [
        node_snapshot(ctx, name, host, cast("Snapshot | Exception", node))
        for (name, host), node in zip(others, out[1 : 1 + len(others)], strict=True)
    ]
    out = [snap, *out[1 + len(others) :]]  # the primary, then probes and checkouts as before
    health: dict[tuple[str, int, float], HealthResult] = {}
    for key, outcome in zip(probes, out[1 : 1 + len(probes)], strict=True):
        health[key] = (
            outcome if isinstance(outcome, HealthResult) else unknown_health(key[0], outcome)
        )
    return Reads(
        host=hp.ssh,
        snapshot=snap,  # type: ignore[arg-type]
        not_reloaded=not_reloaded(ctx, snap) if isinstance(snap, Snapshot) else [],
        health=health,
        deployed=dict(zip(checkouts, out[1 + len(probes) :], strict=True)),  # type: ignore[arg-type]
        others=nodes,
    )


def node_snapshot(ctx: Context, name: str, host: str, snap: Snapshot | Exception) -> NodeSnapshot:
    """A node's snapshot with its not-reloaded findings (they check the cfg when it was edited)."""
    found = not_reloaded(ctx, snap, host) if isinstance(snap, Snapshot) else []
    return NodeSnapshot(name, host, snap, found)


def probe_key(app: AppConfig, member: Member) -> tuple[str, int, float]:
    """What makes two probes the same: the URL, the expected status and the timeout."""
    return (dc.server_health_url(app, member), app.health.expect_status, app.health.timeout_s)


def read_snapshot(ctx: Context, files: list[str], host: str | None = None) -> Snapshot:
    """An HAProxy node's snapshot (see domain/snapshot.py), the primary's unless `host` says;
    TransportError when unreadable."""
    hp = ctx.config.haproxy
    host = host or hp.ssh
    command = snapshot_command(hp.files, hp.runtime_socket, files, sudo=hp.sudo)
    result = ctx.runner.run(host, command, timeout=15)
    try:
        return parse_snapshot(result.stdout, files)
    except SnapshotError as exc:
        raise TransportError(
            f"reading the HAProxy host failed (exit {result.exit_status}): {exc}; {result.tail(3)}",
            host=host,
            hint="the read needs a POSIX sh with base64, stat, getconf and socat on the host",
        ) from exc


def read_cfg(ctx: Context, runner: Runner | None = None, host: str | None = None) -> HAProxyFiles:
    """Every file HAProxy loads, in its load order, and the running HAProxy's arguments: ONE
    command on an HAProxy node, the primary unless `host` says (a directory is listed and read
    in the same command)."""
    hp = ctx.config.haproxy
    host = host or hp.ssh
    command = read_command(hp.files, hp.runtime_socket, sudo=hp.sudo)
    result = (runner or ctx.runner).run(host, command, timeout=30)
    try:
        reads, argv = parse_read(result.stdout, hp.files)
    except FileReadError as exc:
        raise TransportError(
            f"reading haproxy.cfg failed (exit {result.exit_status}): {exc}; {result.tail(3)}",
            host=host,
            hint="the read needs a POSIX sh with base64 on the HAProxy host",
        ) from exc
    return collect(hp.files, reads, argv, host)


def cfg_not_reloaded(ctx: Context) -> list[str]:
    """Asks the HAProxy host now: findings when haproxy.cfg was changed and not reloaded."""
    return not_reloaded(ctx, read_snapshot(ctx, []))


def not_reloaded(ctx: Context, snap: Snapshot, host: str | None = None) -> list[str]:
    """The cfg file changed after the running HAProxy worker started: edited and not reloaded.
    Only then it is also checked (would a reload even work?). `host`: the node (the primary's
    unless it says)."""
    ages = snap.ages()
    if ages is None:
        return []
    cfg_age, proc_age = ages
    if cfg_age >= proc_age - _CLOCK_SLACK_S:
        return []
    findings = [
        f"haproxy.cfg on disk was modified {cfg_age:.1f}s ago, after the running HAProxy "
        f"worker started ({proc_age:.1f}s ago): it was edited and not reloaded, so the "
        "running routing may differ from the file"
    ]
    hp = ctx.config.haproxy
    if hp.check:
        check = check_command(hp.check, hp.files, hp.sudo)
        try:
            result = ctx.runner.run(host or hp.ssh, check, timeout=30)
        except BlueGreenError:
            return findings
        if result.exit_status == COMMAND_NOT_FOUND:
            findings.append(f"haproxy.cfg on disk could not be checked: {not_found(hp.check[0])}")
        elif not result.ok:
            findings.append(
                "haproxy.cfg on disk does not pass `haproxy -c`, so a reload would fail and "
                "HAProxy keeps running the previous cfg: " + " ".join(result.tail(5).split())[-300:]
            )
    return findings
