"""The data plane of a Cloud SQL database: PostgreSQL over mutual TLS, as Google's Cloud SQL connectors do it.

The instance requires a client certificate it signed (``sslMode`` TRUSTED_CLIENT_CERTIFICATE_REQUIRED): a
fresh key pair is made in the process, its public half signed by the Admin API's
``connect.generateEphemeralCert`` (valid an hour, renewed before it runs out), and the server is checked
against the instance's CA (``connect.get``), which also gives the private IP where the entry has none. The
``postgres`` password is read from Secret Manager when a connection is made. Certificates and the key are
in a folder only this process's user can read; nothing of them is in the runtime config.
"""

from __future__ import annotations

import datetime
import tempfile
import threading
from pathlib import Path
from typing import Any

from skyrig.provider import PostgresClient

RENEW_BEFORE = datetime.timedelta(minutes=5)
"""An ephemeral certificate is renewed this long before it expires."""
_TLS_MODES = ("require", "verify-ca", "verify-full")


def credentials(entry: dict[str, Any]) -> Any:
    """Application Default Credentials (the service's own account on Cloud Run), or none at all against
    the emulators and skyrig's fake."""
    if entry.get("emulator"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth

    found, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return found


def secret_resolver(entry: dict[str, Any]) -> Any:
    """Reads a Secret Manager version (``projects/P/secrets/S/versions/latest``) when connecting."""

    def resolve(reference: str) -> str:
        from google.cloud import secretmanager_v1

        endpoint = (entry.get("endpoints") or {}).get("secretmanager")
        client = secretmanager_v1.SecretManagerServiceClient(
            credentials=credentials(entry),
            transport="rest",
            client_options={"api_endpoint": endpoint} if endpoint else None,
        )
        return bytes(client.access_secret_version(name=reference).payload.data).decode()

    return resolve


class CloudSqlClient(PostgresClient):
    """:class:`~skyrig.provider.PostgresClient` with Cloud SQL's client certificates and private IP."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry, secret_resolver(entry))
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._expires: datetime.datetime | None = None

    def _admin(self) -> Any:
        from googleapiclient.discovery import build

        endpoint = (self.entry.get("endpoints") or {}).get("sqladmin")
        return build(
            "sqladmin",
            "v1",
            credentials=credentials(self.entry),
            client_options={"api_endpoint": endpoint} if endpoint else None,
            static_discovery=True,
            cache_discovery=False,
        )

    def _certificates(self) -> Path:
        """The folder holding ``ca.pem``, ``cert.pem`` and ``key.pem``, renewed when due."""
        with self._lock:
            now = datetime.datetime.now(datetime.UTC)
            if self._folder is not None and self._expires is not None and now < self._expires - RENEW_BEFORE:
                return self._folder
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            admin = self._admin()
            project, instance = self.entry["project"], self.entry["instance"]
            settings = admin.connect().get(project=project, instance=instance).execute()
            signed = (
                admin.connect()
                .generateEphemeralCert(
                    project=project, instance=instance, body={"public_key": public.decode()}
                )
                .execute()
            )
            certificate = signed["ephemeralCert"]["cert"]
            folder = self._folder or Path(tempfile.mkdtemp(prefix="skyrig-cloudsql-"))
            folder.chmod(0o700)
            (folder / "ca.pem").write_text(settings["serverCaCert"]["cert"])
            (folder / "cert.pem").write_text(certificate)
            key_file = folder / "key.pem"
            key_file.touch(mode=0o600)
            key_file.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
            )
            if not self.entry.get("host"):
                private = [a for a in settings.get("ipAddresses", []) if a.get("type") == "PRIVATE"]
                if not private:
                    raise LookupError(f"Cloud SQL instance {instance} has no private IP address")
                self.entry = {**self.entry, "host": private[0]["ipAddress"]}
            self._expires = x509.load_pem_x509_certificate(certificate.encode()).not_valid_after_utc
            self._folder = folder
            return folder

    def url(self) -> str:
        if self.entry.get("sslmode") not in _TLS_MODES or not self.entry.get("instance"):
            return super().url()  # a plain server (the tests' stand-in): no Cloud SQL certificates
        folder = self._certificates()
        files = "".join(
            f"&{option}={folder / name}"
            for option, name in (("sslrootcert", "ca.pem"), ("sslcert", "cert.pem"), ("sslkey", "key.pem"))
        )
        return super().url() + files


def database(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a Cloud SQL database (``sql_database``)."""
    return CloudSqlClient(entry)
