"""Cloud Storage for the data plane: objects, their noncurrent versions, V4 signed URLs and public URLs.

Signed URLs are signed as the service's own account: on Cloud Run its credentials hold no key, so the
signature comes from the IAM Credentials API's ``signBlob`` (the account may sign as itself: see
docs/providers/gcp.md). Against an emulator, which checks no signature, a key made in the process signs.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from typing import Any
from urllib.parse import quote

from skyrig.provider import duration_seconds

_lock = threading.Lock()
_clients: dict[tuple[str | None, str | None, bool], Any] = {}
_signer: list[Any] = []


def client(entry: dict[str, Any]) -> Any:
    """The process's google-cloud-storage client for the entry's project and endpoint."""
    key = (entry.get("project"), entry.get("endpoint"), bool(entry.get("emulator")))
    with _lock:
        if key not in _clients:
            from google.cloud import storage

            credentials = None
            if key[2]:
                from google.auth.credentials import AnonymousCredentials

                credentials = AnonymousCredentials()
            _clients[key] = storage.Client(
                project=key[0],
                credentials=credentials,
                client_options={"api_endpoint": key[1]} if key[1] else None,
            )
        return _clients[key]


def _emulator_signer(project: str) -> Any:
    """Service account credentials with a key made in this process: what signs URLs for an emulator."""
    with _lock:
        if not _signer:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
            from google.oauth2 import service_account

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            _signer.append(
                service_account.Credentials.from_service_account_info(
                    {
                        "type": "service_account",
                        "client_email": f"skyrig-emulator@{project}.iam.gserviceaccount.com",
                        "private_key": pem,
                        "token_uri": "https://oauth2.googleapis.com/token",
                    }
                )
            )
        return _signer[0]


class BucketClient:
    """Objects of one Cloud Storage bucket."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.client = client(entry)
        self.bucket = self.client.bucket(entry["bucket"])

    def upload(self, key: str, data: bytes) -> None:
        self.bucket.blob(key).upload_from_string(data, content_type="application/octet-stream")

    def download(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(key).download_as_bytes()
        except NotFound:
            raise KeyError(f"bucket {self.bucket.name!r} has no object {key!r}") from None

    def list(self, prefix: str = "") -> list[str]:
        return sorted(blob.name for blob in self.client.list_blobs(self.bucket, prefix=prefix))

    def remove(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self.bucket.blob(key).delete()

    def versions(self, key: str) -> list[bytes]:
        """The bytes of ``key``'s noncurrent versions, oldest first."""
        # the JSON API's boolean as its documented text: the library would send Python's "True"
        listed = self.client.list_blobs(self.bucket, prefix=key, versions="true")
        noncurrent = sorted(
            (blob for blob in listed if blob.name == key and blob.time_deleted is not None),
            key=lambda blob: blob.generation,
        )
        return [self.bucket.blob(key, generation=blob.generation).download_as_bytes() for blob in noncurrent]

    def public_url(self, key: str) -> str:
        if not self.entry.get("public"):
            raise PermissionError(
                f"bucket {self.bucket.name!r} is not public: use signed_url for a temporary link"
            )
        return f"{self.entry['public_url'].rstrip('/')}/{quote(key)}"

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        method = method.upper()
        if method not in ("GET", "PUT", "DELETE"):
            raise ValueError(f"signed URLs grant GET, PUT or DELETE, not {method!r}")
        return self.bucket.blob(key).generate_signed_url(
            version="v4",
            expiration=datetime.timedelta(seconds=duration_seconds(expires_in)),
            method=method,
            **self._signing(),
        )

    def _signing(self) -> dict[str, Any]:
        """How to sign: an emulator's throwaway key, the credentials' own key, or IAM ``signBlob``."""
        if self.entry.get("emulator"):
            return {
                "credentials": _emulator_signer(self.entry.get("project") or "emulator"),
                "api_access_endpoint": self.entry.get("endpoint"),
            }
        from google.auth.credentials import Signing

        credentials = self.client._credentials
        if isinstance(credentials, Signing):
            return {}
        import google.auth.transport.requests

        if not credentials.valid:
            credentials.refresh(google.auth.transport.requests.Request())
        email = getattr(credentials, "service_account_email", None)
        if not email:
            raise PermissionError(
                "signed URLs are signed as a service account: run as one (as on Cloud Run), or point "
                "GOOGLE_APPLICATION_CREDENTIALS at a service account's key"
            )
        return {"service_account_email": email, "access_token": credentials.token}
