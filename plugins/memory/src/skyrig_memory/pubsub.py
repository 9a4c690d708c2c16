"""Pub/sub: a topic per topic; a subscription per subscription, with a dead-letter queue of its own."""

from __future__ import annotations

from skyrig.engine.graph import Node, Scope
from skyrig.values import duration_seconds
from skyrig_memory.nodes import node_type

TOPIC = node_type(
    "memory.pubsub.topic", replace_on=frozenset({"ordered", "exactly_once"}), outputs=("topic",)
)
SUBSCRIPTION = node_type(
    "memory.pubsub.subscription",
    tunable=frozenset({"max_concurrency"}),
    replace_on=frozenset({"topic"}),
    outputs=("subscription", "dead_letter"),
)
DEAD_LETTER = node_type("memory.pubsub.dead_letter", outputs=("queue",))


def expand(scope: Scope) -> list[Node]:
    nodes = []
    for resource in scope.resources():
        if resource.kind == "topic":
            properties = {
                "topic": f"{scope.app}-{resource.name}",
                "ordered": resource.ordering_attribute is not None,
                "exactly_once": resource.delivery == "exactly-once",
            }
            nodes.append(
                Node(
                    f"pubsub.topic/{resource.name}",
                    TOPIC.type,
                    "memory",
                    properties,
                    resource=f"topic/{resource.name}",
                )
            )
        elif resource.kind == "subscription":
            depends = [f"@topic/{resource.topic}"]
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
            }
            if resource.max_retries != -1:
                dead_letter = f"pubsub.dead_letter/{resource.name}"
                nodes.append(
                    Node(
                        dead_letter,
                        DEAD_LETTER.type,
                        "memory",
                        {"queue": f"{scope.app}-{resource.name}-dead-letter"},
                    )
                )
                properties["dead_letter"] = f"{scope.app}-{resource.name}-dead-letter"
                depends.append(dead_letter)
            nodes.append(
                Node(
                    f"pubsub.subscription/{resource.name}",
                    SUBSCRIPTION.type,
                    "memory",
                    properties,
                    tuple(depends),
                    resource=f"subscription/{resource.name}",
                )
            )
    return nodes
