"""Credentials: Entra ID's in Azure (``DefaultAzureCredential``: ``az login``, a service principal's
environment variables, a managed identity in App Service), a test token on the emulators and fakes.

The runtime (a service's data plane) takes its credential from here too, so that the same code runs in
App Service and in the tests.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

TEST_TENANT = "72f988bf-0000-4000-8000-00000000c0de"
"""The tenant the test tokens name."""


class EmulatorCredential:
    """An azure-core ``TokenCredential`` for skyrig's fakes and Azurite (``emulator = "fake"``): an
    unsigned JWT for whatever scope is asked, with the claims Entra ID puts in one (``aud``, ``iss``,
    ``tid``, ``oid``, ``iat``, ``nbf``, ``exp``). Nothing in Azure accepts it."""

    def __init__(self, principal: str | None = None) -> None:
        self.principal = principal or str(uuid.uuid5(uuid.NAMESPACE_URL, "skyrig-test-principal"))

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        now = int(time.time())
        audience = scopes[0].removesuffix("/.default") if scopes else "https://management.azure.com"
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{TEST_TENANT}/",
            "tid": TEST_TENANT,
            "oid": self.principal,
            "sub": self.principal,
            "appid": self.principal,
            "iat": now,
            "nbf": now - 60,
            "exp": now + 3600,
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": "skyrig-test"}
        token = ".".join(_b64(part) for part in (header, claims, "skyrig-test-signature"))
        return AccessToken(token, now + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        token = self.get_token(*scopes)
        return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        """Nothing to release."""


def _b64(part: Any) -> str:
    raw = part.encode() if isinstance(part, str) else json.dumps(part, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def credential(emulator: str | None) -> Any:
    """The credential calls carry: the test token on the fakes, else ``DefaultAzureCredential`` (its
    tenant is the credentials' own, or ``AZURE_TENANT_ID``)."""
    if emulator == "fake":
        return EmulatorCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
