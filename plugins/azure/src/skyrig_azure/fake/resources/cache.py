"""Microsoft.Cache: Azure Cache for Redis and its data access policy assignments (create, update and delete
long-running, as azure-mgmt-redis's ``begin_*`` calls them).

What Azure enforces and the fake does too: a cache name unique in all of Azure (a DNS name: letters,
digits and single hyphens, 1-63 characters); a SKU whose family fits its tier (Basic and Standard are
``C0``-``C6``, Premium ``P1``-``P5``); no scaling down from Standard to Basic nor from Premium to Standard;
the Redis version only goes up; ``maxmemory-policy`` among Redis's eight; the memory reservations
(``maxmemory-reserved``, ``maxfragmentationmemory-reserved``, in MB) at most 80% of the size together;
access keys can be turned off only with Microsoft Entra authentication on (``aad-enabled``); an access
policy assignment names a built-in or custom access policy of the cache, an object id, an alias, and needs
Entra authentication on. What Azure fills in: the host name, ports (6379, TLS 6380), the full Redis
version, TLS 1.2 minimum and the non-TLS port off by default, ``maxmemory-policy volatile-lru`` and its
default reservations, ``maxclients``, the instances.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.redis.models"
_VERSIONS = ("2023-08-01", "2024-03-01", "2024-11-01")
REDIS = "Microsoft.Cache/redis"
SIZES_MB = {"C0": 250, "C1": 1024, "C2": 2560, "C3": 6144, "C4": 13312, "C5": 26624, "C6": 54272}
SIZES_MB |= {"P1": 6144, "P2": 13312, "P3": 26624, "P4": 54272, "P5": 122880}
MAX_CLIENTS = {"C0": 256, "C1": 1000, "C2": 2000, "C3": 5000, "C4": 10000, "C5": 15000, "C6": 20000}
MAX_CLIENTS |= {"P1": 7500, "P2": 15000, "P3": 30000, "P4": 40000, "P5": 40000}
POLICIES = frozenset(
    {
        "volatile-lru",
        "allkeys-lru",
        "volatile-lfu",
        "allkeys-lfu",
        "volatile-random",
        "allkeys-random",
        "volatile-ttl",
        "noeviction",
    }
)
TIER_RANK = {"Basic": 0, "Standard": 1, "Premium": 2}
BUILT_IN_POLICIES = ("Data Owner", "Data Contributor", "Data Reader")
DEFAULT_RESERVED_MB = {"C0": 30, "C1": 50}
"""What Azure reserves when the configuration does not say (small sizes; larger ones get 10%)."""
VERSIONS = {"4": "4.0.14", "6": "6.0.14"}


def _bad(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def _size(sku: dict[str, Any]) -> str:
    return f"{sku.get('family')}{sku.get('capacity')}"


def _check_sku(sku: dict[str, Any], before: dict[str, Any] | None) -> None:
    name, family, size = sku.get("name"), sku.get("family"), _size(sku)
    fits = (family == "P") == (name == "Premium") and size in SIZES_MB
    if not fits or name not in TIER_RANK:
        raise _bad(
            "InvalidSku",
            f"The SKU {name} {size} is not offered: Basic and Standard are C0-C6, Premium P1-P5.",
        )
    if before and TIER_RANK[name] < TIER_RANK.get(before.get("name", ""), 0):
        raise _bad(
            "ScalingNotSupported",
            f"A {before.get('name')} cache cannot be scaled down to {name}.",
        )


def _configuration(config: dict[str, Any], before: dict[str, Any], size: str) -> dict[str, Any]:
    merged = {**before, **config}
    policy = merged.setdefault("maxmemory-policy", "volatile-lru")
    if policy not in POLICIES:
        raise _bad(
            "InvalidRedisConfiguration", f"maxmemory-policy '{policy}' is not one of {sorted(POLICIES)}."
        )
    default = str(DEFAULT_RESERVED_MB.get(size, SIZES_MB[size] // 10))
    for key in ("maxmemory-reserved", "maxfragmentationmemory-reserved"):
        value = merged.get(key) or default
        if not str(value).isdigit():
            raise _bad("InvalidRedisConfiguration", f"{key} must be a whole number of MB, not '{value}'.")
        merged[key] = str(value)
    merged.setdefault("maxmemory-delta", merged["maxmemory-reserved"])
    reserved = int(merged["maxmemory-reserved"]) + int(merged["maxfragmentationmemory-reserved"])
    if reserved > SIZES_MB[size] * 80 // 100:
        raise _bad(
            "InvalidRedisConfiguration",
            f"maxmemory-reserved and maxfragmentationmemory-reserved together ({reserved} MB) may not exceed "
            f"80% of the cache's {SIZES_MB[size]} MB.",
        )
    aad = str(merged.get("aad-enabled", "false")).lower()
    if aad not in ("true", "false"):
        raise _bad("InvalidRedisConfiguration", f"aad-enabled must be true or false, not '{aad}'.")
    merged["aad-enabled"] = aad
    merged["maxclients"] = str(MAX_CLIENTS[size])
    return merged


def _redis_on_write(ctx: Context, cache: dict[str, Any]) -> None:
    previous = ctx.previous
    for key, entry in ctx.fake.store.items():
        if entry.type.type == REDIS and key != ctx.id.lower() and entry.resource["name"] == ctx.name:
            raise ArmError(409, "NameNotAvailable", f"The name '{ctx.name}' is already in use.")
    if "--" in ctx.name:
        raise _bad("InvalidCacheName", f"The cache name '{ctx.name}' has consecutive hyphens.")
    p = cache.setdefault("properties", {})
    before = (previous or {}).get("properties") or {}
    sku = p.get("sku") or before.get("sku")
    if not sku:
        raise _bad("SkuRequired", "properties.sku is required.")
    _check_sku(sku, before.get("sku"))
    size = _size(sku)
    p["sku"] = sku
    p["redisConfiguration"] = _configuration(
        p.get("redisConfiguration") or {}, before.get("redisConfiguration") or {}, size
    )
    version = str(p.get("redisVersion") or before.get("redisVersion") or "6").split(".")[0]
    if version.lower() == "latest":
        version = "6"
    if version not in VERSIONS:
        raise _bad("InvalidRedisVersion", f"Redis version '{version}' is not offered: {sorted(VERSIONS)}.")
    if before.get("redisVersion") and int(version) < int(str(before["redisVersion"]).split(".")[0]):
        raise _bad("RedisVersionDowngradeNotAllowed", "The Redis version of a cache cannot go down.")
    p["redisVersion"] = VERSIONS[version]
    p.setdefault("enableNonSslPort", False)
    p.setdefault("minimumTlsVersion", "1.2")
    p.setdefault("publicNetworkAccess", "Enabled")
    p.setdefault("updateChannel", "Stable")
    p.setdefault("disableAccessKeyAuthentication", False)
    if p["disableAccessKeyAuthentication"] and p["redisConfiguration"]["aad-enabled"] != "true":
        raise _bad(
            "AccessKeyAuthenticationCannotBeDisabled",
            "Access key authentication can be disabled only when Microsoft Entra authentication "
            "(redisConfiguration aad-enabled) is enabled.",
        )
    if sku.get("name") == "Premium":
        p.setdefault("replicasPerMaster", 1)
        p.setdefault("replicasPerPrimary", p["replicasPerMaster"])
    p["hostName"] = f"{ctx.name}.redis.cache.windows.net"
    p["port"], p["sslPort"] = 6379, 6380
    p["linkedServers"] = []
    replicas = 1 if sku.get("name") == "Basic" else 2
    p["instances"] = [
        {"sslPort": 15000 + i, "isMaster": i == 0, "isPrimary": i == 0} for i in range(replicas)
    ]


def _policies(ctx: Context, cache: dict[str, Any]) -> set[str]:
    prefix = cache["id"].lower() + "/accesspolicies/"
    custom = {e.resource["name"] for key, e in ctx.fake.store.items() if key.startswith(prefix)}
    return {*BUILT_IN_POLICIES, *custom}


def _assignment_on_write(ctx: Context, assignment: dict[str, Any]) -> None:
    parent = ctx.fake.store.get(ctx.parent_id.lower())
    if parent is None:
        return
    if not re.fullmatch(r"[A-Za-z0-9]{1,60}", ctx.name):
        raise _bad("InvalidAccessPolicyAssignmentName", f"'{ctx.name}' is not a valid assignment name.")
    config = (parent.resource.get("properties") or {}).get("redisConfiguration") or {}
    if config.get("aad-enabled") != "true":
        raise _bad(
            "AadAuthenticationNotEnabled",
            "Microsoft Entra authentication is not enabled on this cache: enable it (aad-enabled) first.",
        )
    p = assignment.setdefault("properties", {})
    for required in ("objectId", "objectIdAlias", "accessPolicyName"):
        if not p.get(required):
            raise _bad("MissingRequiredProperty", f"properties.{required} is required.")
    try:
        uuid.UUID(str(p["objectId"]))
    except ValueError:
        raise _bad("InvalidObjectId", f"properties.objectId '{p['objectId']}' is not a GUID.") from None
    if p["accessPolicyName"] not in _policies(ctx, parent.resource):
        raise _bad("AccessPolicyNotFound", f"The access policy '{p['accessPolicyName']}' does not exist.")


register(
    ResourceType(
        type=REDIS,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:RedisCreateParameters",
        patch_model=f"{_MODELS}:RedisUpdateParameters",
        read_model=f"{_MODELS}:RedisResource",
        async_put=True,
        async_patch=True,
        async_delete=True,
        immutable=("properties.subnetId", "properties.staticIP", "zones"),
        name_pattern=r"[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]",
        name_error="InvalidCacheName",
        on_write=_redis_on_write,
    ),
    ResourceType(
        type=f"{REDIS}/accessPolicyAssignments",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:RedisCacheAccessPolicyAssignment",
        read_model=f"{_MODELS}:RedisCacheAccessPolicyAssignment",
        async_put=True,
        async_delete=True,
        tracked=False,
        immutable=("properties.objectId",),
        on_write=_assignment_on_write,
    ),
)
