"""The Azure Blob Storage store: skyrig's store over an object store (:mod:`skyrig.state.objectlog`) in a
container, each object created with ``If-None-Match: *``, and the lease mirrored as a blob lease; what is
Azure's own here: the client, the URL, the credentials, the blob lease and Azure's errors (the package's
docstring says more)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContentSettings, ExponentialRetry

from skyrig.state import StateUnusable, masked
from skyrig.state.objectlog import READERS, ObjectLogStore, bucket_url

CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
"""The Azure CLI's variable: the account's endpoint and key (or SAS) in one string; Azurite's too."""
ACCOUNT_KEY = "AZURE_STORAGE_KEY"
"""The Azure CLI's variable: the account's key, used instead of Entra ID."""
ENDPOINT = "SKYRIG_AZBLOB_ENDPOINT"
"""The blob endpoint when it is not ``https://ACCOUNT.blob.core.windows.net`` (a sovereign cloud, Azurite
with OAuth): ``{account}`` in it is replaced by the URL's account."""
RETRIES = 5
"""Retries of what Azure says is worth retrying (408, 5xx, a lost connection), 1 + 2**n seconds apart."""
TIMEOUT = (5, 30)
"""Seconds to connect, and to wait for an answer, per request."""
LOCK = "lock"
"""The blob, beside an environment's log, whose blob lease mirrors the log's lease."""
FAILURES = (AzureError, OSError, ValueError)
JSON = ContentSettings(content_type="application/json")
_CONFLICTS = (409, 412)
ATTEMPTS = 5
"""Tries to take a blob lease that another holder's lease, over in the log, still holds."""


class AzureBlobStore(ObjectLogStore):
    """State of every environment of one app, under ``azblob://ACCOUNT/CONTAINER/PREFIX/``; the lease of
    each environment is also a blob lease on ``PREFIX/ENV/lock``, taken after the log grants it."""

    def __init__(self, url: str, root: Path) -> None:
        account, container, prefix = parse(url, root)
        objects = _Container(url, account, container, prefix)
        super().__init__(
            objects,
            url,
            prefix,
            package="skyrig-state-azblob",
            versions="the container's blob versions (or soft-deleted blobs)",
        )
        self.account, self.container = account, container
        self._container = objects

    def lease_id(self, env: str, fence: int) -> str:
        """The blob lease id of the lease ``fence`` of ``env``: derived from it, so that any handle (the
        heartbeat's, another process's ``release``) holding the fence can renew or release the blob lease."""
        name = f"azblob://{self.account}/{self.container}/{self._lock(env)}#{fence}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

    def _lock(self, env: str) -> str:
        return f"{self.prefix}/{env}/{LOCK}" if self.prefix else f"{env}/{LOCK}"

    def acquire(self, env: str, holder: str, ttl: float) -> int:
        """See :meth:`skyrig.state.StateStore.acquire`: the log grants the lease (and its fence), then the
        blob lease is taken; if that fails, the log's lease is let go and the error raised."""
        fence = super().acquire(env, holder, ttl)
        try:
            self._container.hold(self._lock(env), self.lease_id(env, fence), _duration(ttl), holder, fence)
        except StateUnusable:
            super().release(env, fence)
            raise
        return fence

    def renew(self, env: str, fence: int, ttl: float) -> bool:
        """See :meth:`skyrig.state.StateStore.renew`: the blob lease is renewed (taken again if it was
        broken) when the log renews the lease. The log's answer stands: a blob lease that cannot be renewed
        (the network, for a moment) only runs out, and the next renewal takes it again."""
        renewed = super().renew(env, fence, ttl)
        if renewed:
            with contextlib.suppress(StateUnusable):
                self._container.renew(self._lock(env), self.lease_id(env, fence), _duration(ttl), fence)
        return renewed

    def release(self, env: str, fence: int) -> None:
        """See :meth:`skyrig.state.StateStore.release`: the blob lease too, if it is still this fence's (if
        that fails, it runs out by itself, or the next holder breaks it)."""
        super().release(env, fence)
        with contextlib.suppress(StateUnusable):
            self._container.let_go(self._lock(env), self.lease_id(env, fence))

    def break_lease(self, env: str) -> None:
        """See :meth:`skyrig.state.StateTransfer.break_lease`: the blob lease is broken too (if that fails,
        the next holder breaks it)."""
        super().break_lease(env)
        with contextlib.suppress(StateUnusable):
            self._container.broken(self._lock(env))


