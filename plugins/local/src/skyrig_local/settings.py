"""Settings of the local provider: ``[env.NAME.local]`` in ``skyrig.toml``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LocalSettings(BaseModel):
    """Where the local servers keep their data."""

    model_config = ConfigDict(extra="forbid")

    data: str = ".skyrig/local"
    """The folder for the servers' data, relative to the app root (one cluster per app and environment)."""
    objects_port: int = Field(4999, ge=1024, le=65535)
    """The loopback port of the object server that serves public objects and signed URLs."""
    cache_maxmemory: str = Field("64mb", pattern=r"^\d+(kb|mb|gb)$")
    """The memory of each cache cluster's Redis server; past it, the declared eviction policy applies."""
