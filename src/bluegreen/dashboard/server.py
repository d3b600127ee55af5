"""The dashboard's web app (Starlette, served by uvicorn: both come with the MCP SDK).

Routes: `/` every app; `/app/NAME` one app; POST `/app/NAME/deploy` and `/app/NAME/approve`
(start a job or record an approval, then back to the app's page); `/api/app/NAME/traffic` and
`/api/jobs/ID` for the page's script; `/login` when a token is required. Service calls run in
worker threads: they talk SSH and may take seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bluegreen.dashboard import pages
from bluegreen.dashboard.guard import SESSION_COOKIE, Guard, Session
from bluegreen.dashboard.jobs import Jobs
from bluegreen.domain.approval import short, stale_plan_reason
from bluegreen.domain.display_text import MESSAGE_MAX, one_line
from bluegreen.domain.validate import validate_ref
from bluegreen.engine.context import StepEvent
from bluegreen.engine.deploy_plan import DeployOptions
from bluegreen.errors import ApprovalError, BlueGreenError
from bluegreen.models import SwitchPlan
from bluegreen.models_traffic import TrafficSample
from bluegreen.service import Service, SwitchRequest

logger = logging.getLogger("bluegreen.dashboard")

Handler = Callable[[Request, Session, FormData | None], Awaitable[Response]]


class Dashboard:
    def __init__(self, service: Service, guard: Guard) -> None:
        self.service = service
        self.guard = guard
        self.jobs = Jobs()
        self._readings: dict[str, TrafficSample] = {}  # the last traffic reading, per app
        self._readings_lock = threading.Lock()

    def app(self) -> Starlette:
        def guarded(handler: Handler, post: bool) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:  # Starlette awaits async ones
                return await self._guarded(request, handler, post=post)

            return endpoint

        def get(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            return guarded(handler, post=False)

        def post(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            return guarded(handler, post=True)

        return Starlette(
            routes=[
                Route("/", get(self._overview)),
                Route("/login", self._login, methods=["GET", "POST"]),
                Route("/app/{app}", get(self._app_page)),
                Route("/app/{app}/deploy", post(self._deploy), methods=["POST"]),
                Route("/app/{app}/approve", post(self._approve), methods=["POST"]),
                Route("/api/app/{app}/traffic", get(self._traffic)),
                Route("/api/jobs/{job}", get(self._job)),
            ]
        )

    # --- the guard around every page ---------------------------------------------------------

    async def _guarded(self, request: Request, handler: Handler, *, post: bool) -> Response:
        if not self.guard.host_ok(request.headers):
            return Response("unknown Host: not this dashboard's name", status_code=421)
        session = self.guard.session(request.cookies.get(SESSION_COOKIE))
        new_id = None
        if session is None:
            if self.guard.needs_login or post:
                if request.url.path.startswith("/api/") or post:
                    return JSONResponse({"error": "log in first"}, status_code=401)
                return RedirectResponse("/login", status_code=303)
            new_id, session = self.guard.open_session()
        form = None
        if post:
            form = await request.form()
            if not self.guard.origin_ok(request.headers):
                return Response("refused: the form does not come from this dashboard", 403)
            if not Guard.csrf_ok(session, str(form.get("csrf", ""))):
                return Response("refused: the form's session token does not match", 403)
        try:
            response = await handler(request, session, form)
        except BlueGreenError as exc:
            text = one_line(exc.message + (f" ({exc.hint})" if exc.hint else ""), MESSAGE_MAX)
            response = HTMLResponse(pages.layout("error", f'<p class="notice">{pages.e(text, MESSAGE_MAX)}</p>'), 400)  # fmt: skip
        if new_id:
            response.set_cookie(SESSION_COOKIE, new_id, httponly=True, samesite="strict")
        return response

    async def _login(self, request: Request) -> Response:
        if not self.guard.host_ok(request.headers):
            return Response("unknown Host: not this dashboard's name", status_code=421)
        if not self.guard.needs_login:
            return RedirectResponse("/", status_code=303)
        if request.method == "GET":
            return HTMLResponse(pages.login(None))
        form = await request.form()
        if not self.guard.origin_ok(request.headers):
            return Response("refused: the form does not come from this dashboard", 403)
        if not self.guard.token_ok(str(form.get("token", ""))):
            logger.warning(
                "dashboard login refused from %s", request.client and request.client.host
            )
            return HTMLResponse(pages.login("wrong token"), status_code=401)
        name = one_line(str(form.get("name", "")).strip(), 64) or None
        session_id, _ = self.guard.open_session(f"{name} (dashboard login)" if name else None)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict")
        return response

    # --- pages ------------------------------------------------------------------------------

    async def _overview(self, request: Request, session: Session, _: FormData | None) -> Response:
        apps = list(self.service.config.apps)
        statuses = await run_in_threadpool(self.service.status_many, apps)
        return HTMLResponse(pages.overview(statuses))

    async def _app_page(self, request: Request, session: Session, _: FormData | None) -> Response:
        app = request.path_params["app"]
        job = request.query_params.get("job")
        page = await run_in_threadpool(self._read_app, app, session, job)
        return HTMLResponse(pages.app_page(page))

    def _read_app(self, app: str, session: Session, job: str | None) -> pages.AppPage:
        svc = self.service
        status = svc.status(app)
        plan, plan_error = self._plan(app, emergency=False)
        operator = svc.config.app(app).approval == "operator"
        pending = []
        for p in svc.pending_approvals(app) if operator else []:
            current = plan if not p.emergency else self._plan(app, emergency=True)[0]
            stale = None
            if current is None:
                stale = "no switch is possible now"
            elif current.plan_hash != p.plan_hash:
                stale = stale_plan_reason(current.to_live, p.target_commit, current.target_commit)
            pending.append(pages.Pending(p, stale))
        notices, session.notices = session.notices, []
        return pages.AppPage(
            status=status, history=svc.history(app, 30), plan=plan, plan_error=plan_error,
            operator=operator, pending=pending, csrf=session.csrf, notices=notices,
            job=self.jobs.get(job) if job else None,
        )  # fmt: skip

    def _plan(self, app: str, *, emergency: bool) -> tuple[SwitchPlan | None, str | None]:
        try:
            return self.service.preview_switch(app, emergency=emergency), None
        except BlueGreenError as exc:
            return None, exc.message

    # --- actions ----------------------------------------------------------------------------

    async def _deploy(self, request: Request, session: Session, form: FormData | None) -> Response:
        app = request.path_params["app"]
        # An unknown app or a bad ref (the CLI's --ref check) is refused before a job starts.
        self.service.config.app(app)
        asked = str(form.get("ref", "")).strip() if form else ""
        ref = validate_ref(asked) if asked else None

        def work(progress: Callable[[StepEvent], None]) -> tuple[bool, str]:
            r = self.service.deploy(app, DeployOptions(ref=ref), progress=progress)
            if r.ok:
                return True, f"{r.color.upper()} now runs {short(r.commit_after)} ({r.ref})"
            return False, r.error or "deploy failed"

        detail = f"ref {ref}" if ref else "the configured branch"
        return self._follow(app, self.jobs.start(app, "deploy", work, detail))

    async def _approve(self, request: Request, session: Session, form: FormData | None) -> Response:
        app = request.path_params["app"]
        token = str(form.get("token", "")) if form else ""
        then_switch = bool(form and form.get("then") == "switch")
        message = await run_in_threadpool(self._approve_pending, app, token, session.who)
        session.notices.append(message)
        if not then_switch:
            return RedirectResponse(f"/app/{app}", status_code=303)

        def work(progress: Callable[[StepEvent], None]) -> tuple[bool, str]:
            r = self.service.switch(app, SwitchRequest(confirm_token=token), progress=progress)
            return r.ok, r.message or r.error or ""

        return self._follow(app, self.jobs.start(app, "switch", work))

    def _approve_pending(self, app: str, token: str, who: str) -> str:
        """Only a plan this app's page lists (this app's, operator mode, awaiting a person)."""
        if token not in {p.token for p in self.service.pending_approvals(app)}:
            raise ApprovalError(f"no plan of {app} awaits approval with this token",
                                hint="reload the page: it lists the plans awaiting approval")  # fmt: skip
        # The person saw this plan on the page; the service plans again and refuses a stale one.
        return self.service.approve(token, who, lambda _plan: True, channel="dashboard")

    @staticmethod
    def _follow(app: str, job: str) -> Response:
        return RedirectResponse(f"/app/{app}?job={job}", status_code=303)

    # --- the page script's reads ----------------------------------------------------------------

    async def _traffic(self, request: Request, session: Session, _: FormData | None) -> Response:
        app = request.path_params["app"]
        reading = await run_in_threadpool(self._read_traffic, app)
        return JSONResponse(reading.model_dump(mode="json"))

    def _read_traffic(self, app: str) -> TrafficSample:
        with self._readings_lock:
            previous = self._readings.get(app)
        reading = self.service.traffic(app, previous)
        with self._readings_lock:
            self._readings[app] = reading
        return reading

    async def _job(self, request: Request, session: Session, _: FormData | None) -> Response:
        view = self.jobs.get(request.path_params["job"])
        if view is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse(view)


def run(service: Service, *, host: str, port: int, token: str | None, os_user: str,
        allow_hosts: tuple[str, ...] = (), hint: str | None = None) -> None:  # fmt: skip
    """`hint`: how to make a token, when one is missing (see mcp_http.check_exposure)."""
    import uvicorn

    from bluegreen.mcp_http import check_exposure, endpoint, token_hint

    check_exposure(host, token, hint=hint or token_hint("BLUEGREEN_DASHBOARD_TOKEN"))
    guard = Guard(host, port, token, os_user, allow_hosts)
    url = endpoint("http", host, port).removesuffix("/mcp") + "/"
    logger.info("bluegreen dashboard on %s (%s)", url,
                "log in with the token" if token else "loopback, no login")  # fmt: skip
    config = uvicorn.Config(Dashboard(service, guard).app(), host=host.strip("[]"), port=port,
                            log_config=None, server_header=False)  # fmt: skip
    uvicorn.Server(config).run()
