"""The local provider's data plane: what the runtime SDK calls in a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DatabaseClient:
    """Connections to one database of the embedded PostgreSQL (started on first use)."""

    def __init__(self, data: str, database: str) -> None:
        self.data = Path(data)
        self.database = database

    def url(self) -> str:
        from skyrig_local import postgres

        return postgres.uri(self.data, self.database)

    def connect(self, **options: Any) -> Any:
        import psycopg

        return psycopg.connect(self.url(), **options)

    async def connect_async(self, **options: Any) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url(), **options)


def client_for(kind: str, entry: dict[str, Any], config: dict[str, Any]) -> Any:
    if kind == "sql_database":
        return DatabaseClient(entry["data"], entry["database"])
    if kind == "cache_cluster":
        from skyrig_local.cache import CacheClient

        return CacheClient(entry)
    if kind == "bucket":
        from skyrig_local.objects import BucketClient

        return BucketClient(entry)
    if kind == "topic":
        from skyrig_local.pubsub_runtime import TopicClient

        return TopicClient(entry)
    if kind == "subscription":
        from skyrig_local.pubsub_runtime import SubscriptionClient

        return SubscriptionClient(entry)
    if kind == "secret":
        from skyrig_local.secrets import SecretClient

        return SecretClient(config["app"], config["environment"])
    raise NotImplementedError(f"the local provider has no data plane for {kind} yet")
