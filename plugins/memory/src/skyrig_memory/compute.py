"""Compute: a service per service, running under its own role, after everything it uses."""

from __future__ import annotations

from skyrig.engine.graph import Node, Scope
from skyrig_memory.iam import role_id
from skyrig_memory.network import NETWORK_ID
from skyrig_memory.nodes import node_type

SERVICE = node_type(
    "memory.compute.service", tunable=frozenset({"replicas", "cpu", "memory_mb"}), outputs=("url",)
)


def expand(scope: Scope) -> list[Node]:
    production = scope.environment.type == "production"
    return [
        Node(
            f"compute.service/{s.name}",
            SERVICE.type,
            "memory",
            {
                "app": s.app,
                "replicas": 2 if production else 1,
                "cpu": 1,
                "memory_mb": 512,
                "url": f"https://{s.name}.{scope.app}.memory.internal",
            },
            (NETWORK_ID, role_id(s.name)),
            resource=f"service/{s.name}",
        )
        for s in scope.resources()
        if s.kind == "service"
    ]
