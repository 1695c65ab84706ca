"""The parents' dashboard on the admin port: server-rendered HTML, a little JavaScript.

``/`` leads to ``/dashboard`` (or ``/login``); the pages are Home, Decisions, Devices &
people and Rules; buttons POST to ``/dashboard/...`` and come back with a message. Sign-in,
sessions and CSRF are in dashboard_session.py, the buttons' store calls in
dashboard_actions.py, each page in its own dashboard_*.py. None of it is in the OpenAPI
schema; the JSON API and its bearer tokens are untouched.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from proxy.admin.auth import Authenticator
from proxy.admin.dashboard import actions
from proxy.admin.dashboard import decisions as dashboard_decisions
from proxy.admin.dashboard import devices as dashboard_devices
from proxy.admin.dashboard import home as dashboard_home
from proxy.admin.dashboard import report as dashboard_report
from proxy.admin.dashboard import rules as dashboard_rules
from proxy.admin.dashboard.data import Store, View
from proxy.admin.dashboard.html import Html, field, h, hidden, layout
from proxy.admin.dashboard.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    Sessions,
    csrf_ok,
    read_form,
    same_origin,
    secure,
    set_cookie,
)
from proxy.gate import Gate

Render = Callable[[View, dict[str, str]], Awaitable[tuple[str, Html]]]
PAGES: dict[str, Render] = {
    "/dashboard": dashboard_home.render,
    "/dashboard/decisions": dashboard_decisions.render,
    "/dashboard/devices": dashboard_devices.render,
    "/dashboard/rules": dashboard_rules.render,
    "/dashboard/report": dashboard_report.render,
}
Pick = Callable[[Request], actions.Action | None]  # the action a POST asks for, if any
STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


def mount(app: FastAPI, gate: Gate, auth: Authenticator) -> None:
    """Add the dashboard's routes to the admin app (hidden from the OpenAPI schema)."""
    dash = Dashboard(gate, auth)
    app.state.dashboard_sessions = dash.sessions
    app.include_router(dash.router())


class Dashboard:
    """The dashboard's request handlers, sharing one session store."""

    def __init__(self, gate: Gate, auth: Authenticator) -> None:
        self.gate, self.store = gate, Store(gate, auth)
        self.sessions = Sessions(gate.cache.target)

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        for path, render in PAGES.items():
            router.add_api_route(path, self._page(path, render), methods=["GET"])
        for name, action in actions.SIMPLE.items():
            router.add_api_route(f"/dashboard/{name}", self._act(_always(action)), methods=["POST"])
        for verb, make in (("approve", actions.approve), ("reject", actions.reject)):
            path = f"/dashboard/consent/{{consent_id}}/{verb}"
            router.add_api_route(path, self._act(_consent(make)), methods=["POST"])
        router.add_api_route("/", self.root, methods=["GET"])
        router.add_api_route("/login", self.login_page, methods=["GET"])
        router.add_api_route("/login", self.login, methods=["POST"])
        router.add_api_route("/logout", self.logout, methods=["POST"])
        router.add_api_route("/dashboard/static/{name}", self.static, methods=["GET"])
        return router

    def view(self, session: Session) -> View:
        admin = session.admin
        return View(self.gate, self.store, admin.name, admin.can_write, session.csrf)

    def _page(self, path: str, render: Render) -> Callable[[Request], Awaitable[Response]]:
        async def page(request: Request) -> Response:
            session = await self.sessions.current(request)
            if session is None:
                here = f"{path}?{request.url.query}" if request.url.query else path
                return redirect("/login?" + urlencode({"next": here}))
            title, body = await render(self.view(session), dict(request.query_params))
            return html(page_html(title, body, session, active=path))

        return page

    def _act(self, make: Pick) -> Callable[[Request], Awaitable[Response]]:
        """A POST handler: signed in, CSRF and origin checked, a parent; then the action."""

        async def act(request: Request) -> Response:
            session = await self.sessions.current(request)
            form = await read_form(request)
            if session is None:
                return refusal("You are not signed in (or the session ended). Sign in again.")
            if form is None or not same_origin(request) or not csrf_ok(session.csrf, form):
                return refusal("This form did not come from this dashboard page. Reload it.")
            if not session.admin.can_write:
                return refusal(f"{session.admin.name} is a viewer; only parents change things.")
            action = make(request)
            if action is None:
                return refusal("There is no such request.", 404)
            session.flash(*await actions.run(action, self.view(session), form))
            return redirect(local_path(form.get("back"), "/dashboard"))

        return act

    async def root(self) -> Response:
        return redirect("/dashboard")

    async def login_page(self, request: Request) -> Response:
        if await self.sessions.current(request) is not None:
            return redirect("/dashboard")
        return _login(request, local_path(request.query_params.get("next"), "/dashboard"))

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if form is None or not same_origin(request) or not csrf_ok(expected, form):
            return _login(request, "/dashboard", "The sign-in form expired; try again.", 403)
        target = local_path(form.get("next"), "/dashboard")
        admin = await self.sessions.sign_in(request, form.get("token", ""))
        if admin is None:
            return _login(request, target, "That token is not valid (or was revoked).", 401)
        self.sessions.end(request.cookies.get(SESSION_COOKIE))  # a new sign-in, a new id
        response = redirect(target)
        set_cookie(request, response, SESSION_COOKIE, self.sessions.start(admin).id, "/")
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: Request) -> Response:
        session = await self.sessions.current(request)
        form = await read_form(request) or {}
        if session is not None:
            if not same_origin(request) or not csrf_ok(session.csrf, form):
                return refusal("This form did not come from this dashboard page. Reload it.")
            self.sessions.end(session.id)
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def static(self, name: str) -> Response:
        if name not in STATIC:
            return secure(Response("not found", 404, media_type="text/plain"))
        body = resources.files("proxy.admin.dashboard").joinpath("static", name).read_bytes()
        return secure(Response(body, media_type=STATIC[name]), cache="max-age=300")


