"""The Cloud Storage store: skyrig's store over an object store (:mod:`skyrig.state.objectlog`) on a bucket,
each object created with ``ifGenerationMatch=0``; what is Cloud Storage's own here: the client, the URL, the
credentials and Cloud Storage's errors (the package's docstring says more)."""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from pathlib import Path

import requests
import requests.adapters
from google.api_core.exceptions import (
    Conflict,
    Forbidden,
    GoogleAPICallError,
    GoogleAPIError,
    NotFound,
    PreconditionFailed,
    RetryError,
    TooManyRequests,
    Unauthorized,
)
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError, RefreshError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from skyrig.state import StateUnusable, masked
from skyrig.state.objectlog import READERS, ObjectLogStore, bucket_url

TIMEOUT = (5.0, 30.0)
"""Seconds to connect, and to wait for an answer, per request."""
RETRY_FOR = 30.0
"""Seconds one call keeps retrying what Cloud Storage says is worth retrying (429, 5xx, a lost connection)."""
EMULATOR = "STORAGE_EMULATOR_HOST"
KEY_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
FAILURES = (GoogleAPIError, GoogleAuthError, OSError)
"""What a call to Cloud Storage raises when it fails (OSError: requests' errors among them)."""


class GCSStore(ObjectLogStore):
    """State of every environment of one app, under ``gs://BUCKET/PREFIX/``."""

    def __init__(self, url: str, root: Path) -> None:
        bucket, prefix = _parse(url, root)
        objects = _Bucket(url, bucket, prefix)
        super().__init__(
            objects, url, prefix, package="skyrig-state-gcs", versions="the bucket's noncurrent versions"
        )
        self.bucket = bucket
        self._client = objects.client

    def _create(self, key: str, body: bytes) -> None:
        """Create ``key``, raising :class:`_Taken` where the bucket answers that it exists (the tests' way
        to the bucket's create)."""
        if not self._objects.create(key, body):
            raise _Taken()


class _Taken(Exception):
    """The key aimed at was created by someone else first."""


