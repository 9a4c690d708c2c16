"""Caches: a Memorystore for Redis instance per cache cluster, reached from the environment's VPC through
private services access.

Each instance is STANDARD_HA with one read replica (automatic failover, the smallest tier that scales: 5
GiB by default), with AUTH on (its AUTH string is Memorystore's, read by the data plane at run time with
``GetAuthString``: never in state) and in-transit encryption (TLS, server authentication), and the
redisConfigs ``maxmemory-policy`` from the declaration, ``maxmemory-gb`` leaving 10% of the memory for
Redis itself, and ``activedefrag yes``. Memory and replica count are user-tunable; AUTH, TLS, the
policy, the buffer and defragmentation are invariants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, wait_for
from skyrig_gcp import names
from skyrig_gcp.api import Conflict, wait_operation
from skyrig_gcp.nodes import NamedNodeType

TIER = "STANDARD_HA"
READ_REPLICAS = "READ_REPLICAS_ENABLED"
TLS = "SERVER_AUTHENTICATION"
CONNECT_MODE = "PRIVATE_SERVICE_ACCESS"
RESERVED_PERCENT = 10
"""Memory kept out of ``maxmemory-gb`` for Redis's own use (replication buffers, fragmentation)."""


def maxmemory_gb(memory_gb: int, reserved_percent: int = RESERVED_PERCENT) -> str:
    """``maxmemory-gb`` for an instance of ``memory_gb`` GiB that keeps ``reserved_percent`` free."""
    return f"{memory_gb * (100 - reserved_percent) / 100:g}"


def _enum(value: Any) -> str:
    """A proto enum (or its name) as its name."""
    return getattr(value, "name", None) or str(value)


