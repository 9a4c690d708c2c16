"""The Application Model: everything an app declares, read statically from its code.

It is the only input the providers see of an app. Its JSON is deterministic (sorted, no timestamps) and
versioned by :data:`SCHEMA_VERSION`; the JSON Schema is published as ``docs/app-model.schema.json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from skyrig.declarations.cache import CacheClusterSpec, KeyspaceSpec
from skyrig.declarations.cron import CronJobSpec
from skyrig.declarations.objects import BucketSpec
from skyrig.declarations.pubsub import SubscriptionSpec, TopicSpec
from skyrig.declarations.secrets import SecretSpec
from skyrig.declarations.service import ServiceSpec
from skyrig.declarations.sql import SQLDatabaseSpec

SCHEMA_VERSION = 1

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def trusted(cls: type[M], **values: Any) -> M:
    """An instance of ``cls`` from values validated already, with every field given: nothing is checked.

    It is pydantic's ``model_construct`` without the per-field default handling that dominated building
    the model of a large app. Only the static parser uses it, for records whose specs it has validated.
    """
    instance = cls.__new__(cls)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


Location = Annotated[str, Field(pattern=r"^.+:\d+:\d+$")]
"""Where something is written: ``"path/to/file.py:line:column"``, relative to the app root, 1-based."""


class _Declared(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    location: Location
    """Where the declaration is written."""


class ServiceModel(_Declared, ServiceSpec):
    """A service: a deployable unit and the package it owns."""

    package: str
    """The Python package the service owns (``""`` for the app root); its modules are the service's."""
    kind: Literal["service"] = "service"


class _Resource(_Declared):
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


class SQLDatabaseResource(_Resource, SQLDatabaseSpec):
    """A PostgreSQL database and its migrations, in order."""

    kind: Literal["sql_database"] = "sql_database"
    migration_files: list[Migration] = []


class TopicResource(_Resource, TopicSpec):
    """A pub/sub topic."""

    kind: Literal["topic"] = "topic"


class SubscriptionResource(_Resource, SubscriptionSpec):
    """A subscription; its handler runs in the owning service."""

    kind: Literal["subscription"] = "subscription"


class KeyspaceModel(_Declared, KeyspaceSpec):
    """A typed keyspace of a cache cluster."""


class CacheClusterResource(_Resource, CacheClusterSpec):
    """A Redis cache cluster and its keyspaces."""

    kind: Literal["cache_cluster"] = "cache_cluster"
    keyspaces: list[KeyspaceModel] = []


class CronJobResource(_Resource, CronJobSpec):
    """A cron job; its endpoint runs in the owning service."""

    kind: Literal["cron_job"] = "cron_job"


class BucketResource(_Resource, BucketSpec):
    """An object storage bucket."""

    kind: Literal["bucket"] = "bucket"


class SecretResource(_Resource, SecretSpec):
    """A secret (its value is never part of the model)."""

    kind: Literal["secret"] = "secret"


Resource = Annotated[
    SQLDatabaseResource
    | TopicResource
    | SubscriptionResource
    | CacheClusterResource
    | CronJobResource
    | BucketResource
    | SecretResource,
    Field(discriminator="kind"),
]


class Use(BaseModel):
    """A service's use of a resource, with the operations its code performs on it."""

    model_config = ConfigDict(frozen=True)

    service: str
    kind: str
    resource: str
    operations: list[str]
    """Sorted. When code passes the resource around rather than calling it, every operation of the kind."""
    locations: list[Location]


class AppModel(BaseModel):
    """The Application Model of one app."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    app: str
    services: list[ServiceModel]
    resources: list[Resource]
    """Sorted by kind, then name."""
    uses: list[Use]
    """Sorted by service, kind, resource."""

    def resource(self, kind: str, name: str) -> Resource | None:
        """The resource of ``kind`` named ``name``, if declared."""
        return next((r for r in self.resources if r.kind == kind and r.name == name), None)

    def uses_by(self, service: str) -> list[Use]:
        """What ``service`` uses."""
        return [use for use in self.uses if use.service == service]

    def to_json(self) -> str:
        """The deterministic, compact JSON form (what ``skyrig model --json`` prints)."""
        return self.model_dump_json()


def json_schema() -> dict:
    """The JSON Schema of the Application Model, as published under ``docs/``."""
    schema = AppModel.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"skyrig Application Model, schema version {SCHEMA_VERSION}"
    return schema
