"""The dashboard's HTML, rendered on the server from the service's results (pure functions).

All text that comes from hosts (commits, health errors, history, diffs) goes through
display_text (no control or bidi characters, capped) and then html.escape: it is shown, never
interpreted. The page's script builds its live parts with textContent only.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from bluegreen.domain.approval import short
from bluegreen.domain.display_text import FIELD_MAX, TEXT_MAX, block, one_line
from bluegreen.models import AppStatus, History, PendingApproval, ServerStatus, SwitchPlan


def e(text: object, limit: int = FIELD_MAX) -> str:
    return html.escape(one_line(None if text is None else str(text), limit))


def pre(text: str | None) -> str:
    return html.escape(block(text))


@dataclass(frozen=True)
class Pending:
    approval: PendingApproval
    stale: str | None  # why this plan no longer applies, or None


@dataclass(frozen=True)
class AppPage:
    status: AppStatus
    history: History
    plan: SwitchPlan | None
    plan_error: str | None
    operator: bool
    pending: list[Pending]
    csrf: str
    notices: list[str]
    job: dict[str, object] | None  # the job this page follows (Jobs.get's view)


def layout(title: str, body: str, notices: Sequence[str] = ()) -> str:
    shown = "".join(f'<p class="notice">{e(n, TEXT_MAX)}</p>' for n in notices)
    script, style = _asset("dashboard.js"), _asset("dashboard.css")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)}</title><style>{style}</style></head>"
        f'<body><header><a href="/">bluegreen</a> <span>{e(title)}</span></header>'
        f"<main>{shown}{body}</main><script>{script}</script></body></html>"
    )


@cache
def _asset(name: str) -> str:
    """The page's script and style, read once from the package."""
    return files("bluegreen.dashboard").joinpath(name).read_text()


def overview(statuses: list[AppStatus]) -> str:
    rows = "".join(
        f'<tr><td><a href="/app/{e(s.app)}">{e(s.app)}</a></td>'
        f"<td>{_colour(s.live)}</td><td>{_colour(s.standby)}</td>"
        f"<td>{'certain' if s.certain else 'UNCERTAIN'}</td>"
        f"<td>{len(s.problems)}</td><td>{e(s.next_step, TEXT_MAX)}</td></tr>"
        for s in statuses
    )
    return layout(
        "apps",
        "<table><tr><th>app</th><th>LIVE</th><th>STANDBY</th><th>routing</th><th>problems</th>"
        f"<th>next</th></tr>{rows}</table>",
    )


def login(error: str | None) -> str:
    msg = f'<p class="notice">{e(error)}</p>' if error else ""
    return layout(
        "log in",
        f'{msg}<form method="post" action="/login"><label>your name '
        '<input name="name" autocomplete="username"></label> <label>token '
        '<input name="token" type="password" autocomplete="current-password"></label> '
        '<button type="submit">log in</button></form>',
    )


def app_page(page: AppPage) -> str:
    s = page.status
    app = e(s.app)
    body = (
        f'<section id="summary" data-app="{app}"><h1>{app}</h1>'
        f"<p>routing: {'certain' if s.certain else 'UNCERTAIN'} ({e(s.routing.summary, TEXT_MAX)})"
        f" &middot; checked {e(s.checked_at)} in {s.duration_ms:.0f} ms"
        f" &middot; switches: {s.switch_count or 0}"
        + (f" (last {e(s.last_switch)})" if s.last_switch else "")
        + "</p>"
        + _problems(s)
        + _notes(s)
        + f'<p class="next">next: {e(s.next_step, TEXT_MAX)}</p></section>'
        + '<section class="servers">'
        + _server("live", "LIVE", s.live)
        + _server("standby", "STANDBY", s.standby)
        + "</section>"
        + _traffic(s)
        + _actions(page)
        + _job(page.job)
        + (_pending(page) if page.operator else "")
        + _plan(page)
        + _history(page.history)
    )
    return layout(s.app, body, page.notices)


def _colour(server: ServerStatus | None) -> str:
    if server is None:
        return "?"
    return f'<span class="c-{e(server.color)}">{e(server.color.upper())}</span>'


