"""What the dashboard's buttons do: each one is a store function the API and CLI also use.

Changes run with the signed-in parent's name as the actor, so they are audited and, where
the rules ask for it, consent-gated. An action returns the message to show; a refusal
(``StateError``) and "waiting for approval" (``ConsentRequired``) become messages too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from governance.errors import ConsentRequired, StateError
from proxy.admin.dashboard.data import View
from proxy.store import changes, consent, overrides
from proxy.store.state import parse_ts

Action = Callable[[View, dict[str, str]], Awaitable[str]]


async def run(action: Action, view: View, form: dict[str, str]) -> tuple[str, str]:
    """(kind, message) for the next page: ``ok``, ``info`` (waiting) or ``error``."""
    try:
        return "ok", await action(view, form)
    except ConsentRequired as exc:
        return "info", f"Waiting for approval — {exc}."
    except (StateError, ValueError) as exc:
        return "error", f"Not done: {exc}"


def number(form: dict[str, str], name: str, words: str) -> int:
    text = form.get(name, "").strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{words} must be a whole number, not {text!r}") from None


async def change(view: View, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return await view.store.write(
        lambda db: changes.perform(db, view.snap, view.admin_name, kind, payload, view.gate.clock())
    )


async def emergency_on(view: View, form: dict[str, str]) -> str:
    minutes = number(form, "minutes", "the duration in minutes")
    reason = form.get("reason", "").strip()
    payload = {"op": "on", "duration_minutes": minutes, "reason": reason}
    await change(view, "emergency", payload)
    return f"Emergency override is on for {minutes} minutes: every request is allowed."


async def emergency_extend(view: View, form: dict[str, str]) -> str:
    minutes = number(form, "minutes", "the extra minutes")
    await change(view, "emergency", {"op": "extend", "additional_minutes": minutes})
    return f"Emergency override extended by {minutes} minutes."


async def emergency_off(view: View, form: dict[str, str]) -> str:
    await change(view, "emergency", {"op": "off"})
    return "Emergency override is off: the rules apply again."


async def unlock(view: View, form: dict[str, str]) -> str:
    device = form.get("device", "").strip()
    minutes = number(form, "minutes", "the minutes")
    await change(view, "unlock", {"device": device, "minutes": minutes})
    return f"{device} is unlocked for {minutes} minutes."


async def make_pin(view: View, form: dict[str, str]) -> str:
    request_id = form.get("request_id", "").strip()
    minutes = number(form, "minutes", "the minutes")
    row, pin = await view.store.write(
        lambda db: overrides.create(
            db, view.admin_name, request_id, view.gate.clock(), minutes=minutes
        )
    )
    return (
        f"PIN for request {request_id} on {row.get('device')}: {pin} — it works once, "
        f"within {minutes} minutes. It will not be shown again."
    )


def approve(consent_id: int) -> Action:
    async def act(view: View, form: dict[str, str]) -> str:
        item = await view.store.write(
            lambda db: changes.approve(
                db, view.snap, view.admin_name, consent_id, view.gate.clock()
            )
        )
        if item.get("status") == "applied":
            return f"Approved request {consent_id}: the change is in force."
        return f"Approved request {consent_id}; it still waits for other parents."

    return act


def reject(consent_id: int) -> Action:
    async def act(view: View, form: dict[str, str]) -> str:
        reason = form.get("reason", "").strip()
        await view.store.write(
            lambda db: consent.reject(db, view.admin_name, consent_id, reason, view.gate.clock())
        )
        return f"Rejected request {consent_id}."

    return act


async def pause(view: View, form: dict[str, str]) -> str:
    target = (form.get("person") or form.get("target") or "").strip()
    minutes = number(form, "minutes", "the minutes")
    row = await change(view, "pause", {"op": "pause", "target": target, "minutes": minutes})
    until = view.gate.local_clock(parse_ts(str(row.get("until"))))
    return f"{target} is paused until {until}."


async def resume(view: View, form: dict[str, str]) -> str:
    target = (form.get("person") or form.get("target") or "").strip()
    await change(view, "pause", {"op": "resume", "target": target})
    return f"{target} is no longer paused."


async def unlock_person(view: View, form: dict[str, str]) -> str:
    """Unlock every device of one person (each one audited, consent-gated like unlock)."""
    person = form.get("person", "").strip()
    minutes = number(form, "minutes", "the minutes")
    devices = sorted(n for n, d in view.snap.devices.items() if d.person == person)
    if not devices:
        raise StateError(f"{person} has no devices in the rules to unlock")
    for device in devices:
        await change(view, "unlock", {"device": device, "minutes": minutes})
    return f"{person} is unlocked for {minutes} minutes ({', '.join(devices)})."


async def bonus(view: View, form: dict[str, str]) -> str:
    person = form.get("person", "").strip()
    minutes = number(form, "minutes", "the minutes")
    await change(view, "bonus", {"op": "bonus", "person": person, "minutes": minutes})
    return f"{person} has {minutes} minutes more today."


SIMPLE: dict[str, Action] = {
    "emergency/on": emergency_on,
    "emergency/extend": emergency_extend,
    "emergency/off": emergency_off,
    "unlock": unlock,
    "override": make_pin,
    "pause": pause,
    "resume": resume,
    "unlock-person": unlock_person,
    "bonus": bonus,
}
