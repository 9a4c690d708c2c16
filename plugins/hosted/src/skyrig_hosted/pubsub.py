"""Pub/sub on the host: topics and subscriptions on the host's shared NATS JetStream server, in the
environment's own account (no other account sees its streams or subjects).

A topic is a stream in file storage, as long as its longest-lived subscription keeps messages, with a
duplicate window for exactly-once delivery; a subscription is a durable consumer of it (ack wait = ack
deadline, max ack pending = max concurrency) with a dead-letter stream of its own: the SDK's JetStream
definitions (:mod:`skyrig.runtime.jetstream`), which the host declares in the account and the data plane
consumes by. Retention, ack deadline, retries, backoff and concurrency change in place; the delivery
guarantee or ordering replaces. The account's password stays on the host: the runtime config names it by
reference, and the data plane reads it when it connects.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Context, Node, Observed, ProviderError, Scope, jetstream
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType, client, where


def _connection(observed: Observed) -> dict[str, Any]:
    outputs = observed.outputs
    if not outputs.get("url"):
        raise ProviderError(f"the host gave {observed.provider_id!r} no broker address")
    return {
        "url": outputs["url"],
        "user": outputs.get("username"),
        "password": outputs["credentials"],
        "api": outputs["api"],
    }


class TopicType(ResourceType):
    """A topic's stream in the environment's account."""

    type = names.node_type("topic")
    kind = "topic"
    sent = frozenset({"delivery", "ordering_attribute", "retention_seconds"})
    tunable = frozenset({"retention_seconds"})
    replace_on = frozenset({"name", "delivery", "ordering_attribute"})

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        definition = {**node.properties, **observed.properties}
        return {"type": self.type, **_connection(observed), **jetstream.streams.topic_entry(definition)}


class SubscriptionType(ResourceType):
    """A subscription's durable consumer and dead-letter stream in the environment's account."""

    type = names.node_type("subscription")
    kind = "subscription"
    tunable = frozenset(jetstream.streams.SUBSCRIPTION_SETTINGS)
    sent = frozenset({"topic", "delivery", "ordering_attribute", *tunable})
    replace_on = frozenset({"name", "topic", "delivery", "ordering_attribute"})

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        definition = {**node.properties, **observed.properties}
        return {
            "type": self.type,
            **_connection(observed),
            **jetstream.streams.subscription_entry(definition),
        }


TOPIC = TopicType()
SUBSCRIPTION = SubscriptionType()
TYPES = (TOPIC, SUBSCRIPTION)


def dead_letters(context: Context, subscription: str) -> list[dict[str, Any]]:
    """The messages in ``subscription``'s dead-letter stream, oldest first, left in place: read as the
    environment's own user, its password from the host for this call only."""
    app, env = where(context)
    hosted = client(context)
    outputs = hosted.resource(app, env, SUBSCRIPTION.kind, subscription).get("outputs") or {}
    login = hosted.credentials(app, env, SUBSCRIPTION.kind, subscription)
    server = jetstream.Server(outputs["url"], login["username"], lambda: login["password"])

    async def read() -> list[dict[str, Any]]:
        return await jetstream.streams.read_dead_letters(await jetstream.loop.jetstream(server), subscription)

    return jetstream.loop.run(read())


def expand(scope: Scope) -> list[Node]:
    """A topic node per topic, a subscription node per subscription (after its topic), in the
    environment, as the SDK's JetStream definitions describe them."""
    topics, subscriptions = jetstream.streams.definitions(scope.model)
    nodes = [
        scope.node(
            names.node_id(TOPIC.kind, r.name), TOPIC.type, topics[r.name], (names.ENVIRONMENT_ID,), resource=r
        )
        for r in scope.of_kind("topic")
    ]
    for r in scope.of_kind("subscription"):
        nodes.append(
            scope.node(
                names.node_id(SUBSCRIPTION.kind, r.name),
                SUBSCRIPTION.type,
                subscriptions[r.name],
                (names.ENVIRONMENT_ID, f"@topic/{r.topic}"),
                resource=r,
            )
        )
    return nodes
