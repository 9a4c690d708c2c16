"""The Application Model: everything an app declares, read statically from its code.

It is the only input the providers see of an app. Its JSON is deterministic (sorted, no timestamps) and
versioned by :data:`SCHEMA_VERSION`; the JSON Schema is published as ``docs/app-model.schema.json``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field

from skyrig.kinds import KINDS, RESOURCE_KINDS
from skyrig.kinds.records import (
    BucketResource,
    CacheClusterResource,
    CronJobResource,
    KeyspaceModel,
    Location,
    Migration,
    SecretResource,
    ServiceModel,
    SQLDatabaseResource,
    SubscriptionResource,
    TopicResource,
)

SCHEMA_VERSION = 2
"""2 added ``operations_not_visible`` to each use (where every operation was granted, and why)."""

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


Resource = Annotated[
    Union[tuple(KINDS[name].record for name in RESOURCE_KINDS)],  # type: ignore[misc]  # noqa: UP007
    Field(discriminator="kind"),
]
"""A record of any resource kind (every kind but ``service``), told apart by its ``kind``."""


class Use(BaseModel):
    """A service's use of a resource, with the operations its code performs on it."""

    model_config = ConfigDict(frozen=True)

    service: str
    kind: str
    resource: str
    operations: list[str]
    """Sorted. When code passes the resource around rather than calling it, every operation of the kind."""
    locations: list[Location]
    """Every place in the code that contributed to the use, sorted."""
    operations_not_visible: list[Location] = Field(default_factory=list)
    """The places, among ``locations``, where the parser cannot see which operations the code performs
    (the resource passed to a helper, returned or stored; an attribute that is no operation; its module
    passed around whole): for them every operation of the kind is granted. Empty when every operation was
    seen, and then ``operations`` is exactly what the code does."""


class AppModel(BaseModel):
    """The Application Model of one app."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[2] = SCHEMA_VERSION
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

    def of_kind(self, kind: str) -> list[Any]:
        """The resources (or, for ``service``, the services) of ``kind``."""
        return [r for r in (self.services if kind == "service" else self.resources) if r.kind == kind]

    def to_json(self) -> str:
        """The deterministic, compact JSON form (what ``skyrig model --json`` prints)."""
        return self.model_dump_json()


def json_schema() -> dict:
    """The JSON Schema of the Application Model, as published under ``docs/``."""
    schema = AppModel.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"skyrig Application Model, schema version {SCHEMA_VERSION}"
    return schema


__all__ = [
    "SCHEMA_VERSION",
    "AppModel",
    "BucketResource",
    "CacheClusterResource",
    "CronJobResource",
    "KeyspaceModel",
    "Location",
    "Migration",
    "Resource",
    "SQLDatabaseResource",
    "SecretResource",
    "ServiceModel",
    "SubscriptionResource",
    "TopicResource",
    "Use",
    "json_schema",
    "trusted",
]
