"""Pub/sub: a Service Bus namespace per environment, a topic per topic, a subscription per subscription.

The namespace (``servicebus_sku``, Standard by default: topics need it; user-tunable) has local
authentication off (``disableLocalAuth``: no SAS key works, each service uses its managed identity's
Entra ID token with the Azure Service Bus Data Sender / Receiver roles the iam family assigns on its
topics and subscriptions) and TLS 1.2 at least.

A subscription's lock duration is the declared ack deadline within Service Bus's 5 s to 5 min (the data
plane keeps the declared one itself: it gives a message back when its handler overruns a shorter one, and
renews the lock up to a longer one), its time to live the declared retention, with dead-lettering of
expired messages, and its max delivery count ``max_retries + 1``: the consumer dead-letters a message
whose last attempt failed itself (with the handler's error), and Service Bus moves one delivered that
often without an answer (a crashed consumer) to the dead-letter queue. A topic with an ordering attribute
has sessions on its subscriptions (the session id is the attribute's value: one consumer at a time per
value, in order); an exactly-once topic has duplicate detection (see :mod:`skyrig_azure.runtime.pubsub`
for what that guarantees). Sessions and duplicate detection can only be chosen when the entity is made:
changing them replaces it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, Scope, duration_seconds
from skyrig_azure import names
from skyrig_azure.api import Conflict
from skyrig_azure.nodes import AzureNodeType

MIN_LOCK, MAX_LOCK = 5, 300
"""Service Bus's bounds on a subscription's lock duration (seconds)."""
MAX_DELIVERY_COUNT = 2000
"""The max delivery count of a subscription whose messages are retried forever (``max_retries = -1``)."""
DUPLICATE_WINDOW = 600
"""How long duplicate detection remembers a message id (seconds): Service Bus's default, 10 minutes."""
DEFAULT_TOPIC_TTL = 14 * 86400
"""A topic's time to live when no subscription says longer (a subscription's own TTL is the one that
counts: Service Bus applies the smaller of the two)."""
MINIMUM_TLS = "1.2"
ROOT_RULE = "RootManageSharedAccessKey"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "total_seconds"):
        return round(value.total_seconds())
    return duration_seconds(str(value))


