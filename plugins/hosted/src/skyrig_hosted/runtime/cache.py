"""The data plane of a cache on the host: Redis as the environment's ACL user, every key under the
environment's prefix (the only keys the server lets the user touch). The user's password is read from the
host's credentials endpoint when the client is made."""

from __future__ import annotations

from typing import Any

from skyrig.provider import RedisClient
from skyrig_hosted.runtime import login


def cache(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a cache on the host (``cache_cluster``)."""
    username, password = login(entry["api"], entry["password"]) if entry.get("password") else (None, None)
    entry = {**entry, "username": entry.get("username") or username}
    return RedisClient(entry, lambda reference: password or "")
