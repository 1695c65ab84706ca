"""Time rules added at run time (API), kept beside the YAML ones and shown together."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from governance.errors import StateError
from proxy.store.db import Db
from proxy.store.state import iso


def add(
    db: Db,
    actor: str,
    definition: dict[str, Any],
    now: datetime,
    yaml_names: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    from pydantic import ValidationError  # here: the CLI's other changes never load pydantic

    from governance.schema import TimeRule

    try:
        rule = TimeRule.model_validate(definition)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "time rule"
        raise StateError(f"{where}: {first['msg']}") from None
    if rule.name in yaml_names:
        raise StateError(f"the rules file already has a time rule named {rule.name!r}")
    data = rule.model_dump(mode="json", exclude_none=True)
    with db.change(actor, "time_rule.add", rule.name, now) as change:
        if change.row("SELECT 1 FROM time_rules WHERE name = ?", (rule.name,)):
            raise StateError(f"a time rule named {rule.name!r} already exists")
        change.execute(
            "INSERT INTO time_rules (name, definition, created_at, created_by) VALUES (?, ?, ?, ?)",
            (rule.name, json.dumps(data), iso(now), change.actor),
        )
        change.after = data
        return data


def remove(db: Db, actor: str, name: str, now: datetime) -> dict[str, Any]:
    with db.change(actor, "time_rule.remove", name, now) as change:
        row = change.row("SELECT definition FROM time_rules WHERE name = ?", (name,))
        if row is None:
            raise StateError(
                f"no runtime time rule named {name!r} (rules in the YAML file "
                "are changed by editing the file)"
            )
        change.execute("DELETE FROM time_rules WHERE name = ?", (name,))
        change.before = json.loads(row["definition"])
        return dict(change.before)


def listing(db: Db) -> list[dict[str, Any]]:
    return [
        {**json.loads(r["definition"]), "source": "runtime", "created_by": r["created_by"]}
        for r in db.rows("SELECT definition, created_by FROM time_rules ORDER BY name")
    ]
