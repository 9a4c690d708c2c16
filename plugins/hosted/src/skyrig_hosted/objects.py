"""Buckets on the host: a bucket per ``Bucket`` on the host's S3-compatible object server (MinIO in
production), reached with the environment's own access key, which the server lets reach only the
environment's buckets. A versioned bucket has the server's versioning on; a public bucket's objects are
served to anyone by the host at ``{host}/objects/BUCKET/KEY`` (its output ``url`` is that base), on the
host's one port, where presigned URLs are answered too.

The access key's secret stays on the host: the runtime config names it by reference, and the data plane
reads it when it first talks to the server.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Context, Node, Observed, ProviderError, Scope
from skyrig_hosted import names
from skyrig_hosted.api import Json
from skyrig_hosted.nodes import ResourceType


def objects_url(api: str) -> str:
    """Where the host at ``api`` (its API's URL, ``.../v1``) serves objects: ``{host}/objects``."""
    return api.rstrip("/").removesuffix("/v1") + "/objects"


class BucketType(ResourceType):
    """A bucket of the environment on the host's object server."""

    type = "hosted.bucket"
    kind = "bucket"
    stateful = True
    sent = frozenset({"versioned", "public"})

    def _observe(self, context: Context, node: Node, resource: Json) -> Observed:
        observed = super()._observe(context, node, resource)
        outputs = observed.outputs
        if observed.properties.get("public") and outputs.get("bucket"):
            outputs["url"] = f"{objects_url(outputs['api'])}/{outputs['bucket']}"
        return observed

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
            "objects_url": objects_url(outputs["api"]),
            "public_url": outputs.get("url") if node.properties.get("public") else None,
            "versioned": bool(node.properties.get("versioned")),
        }


BUCKET = BucketType()
TYPES = (BUCKET,)


def expand(scope: Scope) -> list[Node]:
    """A bucket per ``bucket``, in the environment."""
    return [
        scope.node(
            names.node_id(BUCKET.kind, bucket.name),
            BUCKET.type,
            {"name": bucket.name, "versioned": bucket.versioned, "public": bucket.public},
            (names.ENVIRONMENT_ID,),
            resource=bucket,
        )
        for bucket in scope.of_kind("bucket")
    ]
