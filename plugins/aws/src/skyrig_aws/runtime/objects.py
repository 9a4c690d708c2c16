"""S3 for the data plane: objects, versions, presigned URLs, and public URLs (CloudFront's when the bucket
has a distribution, else S3's: against an emulator, and until the first refresh after it is made)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from skyrig.provider import duration_seconds
from skyrig_aws.runtime import aws


class BucketClient:
    """Objects of one S3 bucket."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.bucket: str = entry["bucket"]
        self.s3 = aws("s3", entry)

    def upload(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def download(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise KeyError(f"bucket {self.bucket!r} has no object {key!r}") from None
            raise

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def remove(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def versions(self, key: str) -> list[bytes]:
        found = []
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            found.extend(v for v in page.get("Versions", []) if v["Key"] == key and not v.get("IsLatest"))
        # S3 lists the versions of a key newest first
        return [
            self.s3.get_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
            for v in reversed(found)
        ]

    def public_url(self, key: str) -> str:
        if not self.entry.get("public"):
            raise PermissionError(
                f"bucket {self.bucket!r} is not public: use signed_url for a temporary link"
            )
        base = self.entry.get("cdn_url") or self.entry["s3_url"]
        return f"{base.rstrip('/')}/{quote(key)}"

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        operation = {"GET": "get_object", "PUT": "put_object", "DELETE": "delete_object"}.get(method.upper())
        if operation is None:
            raise ValueError(f"signed URLs grant GET, PUT or DELETE, not {method!r}")
        return self.s3.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=duration_seconds(expires_in)
        )
