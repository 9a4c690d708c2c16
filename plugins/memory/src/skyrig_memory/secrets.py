"""Secrets: a container per secret. skyrig creates the container, never the value."""

from __future__ import annotations

from typing import Any

from skyrig.engine.contract import Observed
from skyrig.engine.graph import Node, Scope
from skyrig_memory.nodes import MemoryNodeType


class SecretNodeType(MemoryNodeType):
    """A secret's container; its runtime entry is a reference the app resolves, never the value."""

    type = "memory.secrets.secret"
    outputs = ("reference",)

    def runtime(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "provider": "memory",
            "type": self.type,
            "reference": observed.properties["reference"],
            "cloud": observed.outputs.get("cloud"),
        }


SECRET = SecretNodeType()


def expand(scope: Scope) -> list[Node]:
    env = scope.environment.name
    return [
        Node(
            f"secrets.secret/{r.name}",
            SECRET.type,
            "memory",
            {"name": r.name, "reference": f"memory://{scope.app}/{env}/secrets/{r.name}"},
            resource=f"secret/{r.name}",
        )
        for r in scope.resources()
        if r.kind == "secret"
    ]
