"""Request bodies of the admin API (field names from the seed design, SPEC section 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmergencyOn(Body):
    duration_minutes: int = Field(ge=1, le=1440)
    reason: str = Field(min_length=1, max_length=500)


class EmergencyExtend(Body):
    additional_minutes: int = Field(ge=1, le=1440)


class AllowIn(Body):
    identifier: str = Field(min_length=1, max_length=200)
    entry_type: Literal["device", "mac", "user", "cidr"] | None = None
    name: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=500)
    expires_at: datetime | None = None


class ConsentIn(Body):
    change_type: Literal["emergency", "allowlist", "unlock", "time_rule", "pause", "bonus"]
    description: str = Field("", max_length=500)
    payload: dict[str, Any] = {}


class RejectIn(Body):
    reason: str = Field("", max_length=500)


class OverrideIn(Body):
    request_id: str = Field(min_length=1, max_length=64)
    pin: str | None = Field(None, min_length=4, max_length=64)
    expires_in_minutes: int = Field(15, ge=1, le=60)


class ValidateIn(Body):
    request_id: str = Field(min_length=1, max_length=64)
    pin: str = Field(min_length=1, max_length=64)


class UnlockIn(Body):
    device: str = Field(min_length=1, max_length=100)
    minutes: int = Field(ge=1, le=1440)
    provider: str | None = Field(None, max_length=100)


class PauseIn(Body):
    target: str = Field(min_length=1, max_length=100, description="a person, device or group")
    minutes: int | None = Field(None, ge=1, le=1440)
    until: datetime | None = Field(None, description="instead of minutes; local time if naive")
    reason: str | None = Field(None, max_length=500)


class ResumeIn(Body):
    target: str = Field(min_length=1, max_length=100)


class BonusIn(Body):
    person: str = Field(min_length=1, max_length=100)
    minutes: int = Field(0, ge=0, le=720)
    requests: int = Field(0, ge=0, le=10_000)
    tokens: int = Field(0, ge=0, le=10_000_000)


class EvaluateIn(Body):
    device_ip: str | None = Field(None, max_length=100, description="a device name or IP")
    user_id: str | None = Field(None, max_length=100, description="a proxy-auth user")
    host: str = Field("api.openai.com", max_length=253)
    model: str | None = Field(None, max_length=200)
    prompt: str | None = Field(None, max_length=200_000)
    at: datetime | None = None


class Verdict(BaseModel):
    allowed: bool
    action: str
    stage: str
    rule: str | None
    reason: str
