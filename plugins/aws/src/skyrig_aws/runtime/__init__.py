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


def database(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of an RDS database: the shared PostgreSQL client, its password from Secrets Manager."""
    from skyrig.provider import PostgresClient
    from skyrig_aws.runtime.secrets import resolver

    return PostgresClient(entry, resolver(entry, "password"))


def cache(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of an ElastiCache cluster: the shared Redis client, its password from Secrets
    Manager."""
    from skyrig.provider import RedisClient
    from skyrig_aws.runtime.secrets import resolver

    return RedisClient(entry, resolver(entry, "password"))
