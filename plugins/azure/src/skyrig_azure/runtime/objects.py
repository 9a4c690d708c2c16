"""Blob Storage for the data plane: blobs of one container, their earlier versions, user delegation SAS
URLs and public URLs.

Every request carries the service's Entra ID token (the storage account allows no shared key): the
credential is :func:`skyrig_azure.credentials.credential` (the service's managed identity in App Service,
the test token on Azurite). A signed URL is a user delegation SAS: signed with a user delegation key the
service obtains with that token (its Storage Blob Data role includes the right to), never with an account
key. The key is kept until it expires and serves every URL that expires before it.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from typing import Any

from skyrig.provider import duration_seconds

MAX_SAS_SECONDS = 7 * 24 * 3600
"""The longest a user delegation key (hence a URL signed with it) lasts: seven days."""
_KEY_SECONDS = 24 * 3600
"""How long a user delegation key is asked for, unless a URL needs longer."""
_CLOCK_SKEW = datetime.timedelta(minutes=5)

_lock = threading.Lock()
_services: dict[tuple[str, str | None], Any] = {}
_keys: dict[str, Any] = {}


def service(entry: dict[str, Any]) -> Any:
    """The process's azure-storage-blob client of the entry's blob endpoint, with the service's
    credential."""
    key = (entry["endpoint"], entry.get("emulator"))
    with _lock:
        if key not in _services:
            from azure.storage.blob import BlobServiceClient

            from skyrig_azure.credentials import credential

            _services[key] = BlobServiceClient(account_url=key[0], credential=credential(key[1]))
        return _services[key]


def delegation_key(entry: dict[str, Any], until: datetime.datetime) -> Any:
    """A user delegation key of the entry's account valid at least ``until``: the one kept, or a new one
    (asked for a day, or up to seven days when ``until`` is further)."""
    endpoint = entry["endpoint"]
    with _lock:
        kept = _keys.get(endpoint)
    if kept is not None and _expiry(kept) >= until:
        return kept
    now = datetime.datetime.now(datetime.UTC)
    expiry = min(max(until, now + datetime.timedelta(seconds=_KEY_SECONDS)), now + _max_delta())
    made = service(entry).get_user_delegation_key(now - _CLOCK_SKEW, expiry)
    with _lock:
        _keys[endpoint] = made
    return made


def _max_delta() -> datetime.timedelta:
    return datetime.timedelta(seconds=MAX_SAS_SECONDS)


def _expiry(key: Any) -> datetime.datetime:
    value = key.signed_expiry
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class BucketClient:
    """Blobs of one container."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.service = service(entry)
        self.container = self.service.get_container_client(entry["container"])

    def upload(self, key: str, data: bytes) -> None:
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type="application/octet-stream")
        self.container.upload_blob(key, data, overwrite=True, content_settings=settings)

    def download(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self.container.download_blob(key).readall())
        except ResourceNotFoundError:
            raise KeyError(f"bucket {self.entry['container']!r} has no object {key!r}") from None

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.container.list_blob_names(name_starts_with=prefix or None))

    def remove(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self.container.delete_blob(key)

    def versions(self, key: str) -> list[bytes]:
        """The bytes of ``key``'s earlier versions (Blob versioning's previous versions), oldest first."""
        listed = self.container.list_blobs(name_starts_with=key, include=["versions"])
        earlier = sorted(
            blob.version_id
            for blob in listed
            if blob.name == key and blob.version_id and not blob.is_current_version
        )
        return [bytes(self.container.download_blob(key, version_id=v).readall()) for v in earlier]

    def public_url(self, key: str) -> str:
        from urllib.parse import quote

        if not self.entry.get("public"):
            raise PermissionError(
                f"bucket {self.entry['container']!r} is not public: use signed_url for a temporary link"
            )
        base = (
            self.entry.get("public_url") or f"{self.entry['endpoint'].rstrip('/')}/{self.entry['container']}"
        )
        return f"{base.rstrip('/')}/{quote(key)}"

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        method = method.upper()
        permissions = {
            "GET": BlobSasPermissions(read=True),
            "PUT": BlobSasPermissions(create=True, write=True),
            "DELETE": BlobSasPermissions(delete=True),
        }
        if method not in permissions:
            raise ValueError(f"signed URLs grant GET, PUT or DELETE, not {method!r}")
        seconds = duration_seconds(expires_in)
        if seconds > MAX_SAS_SECONDS:
            raise ValueError(
                f"a signed URL lasts at most 7 days (a user delegation key's life), not {expires_in}"
            )
        now = datetime.datetime.now(datetime.UTC)
        expiry = now + datetime.timedelta(seconds=seconds)
        blob = self.container.get_blob_client(key)
        token = generate_blob_sas(
            account_name=self.service.account_name,
            container_name=self.entry["container"],
            blob_name=key,
            user_delegation_key=delegation_key(self.entry, expiry),
            permission=permissions[method],
            start=now - _CLOCK_SKEW,
            expiry=expiry,
            protocol="https",
        )
        return f"{blob.url}?{token}"
