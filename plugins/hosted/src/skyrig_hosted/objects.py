"""Buckets on the host: a bucket per ``Bucket`` on the host's S3-compatible object server (MinIO in
production), reached with the environment's own access key, which the server lets reach only the
environment's buckets.

The access key's secret stays on the host: the runtime config names it by reference, and the data plane
reads it when it first talks to the server.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Node, Observed, ProviderError, Scope
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType


class BucketType(ResourceType):
    """A bucket of the environment on the host's object server."""

    type = "hosted.bucket"
    kind = "bucket"
    stateful = True

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        if not outputs.get("endpoint"):
            raise ProviderError(f"the host gave bucket {observed.provider_id!r} no endpoint")
        return {
            "type": self.type,
            "endpoint": outputs["endpoint"],
            "bucket": outputs.get("bucket") or observed.provider_id,
            "region": outputs.get("region") or "us-east-1",
            "username": outputs.get("username"),
            "password": outputs["credentials"],
            "api": outputs["api"],
        }


BUCKET = BucketType()
TYPES = (BUCKET,)


def expand(scope: Scope) -> list[Node]:
    """A bucket per ``bucket``, in the environment."""
    return [
        scope.node(
            names.node_id(BUCKET.kind, bucket.name),
            BUCKET.type,
            {"name": bucket.name},
            (names.ENVIRONMENT_ID,),
            resource=bucket,
        )
        for bucket in scope.of_kind("bucket")
    ]
