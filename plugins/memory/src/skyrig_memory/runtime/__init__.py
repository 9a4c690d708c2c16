"""The memory provider's data plane: what the runtime SDK calls in a running service.

Each kind's client reads and writes the simulated cloud's SQLite file (``entry["cloud"]``), so that
what one process publishes or uploads another one sees. SQL is the exception: the memory cloud runs
no PostgreSQL, so its client is the shared PostgreSQL client (:mod:`skyrig_memory.runtime.sql`).
"""

from __future__ import annotations

from typing import Any


def client_for(kind: str, entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane client for one resource of ``kind`` (see :mod:`skyrig.runtime.dataplane`)."""
    if kind == "secret":
        from skyrig_memory.runtime.secrets import SecretClient

        return SecretClient(entry["cloud"], config["app"], config["environment"])
    if kind == "topic":
        from skyrig_memory.runtime.pubsub import TopicClient

        return TopicClient(entry)
    if kind == "subscription":
        from skyrig_memory.runtime.pubsub import SubscriptionClient

        return SubscriptionClient(entry)
    if kind == "cache_cluster":
        from skyrig_memory.runtime.cache import CacheClient

        return CacheClient(entry)
    if kind == "bucket":
        from skyrig_memory.runtime.objects import BucketClient

        return BucketClient(entry)
    if kind == "sql_database":
        from skyrig_memory.runtime.sql import DatabaseClient

        return DatabaseClient(entry)
    if kind == "cron_job":
        from skyrig_memory.runtime.cron import CronClient

        return CronClient(entry)
    raise NotImplementedError(f"the memory provider has no data plane for {kind}")