def _problems(s: AppStatus) -> str:
    # Drift and runtime findings are often among the problems too: each is shown once.
    items = list(dict.fromkeys([*s.problems, *(d.message for d in s.drift),
                                *s.runtime_disagreements]))  # fmt: skip
    lock = s.lock
    if lock:
        stale = " (STALE)" if lock.stale else ""
        items.append(f"lock held by {lock.user}@{lock.host} ({lock.operation}, since "
                     f"{lock.since}){stale}")  # fmt: skip
    if not items:
        return '<p id="problems" class="ok">no drift, no lock, no problems</p>'
    lis = "".join(f"<li>{e(i, TEXT_MAX)}</li>" for i in items)
    return f'<ul id="problems" class="problems">{lis}</ul>'


def _notes(s: AppStatus) -> str:
    if not s.routing.notes:
        return ""
    lis = "".join(f"<li>{e(n, TEXT_MAX)}</li>" for n in s.routing.notes)
    return f'<ul id="notes" class="notes">{lis}</ul>'


def _server(dom_id: str, role: str, server: ServerStatus | None) -> str:
    if server is None:
        return f'<div id="{dom_id}" class="server"><h2>{role}</h2><p>unknown</p></div>'
    health = server.health
    if server.pool:  # the pool's count, then each server's health and commit
        each = ", ".join(
            f"{m.server} {'healthy' if m.healthy else 'NOT healthy'} ({short(m.commit)})"
            for m in server.pool
        )
        said = e(f"{server.pool_healthy} of {len(server.pool)} servers healthy: {each}", TEXT_MAX)
    elif health is None:
        said = "not probed"
    elif health.healthy:
        said = f"healthy (HTTP {e(health.status_code)}, {health.latency_ms or 0:.0f} ms)"
    else:
        said = f"UNHEALTHY: {e(health.error or health.status_code, TEXT_MAX)}"
    where = ""
    if role == "STANDBY" and server.preview_command:
        where = (f'<p class="preview">test STANDBY now: <code>{e(server.preview_command, TEXT_MAX)}'
                 f"</code> ({e(server.preview_note, TEXT_MAX)})</p>")  # fmt: skip
    rules = "".join(
        f'<li><span class="hosts">{e(", ".join(p.hosts) or "(no exact Host)")}</span> '
        f"<code>{e(p.line)}</code> <code>{e(p.text, TEXT_MAX)}</code></li>"
        for p in server.preview
    )
    return (
        f'<div id="{dom_id}" class="server c-{e(server.color)}"><h2>{role}: '
        f"{e(server.color.upper())}</h2><dl>"
        f"<dt>commit</dt><dd><code>{e(short(server.commit))}</code> deployed {e(server.deployed_at)}</dd>"
        f"<dt>health</dt><dd>{said}</dd>"
        f"<dt>HAProxy</dt><dd>{e(server.runtime_state)} ({e(server.backend)}/{e(server.server)})</dd>"
        f"<dt>address</dt><dd>{e(server.address)} (ssh {e(server.ssh)})</dd>"
        f'<dt>preview</dt><dd><ul class="preview-rules">{rules or "<li>none in haproxy.cfg</li>"}'
        f"</ul></dd></dl>{where}</div>"
    )


def _traffic(s: AppStatus) -> str:
    return (
        f'<section id="traffic" data-app="{e(s.app)}"><h2>traffic (requests/s per colour, from '
        'HAProxy <code>show stat</code>)</h2><div class="bars"></div></section>'
    )


def _hidden(csrf: str, **fields: str) -> str:
    pairs = {"csrf": csrf, **fields}
    return "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in pairs.items())


def _actions(page: AppPage) -> str:
    app = e(page.status.app)
    return (
        f'<section id="actions"><form method="post" action="/app/{app}/deploy">'
        f'{_hidden(page.csrf)}<label>git ref <input id="ref" name="ref" maxlength="200" '
        'placeholder="branch, tag or commit (default: the configured branch)" size="40"></label> '
        "<button id=deploy type=submit>deploy to STANDBY</button></form></section>"
    )


