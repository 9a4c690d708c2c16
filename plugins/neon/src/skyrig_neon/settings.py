"""Settings of the Neon provider: ``[env.NAME.neon]`` in ``skyrig.toml``.

The API key is not among them: it comes from the environment variable ``NEON_API_KEY`` only, never from
``skyrig.toml`` (which is committed and read by everyone who reads the code).
"""

from __future__ import annotations

import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

API_KEY_VARIABLE = "NEON_API_KEY"
"""The environment variable that holds the Neon API key (of the applying machine, and of the services:
their data plane reads their role's password with it)."""

DEFAULT_API_URL = "https://console.neon.tech/api/v2"

COMPUTE_DEFAULTS: dict[str, tuple[float, float, int]] = {
    "production": (1.0, 4.0, -1),
    "development": (0.25, 2.0, 300),
    "preview": (0.25, 2.0, 300),
    "local": (0.25, 2.0, 300),
}
"""Environment type -> (autoscaling_limit_min_cu, autoscaling_limit_max_cu, suspend_timeout_seconds) of a
new read-write endpoint: production never scales to zero and starts at one compute unit; every other type
scales to zero after five minutes idle."""


class NeonSettings(BaseModel):
    """Where the environment's branch is (a project, a parent), and the defaults of its compute.

    The compute's sizes are only the defaults of a new environment: changed in Neon's console afterwards,
    they are adopted and never reverted (see ``docs/providers/neon.md``).
    """

    model_config = ConfigDict(extra="forbid")

    api_url: str = Field(DEFAULT_API_URL, pattern=r"^https?://\S+$")
    """Neon's API (v2). Only the tests point it elsewhere (the FAKE Neon API)."""
    project_id: str | None = Field(None, pattern=r"^[a-z0-9-]{1,60}$")
    """An existing project to provision in. By default skyrig finds, or creates, the project named after
    the app, shared by all the app's environments."""
    org_id: str | None = Field(None, pattern=r"^[a-z0-9-]{1,60}$")
    """The organization a project skyrig creates belongs to (where the API key is a personal one that
    belongs to several)."""
    region: str = Field("aws-us-east-2", pattern=r"^[a-z0-9-]+$")
    """The region of a project skyrig creates (Neon's ``region_id``)."""
    pg_version: int = Field(17, ge=14, le=18)
    """The PostgreSQL version of a project skyrig creates."""
    branch_from: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]*$")
    """Another environment's name: this environment's branch is made from that environment's branch (its
    data as of now, or as of ``branch_at``). Unset: from the project's default branch, which is the
    production environment's."""
    branch_at: str | None = None
    """A point in time (ISO 8601 with a time zone, ``2026-02-26T12:00:00Z``) of the parent's history to
    branch from, instead of its current state; within the project's history retention."""
    autoscaling_limit_min_cu: float | None = Field(None, ge=0.25, le=56)
    """The fewest compute units of the branch's read-write endpoint (default: 1 in production, else
    0.25); user-tunable in the console."""
    autoscaling_limit_max_cu: float | None = Field(None, ge=0.25, le=56)
    """The most compute units (default: 4 in production, else 2); user-tunable in the console."""
    suspend_timeout_seconds: int | None = Field(None, ge=-1, le=604800)
    """Seconds idle before the endpoint scales to zero: -1 never (the default in production), else 60 to
    604800 (default 300); user-tunable in the console."""
    wait_delay: float = Field(1.0, gt=0, le=60)
    """Seconds between two checks of a running operation."""
    wait_timeout: float = Field(600.0, gt=0)
    """Seconds to wait for one operation (or a locked project) before giving up (the next apply picks it
    up where it is)."""
    max_attempts: int = Field(4, ge=1, le=20)
    """Attempts of each API call on throttling and 5xx answers, before skyrig's own retries."""

    @field_validator("branch_at")
    @classmethod
    def _iso_8601(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time (such as 2026-02-26T12:00:00Z)") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone: add Z (UTC) or an offset such as +02:00")
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @field_validator("suspend_timeout_seconds")
    @classmethod
    def _suspend(cls, value: int | None) -> int | None:
        if value is not None and value not in (-1, 0) and value < 60:
            raise ValueError("the suspend timeout is -1 (never), 0 (Neon's default) or at least 60 seconds")
        return value

    @model_validator(mode="after")
    def _limits(self) -> NeonSettings:
        low, high = self.autoscaling_limit_min_cu, self.autoscaling_limit_max_cu
        if low is not None and high is not None and low > high:
            raise ValueError(f"autoscaling_limit_min_cu ({low}) is above autoscaling_limit_max_cu ({high})")
        return self

    def compute(self, environment_type: str) -> dict[str, float | int]:
        """The read-write endpoint's autoscaling limits and suspend timeout in ``environment_type``: the
        settings, else the type's defaults (:data:`COMPUTE_DEFAULTS`)."""
        low, high, suspend = COMPUTE_DEFAULTS[environment_type]
        low = self.autoscaling_limit_min_cu if self.autoscaling_limit_min_cu is not None else low
        high = self.autoscaling_limit_max_cu if self.autoscaling_limit_max_cu is not None else high
        if self.autoscaling_limit_max_cu is None and low > high:
            high = low
        if self.autoscaling_limit_min_cu is None and low > high:
            low = high
        return {
            "autoscaling_limit_min_cu": float(low),
            "autoscaling_limit_max_cu": float(high),
            "suspend_timeout_seconds": int(
                self.suspend_timeout_seconds if self.suspend_timeout_seconds is not None else suspend
            ),
        }
