"""Data plane clients for servers that speak a standard protocol: PostgreSQL and Redis.

Providers whose databases and caches are ordinary PostgreSQL and Redis servers (RDS, Cloud SQL, Neon,
ElastiCache, Memorystore, ...) return these from ``data_plane``, configured by a runtime config entry of
the shape below, so every provider connects the same way. A password is never in the entry: the entry
names a secret *reference*, and the provider passes a function that resolves it when a connection is
made. psycopg and redis are imported only then.

``sql_database`` entry: ``host`` (a name, an address or a Unix socket folder), ``port``, ``database``,
``user``, ``sslmode`` (``require``, ``verify-full``, ``disable``, ...), ``password`` (a reference or None).

``cache_cluster`` entry: ``host``, ``port``, ``tls`` (bool), ``username`` (None for the default user),
``password`` (a reference or None), ``key_prefix`` (optional, prepended to every key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

Resolve = Callable[[str], str]
"""Turns a secret reference into its value (the provider's secret store)."""


def _authentication_failed(error: Exception) -> bool:
    """Whether the server refused the login (a wrong password), not something else."""
    return getattr(error, "sqlstate", None) in ("28P01", "28000") or "password authentication failed" in str(
        error
    )


class PostgresClient:
    """Connections to one database on a PostgreSQL server (the :class:`~skyrig.runtime.dataplane.SQLClient`
    protocol). ``refused``: what to do when the server refuses the password ``resolve`` gave (forget a
    cached one, say): it is called, and the connection tried once more with the password resolved again,
    so that a password rotated since it was read is picked up by the next connection (a pool's too)."""

    def __init__(
        self,
        entry: dict[str, Any],
        resolve: Resolve | None = None,
        *,
        refused: Callable[[], None] | None = None,
    ) -> None:
        self.entry = entry
        self._resolve = resolve
        self._refused = refused

    def _password(self) -> str | None:
        reference = self.entry.get("password")
        if reference is None:
            return None
        if self._resolve is None:
            raise LookupError(f"database {self.entry['database']!r}: no way to read its password")
        return self._resolve(reference)

    def url(self) -> str:
        entry = self.entry
        password = self._password()
        credentials = quote(entry["user"], safe="") + (f":{quote(password, safe='')}" if password else "")
        host = quote(str(entry["host"]), safe="")  # a socket folder's slashes are escaped
        query = f"?sslmode={entry['sslmode']}" if entry.get("sslmode") else ""
        return f"postgresql://{credentials}@{host}:{entry['port']}/{quote(entry['database'], safe='')}{query}"

    def connect(self, **options: Any) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url(), **options)
        except psycopg.OperationalError as error:
            if self._refused is None or not _authentication_failed(error):
                raise
        self._refused()
        return psycopg.connect(self.url(), **options)

    async def connect_async(self, **options: Any) -> Any:
        import psycopg

        try:
            return await psycopg.AsyncConnection.connect(self.url(), **options)
        except psycopg.OperationalError as error:
            if self._refused is None or not _authentication_failed(error):
                raise
        self._refused()
        return await psycopg.AsyncConnection.connect(self.url(), **options)


class RedisClient:
    """Keys on a Redis server (the :class:`~skyrig.runtime.dataplane.CacheClient` protocol), over TLS
    and with an ACL user when the entry says so."""

    def __init__(self, entry: dict[str, Any], resolve: Resolve | None = None) -> None:
        import redis

        reference = entry.get("password")
        if reference is not None and resolve is None:
            raise LookupError(f"cache at {entry['host']}: no way to read its password")
        self.prefix = entry.get("key_prefix") or ""
        self.redis = redis.Redis(
            host=entry["host"],
            port=int(entry["port"]),
            ssl=bool(entry.get("tls")),
            username=entry.get("username"),
            password=resolve(reference) if reference is not None and resolve else None,
        )

    def get(self, key: str) -> bytes | None:
        return self.redis.get(self.prefix + key)

    def set(self, key: str, data: bytes, expiry_seconds: int | None) -> None:
        self.redis.set(self.prefix + key, data, ex=expiry_seconds)

    def delete(self, key: str) -> None:
        self.redis.delete(self.prefix + key)
