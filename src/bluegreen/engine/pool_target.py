"""A switch's target when it is a pool: every server probed at once, each ready only when healthy
on the commit that goes LIVE (the one most of the pool has checked out), and the pool ready when
enough of them are (the app's `min_healthy`, else every server). The plan shows each server, and
its approval binds each server's commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bluegreen.domain import deploy_commands as dc
from bluegreen.domain.approval import same_commit, short
from bluegreen.domain.config import AppConfig, Member
from bluegreen.domain.deployed_commit import Deployed
from bluegreen.domain.probe import HealthResult
from bluegreen.engine.context import Context
from bluegreen.engine.probing import as_health, http_probe
from bluegreen.models import Health, TargetServer
from bluegreen.transport.parallel import parallel


@dataclass(frozen=True)
class PoolTarget:
    servers: list[TargetServer]
    commit: str | None  # what goes LIVE
    needed: int
    health: Health  # the pool's, as the plan shows the target's health

    @property
    def healthy(self) -> bool:
        return self.health.healthy

    @property
    def witnesses(self) -> tuple[str | None, ...]:
        """What an approval binds: each server's checkout and health answer."""
        return tuple(w for s in self.servers for w in (s.server, s.commit, s.health.commit))


def check_pool(
    ctx: Context, app: AppConfig, color: str, deployed: Mapping[Member, Deployed]
) -> PoolTarget:
    """Probe every server of `color` (in parallel) and judge each against the pool's commit."""
    members = app.members(color)
    hp, health = ctx.config.haproxy, app.health

    def probe(member: Member) -> Callable[[], HealthResult]:
        url = dc.server_health_url(app, member)
        return lambda: http_probe(ctx.runner, hp.ssh, url, health.timeout_s, health.expect_status)

    outcomes = parallel([probe(m) for m in members])
    checked = [deployed[m].commit for m in members]
    counts = Counter(c for c in checked if c)
    commit = max(counts, key=lambda c: (counts[c], -checked.index(c))) if counts else None
    servers = []
    for member, outcome, checkout in zip(members, outcomes, checked, strict=True):
        answer = as_health(outcome) if not isinstance(outcome, Exception) else _failed(outcome)
        problem = _problem(answer, checkout, commit, deployed[member].error)
        servers.append(
            TargetServer(
                server=member.server or member.color,
                address=member.address,
                ready=problem is None,
                commit=checkout,
                health=answer,
                problem=problem,
            )
        )
    needed = app.min_healthy or len(members)
    not_ready = "; ".join(f"{s.server}: {s.problem}" for s in servers if s.problem)
    ready = sum(1 for s in servers if s.ready)
    summary = Health(
        url=", ".join(s.health.url for s in servers),
        healthy=ready >= needed,
        commit=commit,
        error=not_ready or None,
        unknown=ready < needed and all(s.health.unknown for s in servers if not s.ready),
    )
    return PoolTarget(servers, commit, needed, summary)


def _failed(exc: Exception) -> Health:
    return Health(url="", healthy=False, error=str(exc), unknown=True)


def _problem(
    health: Health, checkout: str | None, commit: str | None, read_error: str | None
) -> str | None:
    if not health.healthy:
        verdict = "health unknown" if health.unknown else "not healthy"
        return f"{verdict} ({health.error or health.status_code})"
    if checkout is None:
        return f"its commit could not be read ({read_error or 'no git checkout'})"
    if checkout != commit:
        return f"has {short(checkout)} checked out, the pool goes LIVE with {short(commit)}"
    if health.commit and not same_commit(checkout, health.commit):
        return f"answers with {short(health.commit)}, not {short(checkout)} (not restarted?)"
    return None


def pool_summary(
    servers: Sequence[TargetServer], needed: int, commit: str | None, label: str
) -> str:
    """`1 of 2 GREEN servers healthy on abc1234` (with the minimum when it is not every one)."""
    ready = sum(1 for s in servers if s.ready)
    minimum = f" (min_healthy {needed})" if needed < len(servers) else ""
    return f"{ready} of {len(servers)} {label} servers healthy on {short(commit)}{minimum}"
