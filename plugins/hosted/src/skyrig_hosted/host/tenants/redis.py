"""A tenant on the shared Redis: ACL user ``e_<id>`` allowed only keys ``e_<id>:*`` and channels
``e_<id>:*``, and no command that reaches past its keys: none of ``@admin`` and ``@dangerous`` (CONFIG,
FLUSHALL, FLUSHDB, KEYS, DEBUG, MONITOR, INFO, SLOWLOG, ...) nor SCAN, RANDOMKEY, DBSIZE, MEMORY, SELECT,
SWAPDB, MOVE, PUBSUB, CLIENT, whose answers or effects are not confined to its keys. Keys a script touches
are checked as well. A cache ``name`` is the key prefix
``e_<id>:<name>:``. The server answers NOPERM to anything else. Users are kept in the server's aclfile
(``ACL SAVE``).
"""

from __future__ import annotations

from typing import Any

from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import check_kind, login_name, new_password, resource_name

KINDS = ("cache",)
DENIED = (
    "scan",
    "randomkey",
    "dbsize",
    "memory",
    "select",
    "swapdb",
    "move",
    "pubsub",
    "client",
    "keys",
    "flushall",
    "flushdb",
    "config",
)
"""Denied by name besides ``-@admin -@dangerous`` (some are in those categories; named anyway)."""


def key_prefix(tenant: Tenant, name: str) -> str:
    """The prefix of every key of the tenant's cache ``name``."""
    return f"{login_name(tenant)}:{resource_name(name)}:"


def ensure(servers: Servers, tenant: Tenant) -> dict[str, str]:
    """The ACL user, made or reset (one password: the new one)."""
    user, password = login_name(tenant), new_password()
    rules = [
        "reset", "resetchannels", "on", f">{password}", f"~{user}:*", f"&{user}:*",
        "+@all", "-@admin", "-@dangerous", *(f"-{command}" for command in DENIED),
    ]  # fmt: skip
    admin = servers.redis.admin
    admin.execute_command("ACL", "SETUSER", user, *rules)
    admin.execute_command("ACL", "SAVE")
    return {"username": user, "password": password}


def put(
    servers: Servers, tenant: Tenant, login: dict[str, str], kind: str, name: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """A cache is a key prefix: nothing to make on the server."""
    check_kind("redis", kind, KINDS)
    return {
        "host": servers.redis.host,
        "port": servers.redis.port,
        "username": login_name(tenant),
        "key_prefix": key_prefix(tenant, name),
    }


def _unlink(servers: Servers, pattern: str) -> None:
    admin = servers.redis.admin
    batch: list[str] = []
    for key in admin.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            admin.unlink(*batch)
            batch = []
    if batch:
        admin.unlink(*batch)


def delete(servers: Servers, tenant: Tenant, kind: str, name: str) -> None:
    """Every key of the cache."""
    check_kind("redis", kind, KINDS)
    _unlink(servers, key_prefix(tenant, name) + "*")


def remove(servers: Servers, tenant: Tenant) -> None:
    """The ACL user (its connections closed) and every key of the tenant."""
    user = login_name(tenant)
    admin = servers.redis.admin
    admin.execute_command("ACL", "DELUSER", user)
    admin.execute_command("ACL", "SAVE")
    _unlink(servers, f"{user}:*")


def usage(servers: Servers, tenant: Tenant) -> int:
    """The memory its keys take (``MEMORY USAGE``)."""
    admin = servers.redis.admin
    return sum(
        int(admin.memory_usage(key) or 0)
        for key in admin.scan_iter(match=f"{login_name(tenant)}:*", count=500)
    )
