"""The admin HTTP API under /api/governance/ and /api/ (SPEC section 7).

Reads need any valid token; writes need a parent's. Every write goes through the same store
functions as the CLI (audited, consent-gated), runs in a worker thread, and refreshes the
gate's runtime state before answering, so it takes effect on the very next request.
"""

# No `from __future__ import annotations` here: FastAPI must see the real annotation objects
# (the `reader` dependency is local to `mount`, which string annotations cannot resolve).
import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query
from fastapi.responses import JSONResponse

from governance import time_rules as time_rules_stage
from governance.errors import ConsentRequired, StateError
from governance.schema import CategoryName, TimeRule
from proxy.admin import models as m
from proxy.admin.auth import Authenticator, require_parent
from proxy.gate import Gate
from proxy.rules import explain
from proxy.store import allowlist, changes, consent, emergency, family, overrides, queries
from proxy.store import time_rules as runtime_rules
from proxy.store.admins import Admin
from proxy.store.db import Db

T = TypeVar("T")
# SQLite integers are 64-bit: larger ids are refused by validation, not by an overflow
ConsentId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def mount(app: FastAPI, gate: Gate, auth: Authenticator) -> None:
    reader = Annotated[Admin, Depends(auth.admin)]
    api = APIRouter(prefix="/api/governance")
    ops = _Ops(gate, auth)

    def parent(admin: Admin) -> Admin:
        require_parent(admin)
        return admin

    @api.post("/emergency", tags=["emergency"])
    async def emergency_on(body: m.EmergencyOn, who: reader) -> Any:
        return await ops.change(parent(who), "emergency", {"op": "on", **body.model_dump()})

    @api.delete("/emergency", tags=["emergency"])
    async def emergency_off(who: reader) -> Any:
        return await ops.change(parent(who), "emergency", {"op": "off"})

    @api.post("/emergency/extend", tags=["emergency"])
    async def emergency_extend(body: m.EmergencyExtend, who: reader) -> Any:
        return await ops.change(parent(who), "emergency", {"op": "extend", **body.model_dump()})

    @api.get("/emergency/status", tags=["emergency"])
    async def emergency_status(who: reader) -> Any:
        row = await ops.read(lambda db: emergency.status(db, gate.clock()))
        return {"active": row is not None, **(row or {})}

    @api.get("/emergency/history", tags=["emergency"])
    async def emergency_history(who: reader, limit: int = Query(50, ge=1, le=1000)) -> Any:
        return await ops.read(lambda db: emergency.history(db, limit))

    @api.post("/allowlist", tags=["allowlist"])
    async def allow_add(body: m.AllowIn, who: reader) -> Any:
        payload = {"op": "add", **body.model_dump(mode="json")}
        return await ops.change(parent(who), "allowlist", payload)

    @api.get("/allowlist", tags=["allowlist"])
    async def allow_list(who: reader) -> Any:
        rows = await ops.read(lambda db: allowlist.entries(db, gate.clock()))
        static = [
            {"identifier": e.value, "entry_type": e.kind, "reason": e.reason, "source": "rules"}
            for e in gate.rules.snapshot.allowlist
        ]
        return [{**r, "source": "runtime"} for r in rows] + static

    @api.get("/allowlist/check/{identifier}", tags=["allowlist"])
    async def allow_check(identifier: str, who: reader) -> Any:
        devices = frozenset(gate.rules.snapshot.devices)
        row = await ops.read(lambda db: allowlist.find(db, identifier, gate.clock(), devices))
        static = next((e for e in gate.rules.snapshot.allowlist if e.value == identifier), None)
        return {
            "identifier": identifier,
            "allowed": bool(row or static),
            "source": "runtime" if row else "rules" if static else None,
            "entry": row,
        }

    @api.delete("/allowlist/{identifier}", tags=["allowlist"])
    async def allow_remove(identifier: str, who: reader) -> Any:
        return await ops.change(
            parent(who), "allowlist", {"op": "remove", "identifier": identifier}
        )

    @api.post("/time-rules", tags=["time rules"])
    async def time_rule_add(body: TimeRule, who: reader) -> Any:
        return await ops.change(
            parent(who),
            "time_rule",
            {"op": "add", **body.model_dump(mode="json", exclude_none=True)},
        )

    @api.get("/time-rules", tags=["time rules"])
    async def time_rule_list(who: reader) -> Any:
        rows = await ops.read(runtime_rules.listing)
        models = await asyncio.to_thread(gate.rules.models)  # validated again after a load
        yaml_rules = [
            {**r.model_dump(mode="json", exclude_none=True), "source": "rules"}
            for r in models.time_rules
        ]
        return yaml_rules + rows

    @api.get("/time-rules/check", tags=["time rules"])
    async def time_rule_check(who: reader, device: str, at: datetime | None = None) -> Any:
        facts = ops.facts(device, None, "api.openai.com", None, None)
        rule = time_rules_stage.evaluate(facts, gate.rules.snapshot, gate.cache.state, ops.when(at))
        return {
            "device": device,
            "active": rule is not None,
            "rule": rule.rule if rule else None,
            "action": rule.action if rule else None,
            "reason": rule.reason if rule else None,
        }

    @api.delete("/time-rules/{name}", tags=["time rules"])
    async def time_rule_remove(name: str, who: reader) -> Any:
        return await ops.change(parent(who), "time_rule", {"op": "remove", "name": name})

    @api.post("/consent", tags=["consent"])
    async def consent_request(body: m.ConsentIn, who: reader) -> Any:
        snap = gate.rules.snapshot
        return await ops.write(
            lambda db: consent.request(
                db,
                parent(who).name,
                body.change_type,
                body.description or changes.describe(body.change_type, body.payload),
                body.payload,
                gate.clock(),
                snap.rules.consent.expire_hours,
            )
        )

    @api.post("/consent/{consent_id}/approve", tags=["consent"])
    async def consent_approve(consent_id: ConsentId, who: reader) -> Any:
        return await ops.write(
            lambda db: changes.approve(
                db, gate.rules.snapshot, parent(who).name, consent_id, gate.clock()
            )
        )

    @api.post("/consent/{consent_id}/reject", tags=["consent"])
    async def consent_reject(consent_id: ConsentId, body: m.RejectIn, who: reader) -> Any:
        return await ops.write(
            lambda db: consent.reject(db, parent(who).name, consent_id, body.reason, gate.clock())
        )

    @api.get("/consent/pending", tags=["consent"])
    async def consent_pending(who: reader) -> Any:
        return await ops.read(lambda db: consent.pending(db, gate.clock()))

    @api.post("/override", tags=["overrides"])
    async def override_create(body: m.OverrideIn, who: reader) -> Any:
        row, pin = await ops.write(
            lambda db: overrides.create(
                db,
                parent(who).name,
                body.request_id,
                gate.clock(),
                minutes=body.expires_in_minutes,
                pin=body.pin,
            )
        )
        return {**row, "pin": pin}

    @api.post("/override/validate", tags=["overrides"])
    async def override_validate(body: m.ValidateIn, who: reader) -> Any:
        parent(who)
        device = await ops.read(
            lambda db: (
                db.row(
                    "SELECT device FROM decisions WHERE request_id = ? ORDER BY id DESC LIMIT 1",
                    (body.request_id,),
                )
                or {}
            ).get("device")
        )
        if device is None:
            raise HTTPException(404, f"no request {body.request_id!r} in the decision log")
        outcome = await gate.redeem_pin(str(device), body.request_id, body.pin)
        return {
            "valid": outcome.result == "ok",
            "result": outcome.result,
            "message": outcome.message,
            "device": device,
            "until": outcome.until.isoformat() if outcome.until else None,
        }

    @api.get("/override/{request_id}/exists", tags=["overrides"])
    async def override_exists(request_id: str, who: reader) -> Any:
        found = await ops.read(lambda db: overrides.exists(db, request_id, gate.clock()))
        return {"request_id": request_id, "exists": found}

    @api.post("/unlock", tags=["overrides"])
    async def unlock(body: m.UnlockIn, who: reader) -> Any:
        return await ops.change(parent(who), "unlock", body.model_dump())

    @api.post("/pause", tags=["pause"])
    async def pause(body: m.PauseIn, who: reader) -> Any:
        if (body.minutes is None) == (body.until is None):
            raise HTTPException(400, "give minutes or until (one of them)")
        payload = {"op": "pause", **body.model_dump(mode="json", exclude_none=True)}
        return await ops.change(parent(who), "pause", payload)

    @api.post("/resume", tags=["pause"])
    async def resume(body: m.ResumeIn, who: reader) -> Any:
        return await ops.change(parent(who), "pause", {"op": "resume", "target": body.target})

    @api.get("/pause", tags=["pause"])
    async def pauses(who: reader) -> Any:
        return await ops.read(lambda db: family.active_pauses(db, gate.clock()))

    @api.post("/bonus", tags=["pause"])
    async def bonus(body: m.BonusIn, who: reader) -> Any:
        return await ops.change(parent(who), "bonus", {"op": "bonus", **body.model_dump()})

    @api.post("/evaluate", response_model=m.Verdict, tags=["evaluate"])
    async def evaluate(body: m.EvaluateIn, who: reader) -> Any:
        return await ops.verdict(
            body.device_ip, body.user_id, body.at, body.host, body.model, body.prompt
        )

    @api.get("/evaluate/simple", response_model=m.Verdict, tags=["evaluate"])
    async def evaluate_simple(
        who: reader, device_ip: str, host: str = "api.openai.com", model: str | None = None
    ) -> Any:
        return await ops.verdict(device_ip, None, None, host, model, None)

    @api.get("/statistics", tags=["log"])
    async def statistics(who: reader, since: datetime | None = None) -> Any:
        categories = gate.catalog.categories()
        return await ops.read(lambda db: queries.statistics(db, since, categories))

    app.include_router(api)
    _mount_log(app, reader, ops)


