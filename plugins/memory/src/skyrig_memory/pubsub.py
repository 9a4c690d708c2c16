"""Pub/sub: a topic per topic; a subscription per subscription, with a dead-letter queue of its own.

Messages live in the cloud's broker (:mod:`skyrig_memory.broker`); a subscription carries its topic's
ordering and exactly-once settings, as a Pub/Sub subscription does, so that its consumer has them.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Node, Observed, Scope, duration_seconds
from skyrig_memory.nodes import MemoryNodeType, node_type


class TopicType(MemoryNodeType):
    """A topic; its runtime entry says how to publish (its name for fan-out, ordering, dedupe)."""

    type = "memory.pubsub.topic"
    replace_on = frozenset({"ordered", "exactly_once"})
    outputs = ("topic",)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            **self.entry(observed),
            "name": node.id.partition("/")[2],
            "ordered": observed.properties.get("ordered", False),
            "exactly_once": observed.properties.get("exactly_once", False),
        }


class SubscriptionType(MemoryNodeType):
    """A subscription; its runtime entry holds every setting its consumer follows."""

    type = "memory.pubsub.subscription"
    tunable = frozenset({"max_concurrency"})
    replace_on = frozenset({"topic", "ordered"})
    outputs = ("subscription", "dead_letter")

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            **observed.properties,
            **self.entry(observed),
            "name": node.id.partition("/")[2],
        }


TOPIC = TopicType()
SUBSCRIPTION = SubscriptionType()
DEAD_LETTER = node_type("memory.pubsub.dead_letter", outputs=("queue",))


TYPES = (TOPIC, SUBSCRIPTION, DEAD_LETTER)


def expand(scope: Scope) -> list[Node]:
    nodes = []
    for resource in scope.of_kind("topic"):
        properties = {
            "topic": f"{scope.app}-{resource.name}",
            "ordered": resource.ordering_attribute is not None,
            "exactly_once": resource.delivery == "exactly-once",
        }
        nodes.append(scope.node(f"pubsub.topic/{resource.name}", TOPIC.type, properties, resource=resource))
    for resource in scope.of_kind("subscription"):
        depends = [f"@topic/{resource.topic}"]
        topic = scope.model.resource("topic", resource.topic)
        properties = {
            "subscription": f"{scope.app}-{resource.name}",
            "topic": resource.topic,
            "ack_deadline_seconds": duration_seconds(resource.ack_deadline),
            "retention_seconds": duration_seconds(resource.message_retention),
            "max_retries": resource.max_retries,
            "min_backoff_seconds": duration_seconds(resource.min_backoff),
            "max_backoff_seconds": duration_seconds(resource.max_backoff),
            "max_concurrency": resource.max_concurrency,
            "dead_letter": None,
            "ordered": topic.ordering_attribute is not None,
            "exactly_once": topic.delivery == "exactly-once",
        }
        if resource.max_retries != -1:
            dead_letter = f"pubsub.dead_letter/{resource.name}"
            queue = f"{scope.app}-{resource.name}-dead-letter"
            nodes.append(scope.node(dead_letter, DEAD_LETTER.type, {"queue": queue}))
            properties["dead_letter"] = queue
            depends.append(dead_letter)
        nodes.append(
            scope.node(
                f"pubsub.subscription/{resource.name}",
                SUBSCRIPTION.type,
                properties,
                depends,
                resource=resource,
            )
        )
    return nodes