def iso(seconds: int) -> str:
    """``seconds`` as an ISO 8601 duration (``PT30S``, ``P7D``)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


def _sb(context: Context) -> Any:
    return context.client.mgmt("servicebus")


def _namespace_name(context: Context) -> str:
    client = context.client
    return names.servicebus_namespace_name(client.subscription, context.app, context.environment.name)


def connection_outputs(context: Context, namespace: str) -> dict[str, Any]:
    """Where the data plane reaches namespace ``namespace``: its host name, and under the fakes the
    broker's address and how to get its key (through ARM's ``listKeys``; nothing secret is kept)."""
    client = context.client
    settings = context.settings
    fake = settings.emulator == "fake"
    return {
        "namespace": f"{namespace}.servicebus.windows.net",
        "namespace_id": client.resource_id("Microsoft.ServiceBus/namespaces", namespace),
        "address": settings.endpoint("servicebus"),
        "emulator": settings.emulator,
        "arm": settings.endpoint("arm") if fake else None,
        "ca_bundle": settings.ca_bundle if fake else None,
    }


class NamespaceType(AzureNodeType):
    """The environment's Service Bus namespace."""

    type = "azure.pubsub.namespace"
    tunable = frozenset({"sku"})
    invariant = frozenset({"local_auth", "minimum_tls"})
    replace_on = frozenset({"location"})
    identity = frozenset({"name"})

    def _observe(self, context: Context, node: Node, found: Any) -> Observed:
        p = found.properties
        properties = {
            "name": found.name,
            "location": (found.location or "").replace(" ", "").lower(),
            "sku": _text(found.sku.name) if found.sku else None,
            "local_auth": not bool(p.disable_local_auth),
            "minimum_tls": _text(p.minimum_tls_version),
        }
        outputs = {
            "endpoint": p.service_bus_endpoint,
            "id": found.id,
            "state": _text(p.provisioning_state),
        }
        return self.observed(node, found.name, properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = _sb(context).namespaces.get(context.client.resource_group, provider_id)
        return self._observe(context, node, found)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _body(self, context: Context, node: Node, sku: str) -> dict[str, Any]:
        p = node.properties
        return {
            "location": p["location"],
            "tags": self.tags(context, node),
            "sku": {"name": sku, "tier": sku},
            "properties": {"disableLocalAuth": not p["local_auth"], "minimumTlsVersion": p["minimum_tls"]},
        }

    def _put(self, context: Context, node: Node, sku: str) -> Observed:
        client = context.client
        name = node.properties["name"]
        try:
            operation = _sb(context).namespaces.begin_create_or_update(
                client.resource_group, name, self._body(context, node, sku)
            )
        except Conflict:
            pass  # an earlier create's, still running: adopted once it is readable
        else:
            client.wait(context, operation, f"Service Bus namespace {name}")
        return self._read(context, node, name)  # type: ignore[return-value]

    def _create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node, node.properties["sku"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        sku = node.properties["sku"]
        if "sku" not in changes:  # keep the tier it has (adopted from the portal)
            current = _sb(context).namespaces.get(context.client.resource_group, provider_id)
            sku = _text(current.sku.name) or sku
        return self._put(context, node, sku)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = _sb(context).namespaces.begin_delete(client.resource_group, provider_id)
        client.wait(context, operation, f"deleting Service Bus namespace {provider_id}")

    def inventory(self, context: Context) -> list[str]:
        """The namespaces whose tags say they are this app's and environment's."""
        try:
            found = _sb(context).namespaces.list_by_resource_group(context.client.resource_group)
        except NotFound:
            return []
        return [n.name for n in found if self.owned(context, n.tags)]


class TopicType(AzureNodeType):
    """A topic of the namespace (an entity: no tags of its own; every topic of the environment's
    namespace is the environment's)."""

    type = "azure.pubsub.topic"
    invariant = frozenset({"ttl_seconds", "duplicate_window_seconds", "ordering"})
    replace_on = frozenset({"name", "namespace", "duplicate_detection"})
    identity = frozenset({"name"})

    def _observe(self, context: Context, node: Node, found: Any) -> Observed:
        p = found.properties
        properties = {
            "name": found.name,
            "namespace": node.properties["namespace"],
            "duplicate_detection": bool(p.requires_duplicate_detection),
            "duplicate_window_seconds": _seconds(p.duplicate_detection_history_time_window),
            "ttl_seconds": _seconds(p.default_message_time_to_live),
            "ordering": bool(p.support_ordering),
        }
        outputs = {"topic": found.name, **connection_outputs(context, node.properties["namespace"])}
        return self.observed(node, found.name, properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        found = _sb(context).topics.get(client.resource_group, node.properties["namespace"], provider_id)
        return self._observe(context, node, found)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Observed | None] = {}
        for namespace in sorted({n.properties["namespace"] for n, _ in nodes}):
            listed = {
                t.name: t
                for t in _sb(context).topics.list_by_namespace(context.client.resource_group, namespace)
            }
            for node, pid in nodes:
                if node.properties["namespace"] == namespace:
                    found[node.id] = self._observe(context, node, listed[pid]) if pid in listed else None
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(n, n.properties["name"]) for n in nodes])

    def _put(self, context: Context, node: Node) -> Observed:
        p = node.properties
        body = {
            "properties": {
                "requiresDuplicateDetection": p["duplicate_detection"],
                "duplicateDetectionHistoryTimeWindow": iso(p["duplicate_window_seconds"]),
                "defaultMessageTimeToLive": iso(p["ttl_seconds"]),
                "supportOrdering": p["ordering"],
            }
        }
        found = _sb(context).topics.create_or_update(
            context.client.resource_group, p["namespace"], p["name"], body
        )
        return self._observe(context, node, found)

    def _create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._put(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        _sb(context).topics.delete(client.resource_group, node.properties["namespace"], provider_id)

    def inventory(self, context: Context) -> list[str]:
        """The topics of the environment's namespace."""
        with contextlib.suppress(NotFound):
            listed = _sb(context).topics.list_by_namespace(
                context.client.resource_group, _namespace_name(context)
            )
            return [t.name for t in listed]
        return []

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            **observed.outputs,
            "ordered": node.properties["ordering"],
            "exactly_once": node.properties["duplicate_detection"],
        }


