"""The data plane of a Memorystore for Redis instance: Redis over TLS, the server checked against the
instance's own CA (in the runtime config: certificates are public), authenticated with the instance's AUTH
string, which Memorystore gives the service at run time (``GetAuthString``); never in the runtime config."""

from __future__ import annotations

from typing import Any

from skyrig.provider import RedisClient
from skyrig_gcp.runtime.sql import credentials


def auth_string(entry: dict[str, Any]) -> Any:
    """Reads an instance's AUTH string (the entry's ``password`` names the instance) when connecting."""

    def resolve(instance: str) -> str:
        from google.cloud import redis_v1

        endpoint = entry.get("endpoint")
        client = redis_v1.CloudRedisClient(
            credentials=credentials(entry),
            transport="rest",
            client_options={"api_endpoint": endpoint} if endpoint else None,
        )
        return client.get_instance_auth_string(name=instance).auth_string

    return resolve


class MemorystoreClient(RedisClient):
    """:class:`~skyrig.provider.RedisClient` trusting the instance's server CA."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry, auth_string(entry))
        certificates = entry.get("ca_certificates") or []
        if entry.get("tls") and certificates:
            options = self.redis.connection_pool.connection_kwargs
            options["ssl_ca_data"] = "\n".join(certificates)
            # the chain is checked against the instance's own CA, which signs for that instance only; its
            # certificate names no host a client could check (as Google's own stunnel setup has it)
            options["ssl_check_hostname"] = False


def cache(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a Memorystore instance (``cache_cluster``)."""
    return MemorystoreClient(entry)
