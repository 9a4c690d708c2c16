"""Secret Manager reads for the data plane (``versions/latest:access``), cached
(:class:`skyrig.provider.CachedSecrets`: a value set meanwhile is seen soon after, without a call per
use)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from skyrig.provider import CachedSecrets, SecretClientBase, secret_resolver

_values = CachedSecrets()
_clients: dict[tuple[str | None, bool], Any] = {}
_lock = threading.Lock()


def credentials(entry: dict[str, Any]) -> Any:
    """Application Default Credentials (the service's own account on Cloud Run), or none at all against
    the emulators and skyrig's fake."""
    if entry.get("emulator"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    return None  # the client library finds Application Default Credentials itself


def client(entry: dict[str, Any]) -> Any:
    """The process's Secret Manager client for the entry's endpoint (Google's, unless an emulator's)."""
    key = (entry.get("endpoint"), bool(entry.get("emulator")))
    with _lock:
        if key not in _clients:
            from google.cloud import secretmanager_v1

            _clients[key] = secretmanager_v1.SecretManagerServiceClient(
                credentials=credentials(entry),
                transport="rest",
                client_options={"api_endpoint": key[0]} if key[0] else None,
            )
        return _clients[key]


def path(entry: dict[str, Any], secret: str) -> str:
    """``secret`` (an id, or a full ``projects/P/secrets/S`` name) as a full name."""
    return secret if secret.startswith("projects/") else f"projects/{entry['project']}/secrets/{secret}"


def read(entry: dict[str, Any], secret: str) -> str | None:
    """The value of the newest enabled version of Secret Manager secret ``secret``, or None if it has
    none (never set, or every version disabled)."""
    name = path(entry, secret)
    return _values.read(name, partial(_load, entry, name))


def _load(entry: dict[str, Any], name: str) -> str | None:
    from google.api_core import exceptions

    try:
        response = client(entry).access_secret_version(name=f"{name}/versions/latest")
    except (exceptions.NotFound, exceptions.FailedPrecondition):
        return None
    return response.payload.data.decode()


def forget() -> None:
    """Drop cached values (tests)."""
    _values.forget()


def resolver(entry: dict[str, Any]) -> Callable[[str], str]:
    """Resolves a password reference (a secret's id or full name) to its value."""
    return secret_resolver(partial(read, entry))


class SecretClient(SecretClientBase):
    """A declared secret's value, from Secret Manager."""

    def stored(self, name: str) -> str | None:
        """The value of the entry's secret, or None."""
        return read(self.entry, self.entry["secret"])
