"""Compute: a service per service, running under its own role, after everything it uses."""

from __future__ import annotations

from skyrig.provider import Node, Scope
from skyrig_memory.iam import role_id
from skyrig_memory.network import NETWORK_ID
from skyrig_memory.nodes import node_type

SERVICE = node_type(
    "memory.compute.service", tunable=frozenset({"replicas", "cpu", "memory_mb"}), outputs=("url",)
)


TYPES = (SERVICE,)


def expand(scope: Scope) -> list[Node]:
    production = scope.environment.type == "production"
    return [
        scope.node(
            f"compute.service/{s.name}",
            SERVICE.type,
            {
                "app": s.app,
                "replicas": 2 if production else 1,
                "cpu": 1,
                "memory_mb": 512,
                "url": f"https://{s.name}.{scope.app}.memory.internal",
            },
            (NETWORK_ID, role_id(s.name)),
            resource=s,
        )
        for s in scope.of_kind("service")
    ]