class _Bucket:
    """The bucket, as :class:`~skyrig.state.objectlog.ObjectStore`: google-cloud-storage's calls, each
    retried for :data:`RETRY_FOR` seconds, and what Cloud Storage answers made a
    :class:`~skyrig.state.StateUnusable` that says what to do."""

    def __init__(self, url: str, bucket: str, prefix: str) -> None:
        self.url, self.bucket = url, bucket
        self._retry = DEFAULT_RETRY.with_timeout(RETRY_FOR)
        try:
            with warnings.catch_warnings():
                # gcloud's user credentials without a quota project: fine for Cloud Storage
                warnings.filterwarnings("ignore", message=".*end user credentials.*")
                self.client = storage.Client(project=None)
        except (GoogleAuthError, GoogleAPIError, OSError, ValueError) as error:
            raise self._unusable("cannot make a Cloud Storage client", error) from None
        http = self.client._http
        if isinstance(http, requests.Session):  # room for READERS and the writers at once
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=READERS * 2)
            http.mount("https://", adapter)
            http.mount("http://", adapter)
        self._bucket = self.client.bucket(bucket)
        # a list, not a GET of the bucket: it needs storage.objects.list only, which reads need anyway
        self._names(f"{prefix}/", most=1, what="open the bucket")

    def create(self, key: str, body: bytes) -> bool:
        try:
            self._bucket.blob(key).upload_from_string(
                body,
                content_type="application/json",
                if_generation_match=0,
                retry=self._retry,  # safe: a create conditioned on generation 0 happens at most once
                timeout=TIMEOUT,
            )
        except PreconditionFailed:
            return False
        except (Conflict, TooManyRequests):
            time.sleep(random.uniform(0.005, 0.05))
            return False
        except Forbidden as error:
            # without storage.objects.delete, a create of a name that exists may be refused as a replace
            if self._exists(key):
                return False
            raise self._unusable(f"cannot write {key}", error) from None
        except FAILURES as error:
            raise self._unusable(f"cannot write {key}", error) from None
        return True

    def read(self, key: str) -> bytes:
        try:
            return self._bucket.blob(key).download_as_bytes(retry=self._retry, timeout=TIMEOUT)
        except FAILURES as error:
            raise self._unusable(f"cannot read {key}", error) from None

    def list(self, prefix: str, after: str = "", most: int | None = None) -> list[str]:
        # Cloud Storage lists from a name on, that name included
        names = self._names(prefix, start=after, most=None if most is None or not after else most + 1)
        if names and names[0] == after:
            names = names[1:]
        return names if most is None else names[:most]

    def close(self) -> None:
        self.client.close()

    def _exists(self, key: str) -> bool:
        try:
            return bool(self._bucket.blob(key).exists(retry=self._retry, timeout=TIMEOUT))
        except FAILURES as error:
            raise self._unusable(f"cannot read {key}", error) from None

    def _names(self, prefix: str, start: str = "", most: int | None = None, what: str = "") -> list[str]:
        """The names under ``prefix`` from ``start`` on (inclusive), in order; at most ``most``."""
        try:
            listed = self.client.list_blobs(
                self._bucket,
                prefix=prefix,
                start_offset=start or None,
                max_results=most,
                fields="items(name),nextPageToken",
                retry=self._retry,
                timeout=TIMEOUT,
            )
            return [blob.name for blob in listed]
        except FAILURES as error:
            raise self._unusable(f"cannot {what or 'list ' + prefix}", error) from None

    def _unusable(self, what: str, error: BaseException) -> StateUnusable:
        where = f"state: {masked(self.url)}"
        if isinstance(error, RetryError) and error.cause is not None:
            error = error.cause
        emulator = os.environ.get(EMULATOR)
        endpoint = f"the emulator at {emulator}" if emulator else "Cloud Storage"
        if isinstance(error, DefaultCredentialsError) and os.environ.get(KEY_FILE):
            return StateUnusable(
                f"{where}: the credentials file that {KEY_FILE} names cannot be used ({_short(error)})",
                f"point {KEY_FILE} at a service account's key file or a workload identity federation "
                "configuration, or unset it and run gcloud auth application-default login",
            )
        if isinstance(error, DefaultCredentialsError):
            return StateUnusable(
                f"{where}: no Google credentials found (Application Default Credentials)",
                "run gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service account's key file, or run where a service account is attached; skyrig.toml "
                "holds none",
            )
        if isinstance(error, RefreshError):
            return StateUnusable(
                f"{where}: the Google credentials were refused when trying to {what.removeprefix('cannot ')} "
                f"({_short(error)})",
                "log in again (gcloud auth application-default login), or check "
                "GOOGLE_APPLICATION_CREDENTIALS",
            )
        if isinstance(error, NotFound) and (
            what == "cannot open the bucket" or "bucket does not exist" in str(error).lower()
        ):
            return StateUnusable(
                f"{where}: the bucket {self.bucket!r} does not exist (in {endpoint})",
                "create it (with object versioning on), or point state at another bucket; skyrig never "
                "creates it",
            )
        if isinstance(error, Forbidden | Unauthorized):
            return StateUnusable(
                f"{where}: access denied ({error.code}) when trying to {what.removeprefix('cannot ')}",
                "the Application Default Credentials need storage.objects.list, storage.objects.get and "
                "storage.objects.create on the bucket (roles/storage.objectViewer and "
                "roles/storage.objectCreator); never storage.objects.delete",
            )
        if isinstance(error, GoogleAPICallError):
            return StateUnusable(
                f"{where}: {what}: {error.code}: {_short(error)}", "check the bucket, and the network"
            )
        return StateUnusable(
            f"{where}: {what} in {endpoint}: {_short(error)}",
            f"check the network, and {EMULATOR} if you use an emulator",
        )


def _parse(url: str, root: Path) -> tuple[str, str]:
    """``gs://BUCKET/PREFIX`` -> (bucket, prefix); no prefix: the app's name."""
    return bucket_url(
        url,
        root,
        scheme="gs",
        store="a Cloud Storage",
        valid=_bucket_name,
        rule="3 to 63 lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or "
        "digit",
        chain="credentials come from Google's Application Default Credentials (gcloud auth "
        "application-default login, GOOGLE_APPLICATION_CREDENTIALS, an attached service account) and an "
        f"emulator's address from {EMULATOR}, never from the URL",
    )


def _bucket_name(name: str) -> bool:
    """Cloud Storage's rule: 3 to 63 characters, or up to 222 in dot-separated parts of at most 63."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*[a-z0-9]", name) or ".." in name:
        return False
    parts = name.split(".")
    return 3 <= len(name) <= (222 if len(parts) > 1 else 63) and all(len(part) <= 63 for part in parts)


def _short(error: BaseException) -> str:
    """An error's text, on one line and cut short (a response body can be long)."""
    text = " ".join(str(getattr(error, "message", "") or error).split())
    return text if len(text) <= 300 else text[:297] + "..."
