"""Pub/sub on the environment's NATS JetStream broker: the node types of topics and subscriptions.

A topic is a stream kept in memory, as long as its longest-lived subscription keeps messages, with a
duplicate window for exactly-once delivery; a subscription is a durable consumer of it (ack wait = ack
deadline, max ack pending = max concurrency) with a dead-letter stream of its own. Retention, ack
deadline, retries, backoff and concurrency change in place; the delivery guarantee or ordering replaces.

The JetStream side (the objects behind a definition, publishing, consuming, the process's NATS loop) is
the SDK's :mod:`skyrig.runtime.jetstream`, which the hosted provider shares. What is local is here:
:mod:`.broker` runs the environment's NATS server and keeps the definitions it replays; :mod:`.client`
points the SDK's clients at it; :mod:`.messages` reads recent messages for the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skyrig.provider import Context, Node, NodeType, Observed, Scope
from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import streams
from skyrig_local.pubsub import broker
from skyrig_local.records import environment_folder as env_folder


def _outputs(folder: Path, url: str) -> dict[str, Any]:
    return {"url": url, "folder": str(folder)}


class TopicType(NodeType):
    """A topic's stream."""

    type = "local.pubsub.topic"
    tunable = frozenset({"retention_seconds"})
    replace_on = frozenset({"name", "delivery", "ordering_attribute"})

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        folder = env_folder(context)
        url = broker.ensure(folder)
        properties = natsio.run(_read_topic(url, node.properties["name"]))
        return None if properties is None else Observed(provider_id, properties, _outputs(folder, url))

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, streams.topic_stream(node.properties["name"]))

    def create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node, dict(node.properties))

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        current = broker.definitions(env_folder(context))["topics"].get(node.properties["name"], {})
        return self._put(context, node, {**dict(node.properties), **current, **changes})

    def _put(self, context: Context, node: Node, properties: dict[str, Any]) -> Observed:
        folder = env_folder(context)
        broker.define(folder, "topics", properties["name"], properties)
        url = broker.ensure(folder)
        natsio.run(_declare(url, streams.declare_topic, properties))
        return self.find(context, node)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        folder = env_folder(context)
        name = node.properties["name"]
        broker.define(folder, "topics", name, None)
        url = broker.running(folder)
        if url is not None:  # a broker that is not running holds no streams
            natsio.run(_remove(url, streams.remove_topic, name))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs, **streams.topic_entry(observed.properties)}


class SubscriptionType(NodeType):
    """A subscription's durable consumer and dead-letter stream."""

    type = "local.pubsub.subscription"
    tunable = frozenset(
        {
            "ack_deadline_seconds",
            "retention_seconds",
            "max_retries",
            "min_backoff_seconds",
            "max_backoff_seconds",
            "max_concurrency",
        }
    )
    replace_on = frozenset({"name", "topic", "delivery", "ordering_attribute"})

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        folder = env_folder(context)
        url = broker.ensure(folder)
        topic, _, name = provider_id.partition("/")
        properties = natsio.run(_read_subscription(url, topic, name))
        return None if properties is None else Observed(provider_id, properties, _outputs(folder, url))

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, f"{node.properties['topic']}/{node.properties['name']}")

    def create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node, dict(node.properties))

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        current = broker.definitions(env_folder(context))["subscriptions"].get(node.properties["name"], {})
        return self._put(context, node, {**dict(node.properties), **current, **changes})

    def _put(self, context: Context, node: Node, properties: dict[str, Any]) -> Observed:
        folder = env_folder(context)
        broker.define(folder, "subscriptions", properties["name"], properties)
        url = broker.ensure(folder)
        natsio.run(_declare(url, streams.declare_subscription, properties))
        return self.find(context, node)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        folder = env_folder(context)
        topic, _, name = provider_id.partition("/")
        broker.define(folder, "subscriptions", name, None)
        url = broker.running(folder)
        if url is not None:
            natsio.run(_remove(url, streams.remove_subscription, topic, name))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs, **streams.subscription_entry(observed.properties)}


async def _read_topic(url: str, name: str) -> dict[str, Any] | None:
    return await streams.read_topic(await natsio.jetstream(url), name)


async def _read_subscription(url: str, topic: str, name: str) -> dict[str, Any] | None:
    return await streams.read_subscription(await natsio.jetstream(url), topic, name)


async def _declare(url: str, declare: Any, properties: dict[str, Any]) -> None:
    await declare(await natsio.jetstream(url), properties)


async def _remove(url: str, remove: Any, *names: str) -> None:
    await remove(await natsio.jetstream(url), *names)


TOPIC = TopicType()
SUBSCRIPTION = SubscriptionType()


TYPES = (TOPIC, SUBSCRIPTION)


def expand(scope: Scope) -> list[Node]:
    """A topic node per topic, a subscription node per subscription (after its topic), as the SDK's
    JetStream definitions describe them."""
    topics, subscriptions = streams.definitions(scope.model)
    nodes = [
        scope.node(f"pubsub.topic/{r.name}", TOPIC.type, topics[r.name], resource=r)
        for r in scope.of_kind("topic")
    ]
    for r in scope.of_kind("subscription"):
        nodes.append(
            scope.node(
                f"pubsub.subscription/{r.name}",
                SUBSCRIPTION.type,
                subscriptions[r.name],
                (f"@topic/{r.topic}",),
                resource=r,
            )
        )
    return nodes
