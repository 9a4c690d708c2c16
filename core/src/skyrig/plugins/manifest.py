"""What a provider declares it can do: its capability manifest."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pydantic import BaseModel

EnvironmentType = Literal["local", "preview", "development", "production"]
ENVIRONMENT_TYPES: tuple[EnvironmentType, ...] = ("local", "preview", "development", "production")

KIND_FAMILIES: dict[str, str] = {
    "service": "compute",
    "sql_database": "sql",
    "topic": "pubsub",
    "subscription": "pubsub",
    "cache_cluster": "cache",
    "cron_job": "cron",
    "bucket": "objects",
    "secret": "secrets",
}
"""Each kind of the Application Model, and the family an environment can hand to another provider."""

FAMILIES: tuple[str, ...] = ("compute", "sql", "pubsub", "cache", "cron", "objects", "secrets")

FEATURES: dict[str, str] = {
    "pubsub.ordering": "messages with the same ordering attribute are delivered in publish order",
    "pubsub.exactly_once": "topics with delivery='exactly-once' deliver each message once per subscription",
    "pubsub.dead_letter": "messages that exhaust max_retries land in a dead-letter destination",
    "bucket.public": "public buckets serve objects to anyone with their URL",
    "bucket.versioning": "versioned buckets keep earlier versions of each object",
    "sql.branching": "a database can be branched copy-on-write (for previews and tests)",
    "cache.eviction_policy": "the declared eviction policy is the server's maxmemory-policy",
    "cron.managed": "cron jobs are triggered on schedule with a signed request",
}
"""Optional features a provider may claim; the conformance suite tests exactly the claimed ones."""


class ManifestError(ValueError):
    """A provider's manifest names a kind, feature or environment type skyrig does not know."""


@dataclass(frozen=True)
class Manifest:
    """A provider's capability manifest.

    The planner refuses a model that uses a kind the provider does not list here, before any API call;
    the conformance suite tests every claimed feature and checks that unclaimed ones are refused.
    """

    name: str
    """The provider's name: its entry point in ``skyrig.providers`` and its settings table in config."""
    kinds: frozenset[str]
    """The resource kinds it provisions (keys of :data:`KIND_FAMILIES`)."""
    environment_types: frozenset[str]
    """The environment types it serves (:data:`ENVIRONMENT_TYPES`)."""
    features: frozenset[str] = frozenset()
    """The optional features it supports (keys of :data:`FEATURES`)."""
    settings: str | None = None
    """Where its pydantic settings model is (``"package.module:Class"``), imported only when needed;
    the model validates ``[env.NAME.PROVIDER]`` in ``skyrig.toml``."""
    description: str = ""
    families: frozenset[str] = field(init=False)
    """The families of its kinds: what an environment can hand to it (``sql = "neon"``)."""

    def __post_init__(self) -> None:
        for label, values, known in (
            ("kind", self.kinds, KIND_FAMILIES),
            ("environment type", self.environment_types, ENVIRONMENT_TYPES),
            ("feature", self.features, FEATURES),
        ):
            unknown = sorted(set(values) - set(known))
            if unknown:
                raise ManifestError(
                    f"provider {self.name!r} declares unknown {label}s {unknown}; known: {sorted(known)}"
                )
        object.__setattr__(self, "families", frozenset(KIND_FAMILIES[k] for k in self.kinds))

    def settings_model(self) -> type[BaseModel] | None:
        """The settings model, imported now."""
        if self.settings is None:
            return None
        module, _, name = self.settings.partition(":")
        return getattr(importlib.import_module(module), name)
