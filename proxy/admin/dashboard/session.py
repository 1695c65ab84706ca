"""Dashboard sign-in: server-side sessions, CSRF tokens, same-origin checks, security headers.

A parent signs in with an admin token once; the token is checked with the same store
function as the API (``admins.authenticate``) and then forgotten: the browser only holds a
random session id (cookie ``hg_session``: HttpOnly, SameSite=Strict) that maps, in this
process's memory, to the admin and a per-session CSRF token. Sessions last 12 hours, end at
sign-out, and end at once when the admin's token is revoked. Every POST must carry the CSRF
token in a hidden field and must not come from another site (Sec-Fetch-Site, Origin,
Referer, whichever the browser sends).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request, Response

from proxy.admin.auth import FailureThrottle
from proxy.store import admins
from proxy.store.admins import Admin
from proxy.store.db import Db
from proxy.store.sql.target import Target

SESSION_COOKIE = "hg_session"
LOGIN_COOKIE = "hg_login"  # double-submit CSRF token for the sign-in form
LIFETIME = 12 * 3600.0
RECHECK = 5.0  # seconds between checks that the admin's token is still valid
MAX_SESSIONS = 256
MAX_FORM_BYTES = 16_384

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass
class Session:
    id: str
    admin: Admin
    csrf: str
    expires: float
    checked: float
    messages: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, kind: str, text: str) -> None:
        """A message for the next page shown (``ok``, ``info`` or ``error``)."""
        self.messages.append((kind, text))

    def take_messages(self) -> list[tuple[str, str]]:
        taken, self.messages = self.messages, []
        return taken


class Sessions:
    """Signed-in browsers of this process, oldest evicted first beyond ``MAX_SESSIONS``."""

    def __init__(
        self, state_dir: Target | str | Path, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.state_dir = state_dir
        self._clock = clock
        self._live: OrderedDict[str, Session] = OrderedDict()
        self._throttle = FailureThrottle()

    def start(self, admin: Admin) -> Session:
        now = self._clock()
        session = Session(
            secrets.token_urlsafe(32), admin, secrets.token_urlsafe(32), now + LIFETIME, now
        )
        self._live[session.id] = session
        while len(self._live) > MAX_SESSIONS:
            self._live.popitem(last=False)
        return session

    def end(self, session_id: str | None) -> None:
        self._live.pop(session_id or "", None)

    async def current(self, request: Request) -> Session | None:
        """The request's live session, or None (unknown, expired, or token revoked)."""
        session = self._live.get(request.cookies.get(SESSION_COOKIE, ""))
        now = self._clock()
        if session is None or session.expires <= now:
            self.end(session.id if session else None)
            return None
        if now - session.checked > RECHECK:
            if not await asyncio.to_thread(self._still_valid, session.admin):
                self.end(session.id)
                return None
            session.checked = now
        return session

    async def sign_in(self, request: Request, token: str) -> Admin | None:
        """The admin a token belongs to; wrong guesses from one address are slowed down."""
        address = request.client.host if request.client else "?"
        token = token.strip()
        admin = await asyncio.to_thread(self._authenticate, token) if token else None
        if admin is None:
            await self._throttle.failed(address)
            return None
        self._throttle.succeeded(address)
        return admin

    def _authenticate(self, token: str) -> Admin | None:
        with Db(self.state_dir) as db:
            return admins.authenticate(db, token)

    def _still_valid(self, admin: Admin) -> bool:
        with Db(self.state_dir) as db:
            row = db.row("SELECT 1 FROM admins WHERE id = ? AND revoked_at IS NULL", (admin.id,))
        return row is not None


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site.

    Browsers send ``Sec-Fetch-Site``; Origin and Referer are compared with the Host when
    they name one. Under ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null``
    even for our own forms, so "null" says nothing and the CSRF token must decide.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    host = request.headers.get("host", "").lower()
    for name in ("origin", "referer"):
        source = request.headers.get(name)
        if source and source != "null" and urlsplit(source).netloc.lower() != host:
            return False
    return True


def csrf_ok(expected: str, form: dict[str, str]) -> bool:
    return bool(expected) and hmac.compare_digest(expected, form.get("csrf", ""))


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form body (at most 16 KiB), or None for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=64)
    return dict(pairs)


def set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(LIFETIME),
    )


def secure(response: Response, cache: str = "no-store") -> Response:
    """The dashboard's security headers on any of its responses."""
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response
