"""The resource kinds of the Application Model: one :class:`Kind` each, the one place a kind is described.

A kind has a name (``cron_job``), a family (what an environment can hand to another provider:
``cron = "..."``), the class users declare it with, its record in the model (:mod:`skyrig.kinds.records`),
the optional features its settings ask for, and the code references a service needs at runtime (a
subscription's handler, a cron job's endpoint). Manifests, the planner's support check, the static
parser, runtime configs, ``skyrig test`` and the conformance suite all derive from :data:`KINDS`; adding
a kind touches this package, its declaration and the providers that serve it.

This module imports nothing heavy: declarations and records are named as ``module:Class`` and imported
on first use, so that provider manifests (and ``skyrig providers``) stay instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

Wanted = list[tuple[str, str]]
"""``(feature, what the declaration asks for)`` pairs."""


def _nothing(resource: Any, environment_type: str) -> Wanted:
    return []


def _no_code(resource: Any, model: Any) -> dict[str, Any]:
    return {}


def _no_summary(resource: Any) -> str:
    return ""


@dataclass(frozen=True)
class Kind:
    """One resource kind: everything the core knows of it."""

    name: str
    """Its name in the Application Model (``"cron_job"``)."""
    family: str
    """The family an environment can hand to another provider (``cron = "..."`` in ``skyrig.toml``)."""
    declaration_path: str
    """``module:Class`` of the declaration users write (``skyrig.CronJob``)."""
    record_path: str
    """``module:Class`` of its record in the Application Model."""
    features: Mapping[str, str] = field(default_factory=dict)
    """The optional features of this kind a provider may claim, each with what it means."""
    wants: Callable[[Any, str], Wanted] = _nothing
    """The features a declared resource (its record) relies on in an environment of a given type. A
    provider that does not claim one refuses the resource rather than half-doing it."""
    code: Callable[[Any, Any], dict[str, Any]] = _no_code
    """What the service host runs for a resource (its record, in the model): added to its runtime
    config entry (``handler``, ``endpoint``)."""
    summary: Callable[[Any], str] = _no_summary
    """A record's settings in a few words, for people (``skyrig model``): ``every 1h → app.jobs:tick``."""
    in_process_tests: bool = False
    """``skyrig test`` serves it in the test process itself (no provider's test servers needed)."""
    data_plane: bool | str = True
    """Whether app code reaches a resource of this kind through its provider's data plane: always
    (True), never (False), or only where the provider claims the named feature (``cron.managed``: the
    service host then checks the scheduler's signed calls)."""
    example: str | None = None
    """A declaration of it as users write one, shown in the hint when an argument is missing."""

    def needs_data_plane(self, features: frozenset[str]) -> bool:
        """Whether a provider that claims ``features`` must name a data plane for this kind."""
        return self.data_plane if isinstance(self.data_plane, bool) else self.data_plane in features

    @property
    def noun(self) -> str:
        """How messages name it: ``cron job``."""
        return self.name.replace("_", " ")

    @cached_property
    def declaration(self) -> Any:
        """The declaration class, imported now."""
        return _load(self.declaration_path)

    @cached_property
    def record(self) -> Any:
        """The model record class, imported now."""
        return _load(self.record_path)

    @property
    def operations(self) -> frozenset[str]:
        """Every operation app code can perform on a resource of this kind."""
        return self.declaration.all_operations()


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# -- what declarations ask for, and what the service host runs ------------------------------------


def _subscription_wants(resource: Any, environment_type: str) -> Wanted:
    if resource.max_retries == -1:
        return []
    return [("pubsub.dead_letter", f"a dead-letter destination after {resource.max_retries} retries")]


def _topic_wants(resource: Any, environment_type: str) -> Wanted:
    wanted = []
    if resource.delivery == "exactly-once":
        wanted.append(("pubsub.exactly_once", "exactly-once delivery"))
    if resource.ordering_attribute:
        wanted.append(("pubsub.ordering", f"ordering by {resource.ordering_attribute}"))
    return wanted


