"""The data plane of an Azure Database for PostgreSQL database: PostgreSQL over TLS, the server checked by
name against the system's certificate authorities (Azure's server certificates chain to DigiCert and
Microsoft roots; libpq's ``sslrootcert=system``), as the administrator whose password is read from the
environment's Key Vault with the service's managed identity when a connection is made (the runtime config
holds only the secret's URI).

``python -m skyrig_azure.runtime.sql`` is the migration job (:func:`skyrig_azure.sql.migration_job`): it
applies a database's migrations before the services roll out, connecting as the services do.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

from skyrig.provider import CachedSecrets, PostgresClient

TTL = 300.0
"""Seconds a password read from Key Vault is kept before it is read again (a rotated one is seen then)."""
_TLS_MODES = ("verify-ca", "verify-full")
_passwords = CachedSecrets(TTL)


def read_secret(entry: dict[str, Any], uri: str) -> str:
    """The current value of the Key Vault secret at ``uri`` (``https://VAULT/secrets/NAME[/VERSION]``),
    read with the service's credential (its managed identity in Azure, the test token on the fakes)."""
    value = _passwords.read(uri, partial(_load, entry, uri))
    if value is None:
        raise LookupError(f"the Key Vault secret {uri} has no value")
    return value


def _load(entry: dict[str, Any], uri: str) -> str | None:
    from azure.keyvault.secrets import KeyVaultSecretIdentifier, SecretClient

    from skyrig_azure.credentials import credential

    secret = KeyVaultSecretIdentifier(uri)
    options: dict[str, Any] = {}
    if entry.get("emulator"):
        options["verify_challenge_resource"] = False  # the fake vault is not at *.vault.azure.net
    client = SecretClient(secret.vault_url, credential(entry.get("emulator")), **options)
    with client:
        return client.get_secret(secret.name, secret.version).value


def forget() -> None:
    """Drop the passwords read (tests)."""
    _passwords.forget()


class AzurePostgresClient(PostgresClient):
    """:class:`~skyrig.provider.PostgresClient` with the password from Key Vault and the server's
    certificate checked against the system's roots."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry, lambda uri: read_secret(entry, uri))

    def url(self) -> str:
        url = super().url()
        if self.entry.get("sslmode") in _TLS_MODES and not self.entry.get("sslrootcert"):
            url += "&sslrootcert=system"
        return url


def database(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a PostgreSQL flexible server's database (``sql_database``)."""
    return AzurePostgresClient(entry)


def main() -> None:
    """The migration job: applies ``SKYRIG_DATABASE``'s migrations (see :func:`skyrig_azure.sql.
    migration_job` for its environment)."""
    from skyrig.provider import migrate

    name = os.environ["SKYRIG_DATABASE"]
    entry = {
        **json.loads(os.environ["SKYRIG_DB_CONNECTION"]),
        "host": os.environ["SKYRIG_DB_HOST"],
        "password": os.environ["SKYRIG_DB_PASSWORD"],
        "database": name,
    }
    migrations = json.loads(os.environ["SKYRIG_MIGRATIONS"])
    files = json.loads(os.environ["SKYRIG_MIGRATION_FILES"])
    with AzurePostgresClient(entry).connect(autocommit=True) as connection:
        migrate(connection, name, migrations, files, Path(os.environ.get("SKYRIG_APP_ROOT", ".")))
    print(f"database {name}: {len(migrations)} migration(s) applied or present")


if __name__ == "__main__":
    main()
