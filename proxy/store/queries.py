"""Reading the decision log and the audit trail: filters, statistics by SQL aggregation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proxy.store.db import Db
from proxy.store.state import iso

LOG_COLUMNS = (
    "id, ts, request_id, client_ip, device, person, provider, host, method, path, "
    "endpoint, model, stage, rule, action, allowed, enforced, reason, duration_us, "
    "status, tokens_in, tokens_out, prompt_excerpt"
)


@dataclass(frozen=True, slots=True)
class LogFilter:
    device: str | None = None
    person: str | None = None
    provider: str | None = None
    providers: tuple[str, ...] | None = None  # any of these (a category's services)
    blocked: bool = False
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0

    def where(self) -> tuple[str, tuple[Any, ...]]:
        clauses, params = ["1 = 1"], []
        for column in ("device", "person", "provider"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.providers is not None:
            if not self.providers:
                clauses.append("0 = 1")
            else:
                clauses.append(f"provider IN ({', '.join('?' * len(self.providers))})")
                params.extend(self.providers)
        if self.blocked:
            clauses.append("action = 'block'")
        if self.since:
            clauses.append("ts >= ?")
            params.append(iso(self.since))
        if self.until:
            clauses.append("ts < ?")
            params.append(iso(self.until))
        return " AND ".join(clauses), tuple(params)


def decisions(
    db: Db, flt: LogFilter, categories: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Rows newest first; with *categories* (service name -> category, from the catalog)
    each row also names its service's category (None for no or an unknown service)."""
    where, params = flt.where()
    limit = max(1, min(flt.limit, 10_000))
    rows = db.rows(
        f"SELECT {LOG_COLUMNS} FROM decisions WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, limit, max(0, flt.offset)),
    )
    if categories is not None:
        for row in rows:
            row["category"] = categories.get(row["provider"] or "")
    return rows


def audit(db: Db, since: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT id, ts, actor, action, target, before, after FROM audit "
        "WHERE ts >= ? ORDER BY id DESC LIMIT ?",
        (iso(since) if since else "", max(1, min(limit, 10_000))),
    )


def statistics(
    db: Db, since: datetime | None = None, categories: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Totals, allow rate, breakdowns by stage/device/provider (and by category, given the
    catalog's service name -> category), mean and p95 decision time.

    Two queries: one grouped by every dimension at once (UNION ALL of GROUP BYs), one window
    query for the 95th percentile. The category of a row is its service's category in the
    catalog now (the log stores the service name); ``none`` for no or an unknown service.
    """
    start = iso(since) if since else ""
    grouped = db.rows(
        "WITH d AS (SELECT * FROM decisions WHERE ts >= ?) "
        "SELECT 'total' AS dim, '' AS key, count(*) AS n, sum(allowed) AS allowed, "
        "  avg(duration_us) AS avg_us FROM d "
        "UNION ALL SELECT 'stage', stage, count(*), sum(allowed), NULL FROM d GROUP BY stage "
        "UNION ALL SELECT 'device', device, count(*), sum(allowed), NULL FROM d GROUP BY device "
        "UNION ALL SELECT 'provider', coalesce(provider, 'none'), count(*), sum(allowed), NULL "
        "  FROM d GROUP BY provider",
        (start,),
    )
    p95 = db.row(
        "SELECT duration_us FROM (SELECT duration_us, ntile(100) OVER (ORDER BY duration_us) "
        "AS pct FROM decisions WHERE ts >= ? AND duration_us IS NOT NULL) AS ranked "
        "WHERE pct <= 95 "
        "ORDER BY duration_us DESC LIMIT 1",
        (start,),
    )
    total = next(r for r in grouped if r["dim"] == "total")
    n, allowed = total["n"], total["allowed"] or 0
    by_category: dict[str, dict[str, int]] = {}
    if categories is not None:
        for r in grouped:
            if r["dim"] == "provider":
                counts = by_category.setdefault(
                    categories.get(r["key"], "none"), {"total": 0, "allowed": 0, "blocked": 0}
                )
                counts["total"] += r["n"]
                counts["allowed"] += r["allowed"] or 0
                counts["blocked"] += r["n"] - (r["allowed"] or 0)
    return {
        "since": start or None,
        "total": n,
        "allowed": allowed,
        "blocked": n - allowed,
        "allow_rate": round(allowed / n, 4) if n else None,
        "avg_decision_us": round(total["avg_us"], 1) if total["avg_us"] is not None else None,
        "p95_decision_us": p95["duration_us"] if p95 else None,
        **{
            f"by_{dim}": {
                r["key"]: {
                    "total": r["n"],
                    "allowed": r["allowed"] or 0,
                    "blocked": r["n"] - (r["allowed"] or 0),
                }
                for r in grouped
                if r["dim"] == dim
            }
            for dim in ("stage", "device", "provider")
        },
        **({"by_category": by_category} if categories is not None else {}),
    }
