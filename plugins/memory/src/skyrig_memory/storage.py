"""The memory cloud's object storage service: objects and their earlier versions in the SQLite file.

A bucket is a row of ``resources`` (``memory.objects.bucket``); its objects go with it when it is
deleted. Whether a bucket keeps versions or is public is read from that row at each call, as a cloud
reads its bucket policy, so a change made in the console takes effect at once. Signed URLs are signed
with a key of the cloud account, made once and kept in the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from typing import Any

from skyrig_memory.cloud import MemoryCloud

BUCKET_TYPE = "memory.objects.bucket"
_URL_KEY = "object-url-signing"


class NoSuchBucket(LookupError):
    """The bucket does not exist in the cloud (never applied, or destroyed)."""


def check_key(key: str) -> str:
    """``key`` if it names an object by a relative path (``receipts/42.txt``), else a ``ValueError``:
    URLs carry keys as paths, and clients normalise ``..``, ``.`` and empty segments away."""
    parts = key.split("/")
    if not key or "\0" in key or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid object key {key!r}: use relative paths like 'a/b.txt'")
    return key


def signature(key: bytes, method: str, bucket: str, name: str, expires: int) -> str:
    """The HMAC that grants ``method`` on object ``name`` of ``bucket`` until ``expires`` (Unix time)."""
    message = f"{method.upper()}\n{bucket}\n{name}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Storage:
    """Object operations on one memory cloud (the data plane's calls: no faults injected)."""

    def __init__(self, cloud: MemoryCloud) -> None:
        self.cloud = cloud
        self._url_key: bytes | None = None

    def bucket(self, bucket_id: int) -> dict[str, Any]:
        """The bucket's properties as they are now; ``NoSuchBucket`` if it is gone."""
        row = self.cloud.connection.execute(
            "SELECT properties FROM resources WHERE id = ? AND type = ?", (bucket_id, BUCKET_TYPE)
        ).fetchone()
        if row is None:
            raise NoSuchBucket(bucket_id)
        return json.loads(row[0])

    def find(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """The bucket named ``name`` in the cloud (names are unique across it): id and properties."""
        row = self.cloud.connection.execute(
            "SELECT id, properties FROM resources "
            "WHERE type = ? AND json_extract(properties, '$.bucket') = ? ORDER BY id LIMIT 1",
            (BUCKET_TYPE, name),
        ).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def put(self, bucket_id: int, key: str, data: bytes) -> None:
        """Store ``data`` as ``key``; a versioned bucket keeps the bytes it replaces."""
        check_key(key)
        now = time.time()
        with self.cloud.transaction() as connection:
            row = connection.execute(
                "SELECT json_extract(properties, '$.versioned') FROM resources WHERE id = ? AND type = ?",
                (bucket_id, BUCKET_TYPE),
            ).fetchone()
            if row is None:
                raise NoSuchBucket(bucket_id)
            if row[0]:
                self._keep(connection, bucket_id, key, now)
            connection.execute(
                "INSERT INTO objects VALUES (?, ?, ?, ?) ON CONFLICT (bucket, key) "
                "DO UPDATE SET data = excluded.data, modified = excluded.modified",
                (bucket_id, key, data, now),
            )

    def get(self, bucket_id: int, key: str) -> bytes | None:
        """The object's bytes, or None."""
        row = self.cloud.connection.execute(
            "SELECT data FROM objects WHERE bucket = ? AND key = ?", (bucket_id, key)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def keys(self, bucket_id: int, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        rows = self.cloud.connection.execute(
            "SELECT key FROM objects WHERE bucket = ? AND substr(key, 1, ?) = ? ORDER BY key",
            (bucket_id, len(prefix), prefix),
        )
        return [key for (key,) in rows]

    def remove(self, bucket_id: int, key: str) -> None:
        """Delete the object; a versioned bucket keeps its bytes as a version."""
        with self.cloud.transaction() as connection:
            row = connection.execute(
                "SELECT json_extract(properties, '$.versioned') FROM resources WHERE id = ?", (bucket_id,)
            ).fetchone()
            if row is not None and row[0]:
                self._keep(connection, bucket_id, key, time.time())
            connection.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket_id, key))

    def versions(self, bucket_id: int, key: str) -> list[bytes]:
        """Earlier versions of ``key``, oldest first."""
        rows = self.cloud.connection.execute(
            "SELECT data FROM object_versions WHERE bucket = ? AND key = ? ORDER BY seq", (bucket_id, key)
        )
        return [bytes(data) for (data,) in rows]

    def url_key(self) -> bytes:
        """The account's key for signed URLs (made on first use)."""
        if self._url_key is None:
            connection = self.cloud.connection
            connection.execute(
                "INSERT OR IGNORE INTO account_keys VALUES (?, ?)", (_URL_KEY, secrets.token_hex(32))
            )
            (value,) = connection.execute(
                "SELECT value FROM account_keys WHERE name = ?", (_URL_KEY,)
            ).fetchone()
            self._url_key = value.encode()
        return self._url_key

    @staticmethod
    def _keep(connection: sqlite3.Connection, bucket_id: int, key: str, now: float) -> None:
        connection.execute(
            "INSERT INTO object_versions (bucket, key, data, kept) "
            "SELECT bucket, key, data, ? FROM objects WHERE bucket = ? AND key = ?",
            (now, bucket_id, key),
        )
