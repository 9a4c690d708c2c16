"""Caches: an Azure Cache for Redis per cache cluster, reached only through a Private Link private endpoint
in the environment's private endpoints subnet (its address in the ``privatelink.redis.cache.windows.net``
zone linked to the virtual network), with Microsoft Entra ID authentication.

Each cache is Standard C1 by default (``cache_sku``: 1 GiB, a replica with automatic failover, the smallest
size that scales; P1.. is Premium), user-tunable. Access keys are off (``disableAccessKeyAuthentication``):
a service authenticates with its managed identity's token, through a data access policy assignment per
service that uses the cache (Data Reader where it only reads, Data Contributor otherwise), so no key
exists anywhere to leak, in state or elsewhere. TLS only: the non-TLS port is off, TLS 1.2 at least, public
network access disabled. The redisConfiguration carries the declaration's ``maxmemory-policy`` and a 10%
memory reservation (``maxmemory-reserved`` for replication and failover, ``maxfragmentationmemory-
reserved`` for fragmentation, each a tenth of the size in MB). Active defragmentation is Azure's own (on in
its Redis 6 servers; no setting exposes it).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, Scope, resolve, wait_for
from skyrig_azure import names
from skyrig_azure.api import Conflict
from skyrig_azure.nodes import AzureNodeType, NamedNodeType

SIZES_MB = {
    "C0": 250,
    "C1": 1024,
    "C2": 2560,
    "C3": 6144,
    "C4": 13312,
    "C5": 26624,
    "C6": 54272,
    "P1": 6144,
    "P2": 13312,
    "P3": 26624,
    "P4": 54272,
    "P5": 122880,
}
"""Memory of each size (Azure's pricing page: C1 is 1 GB, P1 6 GB, ...)."""
RESERVED_PERCENT = 10
"""Memory kept out of the data for Redis itself: ``maxmemory-reserved`` and ``maxfragmentationmemory-
reserved`` each get this share of the size."""
MINIMUM_TLS = "1.2"
REDIS_VERSION = "6"
TLS_PORT = 6380
ENTRA_SCOPE = "https://redis.azure.com/.default"
"""The scope of the tokens Azure Cache for Redis accepts as passwords."""
PASSWORD_ENTRA = "entra:" + ENTRA_SCOPE
"""The runtime entry's ``password``: not a value, the way to get one (a token of the service's identity
for this scope; the user is the identity's object id)."""
GROUP_ID = "redisCache"
"""The Private Link sub-resource of a cache."""
READER, CONTRIBUTOR = "Data Reader", "Data Contributor"


def sku_of(size: str) -> dict[str, Any]:
    """Azure's sku object of a size name: ``C1`` -> Standard, family C, capacity 1; ``P1`` -> Premium."""
    family, capacity = size[0], int(size[1:])
    return {"name": "Premium" if family == "P" else "Standard", "family": family, "capacity": capacity}


def reserved_mb(size: str, percent: int = RESERVED_PERCENT) -> int:
    """The megabytes ``percent`` of a ``size`` cache is."""
    return SIZES_MB.get(size, 1024) * percent // 100


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _last(provider_id: str) -> str:
    return provider_id.rstrip("/").rpartition("/")[2]


class RedisType(NamedNodeType):
    """An Azure Cache for Redis."""

    type = "azure.cache.redis"
    tunable = frozenset({"sku"})
    invariant = frozenset(
        {
            "non_tls_port",
            "minimum_tls",
            "public_network_access",
            "entra_auth",
            "access_keys",
            "eviction_policy",
            "reserved_percent",
        }
    )
    replace_on = frozenset({"location"})
    identity = frozenset({"name"})

    # -- reading ------------------------------------------------------------------------------------

    def _observe(self, context: Context, node: Node, cache: Any) -> Observed:
        sku = cache.sku
        size = f"{_text(sku.family)}{sku.capacity}"
        config = cache.redis_configuration
        size_mb = SIZES_MB.get(size, 1024)

        def percent(value: Any) -> int:
            try:
                return round(int(value) * 100 / size_mb)
            except (TypeError, ValueError):
                return 0

        memory, fragmentation = (
            percent(getattr(config, "maxmemory_reserved", None)),
            percent(getattr(config, "maxfragmentationmemory_reserved", None)),
        )
        properties = {
            "name": cache.name,
            "location": (cache.location or "").replace(" ", "").lower(),
            "sku": size,
            "non_tls_port": bool(cache.enable_non_ssl_port),
            "minimum_tls": _text(cache.minimum_tls_version),
            "public_network_access": _text(cache.public_network_access),
            "entra_auth": str(getattr(config, "aad_enabled", None) or "").lower() == "true",
            "access_keys": not cache.disable_access_key_authentication,
            "eviction_policy": getattr(config, "maxmemory_policy", None) or "volatile-lru",
            "reserved_percent": min(memory, fragmentation),
        }
        outputs = {
            "host": cache.host_name,
            "port": cache.ssl_port or TLS_PORT,
            "id": cache.id,
            "state": _text(cache.provisioning_state),
            "version": cache.redis_version,
            "emulator": context.settings.emulator,
        }
        return self.observed(node, cache.name, properties, outputs)

    def _get(self, context: Context, name: str) -> Any:
        client = context.client
        return client.mgmt("redis").redis.get(client.resource_group, name)

    def _list(self, context: Context) -> list[Any]:
        client = context.client
        return client.mgmt("redis").redis.list_by_resource_group(client.resource_group)

    @staticmethod
    def _gone(cache: Any) -> bool:
        return _text(cache.provisioning_state) == "Deleting"

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        cache = self._get(context, provider_id)
        return None if self._gone(cache) else self._observe(context, node, cache)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = {c.name: c for c in self._list(context) if not self._gone(c)}
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def inventory(self, context: Context) -> list[str]:
        """The caches whose tags say they are this app's and environment's (none without the resource
        group)."""
        try:
            caches = self._list(context)
        except NotFound:
            return []
        return [c.name for c in caches if not self._gone(c) and self.owned(context, c.tags)]

    # -- changing -----------------------------------------------------------------------------------

    @staticmethod
    def _configuration(node: Node, size: str) -> Any:
        from azure.mgmt.redis import models

        p = node.properties
        reserved = str(reserved_mb(size, p["reserved_percent"]))
        return models.RedisCommonPropertiesRedisConfiguration(
            maxmemory_policy=p["eviction_policy"],
            maxmemory_reserved=reserved,
            maxfragmentationmemory_reserved=reserved,
            aad_enabled="true" if p["entra_auth"] else "false",
        )

    def _create(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.redis import models

        p = node.properties
        client = context.client
        parameters = models.RedisCreateParameters(
            location=p["location"],
            tags=self.tags(context, node),
            sku=models.Sku(**sku_of(p["sku"])),
            redis_configuration=self._configuration(node, p["sku"]),
            redis_version=REDIS_VERSION,
            enable_non_ssl_port=p["non_tls_port"],
            minimum_tls_version=p["minimum_tls"],
            public_network_access=p["public_network_access"],
            disable_access_key_authentication=not p["access_keys"],
        )
        try:
            operation = client.mgmt("redis").redis.begin_create(client.resource_group, p["name"], parameters)
        except Conflict:
            pass  # an earlier create's, still running: adopted once ready
        else:
            client.wait(context, operation, f"Azure Cache for Redis {p['name']}")
        return self._ready(context, node, p["name"])

    def _ready(self, context: Context, node: Node, name: str) -> Observed:
        seen: dict[str, Any] = {}

        def ready() -> tuple[bool, str]:
            seen["cache"] = self._get(context, name)
            state = _text(seen["cache"].provisioning_state) or "Creating"
            return state == "Succeeded", state.lower()

        wait_for(context, f"Azure Cache for Redis {name}", ready)
        return self._observe(context, node, seen["cache"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        from azure.mgmt.redis import models

        p = node.properties
        client = context.client
        redis = client.mgmt("redis").redis
        size = p["sku"]
        if "sku" not in changes:
            current = self._get(context, provider_id).sku
            size = f"{_text(current.family)}{current.capacity}"
        # RedisUpdateParameters sends publicNetworkAccess "Enabled", disableAccessKeyAuthentication false
        # and enableNonSslPort false unless told otherwise: every update says what the node wants of them
        update: dict[str, Any] = {
            "enable_non_ssl_port": p["non_tls_port"],
            "public_network_access": p["public_network_access"],
            "disable_access_key_authentication": not p["access_keys"],
        }
        if "sku" in changes:
            update["sku"] = models.Sku(**sku_of(size))
        if "sku" in changes or {"eviction_policy", "reserved_percent", "entra_auth"} & set(changes):
            update["redis_configuration"] = self._configuration(node, size)
        if "minimum_tls" in changes:
            update["minimum_tls_version"] = p["minimum_tls"]
        if changes:
            operation = redis.begin_update(
                client.resource_group, provider_id, models.RedisUpdateParameters(**update)
            )
            client.wait(context, operation, f"Azure Cache for Redis {provider_id}")
        return self._ready(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.mgmt("redis").redis.begin_delete(client.resource_group, provider_id)
        client.wait(context, operation, f"deleting Azure Cache for Redis {provider_id}")

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        return {
            "type": self.type,
            "host": outputs.get("host"),
            "port": outputs.get("port"),
            "tls": not node.properties["non_tls_port"],
            "username": None,
            # not a value: the data plane asks Entra ID for a token of the service's identity
            "password": PASSWORD_ENTRA if node.properties["entra_auth"] else None,
            "eviction_policy": node.properties["eviction_policy"],
            "emulator": outputs.get("emulator"),
        }


# -- who may use a cache -------------------------------------------------------------------------------


def _identity_principal(context: Context, service: str) -> tuple[str, str]:
    """(object id, name) of ``service``'s user-assigned managed identity."""
    client = context.client
    app, env = context.app, context.environment.name
    identity = _last(
        resolve(context, names.identity_id(service), lambda: names.identity_name(app, env, service))
    )
    found = client.mgmt("msi").user_assigned_identities.get(client.resource_group, identity)
    return str(found.principal_id), identity


class AccessType(AzureNodeType):
    """A data access policy assignment: a service's identity may use a cache (``Data Reader`` or ``Data
    Contributor``), by Entra ID token."""

    type = "azure.cache.access"
    invariant = frozenset({"policy"})
    replace_on = frozenset({"cache", "service"})
    identity = frozenset({"name"})

    def _observe(self, node: Node, cache: str, assignment: Any) -> Observed:
        properties = {
            "name": assignment.name,
            "cache": cache,
            "service": node.properties["service"],
            "policy": assignment.access_policy_name,
        }
        outputs = {"object_id": assignment.object_id}
        return self.observed(node, f"{cache}/{assignment.name}", properties, outputs)

    def _assignments(self, context: Context, cache: str) -> list[Any]:
        client = context.client
        return client.mgmt("redis").access_policy_assignment.list(client.resource_group, cache)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        cache, _, name = provider_id.partition("/")
        client = context.client
        found = client.mgmt("redis").access_policy_assignment.get(client.resource_group, cache, name)
        return self._observe(node, cache, found)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Observed | None] = {}
        for cache in sorted({pid.partition("/")[0] for _, pid in nodes}):
            try:
                listed = {a.name: a for a in self._assignments(context, cache)}
            except NotFound:
                listed = {}
            for node, provider_id in nodes:
                if provider_id.partition("/")[0] == cache:
                    name = provider_id.partition("/")[2]
                    found[node.id] = self._observe(node, cache, listed[name]) if name in listed else None
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, f"{node.properties['cache']}/{node.properties['name']}")

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(
            context, [(n, f"{n.properties['cache']}/{n.properties['name']}") for n in nodes]
        )

    def _put(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.redis import models

        p = node.properties
        client = context.client
        object_id, alias = _identity_principal(context, p["service"])
        body = models.RedisCacheAccessPolicyAssignment(
            object_id=object_id, object_id_alias=alias, access_policy_name=p["policy"]
        )
        operation = client.mgmt("redis").access_policy_assignment.begin_create_update(
            client.resource_group, p["cache"], p["name"], body
        )
        client.wait(context, operation, f"access of {p['service']} to Azure Cache for Redis {p['cache']}")
        return self._read(context, node, f"{p['cache']}/{p['name']}")  # type: ignore[return-value]

    def _create(self, context: Context, node: Node) -> Observed:
        return self._put(context, node)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._put(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        cache, _, name = provider_id.partition("/")
        client = context.client
        operation = client.mgmt("redis").access_policy_assignment.begin_delete(
            client.resource_group, cache, name
        )
        client.wait(context, operation, f"deleting access policy assignment {name}")

    def inventory(self, context: Context) -> list[str]:
        """The assignments skyrig made (named ``skyrig...``) on this environment's caches."""
        found: list[str] = []
        for cache in REDIS.inventory(context):
            with contextlib.suppress(NotFound):
                found += [
                    f"{cache}/{a.name}"
                    for a in self._assignments(context, cache)
                    if a.name.startswith("skyrig")
                ]
        return found


def access_name(service: str) -> str:
    """A service's assignment on a cache (``[A-Za-z0-9]``, up to 60 characters; deterministic)."""
    digest = hashlib.sha256(service.encode()).hexdigest()[:8]
    return ("skyrig" + re.sub(r"[^A-Za-z0-9]", "", service))[:51] + digest


# -- the private endpoint ----------------------------------------------------------------------------------


class EndpointType(NamedNodeType):
    """The cache's Private Link private endpoint in the private endpoints subnet, registered in the
    ``privatelink.redis.cache.windows.net`` zone (its DNS zone group)."""

    type = "azure.cache.endpoint"
    invariant = frozenset({"zone_registered"})
    replace_on = frozenset({"cache", "location"})
    identity = frozenset({"name"})

    def _observe(self, context: Context, node: Node, endpoint: Any, zones: list[Any]) -> Observed:
        connections = endpoint.private_link_service_connections or []
        target = connections[0].private_link_service_id if connections else ""
        state = connections[0].private_link_service_connection_state if connections else None
        status = _text(getattr(state, "status", None))
        properties = {
            "name": endpoint.name,
            "cache": _last(target or ""),
            "location": (endpoint.location or "").replace(" ", "").lower(),
            "zone_registered": any(
                config.private_dns_zone_id
                for group in zones
                for config in group.private_dns_zone_configs or []
            ),
        }
        outputs = {"subnet": endpoint.subnet.id if endpoint.subnet else None, "status": status}
        return self.observed(node, endpoint.name, properties, outputs)

    def _zones(self, context: Context, name: str) -> list[Any]:
        client = context.client
        try:
            return client.mgmt("network").private_dns_zone_groups.list(name, client.resource_group)
        except NotFound:
            return []

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        endpoint = client.mgmt("network").private_endpoints.get(client.resource_group, provider_id)
        return self._observe(context, node, endpoint, self._zones(context, provider_id))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        client = context.client
        listed = {e.name: e for e in client.mgmt("network").private_endpoints.list(client.resource_group)}
        return {
            n.id: self._observe(context, n, listed[pid], self._zones(context, pid)) if pid in listed else None
            for n, pid in nodes
        }

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        client = context.client
        app, env = context.app, context.environment.name
        subnet = resolve(context, names.ENDPOINTS_SUBNET_ID, lambda: f"{names.vnet_name(app, env)}/endpoints")
        if not subnet.startswith("/"):  # VNET/SUBNET
            subnet = client.resource_id("Microsoft.Network/virtualNetworks/subnets", *subnet.split("/")[-2:])
        cache = client.resource_id("Microsoft.Cache/redis", p["cache"])
        connection = {"privateLinkServiceId": cache, "groupIds": [GROUP_ID]}
        body = {
            "location": p["location"],
            "tags": self.tags(context, node),
            "properties": {
                "subnet": {"id": subnet},
                "privateLinkServiceConnections": [{"name": p["name"], "properties": connection}],
            },
        }
        network = client.mgmt("network")
        operation = network.private_endpoints.begin_create_or_update(client.resource_group, p["name"], body)
        client.wait(context, operation, f"private endpoint {p['name']}")
        self._register(context, node)
        return self._read(context, node, p["name"])  # type: ignore[return-value]

    def _register(self, context: Context, node: Node) -> None:
        client = context.client
        zone = resolve(context, names.REDIS_DNS_ID, lambda: names.REDIS_DNS_ZONE)
        if not zone.startswith("/"):
            zone = client.resource_id("Microsoft.Network/privateDnsZones", zone)
        body = {
            "properties": {
                "privateDnsZoneConfigs": [{"name": "redis", "properties": {"privateDnsZoneId": zone}}]
            }
        }
        operation = client.mgmt("network").private_dns_zone_groups.begin_create_or_update(
            client.resource_group, node.properties["name"], "default", body
        )
        client.wait(context, operation, f"DNS registration of private endpoint {node.properties['name']}")

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if "zone_registered" in changes:
            self._register(context, node)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.mgmt("network").private_endpoints.begin_delete(client.resource_group, provider_id)
        client.wait(context, operation, f"deleting private endpoint {provider_id}")

    def inventory(self, context: Context) -> list[str]:
        """The private endpoints this family made (tagged with a ``cache.endpoint/`` node)."""
        client = context.client
        try:
            found = client.mgmt("network").private_endpoints.list(client.resource_group)
        except NotFound:
            return []
        return [
            e.name
            for e in found
            if self.owned(context, e.tags)
            and str((e.tags or {}).get(names.TAG_NODE, "")).startswith("cache.")
        ]


REDIS = RedisType()
ACCESS = AccessType()
ENDPOINT = EndpointType()
TYPES = (REDIS, ACCESS, ENDPOINT)


def expand(scope: Scope) -> list[Node]:
    """A cache per ``cache_cluster``, its private endpoint, and an access policy assignment per service
    that uses it."""
    clusters = scope.of_kind("cache_cluster")
    if not clusters:
        return []
    settings = scope.settings
    app, env = scope.app, scope.environment.name
    services = {s.name for s in scope.of_kind("service")}
    nodes = []
    for r in clusters:
        name = names.cache_name(settings.subscription_id, app, env, r.name)
        cache_node = names.cache_id(r.name)
        properties = {
            "name": name,
            "location": settings.location,
            "sku": settings.cache_sku,
            "non_tls_port": False,
            "minimum_tls": MINIMUM_TLS,
            "public_network_access": "Disabled",
            "entra_auth": True,
            "access_keys": False,
            "eviction_policy": r.eviction_policy,
            "reserved_percent": RESERVED_PERCENT,
        }
        nodes.append(scope.node(cache_node, REDIS.type, properties, (names.RESOURCE_GROUP_ID,), resource=r))
        nodes.append(
            scope.node(
                f"cache.endpoint/{r.name}",
                ENDPOINT.type,
                {
                    "name": names.join_name(app, env, r.name, "redis", limit=80),
                    "cache": name,
                    "location": settings.location,
                    "zone_registered": True,
                },
                (cache_node, names.ENDPOINTS_SUBNET_ID, names.REDIS_DNS_ID),
            )
        )
        for service in sorted(services):
            operations = {
                op
                for use in scope.model.uses_by(service)
                if use.kind == "cache_cluster" and use.resource == r.name
                for op in use.operations
            }
            if not operations:
                continue  # least privilege: a service that does not use the cache gets no access
            policy = READER if operations and operations <= {"get"} else CONTRIBUTOR
            nodes.append(
                scope.node(
                    f"cache.access/{r.name}/{service}",
                    ACCESS.type,
                    {"name": access_name(service), "cache": name, "service": service, "policy": policy},
                    (cache_node, names.identity_id(service)),
                )
            )
    return nodes
