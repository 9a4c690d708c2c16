"""Caches: a Redis cluster per cache cluster."""

from __future__ import annotations

from skyrig.provider import Node, Scope
from skyrig_memory.network import NETWORK_ID
from skyrig_memory.nodes import node_type

CLUSTER = node_type(
    "memory.cache.cluster",
    tunable=frozenset({"node_type", "replicas"}),
    invariant=frozenset({"tls", "auth", "reserved_memory_percent", "active_defrag"}),
    outputs=("endpoint", "port"),
)


TYPES = (CLUSTER,)


def expand(scope: Scope) -> list[Node]:
    production = scope.environment.type == "production"
    nodes = []
    for resource in scope.of_kind("cache_cluster"):
        properties = {
            "eviction_policy": resource.eviction_policy,
            "node_type": "cache.m6g.large" if production else "cache.t4g.micro",
            "replicas": 1 if production else 0,
            "tls": True,
            "auth": True,
            "reserved_memory_percent": 10,
            "active_defrag": True,
            "endpoint": f"{scope.app}-{resource.name}.cache.memory.internal",
            "port": 6379,
        }
        nodes.append(
            scope.node(
                f"cache.cluster/{resource.name}", CLUSTER.type, properties, (NETWORK_ID,), resource=resource
            )
        )
    return nodes