class InstanceType(NamedNodeType):
    """A Memorystore for Redis instance."""

    type = "gcp.cache.instance"
    tunable = frozenset({"memory_gb", "replicas"})
    invariant = frozenset(
        {"auth", "tls", "read_replicas", "eviction_policy", "reserved_memory_percent", "active_defrag"}
    )
    replace_on = frozenset({"version", "tier", "connect_mode", "network"})
    identity = frozenset({"name"})

    def _name(self, context: Context, instance_id: str) -> str:
        return f"{context.client.location()}/instances/{instance_id}"

    # -- reading ------------------------------------------------------------------------------------

    def _observe(self, context: Context, node: Node, instance: Any) -> Observed:
        configs = dict(instance.redis_configs)
        memory = int(instance.memory_size_gb)
        try:
            kept = float(configs.get("maxmemory-gb", memory))
        except ValueError:
            kept = float(memory)
        properties = {
            "name": instance.name.rpartition("/")[2],
            "version": instance.redis_version,
            "tier": _enum(instance.tier),
            "memory_gb": memory,
            "replicas": int(instance.replica_count),
            "read_replicas": _enum(instance.read_replicas_mode) == READ_REPLICAS,
            "auth": bool(instance.auth_enabled),
            "tls": _enum(instance.transit_encryption_mode) == TLS,
            "connect_mode": _enum(instance.connect_mode),
            "network": instance.authorized_network.rpartition("/")[2],
            "eviction_policy": configs.get("maxmemory-policy", "volatile-lru"),
            "reserved_memory_percent": round(100 - kept * 100 / memory) if memory else 0,
            "active_defrag": configs.get("activedefrag") == "yes",
        }
        outputs = {
            "host": instance.host or None,
            "port": int(instance.port) or 6379,
            "read_host": instance.read_endpoint or None,
            "read_port": int(instance.read_endpoint_port) or None,
            "instance": instance.name,
            "ca_certificates": [cert.cert for cert in instance.server_ca_certs],
            "state": _enum(instance.state),
            "endpoint": context.settings.endpoint("redis"),
            "emulator": context.settings.emulator,
        }
        return self.observed(node, properties["name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        instance = context.client.library("redis").get_instance(name=self._name(context, provider_id))
        return None if _enum(instance.state) == "DELETING" else self._observe(context, node, instance)

    def _list(self, context: Context) -> list[Any]:
        return list(context.client.library("redis").list_instances(parent=context.client.location()))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = {i.name.rpartition("/")[2]: i for i in self._list(context) if _enum(i.state) != "DELETING"}
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def inventory(self, context: Context) -> list[str]:
        """The instances whose labels say they are this app's and environment's."""
        return [
            i.name.rpartition("/")[2]
            for i in self._list(context)
            if _enum(i.state) != "DELETING" and self.owned(context, dict(i.labels))
        ]

    # -- changing -----------------------------------------------------------------------------------

    @staticmethod
    def _configs(node: Node, memory_gb: int) -> dict[str, str]:
        p = node.properties
        return {
            "maxmemory-policy": p["eviction_policy"],
            "maxmemory-gb": maxmemory_gb(memory_gb, p["reserved_memory_percent"]),
            "activedefrag": "yes" if p["active_defrag"] else "no",
        }

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        client = context.client
        network = names.network_name(context.app, context.environment.name)
        instance = {
            "display_name": f"skyrig {context.app}/{context.environment.name} {node.id}",
            "labels": self.labels(context, node),
            "tier": p["tier"],
            "memory_size_gb": p["memory_gb"],
            "redis_version": p["version"],
            "replica_count": p["replicas"],
            "read_replicas_mode": READ_REPLICAS if p["read_replicas"] else "READ_REPLICAS_DISABLED",
            "auth_enabled": p["auth"],
            "transit_encryption_mode": TLS if p["tls"] else "DISABLED",
            "connect_mode": p["connect_mode"],
            "authorized_network": f"projects/{client.project}/global/networks/{network}",
            "redis_configs": self._configs(node, p["memory_gb"]),
        }
        redis = client.library("redis")
        try:
            operation = redis.create_instance(
                parent=client.location(), instance_id=p["name"], instance=instance
            )
        except Conflict:
            pass  # an earlier create's, its answer lost: adopted once ready
        else:
            wait_operation(context, f"Memorystore instance {p['name']}", operation)
        return self._ready(context, node, p["name"])

    def _ready(self, context: Context, node: Node, provider_id: str) -> Observed:
        seen: dict[str, Any] = {}
        redis = context.client.library("redis")

        def ready() -> tuple[bool, str]:
            seen["instance"] = redis.get_instance(name=self._name(context, provider_id))
            state = _enum(seen["instance"].state)
            return state == "READY", state.lower()

        wait_for(context, f"Memorystore instance {provider_id}", ready)
        return self._observe(context, node, seen["instance"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        if "tls" in changes:
            raise ProviderError(
                f"{node.id}: in-transit encryption of Memorystore instance {provider_id} is off, which "
                "Memorystore cannot change in place: delete the instance (the next apply makes it again)"
            )
        redis = context.client.library("redis")
        current = redis.get_instance(name=self._name(context, provider_id))
        memory = p["memory_gb"] if "memory_gb" in changes else int(current.memory_size_gb)
        update: dict[str, Any] = {"name": current.name}
        paths: list[str] = []
        if "memory_gb" in changes:
            update["memory_size_gb"] = memory
            paths.append("memory_size_gb")
        if "memory_gb" in changes or {"eviction_policy", "reserved_memory_percent", "active_defrag"} & set(
            changes
        ):
            update["redis_configs"] = self._configs(node, memory)
            paths.append("redis_configs")
        if "read_replicas" in changes:
            update["read_replicas_mode"] = READ_REPLICAS
            paths.append("read_replicas_mode")
        if "replicas" in changes or "read_replicas" in changes:
            update["replica_count"] = p["replicas"]
            paths.append("replica_count")
        if "auth" in changes:
            update["auth_enabled"] = p["auth"]
            paths.append("auth_enabled")
        if paths:
            from google.protobuf import field_mask_pb2

            mask = field_mask_pb2.FieldMask(paths=paths)
            operation = redis.update_instance(update_mask=mask, instance=update)
            wait_operation(context, f"Memorystore instance {provider_id}", operation)
        return self._ready(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        redis = context.client.library("redis")
        name = self._name(context, provider_id)
        try:
            operation = redis.delete_instance(name=name)
        except ProviderError as error:
            if "already being deleted" not in str(error):
                raise
        else:
            wait_operation(context, f"deleting Memorystore instance {provider_id}", operation)

        def gone() -> tuple[bool, str]:
            try:
                return False, _enum(redis.get_instance(name=name).state).lower()
            except NotFound:
                return True, "deleted"

        wait_for(context, f"Memorystore instance {provider_id} to be deleted", gone)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        return {
            "type": self.type,
            "host": outputs.get("host"),
            "port": outputs.get("port"),
            "tls": node.properties["tls"],
            "ca_certificates": outputs.get("ca_certificates") or [],
            "username": None,
            # a reference: the data plane asks Memorystore for the instance's AUTH string
            "password": outputs.get("instance") if node.properties["auth"] else None,
            "eviction_policy": node.properties["eviction_policy"],
            "endpoint": outputs.get("endpoint"),
            "emulator": outputs.get("emulator"),
        }


INSTANCE = InstanceType()
TYPES = (INSTANCE,)


def expand(scope: Scope) -> list[Node]:
    """A Memorystore instance per ``cache_cluster``, after private services access."""
    clusters = scope.of_kind("cache_cluster")
    if not clusters:
        return []
    settings = scope.settings
    app, env = scope.app, scope.environment.name
    nodes = []
    for r in clusters:
        properties = {
            "name": names.cache_instance_name(app, env, r.name),
            "version": settings.cache_version,
            "tier": TIER,
            "memory_gb": settings.cache_memory_gb,
            "replicas": 1,
            "read_replicas": True,
            "auth": True,
            "tls": True,
            "connect_mode": CONNECT_MODE,
            "network": names.network_name(app, env),
            "eviction_policy": r.eviction_policy,
            "reserved_memory_percent": RESERVED_PERCENT,
            "active_defrag": True,
        }
        nodes.append(
            scope.node(
                f"cache.cluster/{r.name}",
                INSTANCE.type,
                properties,
                (names.PROJECT_ID, names.PRIVATE_ACCESS_ID),
                resource=r,
            )
        )
    return nodes
