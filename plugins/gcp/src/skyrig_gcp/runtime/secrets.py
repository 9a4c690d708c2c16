"""Secret Manager reads for the data plane (``versions/latest:access``), cached for :data:`TTL` seconds (a
value set meanwhile is seen soon after, without a call per use)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

TTL = 30.0
_cache: dict[str, tuple[float, str]] = {}
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
    now = time.monotonic()
    with _lock:
        found = _cache.get(name)
        if found and now - found[0] < TTL:
            return found[1]
    from google.api_core import exceptions

    try:
        response = client(entry).access_secret_version(name=f"{name}/versions/latest")
    except (exceptions.NotFound, exceptions.FailedPrecondition):
        return None
    value = response.payload.data.decode()
    with _lock:
        _cache[name] = (now, value)
    return value


def forget() -> None:
    """Drop cached values (tests)."""
    with _lock:
        _cache.clear()


def resolver(entry: dict[str, Any]) -> Callable[[str], str]:
    """Resolves a password reference (a secret's id or full name) to its value."""

    def resolve(reference: str) -> str:
        value = read(entry, reference)
        if value is None:
            raise LookupError(f"the secret {reference} has no value yet")
        return value

    return resolve


class SecretClient:
    """A declared secret's value, from Secret Manager."""

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
