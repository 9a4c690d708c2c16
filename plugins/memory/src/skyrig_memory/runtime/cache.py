"""Caches: keys in the memory cloud's SQLite file, with expiry (no memory limit, so nothing is evicted)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from skyrig_memory.cloud import open_cloud

SWEEP_EVERY = 60.0
"""Seconds between two removals of expired keys (they read as absent meanwhile)."""


class CacheClient:
    """Keys of one cache cluster."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.cloud = open_cloud(entry["cloud"])
        self.id = int(entry["resource_id"])
        self.endpoint = entry.get("endpoint")
        self._swept = 0.0

    def get(self, key: str) -> bytes | None:
        """The bytes at ``key``, or None if there are none or they expired."""
        row = self.cloud.connection.execute(
            "SELECT value FROM cache_entries "
            "WHERE cluster = ? AND key = ? AND (expires IS NULL OR expires > ?)",
            (self.id, key, time.time()),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key: str, data: bytes, expiry_seconds: int | None) -> None:
        """Store ``data`` at ``key``, for ``expiry_seconds`` (None: until deleted)."""
        now = time.time()
        expires = None if expiry_seconds is None else now + expiry_seconds
        try:
            with self.cloud.transaction() as connection:
                connection.execute(
                    "INSERT INTO cache_entries VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (cluster, key) "
                    "DO UPDATE SET value = excluded.value, expires = excluded.expires",
                    (self.id, key, data, expires),
                )
                if now - self._swept > SWEEP_EVERY:
                    self._swept = now
                    connection.execute(
                        "DELETE FROM cache_entries WHERE cluster = ? AND expires <= ?", (self.id, now)
                    )
        except sqlite3.IntegrityError:  # the cluster's row is gone: the foreign key refuses the key
            raise LookupError(
                f"cache cluster {self.endpoint or self.id} does not exist in the memory cloud: "
                "provision it with skyrig apply"
            ) from None

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error if it is not there)."""
        self.cloud.connection.execute(
            "DELETE FROM cache_entries WHERE cluster = ? AND key = ?", (self.id, key)
        )
