"""The data plane of a bucket on the host: its objects on the host's S3-compatible server (MinIO in
production) through the ``minio`` client, with the environment's own access key, whose secret is read
from the host's credentials endpoint when the client is made. Signed URLs are S3 presigned URLs for the
host's one port (``{host}/objects/BUCKET/KEY``), which forwards them to the server that checks them; a
public bucket's objects are at the same path, served by the host to anyone."""

from __future__ import annotations

import datetime
import io
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from skyrig.provider import duration_seconds
from skyrig_hosted.runtime import login


class BucketClient:
    """Objects of one bucket on the host."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        from minio import Minio

        self.entry = entry
        self.bucket: str = entry["bucket"]
        access_key, secret_key = login(entry["api"], entry["password"])
        self.access_key, self.secret_key = entry.get("username") or access_key, secret_key
        self.region: str = entry.get("region") or "us-east-1"
        where = urlsplit(entry["endpoint"])
        self.s3 = Minio(
            where.netloc,
            access_key=self.access_key,
            secret_key=secret_key,
            secure=where.scheme == "https",
            region=self.region,
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
        earlier = [  # minio answers is_latest as the listing's text, "true" or "false"
            o
            for o in listed
            if o.object_name == key and str(o.is_latest).lower() != "true" and not o.is_delete_marker
        ]
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
        """The object's URL on the host, served to anyone (public buckets only)."""
        base = self.entry.get("public_url")
        if not base:
            raise PermissionError(
                f"bucket {self.bucket!r} is not public: use signed_url for a temporary link"
            )
        return f"{base}/{quote(key, safe='/~')}"

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        """A presigned URL of the host's one port (``{host}/objects/BUCKET/KEY``) granting ``method`` on
        the object until it expires."""
        from minio.credentials import Credentials
        from minio.signer import presign_v4
        from minio.time import utcnow

        method = method.upper()
        if method not in ("GET", "PUT", "DELETE"):
            raise ValueError(f"signed URLs grant GET, PUT or DELETE, not {method!r}")
        seconds = int(datetime.timedelta(seconds=duration_seconds(expires_in)).total_seconds())
        if not 1 <= seconds <= 604800:
            raise ValueError(f"a signed URL lasts from 1 second to 7 days, not {expires_in!r}")
        base = urlsplit(self.entry.get("objects_url") or self.entry["endpoint"])
        netloc = base.netloc
        if (base.scheme, base.port) in (("http", 80), ("https", 443)):  # as clients send Host: without it
            netloc = netloc.rsplit(":", 1)[0]
        path = f"{base.path.rstrip('/')}/{self.bucket}/{quote(key, safe='/~')}"
        url = presign_v4(
            method=method,
            url=SplitResult(base.scheme, netloc, path, "", ""),
            region=self.region,
            credentials=Credentials(self.access_key, self.secret_key),
            date=utcnow(),
            expires=seconds,
        )
        return url.geturl()
