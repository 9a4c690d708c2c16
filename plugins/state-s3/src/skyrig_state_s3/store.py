"""The S3 store: skyrig's store over an object store (:mod:`skyrig.state.objectlog`) on a bucket, each object
created with ``If-None-Match: *``; what is S3's own here: the client, the URL, the credentials and S3's errors
(the package's docstring says more)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from skyrig.state import StateUnusable, masked
from skyrig.state.objectlog import ObjectLogStore, bucket_url


class S3Store(ObjectLogStore):
    """State of every environment of one app, under ``s3://BUCKET/PREFIX/``."""

    def __init__(self, url: str, root: Path) -> None:
        bucket, prefix = _parse(url, root)
        objects = _Bucket(url, bucket)
        super().__init__(objects, url, prefix, package="skyrig-state-s3", versions="the bucket's versions")
        self.bucket = bucket
        self._s3 = objects.s3


class _Bucket:
    """The bucket, as :class:`~skyrig.state.objectlog.ObjectStore`: boto3's calls, and what S3 answers made a
    :class:`~skyrig.state.StateUnusable` that says what to do."""

    def __init__(self, url: str, bucket: str) -> None:
        self.url, self.bucket = url, bucket
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=32,
            connect_timeout=5,
            read_timeout=30,
        )
        try:
            self.s3 = boto3.session.Session().client("s3", config=config)
        except BotoCoreError as error:  # a bad region or endpoint in the environment
            raise self._unusable("cannot make an S3 client", error) from None
        self._call("open the bucket", self.s3.head_bucket, Bucket=bucket)

    def create(self, key: str, body: bytes) -> bool:
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json"
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 412 or code == "PreconditionFailed":
                return False
            if status == 409 or code == "ConditionalRequestConflict":
                time.sleep(random.uniform(0.005, 0.05))
                return False
            raise self._unusable(f"cannot write {key}", error) from None
        except BotoCoreError as error:
            raise self._unusable(f"cannot write {key}", error) from None
        return True

    def read(self, key: str) -> bytes:
        response = self._call(f"read {key}", self.s3.get_object, Bucket=self.bucket, Key=key)
        return response["Body"].read()

    def list(self, prefix: str, after: str = "", most: int | None = None) -> list[str]:
        keys: list[str] = []
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if after:
            arguments["StartAfter"] = after
        if most is not None:
            arguments["MaxKeys"] = most
        while True:
            page = self._call(f"list {prefix}", self.s3.list_objects_v2, **arguments)
            keys += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated") or (most is not None and len(keys) >= most):
                return keys
            arguments["ContinuationToken"] = page["NextContinuationToken"]

    def close(self) -> None:
        self.s3.close()

    def _call(self, what: str, method: Callable[..., Any], **arguments: Any) -> Any:
        try:
            return method(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise self._unusable(f"cannot {what}", error) from None

    def _unusable(self, what: str, error: Exception) -> StateUnusable:
        where = f"state: {masked(self.url)}"
        endpoint = getattr(getattr(getattr(self, "s3", None), "meta", None), "endpoint_url", None)
        if isinstance(error, NoCredentialsError):
            return StateUnusable(
                f"{where}: no AWS credentials found",
                "give them the usual AWS way (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, SSO, "
                "an instance or workload role); skyrig.toml holds none",
            )
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchBucket", "404") or (status == 404 and what == "cannot open the bucket"):
                return StateUnusable(
                    f"{where}: the bucket {self.bucket!r} does not exist (at {endpoint})",
                    "create it (with versioning, and encryption, on), or point state at another bucket; "
                    "skyrig never creates it",
                )
            if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return StateUnusable(
                    f"{where}: access denied ({code}) when trying to {what.removeprefix('cannot ')}",
                    "the credentials of the AWS chain need s3:ListBucket on the bucket and s3:GetObject and "
                    "s3:PutObject under the prefix",
                )
            if code == "NotImplemented" or status == 501:
                return StateUnusable(
                    f"{where}: the store at {endpoint} does not support conditional writes "
                    f"(If-None-Match), which skyrig's locking needs ({code})",
                    "use AWS S3, or an S3-compatible store that implements conditional writes (MinIO does)",
                )
            if code in ("PermanentRedirect", "301", "AuthorizationHeaderMalformed"):
                return StateUnusable(
                    f"{where}: the bucket {self.bucket!r} is not in region {self.s3.meta.region_name}",
                    "set AWS_REGION (or the profile's region) to the bucket's",
                )
            return StateUnusable(
                f"{where}: {what}: {code or status}: {error}", "check the bucket, and the network"
            )
        return StateUnusable(
            f"{where}: {what} at {endpoint}: {error}",
            "check the network, and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL if you use an S3-compatible store",
        )


def _parse(url: str, root: Path) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix); no prefix: the app's name."""
    return bucket_url(
        url,
        root,
        scheme="s3",
        store="an S3",
        valid=lambda bucket: re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) is not None,
        rule="3 to 63 lowercase letters, digits, '.' and '-'",
        chain="credentials come from the AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., a role) and an "
        "S3-compatible store's endpoint from AWS_ENDPOINT_URL_S3, never from the URL",
    )
