"""Key Vault reads for the data plane (a secret's latest version, with the service's own identity: the
Key Vault Secrets User role on that secret), cached (:class:`skyrig.provider.CachedSecrets`: a value set
meanwhile is seen soon after, without a call per use)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from skyrig.provider import CachedSecrets, SecretClientBase, secret_resolver

_values = CachedSecrets()
_clients: dict[tuple[str, str | None], Any] = {}
_lock = threading.Lock()


def client(vault_uri: str, emulator: str | None) -> Any:
    """The process's azure-keyvault-secrets client of the vault at ``vault_uri``."""
    key = (vault_uri, emulator)
    with _lock:
        if key not in _clients:
            from azure.keyvault.secrets import SecretClient

            from skyrig_azure.credentials import credential

            # a fake's vault is at 127.0.0.1, not under vault.azure.net: the challenge cannot match it
            _clients[key] = SecretClient(
                vault_uri, credential(emulator), verify_challenge_resource=emulator is None
            )
        return _clients[key]


def locate(entry: dict[str, Any], reference: str) -> tuple[str, str]:
    """``reference`` as (vault URI, secret name): a name in the entry's vault, a secret URI
    (``https://VAULT.vault.azure.net/secrets/NAME[/VERSION]``) or an App Service Key Vault reference
    (``@Microsoft.KeyVault(SecretUri=...)``)."""
    text = reference.strip()
    if text.startswith("@Microsoft.KeyVault(SecretUri=") and text.endswith(")"):
        text = text.removeprefix("@Microsoft.KeyVault(SecretUri=").removesuffix(")")
    if "://" in text and "/secrets/" in text:
        vault, _, rest = text.partition("/secrets/")
        return vault + "/", rest.strip("/").split("/")[0]
    return entry["vault_uri"], text


def read(entry: dict[str, Any], reference: str) -> str | None:
    """The value of the latest version of the secret ``reference`` names (see :func:`locate`), or None
    if it has none (never set, deleted, or its latest version disabled)."""
    vault, name = locate(entry, reference)
    return _values.read((vault, name), partial(_load, vault, name, entry.get("emulator")))


def _load(vault: str, name: str, emulator: str | None) -> str | None:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        value = client(vault, emulator).get_secret(name).value
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        if "disabled" in str(getattr(error, "message", "") or error).lower():
            return None  # Key Vault refuses to read a disabled version: as good as none
        raise
    return None if value is None else str(value)


def forget() -> None:
    """Drop cached values (tests)."""
    _values.forget()


def resolver(entry: dict[str, Any]) -> Callable[[str], str]:
    """Resolves a password reference (a secret's name, URI or Key Vault reference) to its value."""
    return secret_resolver(partial(read, entry))


class SecretClient(SecretClientBase):
    """A declared secret's value, from the environment's Key Vault."""

    def stored(self, name: str) -> str | None:
        """The value of the entry's secret, or None."""
        return read(self.entry, self.entry["secret"])
