"""Caches on the host: a cache per ``CacheCluster`` on the host's shared Redis, reached as the
environment's own ACL user, which may touch only the keys under the environment's prefix.

Every cache of an environment is one keyspace under the host's prefix for it and the cache's name, so that
two caches of one environment never share a key. The server is shared, so its eviction policy is the
host's (``cache.eviction_policy`` is not claimed). The user's password stays on the host: the runtime
config names it by reference, and the data plane reads it when it connects.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import Node, Observed, ProviderError, Scope
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType


class CacheType(ResourceType):
    """A cache of the environment on the host's Redis (its keys, under a prefix of its own)."""

    type = "hosted.cache"
    kind = "cache"

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        if outputs.get("host") is None or outputs.get("port") is None:
            raise ProviderError(f"the host gave cache {observed.provider_id!r} no host and port")
        return {
            "type": self.type,
            "host": outputs["host"],
            "port": int(outputs["port"]),
            "tls": bool(outputs.get("tls", False)),
            "username": outputs.get("username"),
            "password": outputs["credentials"],
            "key_prefix": outputs.get("key_prefix") or "",
            "api": outputs["api"],
        }


CACHE = CacheType()
TYPES = (CACHE,)


def expand(scope: Scope) -> list[Node]:
    """A cache per ``cache_cluster``, in the environment."""
    return [
        scope.node(
            names.node_id(CACHE.kind, cache.name),
            CACHE.type,
            {"name": cache.name},
            (names.ENVIRONMENT_ID,),
            resource=cache,
        )
        for cache in scope.of_kind("cache_cluster")
    ]
