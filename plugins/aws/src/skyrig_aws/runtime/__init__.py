"""The AWS data plane: what the runtime SDK calls in a running service, imported only when app code first
uses a resource. Clients are made from the runtime config entry (region, and an endpoint for emulators);
credentials come from the task role (the usual AWS chain)."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}


def aws(service: str, entry: dict[str, Any]) -> Any:
    """A boto3 client for ``service`` in the entry's region (and endpoint), shared by the process."""
    key = (service, entry.get("region") or "us-east-1", entry.get("endpoint_url"))
    with _lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            from skyrig_aws.api import quiet_sdk_logs

            quiet_sdk_logs()

            config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=50)
            _clients[key] = boto3.session.Session().client(
                service, region_name=key[1], endpoint_url=key[2], config=config
            )
        return _clients[key]


def client_for(kind: str, entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane client for one resource of ``kind``."""
    if kind == "topic":
        from skyrig_aws.runtime.pubsub import TopicClient

        return TopicClient(entry)
    if kind == "subscription":
        from skyrig_aws.runtime.pubsub import SubscriptionClient

        return SubscriptionClient(entry)
    if kind == "bucket":
        from skyrig_aws.runtime.objects import BucketClient

        return BucketClient(entry)
    if kind == "secret":
        from skyrig_aws.runtime.secrets import SecretClient

        return SecretClient(entry, config)
    if kind == "sql_database":
        from skyrig.runtime.servers import PostgresClient
        from skyrig_aws.runtime.secrets import resolver

        return PostgresClient(entry, resolver(entry, "password"))
    if kind == "cache_cluster":
        from skyrig.runtime.servers import RedisClient
        from skyrig_aws.runtime.secrets import resolver

        return RedisClient(entry, resolver(entry, "password"))
    if kind == "cron_job":
        from skyrig_aws.runtime.cron import CronClient

        return CronClient(entry)
    raise NotImplementedError(f"the aws provider has no data plane for {kind}")