class _Retry(ExponentialRetry):
    """azure-storage-blob's exponential retry, except of credentials that give no token: the storage
    policy retries every Azure error, and would make a missing login wait for the whole budget."""

    def increment(self, settings: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if isinstance(error, ClientAuthenticationError) and response is None:
            return False
        return bool(super().increment(settings, request, response, error))


def _duration(ttl: float) -> int:
    """A blob lease's duration for a lease of ``ttl`` seconds: Azure takes 15 to 60 seconds, or -1 (until
    released or broken), which serves a TTL whose heartbeat (every TTL/3) could miss 60 s."""
    return min(max(15, math.ceil(ttl)), 60) if ttl <= 150 else -1


class _Container:
    """The container, as :class:`~skyrig.state.objectlog.ObjectStore` (and the blob lease's calls):
    azure-storage-blob's calls, retried by its policy, and what Azure answers made a
    :class:`~skyrig.state.StateUnusable` that says what to do."""

    def __init__(self, url: str, account: str, container: str, prefix: str) -> None:
        self.url, self.account, self.container = url, account, container
        self.endpoint = "?"
        options: dict[str, Any] = {
            "retry_policy": _Retry(
                initial_backoff=1, increment_base=2, retry_total=RETRIES, random_jitter_range=1
            ),
            "connection_timeout": TIMEOUT[0],
            "read_timeout": TIMEOUT[1],
            "transport": _transport(),
        }
        try:
            self.client = _client(account, options)
        except StateUnusable:
            raise
        except FAILURES as error:
            raise self._unusable("cannot make an Azure Blob Storage client", error) from None
        self.endpoint = self.client.url.split("?")[0].rstrip("/")  # a SAS is in the query
        self._container = self.client.get_container_client(container)
        # a list, not the container's properties: it needs the list permission only, which reads need anyway
        self._names(f"{prefix}/", most=1, what="open the container")

    # -- the object store -------------------------------------------------------------------------

    def create(self, key: str, body: bytes) -> bool:
        try:
            # overwrite=False: If-None-Match: *, refused (409 BlobAlreadyExists) when the blob exists
            self._container.upload_blob(key, body, overwrite=False, content_settings=JSON, timeout=30)
        except (ResourceExistsError, HttpResponseError) as error:
            if error.status_code not in _CONFLICTS:
                raise self._unusable(f"cannot write {key}", error) from None
            if getattr(error, "error_code", None) != "BlobAlreadyExists":  # a create in flight
                time.sleep(random.uniform(0.005, 0.05))
            return False
        except FAILURES as error:
            raise self._unusable(f"cannot write {key}", error) from None
        return True

    def read(self, key: str) -> bytes:
        try:
            return self._container.download_blob(key, timeout=30).readall()
        except FAILURES as error:
            raise self._unusable(f"cannot read {key}", error) from None

    def list(self, prefix: str, after: str = "", most: int | None = None) -> list[str]:
        # startFrom (service version 2026-02-06) lists from a name on, inclusive; a service that ignores it
        # (Azurite) lists from the start: the names up to `after` are dropped here either way
        names = []
        for name in self._names(prefix, start=after):
            if name > after:
                names.append(name)
                if most is not None and len(names) >= most:
                    break
        return names

    def close(self) -> None:
        self.client.close()

    def _names(self, prefix: str, start: str = "", most: int | None = None, what: str = "") -> list[str]:
        try:
            pages = self._container.list_blob_names(
                name_starts_with=prefix,
                results_per_page=most or 5000,
                **({"start_from": start} if start else {}),
                timeout=30,
            )
            if most is not None:
                return list(next(iter(pages.by_page()), []))[:most]
            return list(pages)
        except FAILURES as error:
            raise self._unusable(f"cannot {what or 'list ' + prefix}", error) from None

    # -- the blob lease -----------------------------------------------------------------------------

    def hold(self, key: str, lease_id: str, duration: int, holder: str, fence: int) -> None:
        """Take the blob lease of ``key`` as ``lease_id`` (breaking one the log says is over), and write
        who holds it into the blob's metadata with that lease id."""
        blob = self._container.get_blob_client(key)
        try:
            for attempt in range(ATTEMPTS):
                try:
                    blob.acquire_lease(lease_duration=duration, lease_id=lease_id, timeout=30)
                    break
                except ResourceNotFoundError:
                    with contextlib.suppress(ResourceExistsError):  # made meanwhile by another
                        blob.upload_blob(b"", overwrite=False, timeout=30)
                except (ResourceExistsError, HttpResponseError) as error:
                    if error.status_code not in _CONFLICTS or attempt == ATTEMPTS - 1:
                        raise
                    # the log granted this lease, so the blob lease there is one the log says is over (its
                    # holder released it in the log and is releasing it here, or expired, or crashed)
                    self.broken(key)
            shown = re.sub(r"[^\x20-\x7e]", "?", holder)[:200].strip()  # metadata are HTTP headers
            blob.set_blob_metadata({"holder": shown, "fence": str(fence)}, lease=lease_id, timeout=30)
        except FAILURES as error:
            raise self._unusable(f"cannot take the blob lease of {key}", error) from None

    def renew(self, key: str, lease_id: str, duration: int, fence: int) -> None:
        """Renew the blob lease ``lease_id`` of ``key``; take it again if it was broken or lost."""
        from azure.storage.blob import BlobLeaseClient

        try:
            BlobLeaseClient(self._container.get_blob_client(key), lease_id).renew(timeout=30)
        except (ResourceExistsError, ResourceNotFoundError, HttpResponseError) as error:
            if error.status_code not in (404, *_CONFLICTS):
                raise self._unusable(f"cannot renew the blob lease of {key}", error) from None
            metadata = self._metadata(key)
            self.hold(key, lease_id, duration, metadata.get("holder", "?"), fence)
        except FAILURES as error:
            raise self._unusable(f"cannot renew the blob lease of {key}", error) from None

    def let_go(self, key: str, lease_id: str) -> None:
        """Release the blob lease ``lease_id`` of ``key``, if it still holds it."""
        from azure.storage.blob import BlobLeaseClient

        try:
            BlobLeaseClient(self._container.get_blob_client(key), lease_id).release(timeout=30)
        except (ResourceExistsError, ResourceNotFoundError, HttpResponseError) as error:
            if error.status_code not in (404, *_CONFLICTS):  # another holder's, or none: the log decides
                raise self._unusable(f"cannot release the blob lease of {key}", error) from None
        except FAILURES as error:
            raise self._unusable(f"cannot release the blob lease of {key}", error) from None

    def broken(self, key: str) -> None:
        """Break the blob lease of ``key`` at once, if there is one."""
        from azure.storage.blob import BlobLeaseClient

        try:
            lease = BlobLeaseClient(self._container.get_blob_client(key))
            lease.break_lease(lease_break_period=0, timeout=30)
        except (ResourceExistsError, ResourceNotFoundError, HttpResponseError) as error:
            if error.status_code not in (404, *_CONFLICTS):
                raise self._unusable(f"cannot break the blob lease of {key}", error) from None
        except FAILURES as error:
            raise self._unusable(f"cannot break the blob lease of {key}", error) from None

    def _metadata(self, key: str) -> dict[str, str]:
        try:
            return dict(self._container.get_blob_client(key).get_blob_properties(timeout=30).metadata or {})
        except ResourceNotFoundError:
            return {}

    # -- errors -------------------------------------------------------------------------------------

    def _unusable(self, what: str, error: BaseException) -> StateUnusable:
        where = f"state: {masked(self.url)}"
        doing = what.removeprefix("cannot ")
        status = getattr(error, "status_code", None)
        code = getattr(error, "error_code", None) or ""
        if isinstance(error, ClientAuthenticationError) and status is None:
            return StateUnusable(
                f"{where}: no Azure credentials found, or they were refused, when trying to {doing} "
                f"({_short(error)})",
                "run az login, or run where a managed identity or workload identity is attached "
                "(DefaultAzureCredential), or set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY; "
                "skyrig.toml holds none",
            )
        if status == 404 and (code == "ContainerNotFound" or what == "cannot open the container"):
            return StateUnusable(
                f"{where}: the container {self.container!r} does not exist in account {self.account!r} "
                f"(at {self.endpoint})",
                "create it (with blob versioning or soft delete on), or point state at another container; "
                "skyrig never creates it",
            )
        if status in (401, 403):
            return StateUnusable(
                f"{where}: access denied ({code or status}) when trying to {doing}",
                "the identity needs the role Storage Blob Data Contributor on the container (read, list, "
                "write and lease its blobs; skyrig never deletes one), or give the account's key through "
                f"{CONNECTION_STRING} or {ACCOUNT_KEY}",
            )
        if isinstance(error, ServiceRequestError | ServiceResponseError) or status is None:
            return StateUnusable(
                f"{where}: the account {self.account!r} cannot be reached at {self.endpoint} when trying "
                f"to {doing} ({_short(error)})",
                "check the account's name and the network (a firewall or private endpoint of the account "
                f"must admit this machine), and {ENDPOINT} or {CONNECTION_STRING} if you set one",
            )
        return StateUnusable(
            f"{where}: {what}: {status} {code}: {_short(error)}", "check the container, and the network"
        )


def _transport() -> Any:
    """azure-core's requests transport, with room for :data:`READERS` and the writers at once."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4, pool_maxsize=READERS * 2, max_retries=Retry(total=False, redirect=False)
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=True)


def _client(account: str, options: dict[str, Any]) -> BlobServiceClient:
    """The client of ``account``: from :data:`CONNECTION_STRING` when set (whose account must be the
    URL's), else at ``https://ACCOUNT.blob.core.windows.net`` (or :data:`ENDPOINT`) with
    :data:`ACCOUNT_KEY` or, by default, DefaultAzureCredential."""
    options = {**options, "max_single_put_size": 4 * 1024 * 1024}
    connection = os.environ.get(CONNECTION_STRING)
    if connection:
        try:
            client = BlobServiceClient.from_connection_string(connection, **options)
        except ValueError:
            raise StateUnusable(
                f"state: {CONNECTION_STRING} is not a storage connection string",
                "copy it from the account's Access keys (az storage account show-connection-string), or "
                "unset it to log in with Entra ID",
            ) from None
        if client.account_name != account:
            raise StateUnusable(
                f"state: {CONNECTION_STRING} is for account {client.account_name!r}, not {account!r}",
                f"name the same account in the state URL and in {CONNECTION_STRING}, or unset it",
            )
        return client
    endpoint = os.environ.get(ENDPOINT) or "https://{account}.blob.core.windows.net"
    endpoint = endpoint.replace("{account}", account)
    key = os.environ.get(ACCOUNT_KEY)
    if key:
        credential = {"account_name": account, "account_key": key}
        return BlobServiceClient(endpoint, credential=credential, **options)
    from azure.identity import DefaultAzureCredential

    quiet = logging.getLogger("azure.identity")
    if quiet.level == logging.NOTSET:  # its warning lists every credential tried; the error says what to do
        quiet.setLevel(logging.ERROR)
    entra = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return BlobServiceClient(endpoint, credential=entra, **options)


def parse(url: str, root: Path) -> tuple[str, str, str]:
    """``azblob://ACCOUNT/CONTAINER/PREFIX`` -> (account, container, prefix); no prefix: the app's name."""
    chain = (
        "credentials come from DefaultAzureCredential (az login, a managed or workload identity), or "
        f"{CONNECTION_STRING} / {ACCOUNT_KEY}, and an endpoint other than Azure's from {ENDPOINT} or "
        f"{CONNECTION_STRING}, never from the URL"
    )
    raw = re.fullmatch(r"azblob://([^/?#@:]*)/?([^?#]*)", url)
    container, _, prefix = (raw[2] if raw else "").strip("/").partition("/")
    if raw and not container:
        raise StateUnusable(
            f"state: {masked(url)} names no container", "write the URL as azblob://ACCOUNT/CONTAINER/PREFIX"
        )
    account, _ = bucket_url(
        url,
        root,
        scheme="azblob",
        store="an Azure Blob Storage",
        valid=lambda name: re.fullmatch(r"[a-z0-9]{3,24}", name) is not None,
        rule="a storage account: 3 to 24 lowercase letters and digits",
        chain=chain,
    )
    if not re.fullmatch(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]", container):
        raise StateUnusable(
            f"state: {masked(url)}: {container!r} is not a container name (3 to 63 lowercase letters, "
            "digits and single hyphens, starting and ending with a letter or digit)",
            "write the URL as azblob://ACCOUNT/CONTAINER/PREFIX",
        )
    prefix = prefix.strip("/")
    if not prefix:
        try:
            _, prefix = bucket_url(
                f"azblob://{account}", root, scheme="azblob", store="", valid=bool, rule="", chain=chain
            )
        except StateUnusable:
            raise StateUnusable(
                f"state: {masked(url)} has no prefix, and no app name says one",
                "write the URL as azblob://ACCOUNT/CONTAINER/PREFIX: one prefix per app",
            ) from None
    return account, container, prefix


def _short(error: BaseException) -> str:
    """An error's first line, cut short (a response body can be long), with any SAS signature masked (a
    connection error names the URL it tried, query included)."""
    text = str(getattr(error, "message", "") or error).strip().splitlines()
    line = " ".join(text[0].split()) if text else type(error).__name__
    line = re.sub(r"(?i)\b(sig|signature)=[^&\s'\"]*", r"\1=****", line)
    return line if len(line) <= 300 else line[:297] + "..."