def _always(action: actions.Action) -> Pick:
    return lambda _request: action


def _consent(make: Callable[[int], actions.Action]) -> Pick:
    """The action for the consent id in the path, or None for an id that cannot exist."""

    def pick(request: Request) -> actions.Action | None:
        text = str(request.path_params.get("consent_id", ""))
        return make(int(text)) if text.isdigit() and 0 < int(text) < 2**63 else None

    return pick


def _login(request: Request, target: str, error: str = "", status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    control = Html(
        '<input type="password" name="token" required autocomplete="current-password"'
        ' autofocus spellcheck="false" placeholder="hg_...">'
    )
    fields = hidden("csrf", token) + hidden("next", target) + field("Admin token", control)
    message = [("error", error)] if error else []
    body = h(
        '<section class="card narrow"><form method="post" action="/login" class="stack">{}'
        '<button type="submit">Sign in</button></form><p class="muted">A token comes from '
        "<code>hearthgate admin add NAME --role parent</code> (or <code>viewer</code>).</p>"
        "</section>",
        fields,
    )
    response = html(layout("Sign in", body, messages=message), status)
    set_cookie(request, response, LOGIN_COOKIE, token, "/login")
    return response


def page_html(title: str, body: Html, session: Session, active: str = "") -> str:
    admin = session.admin
    return layout(
        title,
        body,
        active=active,
        who=admin.name,
        role=admin.role,
        csrf=session.csrf,
        messages=session.take_messages(),
    )


def local_path(target: str | None, default: str) -> str:
    """``target`` when it is a path inside the dashboard (no open redirects), else default."""
    if target and target.startswith("/dashboard") and "//" not in target and "\\" not in target:
        return target
    return default


def html(text: str, status: int = 200) -> Response:
    return secure(HTMLResponse(text, status))


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))


def refusal(message: str, status: int = 403) -> Response:
    body = h(
        '<section class="card"><p>{}</p><p><a href="/dashboard">Back to the dashboard</a>'
        "</p></section>",
        message,
    )
    return html(layout("Not allowed" if status == 403 else "Not found", body), status)
