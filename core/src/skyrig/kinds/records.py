"""The records of the Application Model: one per kind, each the kind's validated spec plus where it is
declared and which service owns it. :data:`skyrig.kinds.KINDS` names each kind's record; the model
(:mod:`skyrig.model`) holds lists of them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from skyrig.declarations.cache import CacheClusterSpec, KeyspaceSpec
from skyrig.declarations.cron import CronJobSpec
from skyrig.declarations.objects import BucketSpec
from skyrig.declarations.pubsub import SubscriptionSpec, TopicSpec
from skyrig.declarations.secrets import SecretSpec
from skyrig.declarations.service import ServiceSpec
from skyrig.declarations.sql import SQLDatabaseSpec

Location = Annotated[str, Field(pattern=r"^.+:\d+:\d+$")]
"""Where something is written: ``"path/to/file.py:line:column"``, relative to the app root, 1-based."""


class Declared(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    location: Location
    """Where the declaration is written."""


class ServiceModel(Declared, ServiceSpec):
    """A service: a deployable unit and the package it owns."""

    package: str
    """The Python package the service owns (``""`` for the app root); its modules are the service's."""
    kind: Literal["service"] = "service"


class OwnedResource(Declared):
    service: str
    """The service that owns the resource: the one whose package declares it."""


class Migration(BaseModel):
    """One migration file of a SQL database."""

    model_config = ConfigDict(frozen=True)

    number: int
    name: str
    file: str
    """Relative to the app root."""
    sha256: str


class SQLDatabaseResource(OwnedResource, SQLDatabaseSpec):
    """A PostgreSQL database and its migrations, in order."""

    kind: Literal["sql_database"] = "sql_database"
    migration_files: list[Migration] = []


class TopicResource(OwnedResource, TopicSpec):
    """A pub/sub topic."""

    kind: Literal["topic"] = "topic"


class SubscriptionResource(OwnedResource, SubscriptionSpec):
    """A subscription; its handler runs in the owning service."""

    kind: Literal["subscription"] = "subscription"


class KeyspaceModel(Declared, KeyspaceSpec):
    """A typed keyspace of a cache cluster."""


class CacheClusterResource(OwnedResource, CacheClusterSpec):
    """A Redis cache cluster and its keyspaces."""

    kind: Literal["cache_cluster"] = "cache_cluster"
    keyspaces: list[KeyspaceModel] = []


class CronJobResource(OwnedResource, CronJobSpec):
    """A cron job; its endpoint runs in the owning service."""

    kind: Literal["cron_job"] = "cron_job"


class BucketResource(OwnedResource, BucketSpec):
    """An object storage bucket."""

    kind: Literal["bucket"] = "bucket"


class SecretResource(OwnedResource, SecretSpec):
    """A secret (its value is never part of the model)."""

    kind: Literal["secret"] = "secret"
