"""Buckets: objects in the memory cloud's SQLite file, and URLs served by this process's endpoint."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

from skyrig.provider import duration_seconds
from skyrig_memory.cloud import open_cloud
from skyrig_memory.storage import NoSuchBucket, Storage, check_key, signature

METHODS = ("GET", "PUT")
"""What a signed URL may grant."""


class BucketClient:
    """Objects of one bucket, by key (``receipts/42.txt``)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.cloud_path: str = entry["cloud"]
        self.storage = Storage(open_cloud(self.cloud_path))
        self.id = int(entry["resource_id"])
        self.bucket: str = entry["bucket"]

    def upload(self, key: str, data: bytes) -> None:
        """Store ``data``; a versioned bucket keeps the previous bytes."""
        try:
            self.storage.put(self.id, key, bytes(data))
        except NoSuchBucket:
            raise self._missing() from None

    def download(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` if there is none."""
        data = self.storage.get(self.id, key)
        if data is None:
            raise KeyError(f"bucket {self.bucket!r} has no object {key!r}")
        return data

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        return self.storage.keys(self.id, prefix)

    def remove(self, key: str) -> None:
        """Delete; no error if it is not there. A versioned bucket keeps the bytes as a version."""
        self.storage.remove(self.id, key)

    def versions(self, key: str) -> list[bytes]:
        """Earlier versions, oldest first."""
        return self.storage.versions(self.id, key)

    def public_url(self, key: str) -> str:
        """A URL anyone can read while this process lives; ``PermissionError`` for a private bucket."""
        from skyrig_memory.runtime.endpoint import base_url

        check_key(key)
        try:
            properties = self.storage.bucket(self.id)
        except NoSuchBucket:
            raise self._missing() from None
        if properties.get("public_access_blocked", True):
            raise PermissionError(
                f"bucket {self.bucket!r} is not public: use signed_url for a temporary link"
            )
        return f"{base_url(self.cloud_path)}/{self.bucket}/{quote(key)}"

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        """A URL that grants ``method`` (GET or PUT) on the object until ``expires_in`` has passed, served
        while this process lives."""
        from skyrig_memory.runtime.endpoint import base_url

        check_key(key)
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"a signed URL grants one of {', '.join(METHODS)}, not {method}")
        expires = int(time.time()) + duration_seconds(expires_in)
        sig = signature(self.storage.url_key(), method, self.bucket, key, expires)
        query = urlencode({"expires": expires, "signature": sig})
        return f"{base_url(self.cloud_path)}/{self.bucket}/{quote(key)}?{query}"

    def _missing(self) -> LookupError:
        return LookupError(
            f"bucket {self.bucket!r} does not exist in the memory cloud: provision it with skyrig apply"
        )
