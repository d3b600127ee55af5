"""The one-line next step of an AppStatus: what the person or assistant should do now."""

from __future__ import annotations

from datetime import datetime

from bluegreen.models import AppStatus, ServerStatus


def _deployed_later(a: str | None, b: str | None) -> bool:
    """Whether deploy time `a` is after `b` (ISO 8601 from git's reflog); True when unknown."""
    try:
        return a is None or b is None or datetime.fromisoformat(a) > datetime.fromisoformat(b)
    except ValueError:
        return True


def _drifts(colour: ServerStatus) -> bool:
    """A pool whose servers have different commits checked out."""
    return len({m.commit for m in colour.pool if m.commit}) > 1


def next_step(status: AppStatus) -> str:
    if len({n.live for n in status.nodes if n.live}) > 1:
        return (
            f"The HAProxy nodes disagree: `bluegreen switch {status.app} --reconcile` plans "
            "routing every node to the primary's LIVE; read every node's diff, then approve it."
        )
    unsure = [n.name for n in status.nodes if not n.primary and n.problems]
    if unsure:
        return (
            f"HAProxy node {', '.join(unsure)} is not certain (see problems): bring it back or "
            "reload it before deploying or switching."
        )
    if status.routing.certain and not status.certain:  # certain from the file, not reloaded
        return (
            "haproxy.cfg was changed and not reloaded: HAProxy may route differently from the "
            "file. Check it with `haproxy -c` and reload HAProxy (or put the previous cfg back) "
            "before deploying; switch_traffic also reloads."
        )
    if not status.certain:
        return "Fix haproxy.cfg's routing for this app (see routing.problems) before deploying."
    assert status.live and status.standby
    if status.lock:
        return f"Wait: {status.lock.operation} is in progress (or break a stale lock)."
    standby = status.standby
    if standby.healthy is None:
        return f"STANDBY {standby.color.upper()}'s health is unknown (not measured): ask again."
    if not standby.healthy:
        return f"STANDBY {standby.color.upper()} is unhealthy: deploy_to_standby repairs it."
    if _drifts(standby):
        return (
            f"STANDBY {standby.color.upper()}'s servers run different commits: "
            "deploy_to_standby puts one commit on every one of them."
        )
    if _drifts(status.live):
        return (
            f"LIVE {status.live.color.upper()}'s servers run different commits (users get "
            "different versions): deploy_to_standby, then switch_traffic, brings them to one."
        )
    if status.live.commit and standby.commit and status.live.commit != standby.commit:
        if _deployed_later(standby.deployed_at, status.live.deployed_at):
            return (
                f"STANDBY {standby.color.upper()} runs {standby.commit[:12]}, deployed after "
                f"LIVE's: test it at {standby.address}, then switch_traffic to release it."
            )
        return (
            f"STANDBY {standby.color.upper()} runs the earlier {standby.commit[:12]} (the "
            "rollback target: switch_traffic goes back to it); deploy_to_standby brings it up "
            "to date."
        )
    return "Both servers run the same commit: deploy_to_standby to release a new version."
