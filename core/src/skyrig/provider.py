"""The provider SDK: everything a provider author uses, in one public module.

A provider imports from here, from the in-app SDK (:mod:`skyrig.runtime`) and from :mod:`skyrig.hookspecs`,
and from nothing else of skyrig (the import contracts in CI hold ours to it). What it is made of:

**The provider** (one object, named by an entry point in ``skyrig.providers``)
    :class:`Provider`, :class:`Manifest`, :data:`hookimpl`, :class:`ManifestError`; what it needs of an
    environment's configuration: the manifest's ``needs`` and ``traits`` (:data:`TRAITS`), and
    :meth:`Provider.check_environment` answering :class:`ConfigProblem`.

**Expanding the model into nodes**
    :class:`Scope` (``scope.of_kind("topic")``, ``scope.node(...)``), :class:`Node`, :func:`resource_key`,
    :func:`cron_job_nodes`, :class:`Environment`, :data:`AppModel` and its records.

**Provisioning a node type**
    :class:`NodeType` (``read`` / ``find`` / ``create`` / ``update`` / ``delete``, with ``tunable``,
    ``invariant``, ``replace_on``, ``identity``, ``stateful``), :class:`Context`, :class:`Observed`, and the
    errors the engine understands: :class:`ProviderError`, :class:`TransientError`,
    :class:`ThrottledError`, :class:`UserError`.
**A cloud's node types**, what AWS, GCP and Azure share: :class:`CloudNodeType` (a vanished resource is
    ``None``, a dependency not yet visible is retried), :class:`NamedNodeType` (found by its name),
    :class:`CloudClient` (where this command's nodes are), :class:`JsonApiClient` (a client of a JSON HTTP
    API: counted, retried, its errors in skyrig's terms), :class:`NotFound`, :func:`resolve`,
    :func:`common_prefix`, :func:`join_name`, :func:`wait_for`.

**Optional capabilities**, each tied to a claim of the manifest and checked both ways when the provider
loads: :class:`SecretStore` (the ``secret`` kind), :class:`ManagedCron` (``cron.managed``),
:class:`DeadLetters` (``pubsub.dead_letter``), :class:`Branching` (``sql.branching``); and those tied to
no claim: :class:`RuntimeDelivery`, :class:`KubernetesManifests`, :class:`LocalServers`,
:class:`MessageHistory`, :class:`ThrowawayServers` (with :class:`TestSupport` and :class:`SupportSession`).

**The data plane** (what ``Provider.data_planes`` name, per kind): the protocols :class:`SQLClient`,
:class:`TopicClient`, :class:`SubscriptionClient`, :class:`CacheClient`, :class:`BucketClient`,
:class:`SecretClient`, :class:`CronClient`; :class:`Consuming` and :func:`drain` for subscription
clients; :class:`SecretClientBase`, :class:`CachedSecrets` and :func:`secret_resolver` for secret
clients; :class:`SigningKeyClient` for cron clients; :class:`PostgresClient` and :class:`RedisClient` for
standard servers; :mod:`jetstream` (:class:`JetStreamTopicClient`, :class:`JetStreamSubscriptionClient`
and the stream definitions) for pub/sub on NATS JetStream.

**Helpers**: the kinds (:data:`KINDS`, :data:`FAMILIES`, :data:`FEATURES`, :data:`TRAITS`,
:data:`ENVIRONMENT_TYPES`),
migrations (:func:`migrate`, :func:`plan_of`, :data:`MIGRATIONS_LEDGER`), signed cron calls
(:func:`signed_cron_call`, :func:`cron_trigger`), a service's cloud identity's node id
(:func:`identity_id`), durations (:func:`duration_seconds`), ports
(:func:`free_port`, :func:`port_free`), and :func:`read_body` for the ASGI servers a provider runs locally.

Importing this module stays cheap (no pydantic, no cloud SDK): providers import it at the top of the
module that defines the provider, which ``skyrig providers`` imports. ``docs/provider-sdk.md`` lists every
name, one line each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.config import Environment
from skyrig.engine.contract import Context, NodeType, Observed
from skyrig.engine.graph import Node, Scope, cron_job_nodes, resource_key
from skyrig.errors import ProviderError, ThrottledError, TransientError, UserError
from skyrig.kinds import FAMILIES, FEATURES, KIND_FAMILIES, KINDS, RESOURCE_KINDS, TRAITS, Kind
from skyrig.plugins.base import ConfigProblem, Provider, hookimpl
from skyrig.plugins.capabilities import (
    Branching,
    DeadLetters,
    KubernetesManifests,
    LocalServers,
    ManagedCron,
    MessageHistory,
    RuntimeDelivery,
    SecretStore,
    ThrowawayServers,
)
from skyrig.plugins.cloud import (
    CloudClient,
    CloudNodeType,
    NamedNodeType,
    NotFound,
    common_prefix,
    join_name,
    resolve,
    wait_for,
)
from skyrig.plugins.http import JsonApiClient
from skyrig.plugins.manifest import ENVIRONMENT_TYPES, Manifest, ManifestError
from skyrig.ports import free_port, free_ports, port_free
from skyrig.runtime import jetstream
from skyrig.runtime.dataplane import (
    BucketClient,
    CacheClient,
    CachedSecrets,
    Consuming,
    CronClient,
    Handler,
    SecretClient,
    SecretClientBase,
    SigningKeyClient,
    SQLClient,
    SubscriptionClient,
    TopicClient,
    drain,
    secret_resolver,
)
from skyrig.runtime.jetstream import SubscriptionClient as JetStreamSubscriptionClient
from skyrig.runtime.jetstream import TopicClient as JetStreamTopicClient
from skyrig.runtime.migrations import LEDGER as MIGRATIONS_LEDGER
from skyrig.runtime.migrations import migrate, plan_of
from skyrig.runtime.servers import PostgresClient, RedisClient
from skyrig.runtime.signing import cron_trigger, signed_cron_call
from skyrig.testing.support import SupportSession, TestSupport
from skyrig.values import duration_seconds

if TYPE_CHECKING:
    from skyrig.model import (
        AppModel,
        BucketResource,
        CacheClusterResource,
        CronJobResource,
        SecretResource,
        ServiceModel,
        SQLDatabaseResource,
        SubscriptionResource,
        TopicResource,
    )
    from skyrig.runtime.host import read_body

_LAZY = {
    "AppModel": "skyrig.model",
    "BucketResource": "skyrig.model",
    "CacheClusterResource": "skyrig.model",
    "CronJobResource": "skyrig.model",
    "SecretResource": "skyrig.model",
    "ServiceModel": "skyrig.model",
    "SQLDatabaseResource": "skyrig.model",
    "SubscriptionResource": "skyrig.model",
    "TopicResource": "skyrig.model",
    "read_body": "skyrig.runtime.host",
}
"""Names whose modules are heavy (pydantic, the service host): imported when first used."""


def identity_id(service: str) -> str:
    """The node id of ``service``'s cloud identity, ``identity/SERVICE``: the node a cloud provider expands
    for each service another provider runs (an AWS managed policy, a Google service account), carrying
    exactly the grants the model gives the service, which that compute provider binds its workloads to."""
    return f"identity/{service}"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skyrig.provider' has no attribute {name!r}")


__all__ = [
    "ENVIRONMENT_TYPES",
    "FAMILIES",
    "FEATURES",
    "KINDS",
    "KIND_FAMILIES",
    "MIGRATIONS_LEDGER",
    "RESOURCE_KINDS",
    "TRAITS",
    "AppModel",
    "Branching",
    "BucketClient",
    "BucketResource",
    "CacheClient",
    "CacheClusterResource",
    "CachedSecrets",
    "CloudClient",
    "CloudNodeType",
    "ConfigProblem",
    "Consuming",
    "Context",
    "CronClient",
    "CronJobResource",
    "DeadLetters",
    "Environment",
    "Handler",
    "JetStreamSubscriptionClient",
    "JetStreamTopicClient",
    "JsonApiClient",
    "Kind",
    "KubernetesManifests",
    "LocalServers",
    "ManagedCron",
    "Manifest",
    "ManifestError",
    "MessageHistory",
    "NamedNodeType",
    "Node",
    "NodeType",
    "NotFound",
    "Observed",
    "PostgresClient",
    "Provider",
    "ProviderError",
    "RedisClient",
    "RuntimeDelivery",
    "SQLClient",
    "SQLDatabaseResource",
    "Scope",
    "SecretClient",
    "SecretClientBase",
    "SecretResource",
    "SecretStore",
    "ServiceModel",
    "SigningKeyClient",
    "SubscriptionClient",
    "SubscriptionResource",
    "SupportSession",
    "TestSupport",
    "ThrottledError",
    "ThrowawayServers",
    "TopicClient",
    "TopicResource",
    "TransientError",
    "UserError",
    "common_prefix",
    "cron_job_nodes",
    "cron_trigger",
    "drain",
    "duration_seconds",
    "free_port",
    "free_ports",
    "hookimpl",
    "identity_id",
    "jetstream",
    "join_name",
    "migrate",
    "plan_of",
    "port_free",
    "read_body",
    "resolve",
    "resource_key",
    "secret_resolver",
    "signed_cron_call",
    "wait_for",
]