class SubscriptionType(AzureNodeType):
    """A subscription of its topic: lock duration, time to live, max delivery count, sessions,
    dead-lettering of expired messages."""

    type = "azure.pubsub.subscription"
    invariant = frozenset({"lock_seconds", "ttl_seconds", "max_delivery_count", "dead_letter_on_expiration"})
    replace_on = frozenset({"name", "namespace", "topic", "sessions"})
    identity = frozenset({"name", "topic"})

    def _observe(self, context: Context, node: Node, found: Any) -> Observed:
        p = found.properties
        q = node.properties
        properties = {
            "name": found.name,
            "namespace": q["namespace"],
            "topic": q["topic"],
            "lock_seconds": _seconds(p.lock_duration),
            "ttl_seconds": _seconds(p.default_message_time_to_live),
            "max_delivery_count": p.max_delivery_count,
            "sessions": bool(p.requires_session),
            "dead_letter_on_expiration": bool(p.dead_lettering_on_message_expiration),
        }
        outputs = {
            "topic": q["topic"],
            "subscription": found.name,
            **connection_outputs(context, q["namespace"]),
        }
        return self.observed(node, f"{q['topic']}/{found.name}", properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        topic, _, name = provider_id.partition("/")
        client = context.client
        found = _sb(context).subscriptions.get(
            client.resource_group, node.properties["namespace"], topic, name
        )
        return self._observe(context, node, found)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Observed | None] = {}
        for key in sorted({(n.properties["namespace"], pid.partition("/")[0]) for n, pid in nodes}):
            try:
                listed = {
                    s.name: s
                    for s in _sb(context).subscriptions.list_by_topic(context.client.resource_group, *key)
                }
            except NotFound:
                listed = {}
            for node, pid in nodes:
                topic, _, name = pid.partition("/")
                if (node.properties["namespace"], topic) == key:
                    found[node.id] = self._observe(context, node, listed[name]) if name in listed else None
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, f"{node.properties['topic']}/{node.properties['name']}")

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(
            context, [(n, f"{n.properties['topic']}/{n.properties['name']}") for n in nodes]
        )

    def _put(self, context: Context, node: Node) -> Observed:
        p = node.properties
        body = {
            "properties": {
                "lockDuration": iso(p["lock_seconds"]),
                "defaultMessageTimeToLive": iso(p["ttl_seconds"]),
                "maxDeliveryCount": p["max_delivery_count"],
                "requiresSession": p["sessions"],
                "deadLetteringOnMessageExpiration": p["dead_letter_on_expiration"],
            }
        }
        found = _sb(context).subscriptions.create_or_update(
            context.client.resource_group, p["namespace"], p["topic"], p["name"], body
        )
        return self._observe(context, node, found)

    def _create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._put(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        topic, _, name = provider_id.partition("/")
        client = context.client
        _sb(context).subscriptions.delete(client.resource_group, node.properties["namespace"], topic, name)

    def inventory(self, context: Context) -> list[str]:
        """The subscriptions of the topics of the environment's namespace (``TOPIC/NAME``)."""
        found: list[str] = []
        namespace = _namespace_name(context)
        for topic in TOPIC.inventory(context):
            with contextlib.suppress(NotFound):
                listed = _sb(context).subscriptions.list_by_topic(
                    context.client.resource_group, namespace, topic
                )
                found += [f"{topic}/{s.name}" for s in listed]
        return found

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        keys = (
            "ordered",
            "exactly_once",
            "max_retries",
            "min_backoff_seconds",
            "max_backoff_seconds",
            "max_concurrency",
            "lock_seconds",
        )
        return {
            "type": self.type,
            **{key: node.properties[key] for key in keys},
            "name": node.properties["declared"],
            "ack_deadline_seconds": node.properties["declared_ack_deadline"],
            **observed.outputs,
        }


NAMESPACE = NamespaceType()
TOPIC = TopicType()
SUBSCRIPTION = SubscriptionType()
TYPES = (NAMESPACE, TOPIC, SUBSCRIPTION)


def max_delivery_count(max_retries: int) -> int:
    """A subscription's max delivery count for ``max_retries``: every attempt, and no more."""
    return MAX_DELIVERY_COUNT if max_retries < 0 else min(max_retries + 1, MAX_DELIVERY_COUNT)


def expand(scope: Scope) -> list[Node]:
    """The namespace (when any topic or subscription is here), a node per topic and per subscription."""
    topics, subscriptions = scope.of_kind("topic"), scope.of_kind("subscription")
    if not topics and not subscriptions:
        return []
    settings = scope.settings
    app, env = scope.app, scope.environment.name
    namespace = names.servicebus_namespace_name(settings.subscription_id, app, env)
    declared = {t.name: t for t in scope.model.of_kind("topic")}
    nodes = [
        scope.node(
            names.SERVICEBUS_NAMESPACE_ID,
            NAMESPACE.type,
            {
                "name": namespace,
                "location": settings.location,
                "sku": settings.servicebus_sku,
                "local_auth": False,
                "minimum_tls": MINIMUM_TLS,
            },
            (names.RESOURCE_GROUP_ID,),
        )
    ]
    for t in topics:
        retentions = [
            duration_seconds(s.message_retention)
            for s in scope.model.of_kind("subscription")
            if s.topic == t.name
        ]
        properties = {
            "name": names.topic_name(t.name),
            "namespace": namespace,
            "duplicate_detection": t.delivery == "exactly-once",
            "duplicate_window_seconds": DUPLICATE_WINDOW,
            "ttl_seconds": max([DEFAULT_TOPIC_TTL, *retentions]),
            "ordering": t.ordering_attribute is not None,
        }
        nodes.append(
            scope.node(
                names.topic_id(t.name), TOPIC.type, properties, (names.SERVICEBUS_NAMESPACE_ID,), resource=t
            )
        )
    for s in subscriptions:
        topic = declared[s.topic]
        ack_deadline = duration_seconds(s.ack_deadline)
        properties = {
            "name": names.subscription_name(s.name),
            "declared": s.name,
            "namespace": namespace,
            "topic": names.topic_name(s.topic),
            "lock_seconds": min(max(ack_deadline, MIN_LOCK), MAX_LOCK),
            "declared_ack_deadline": ack_deadline,
            "ttl_seconds": duration_seconds(s.message_retention),
            "max_delivery_count": max_delivery_count(s.max_retries),
            "sessions": topic.ordering_attribute is not None,
            "dead_letter_on_expiration": True,
            "ordered": topic.ordering_attribute is not None,
            "exactly_once": topic.delivery == "exactly-once",
            "max_retries": s.max_retries,
            "min_backoff_seconds": duration_seconds(s.min_backoff),
            "max_backoff_seconds": duration_seconds(s.max_backoff),
            "max_concurrency": s.max_concurrency,
        }
        nodes.append(
            scope.node(
                names.subscription_id(s.name),
                SUBSCRIPTION.type,
                properties,
                (f"@topic/{s.topic}", names.SERVICEBUS_NAMESPACE_ID),
                resource=s,
            )
        )
    return nodes
