"""The data plane of an Azure Cache for Redis: Redis over TLS (port 6380, the server's certificate checked
against the system's roots and by host name), authenticated with Microsoft Entra ID: the user is the
service's managed identity's object id and the password a token of it for Azure Cache for Redis, asked for
each new connection and renewed before it expires. The cache's access keys are off; nothing secret is in
the runtime config (its ``password`` says how to get a token, not a value).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

from skyrig.provider import RedisClient

ENTRA = "entra:"
"""The prefix of a runtime entry's ``password`` that asks for an Entra ID token (the scope follows)."""
RENEW_BEFORE = 300
"""A token is renewed this many seconds before it expires."""


def object_id(token: str) -> str:
    """The ``oid`` claim of an Entra ID access token (a JWT): the identity's object id, Redis's user
    name for it. The token is not checked here: Azure Cache for Redis checks it."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["oid"])


class EntraCredentials:
    """A redis-py ``CredentialProvider``: (object id, token) of the service's identity for ``scope``,
    cached until shortly before the token expires."""

    def __init__(self, scope: str, emulator: str | None) -> None:
        self.scope = scope
        self.emulator = emulator
        self._lock = threading.Lock()
        self._credential: Any = None
        self._token: Any = None

    def get_credentials(self) -> tuple[str, str]:
        with self._lock:
            if self._token is None or self._token.expires_on - RENEW_BEFORE < time.time():
                if self._credential is None:
                    from skyrig_azure.credentials import credential

                    self._credential = credential(self.emulator)
                self._token = self._credential.get_token(self.scope)
            return object_id(self._token.token), self._token.token


class AzureRedisClient(RedisClient):
    """:class:`~skyrig.provider.RedisClient` authenticated with Entra ID tokens where the entry asks."""

    def __init__(self, entry: dict[str, Any]) -> None:
        reference = entry.get("password")
        if not (isinstance(reference, str) and reference.startswith(ENTRA)):
            super().__init__(entry)  # no password (the tests' stand-in), or one the entry gives
            return
        super().__init__({**entry, "password": None, "username": None})
        credentials = EntraCredentials(reference.removeprefix(ENTRA), entry.get("emulator"))
        self.redis.connection_pool.connection_kwargs["credential_provider"] = credentials


def cache(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of an Azure Cache for Redis (``cache_cluster``)."""
    return AzureRedisClient(entry)