def _cache_wants(resource: Any, environment_type: str) -> Wanted:
    if resource.eviction_policy == "allkeys-lru":
        return []
    return [("cache.eviction_policy", f"the eviction policy {resource.eviction_policy}")]


def _cron_wants(resource: Any, environment_type: str) -> Wanted:
    # local environments run cron jobs on demand only (skyrig cron run), as the seeds do
    return [] if environment_type == "local" else [("cron.managed", "running on its schedule")]


def _bucket_wants(resource: Any, environment_type: str) -> Wanted:
    wanted = []
    if resource.public:
        wanted.append(("bucket.public", "public access"))
    if resource.versioned:
        wanted.append(("bucket.versioning", "versioning"))
    return wanted


def _short(reference: str) -> str:
    return reference.rpartition(":")[2]


def _sql_summary(resource: Any) -> str:
    count = len(resource.migration_files)
    return f"{count} migration{'s' * (count != 1)}"


def _topic_summary(resource: Any) -> str:
    text = f"{_short(resource.message_type)}, {resource.delivery}"
    return text + (f", ordered by {resource.ordering_attribute}" if resource.ordering_attribute else "")


def _subscription_summary(resource: Any) -> str:
    retries = "forever" if resource.max_retries == -1 else str(resource.max_retries)
    return (
        f"on {resource.topic} → {resource.handler}, ack {resource.ack_deadline}, "
        f"retries {retries}, concurrency {resource.max_concurrency}"
    )


def _cron_summary(resource: Any) -> str:
    timing = f"every {resource.every}" if resource.every else f"at {resource.schedule!r}"
    return f"{timing} → {resource.endpoint}"


def _bucket_summary(resource: Any) -> str:
    return ", ".join(["public" if resource.public else "private", *(["versioned"] * resource.versioned)])


def _subscription_code(resource: Any, model: Any) -> dict[str, Any]:
    topic = model.resource("topic", resource.topic)
    return {"handler": resource.handler, "topic": resource.topic, "message_type": topic.message_type}


def _cron_code(resource: Any, model: Any) -> dict[str, Any]:
    return {"endpoint": resource.endpoint}


_DECLARATIONS = "skyrig.declarations"
_RECORDS = "skyrig.kinds.records"

SERVICE = Kind(
    "service",
    "compute",
    f"{_DECLARATIONS}:Service",
    f"{_RECORDS}:ServiceModel",
    data_plane=False,
    example='Service("orders", app="orders.api:app")',
)
SQL_DATABASE = Kind(
    "sql_database",
    "sql",
    f"{_DECLARATIONS}:SQLDatabase",
    f"{_RECORDS}:SQLDatabaseResource",
    features={"sql.branching": "a database can be branched copy-on-write (for previews and tests)"},
    summary=_sql_summary,
)
TOPIC = Kind(
    "topic",
    "pubsub",
    f"{_DECLARATIONS}:Topic",
    f"{_RECORDS}:TopicResource",
    features={
        "pubsub.ordering": "messages with the same ordering attribute are delivered in publish order",
        "pubsub.exactly_once": "topics with delivery='exactly-once' deliver each message once per "
        "subscription",
    },
    wants=_topic_wants,
    summary=_topic_summary,
    in_process_tests=True,
    example='Topic("order-created", OrderCreated)',
)
SUBSCRIPTION = Kind(
    "subscription",
    "pubsub",
    f"{_DECLARATIONS}:Subscription",
    f"{_RECORDS}:SubscriptionResource",
    features={"pubsub.dead_letter": "messages that exhaust max_retries land in a dead-letter destination"},
    wants=_subscription_wants,
    code=_subscription_code,
    summary=_subscription_summary,
    in_process_tests=True,
    example='Subscription(topic, "send-receipt", handler=send_receipt)',
)
CACHE_CLUSTER = Kind(
    "cache_cluster",
    "cache",
    f"{_DECLARATIONS}:CacheCluster",
    f"{_RECORDS}:CacheClusterResource",
    features={"cache.eviction_policy": "the declared eviction policy is the server's maxmemory-policy"},
    wants=_cache_wants,
    summary=lambda resource: str(resource.eviction_policy),
)
CRON_JOB = Kind(
    "cron_job",
    "cron",
    f"{_DECLARATIONS}:CronJob",
    f"{_RECORDS}:CronJobResource",
    features={"cron.managed": "cron jobs are triggered on schedule with a signed request"},
    wants=_cron_wants,
    code=_cron_code,
    summary=_cron_summary,
    in_process_tests=True,
    data_plane="cron.managed",
    example='CronJob("nightly-report", schedule="0 3 * * *", endpoint=report)',
)
BUCKET = Kind(
    "bucket",
    "objects",
    f"{_DECLARATIONS}:Bucket",
    f"{_RECORDS}:BucketResource",
    features={
        "bucket.public": "public buckets serve objects to anyone with their URL",
        "bucket.versioning": "versioned buckets keep earlier versions of each object",
    },
    wants=_bucket_wants,
    summary=_bucket_summary,
)
SECRET = Kind(
    "secret", "secrets", f"{_DECLARATIONS}:Secret", f"{_RECORDS}:SecretResource", in_process_tests=True
)

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (SERVICE, SQL_DATABASE, TOPIC, SUBSCRIPTION, CACHE_CLUSTER, CRON_JOB, BUCKET, SECRET)
}
"""Every kind, by name, in the model's order."""

