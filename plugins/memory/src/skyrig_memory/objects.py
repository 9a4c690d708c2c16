"""Object storage: a bucket per bucket."""

from __future__ import annotations

from skyrig.provider import Node, Scope
from skyrig_memory.nodes import node_type

BUCKET = node_type(
    "memory.objects.bucket",
    invariant=frozenset({"public_access_blocked", "encrypted"}),
    stateful=True,
    replace_on=frozenset({"bucket"}),
    outputs=("bucket", "url"),
)


TYPES = (BUCKET,)


def expand(scope: Scope) -> list[Node]:
    nodes = []
    for resource in scope.of_kind("bucket"):
        bucket = f"{scope.app}-{scope.environment.name.replace(':', '-')}-{resource.name}"
        properties = {
            "bucket": bucket,
            "versioned": resource.versioned,
            "encrypted": True,
            "public_access_blocked": not resource.public,
            "url": f"https://{bucket}.objects.memory.internal" if resource.public else None,
        }
        nodes.append(
            scope.node(f"objects.bucket/{resource.name}", BUCKET.type, properties, resource=resource)
        )
    return nodes
