"""Settings of the memory provider: ``[env.NAME.memory]`` in ``skyrig.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MemorySettings(BaseModel):
    """Where the simulated cloud lives, and the faults it injects into every API call."""

    model_config = ConfigDict(extra="forbid")

    path: str = ".skyrig/memory-cloud.db"
    """The SQLite file that stands in for the cloud, relative to the app root."""
    latency_ms: float = Field(0.0, ge=0, le=60_000)
    """Delay added to every API call, in milliseconds."""
    error_rate: float = Field(0.0, ge=0, le=1)
    """Share of API calls that fail with a transient error (retried by the engine)."""
    throttle_rate: float = Field(0.0, ge=0, le=1)
    """Share of API calls refused as throttled, 429-style (retried with backoff)."""
    crash_before_call: int | None = Field(None, ge=1)
    """Exit the process hard (as kill -9 would) right before the Nth mutating API call, after the engine
    wrote its intent. For crash tests: ``SKYRIG_ENV__<ENV>__MEMORY__CRASH_BEFORE_CALL``."""
    crash_after_call: int | None = Field(None, ge=1)
    """Exit the process hard right after the Nth mutating API call did its work, before the engine can
    record it. For crash tests: ``SKYRIG_ENV__<ENV>__MEMORY__CRASH_AFTER_CALL``."""
