"""Secrets: a container per secret. skyrig creates the container, never the value."""

from __future__ import annotations

from typing import Any

from skyrig.provider import Node, Observed, Scope
from skyrig_memory.nodes import MemoryNodeType


class SecretNodeType(MemoryNodeType):
    """A secret's container; its runtime entry is a reference the app resolves, never the value."""

    type = "memory.secrets.secret"
    outputs = ("reference",)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            "reference": observed.properties["reference"],
            "cloud": observed.outputs.get("cloud"),
        }


SECRET = SecretNodeType()


TYPES = (SECRET,)


def expand(scope: Scope) -> list[Node]:
    env = scope.environment.name
    return [
        scope.node(
            f"secrets.secret/{r.name}",
            SECRET.type,
            {"name": r.name, "reference": f"memory://{scope.app}/{env}/secrets/{r.name}"},
            resource=r,
        )
        for r in scope.of_kind("secret")
    ]
