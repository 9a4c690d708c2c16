"""The data plane of a bucket on the host: its objects on the host's S3-compatible server (MinIO in
production) through the ``minio`` client, with the environment's own access key, whose secret is read
from the host's credentials endpoint when the client is made. Signed URLs are S3 presigned URLs, checked by
the server."""

from __future__ import annotations

import datetime
import io
from typing import Any
from urllib.parse import urlsplit

from skyrig.provider import duration_seconds
from skyrig_hosted.runtime import login


class BucketClient:
    """Objects of one bucket on the host."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        from minio import Minio

        self.entry = entry
        self.bucket: str = entry["bucket"]
        access_key, secret_key = login(entry["api"], entry["password"])
        where = urlsplit(entry["endpoint"])
        self.s3 = Minio(
            where.netloc,
            access_key=entry.get("username") or access_key,
            secret_key=secret_key,
            secure=where.scheme == "https",
            region=entry.get("region") or "us-east-1",
        )

    def upload(self, key: str, data: bytes) -> None:
        self.s3.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def download(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            response = self.s3.get_object(self.bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchVersion"):
                raise KeyError(f"bucket {self.bucket!r} has no object {key!r}") from None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def list(self, prefix: str = "") -> list[str]:
        return sorted(o.object_name for o in self.s3.list_objects(self.bucket, prefix=prefix, recursive=True))

    def remove(self, key: str) -> None:
        self.s3.remove_object(self.bucket, key)

    def versions(self, key: str) -> list[bytes]:
        listed = self.s3.list_objects(self.bucket, prefix=key, recursive=True, include_version=True)
        earlier = [o for o in listed if o.object_name == key and not o.is_latest and not o.is_delete_marker]
        found = []
        for version in reversed(earlier):  # S3 lists the versions of a key newest first
            response = self.s3.get_object(self.bucket, key, version_id=version.version_id)
            try:
                found.append(response.read())
            finally:
                response.close()
                response.release_conn()
        return found

    def public_url(self, key: str) -> str:
        raise PermissionError(f"bucket {self.bucket!r} is not public: use signed_url for a temporary link")

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        method = method.upper()
        if method not in ("GET", "PUT", "DELETE"):
            raise ValueError(f"signed URLs grant GET, PUT or DELETE, not {method!r}")
        expires = datetime.timedelta(seconds=duration_seconds(expires_in))
        return self.s3.get_presigned_url(method, self.bucket, key, expires=expires)