def _job(job: dict[str, object] | None) -> str:
    if not job:
        return ""
    detail = f": {e(job['detail'])}" if job.get("detail") else ""
    return (
        f'<section id="job" data-job="{e(job["id"])}"><h2>progress: {e(job["kind"])}{detail}'
        '</h2><ol class="steps"></ol><p class="outcome"></p></section>'
    )


def _pending(page: AppPage) -> str:
    if not page.pending:
        return '<section id="pending"><h2>plans awaiting approval</h2><p>none</p></section>'
    app = e(page.status.app)
    items = []
    for p in page.pending:
        a = p.approval
        head = (
            f"<p>switch {e(a.from_live.upper())} &rarr; {e(a.to_live.upper())}"
            f"{' (EMERGENCY)' if a.emergency else ''}: <code>{e(short(a.target_commit))}</code> "
            f"goes LIVE; planned {e(a.created)}, valid until {e(a.expires)}</p>"
        )
        if p.stale:
            action = f'<p class="stale">cannot be approved: {e(p.stale, TEXT_MAX)}</p>'
        else:
            action = (
                f'<form method="post" action="/app/{app}/approve">'
                f"{_hidden(page.csrf, token=a.token)}"
                '<button class="approve" type="submit" name="then" value="">approve</button> '
                '<button class="approve-switch" type="submit" name="then" value="switch">'
                "approve and switch now</button></form>"
            )
        items.append(f'<li class="pending">{head}{action}</li>')
    return (
        f'<section id="pending"><h2>plans awaiting approval</h2><ul>{"".join(items)}</ul>'
        "<p>each is the plan below, checked again when approved</p></section>"
    )


def _plan(page: AppPage) -> str:
    plan = page.plan
    if plan is None:
        return (
            f'<section id="plan"><h2>switch plan</h2><p>no switch possible now: '
            f"{e(page.plan_error, TEXT_MAX)}</p></section>"
        )
    h = plan.target_health
    health = ("healthy" if plan.target_healthy else "UNHEALTHY") + (
        f" ({e(h.error, TEXT_MAX)})" if h and h.error else ""
    )
    warnings = "".join(f"<li>{e(w, TEXT_MAX)}</li>" for w in plan.warnings)
    return (
        f'<section id="plan"><h2>switch plan: {e(plan.from_live.upper())} &rarr; '
        f"{e(plan.to_live.upper())}</h2><p>goes LIVE: <code>{e(short(plan.target_commit))}</code>"
        f" (now LIVE: <code>{e(short(plan.live_commit))}</code>); target {health}; approval: "
        f"{e(plan.approval)}</p>"
        + (f'<ul class="warnings">{warnings}</ul>' if warnings else "")
        + f'<pre class="diff">{pre(plan.diff)}</pre></section>'
    )


def _history(history: History) -> str:
    items = []
    for h in history.entries:
        change = (
            f"{e(h.from_live and h.from_live.upper())} &rarr; {e(h.to_live and h.to_live.upper())}"
            if h.operation == "switch"
            else f"{e(h.color and h.color.upper())}: {e(short(h.commit_before))} &rarr; "
            f"{e(short(h.commit_after))}" + (f" (ref <code>{e(h.ref)}</code>)" if h.ref else "")
        )
        approval = f"; approved by {e(h.approval.describe())}" if h.approval else ""
        took = f" in {h.duration_s:.1f}s" if h.duration_s is not None else ""
        error = f' <span class="error">{e(h.error, TEXT_MAX)}</span>' if h.error else ""
        items.append(
            f'<li class="entry {e(h.outcome)}"><time>{e(h.time)}</time> <b>{e(h.operation)}</b> '
            f"{change} by {e(h.user)}@{e(h.host)}: {e(h.outcome)}{took}{approval}{error}</li>"
        )
    unreadable = (
        f"<p>{history.unreadable_lines} unreadable line(s)</p>" if history.unreadable_lines else ""
    )
    return (
        f'<section id="history"><h2>history</h2><ol class="timeline">{"".join(items)}</ol>'
        f"{unreadable}</section>"
    )
