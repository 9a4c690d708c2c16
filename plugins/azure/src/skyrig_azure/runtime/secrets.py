"""Key Vault reads for the data plane (a secret's latest version, with the service's own identity: the
Key Vault Secrets User role on that secret), cached for :data:`TTL` seconds (a value set meanwhile is seen
soon after, without a call per use)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

TTL = 30.0
_cache: dict[tuple[str, str], tuple[float, str]] = {}
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
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    vault, name = locate(entry, reference)
    now = time.monotonic()
    with _lock:
        found = _cache.get((vault, name))
        if found and now - found[0] < TTL:
            return found[1]
    try:
        value = client(vault, entry.get("emulator")).get_secret(name).value
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        if "disabled" in str(getattr(error, "message", "") or error).lower():
            return None  # Key Vault refuses to read a disabled version: as good as none
        raise
    if value is None:
        return None
    with _lock:
        _cache[(vault, name)] = (now, value)
    return str(value)


def forget() -> None:
    """Drop cached values (tests)."""
    with _lock:
        _cache.clear()


def resolver(entry: dict[str, Any]) -> Callable[[str], str]:
    """Resolves a password reference (a secret's name, URI or Key Vault reference) to its value."""

    def resolve(reference: str) -> str:
        value = read(entry, reference)
        if value is None:
            raise LookupError(f"the secret {reference} has no value yet")
        return value

    return resolve


class SecretClient:
    """A declared secret's value, from the environment's Key Vault."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any]) -> None:
        self.entry = entry
        self.environment = config["environment"]

    def value(self, name: str) -> str:
        """The secret's current value; a LookupError naming the command that sets it when it has none."""
        found = read(self.entry, self.entry["secret"])
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {self.environment!r}: "
                f"set it with skyrig secret set {name} --env {self.environment}"
            )
        return found
