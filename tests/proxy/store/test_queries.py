from __future__ import annotations

from pathlib import Path

from proxy.store import queries
from proxy.store.db import Db
from proxy.store.writer import DECISION_COLUMNS


def insert(db: Db, device: str, stage: str, allowed: int, us: int, provider: str) -> None:
    values: dict[str, object] = {c: None for c in DECISION_COLUMNS}
    values.update(
        ts="2026-11-20T21:30:00.000Z",
        request_id="r",
        device=device,
        stage=stage,
        action="allow" if allowed else "block",
        allowed=allowed,
        enforced=1,
        duration_us=us,
        provider=provider,
    )
    with db.transaction() as conn:
        conn.execute(
            f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(DECISION_COLUMNS))})",
            tuple(values[c] for c in DECISION_COLUMNS),
        )


def test_statistics_by_aggregation(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        for i in range(100):
            insert(
                db,
                "kid" if i % 4 else "mom",
                "time_rule" if i % 4 else "default",
                0 if i % 4 else 1,
                i + 1,
                "openai" if i % 2 else "anthropic",
            )
        stats = queries.statistics(db)
    assert (stats["total"], stats["allowed"], stats["blocked"]) == (100, 25, 75)
    assert stats["allow_rate"] == 0.25 and stats["avg_decision_us"] == 50.5
    assert stats["p95_decision_us"] == 95
    assert stats["by_device"]["kid"] == {"total": 75, "allowed": 0, "blocked": 75}
    assert stats["by_provider"]["openai"]["total"] == 50


def test_empty_log(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        stats = queries.statistics(db)
    assert stats["total"] == 0 and stats["allow_rate"] is None


CATEGORIES = {"openai": "api", "character-ai": "companion", "chatgpt": "assistant"}


def test_statistics_by_category_from_the_catalog(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        for i, provider in enumerate(["openai", "character-ai", "character-ai", "chatgpt"]):
            insert(db, "kid", "policy", i % 2, 10, provider)
        insert(db, "kid", "default", 1, 10, "retired-service")  # no longer in the catalog
        insert(db, "kid", "default", 1, 10, None)  # type: ignore[arg-type]
        stats = queries.statistics(db, categories=CATEGORIES)
        plain = queries.statistics(db)
    assert stats["by_category"] == {
        "api": {"total": 1, "allowed": 0, "blocked": 1},
        "companion": {"total": 2, "allowed": 1, "blocked": 1},
        "assistant": {"total": 1, "allowed": 1, "blocked": 0},
        "none": {"total": 2, "allowed": 2, "blocked": 0},
    }
    assert "by_category" not in plain


def test_log_filter_by_a_category_s_services(tmp_path: Path) -> None:
    with Db(tmp_path) as db:
        for provider in ["openai", "character-ai", "chatgpt", "character-ai"]:
            insert(db, "kid", "policy", 0, 10, provider)
        companions = tuple(n for n, c in CATEGORIES.items() if c == "companion")
        rows = queries.decisions(db, queries.LogFilter(providers=companions), CATEGORIES)
        none = queries.decisions(db, queries.LogFilter(providers=()), CATEGORIES)
        every = queries.decisions(db, queries.LogFilter(), CATEGORIES)
    assert [(r["provider"], r["category"]) for r in rows] == [("character-ai", "companion")] * 2
    assert none == []
    assert {r["category"] for r in every} == {"api", "companion", "assistant"}