def _mount_log(app: FastAPI, reader: Any, ops: "_Ops") -> None:
    @app.get("/api/decisions", tags=["log"])
    async def decisions(
        who: reader,
        device: str | None = None,
        person: str | None = None,
        provider: str | None = None,
        category: CategoryName | None = None,
        blocked: bool = False,
        since: datetime | None = None,
        limit: int = Query(100, ge=1, le=10_000),
        offset: int = Query(0, ge=0, le=1_000_000_000),
    ) -> Any:
        catalog = ops.gate.catalog
        flt = queries.LogFilter(
            device=device,
            person=person,
            provider=provider,
            providers=catalog.names_in(category) if category else None,
            blocked=blocked,
            since=since,
            limit=limit,
            offset=offset,
        )
        categories = catalog.categories()
        return await ops.read(lambda db: queries.decisions(db, flt, categories))

    @app.get("/api/audit", tags=["log"])
    async def audit(
        who: reader,
        since: datetime | None = None,
        limit: int = Query(100, ge=1, le=10_000),
    ) -> Any:
        return await ops.read(lambda db: queries.audit(db, since, limit))


class _Ops:
    """Runs store calls in a worker thread and maps refusals to HTTP answers."""

    def __init__(self, gate: Gate, auth: Authenticator) -> None:
        self.gate, self.auth = gate, auth

    async def read(self, fn: Callable[[Db], T]) -> T:
        return await asyncio.to_thread(self._with_db, fn)

    async def write(self, fn: Callable[[Db], T]) -> Any:
        try:
            result = await asyncio.to_thread(self._with_db, fn)
        except ConsentRequired as exc:
            await self._refresh()
            return JSONResponse(
                {"status": "pending_consent", "consent_id": exc.request_id, "message": str(exc)},
                status_code=202,
            )
        except StateError as exc:
            raise HTTPException(409 if "already" in str(exc) else 400, str(exc)) from None
        await self._refresh()
        return result

    async def change(self, admin: Admin, kind: str, payload: dict[str, Any]) -> Any:
        return await self.write(
            lambda db: changes.perform(
                db, self.gate.rules.snapshot, admin.name, kind, payload, self.gate.clock()
            )
        )

    def facts(
        self, device: str | None, user: str | None, host: str, model: str | None, prompt: str | None
    ) -> Any:
        if not device and not user:
            raise HTTPException(400, "give device_ip (a device name or IP) or user_id")
        try:
            return explain.hypothetical(
                self.gate.rules.snapshot, device or "0.0.0.0", host, model, prompt, user=user
            )
        except (StateError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None

    def when(self, at: datetime | None) -> datetime:
        zone = self.gate.rules.snapshot.zone
        return at if at and at.tzinfo else at.replace(tzinfo=zone) if at else self.gate.clock()

    async def verdict(
        self,
        device: str | None,
        user: str | None,
        at: datetime | None,
        host: str,
        model: str | None,
        prompt: str | None,
    ) -> dict[str, Any]:
        facts = self.facts(device, user, host, model, prompt)
        final = explain.evaluate(
            self.gate.rules.snapshot, self.gate.cache.state, facts, self.when(at)
        )
        return {
            "allowed": final.allowed,
            "action": final.action.value,
            "stage": final.stage.value,
            "rule": final.rule,
            "reason": final.reason,
        }

    def _with_db(self, fn: Callable[[Db], T]) -> T:
        with Db(self.gate.cache.target) as db:
            return fn(db)

    async def _refresh(self) -> None:
        self.auth.forget()
        await self.gate.cache.refresh(force=True)