RESOURCE_KINDS: tuple[str, ...] = tuple(name for name in KINDS if name != SERVICE.name)
"""The kinds that are resources owned by a service (every kind but ``service``)."""

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(kind.family for kind in KINDS.values()))
"""Every family, in order: ``compute``, ``sql``, ``pubsub``, ``cache``, ``cron``, ``objects``, ``secrets``."""

KIND_FAMILIES: dict[str, str] = {kind.name: kind.family for kind in KINDS.values()}
"""Kind -> its family."""

FEATURES: dict[str, str] = {name: text for kind in KINDS.values() for name, text in kind.features.items()}
"""Every optional feature a provider may claim, with what it means; the suite tests the claimed ones."""

FEATURE_KINDS: dict[str, str] = {name: kind.name for kind in KINDS.values() for name in kind.features}
"""Feature -> the kind it is a feature of (a provider claims a feature only with its kind)."""

TRAITS: dict[str, str] = {
    "compute.internet": (
        "the services, and the jobs and migrations run beside them, open connections to hosts on the public "
        "internet (through a NAT, public addresses or the platform's own egress)"
    ),
    "compute.aws_vpc": (
        "the services run in the aws provider's VPC and answer at SERVICE.DOMAIN of its domain, and its "
        "databases' migrations run to completion before their service rolls out (the command and environment "
        "of the ECS task definition it registers per database, with the owning service's identity)"
    ),
}
"""Every trait: a fact about the environments a provider serves that another provider of the same
environment may need (``Manifest.traits`` says it, ``Manifest.needs`` asks for it). Each is named after
the family it is about; ``skyrig check`` refuses an environment whose providers lack what one needs."""


def kinds_of(family: str) -> frozenset[str]:
    """The kinds of ``family``."""
    return frozenset(kind.name for kind in KINDS.values() if kind.family == family)


def wanted_features(resource: Any, environment_type: str) -> Wanted:
    """The optional features a model resource (or service) relies on in an ``environment_type``
    environment, each with what it asks for."""
    return KINDS[resource.kind].wants(resource, environment_type)


__all__ = [
    "FAMILIES",
    "FEATURES",
    "FEATURE_KINDS",
    "KINDS",
    "KIND_FAMILIES",
    "RESOURCE_KINDS",
    "TRAITS",
    "Kind",
    "kinds_of",
    "wanted_features",
]
