"""Who is calling the admin API: bearer tokens, roles, and slowing down guessers.

A verified token is remembered for 60 seconds (keyed by its SHA-256, never the token), so
the slow hash runs once per minute per token, not once per call; the memory is cleared
whenever runtime state changes (e.g. a token was revoked). Failed attempts are counted per
client address: after five within ten minutes every further failure from that address
waits a little longer (up to 5 s) before it is answered; a successful sign-in from the
address clears its count.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict, deque
from pathlib import Path

from cachetools import TTLCache
from fastapi import HTTPException, Request

from proxy.store import admins
from proxy.store.admins import Admin
from proxy.store.db import Db
from proxy.store.sql.target import Target

FREE_FAILURES = 5
WINDOW = 600.0
MAX_DELAY = 5.0


class FailureThrottle:
    """Failed sign-ins per client address; past FREE_FAILURES, each failure waits longer."""

    def __init__(self) -> None:
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    async def failed(self, address: str) -> None:
        now = time.monotonic()
        recent = self._failures[address]
        recent.append(now)
        while recent and now - recent[0] > WINDOW:
            recent.popleft()
        excess = len(recent) - FREE_FAILURES
        if excess > 0:
            await asyncio.sleep(min(MAX_DELAY, 0.25 * 2 ** min(excess, 5)))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)  # a real sign-in ends the suspicion


class Authenticator:
    def __init__(self, state_dir: Target | str | Path) -> None:  # or a database URL
        admins.warm()  # the app is built in a worker thread: the first check costs no more
        self.state_dir = state_dir
        self._verified: TTLCache[str, Admin] = TTLCache(maxsize=256, ttl=60)
        self.throttle = FailureThrottle()

    def forget(self) -> None:
        self._verified.clear()

    async def admin(self, request: Request) -> Admin:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        address = request.client.host if request.client else "?"
        if scheme.lower() != "bearer" or not token.strip():
            await self._fail(address)
        key = hashlib.sha256(token.strip().encode()).hexdigest()
        admin = self._verified.get(key)
        if admin is None:
            admin = await asyncio.to_thread(self._check, token.strip())
            if admin is None:
                await self._fail(address)
            assert admin is not None
            self._verified[key] = admin
        self.throttle.succeeded(address)
        return admin

    def _check(self, token: str) -> Admin | None:
        with Db(self.state_dir) as db:
            return admins.authenticate(db, token)

    async def _fail(self, address: str) -> None:
        await self.throttle.failed(address)
        raise HTTPException(
            401,
            "a valid admin token is needed: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_parent(admin: Admin) -> None:
    if not admin.can_write:
        raise HTTPException(403, f"{admin.name} is a viewer; only parents can change things")
