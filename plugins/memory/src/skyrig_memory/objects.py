"""Object storage: a bucket per bucket."""

from __future__ import annotations

from skyrig.engine.graph import Node, Scope
from skyrig_memory.nodes import node_type

BUCKET = node_type(
    "memory.objects.bucket",
    invariant=frozenset({"public_access_blocked", "encrypted"}),
    stateful=True,
    replace_on=frozenset({"bucket"}),
    outputs=("bucket", "url"),
)


def expand(scope: Scope) -> list[Node]:
    nodes = []
    for resource in scope.resources():
        if resource.kind == "bucket":
            bucket = f"{scope.app}-{scope.environment.name.replace(':', '-')}-{resource.name}"
            properties = {
                "bucket": bucket,
                "versioned": resource.versioned,
                "encrypted": True,
                "public_access_blocked": not resource.public,
                "url": f"https://{bucket}.objects.memory.internal" if resource.public else None,
            }
            nodes.append(
                Node(
                    f"objects.bucket/{resource.name}",
                    BUCKET.type,
                    "memory",
                    properties,
                    resource=f"bucket/{resource.name}",
                )
            )
    return nodes
