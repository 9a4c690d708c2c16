"""Key Vault's secrets data plane, for each vault the FAKE ARM holds (:mod:`skyrig_azure.fake`).

Each vault made through ARM gets its own HTTPS listener (its ``vaultUri`` is ``https://127.0.0.1:PORT/``):
azure-keyvault-secrets parses a secret's id as ``https://HOST/secrets/NAME[/VERSION]`` and refuses a path
prefix, so vaults cannot share one port by path. Requests follow Key Vault's challenge-based auth: a request
without a bearer token gets 401 with ``WWW-Authenticate: Bearer authorization="...", resource=
"https://vault.azure.net"``; any bearer token is then accepted. Bodies are validated with the SDK's own
models (``SecretSetParameters``, ``SecretUpdateParameters``). Secrets have versions (each set makes one),
can be disabled per version (a get of a disabled version is 403 ``Forbidden``/``SecretDisabled``) and are
soft-deleted (listed as deleted, recoverable, purgeable; setting a deleted name is 409).
"""

from __future__ import annotations

import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skyrig_azure.fake.calls import Call
from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.schema import load, validate
from skyrig_azure.fake.server import Listener

if TYPE_CHECKING:
    from skyrig_azure.fake.core import FakeAzure

_MODELS = "azure.keyvault.secrets._generated.models"
API_VERSIONS = ("2026-04-01", "2025-07-01", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1", "7.0", "2016-10-01")
RETENTION_DAYS = 90
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


@dataclass
class Version:
    """One version of a secret."""

    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool = True
    not_before: int | None = None
    expires: int | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    updated: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Secret:
    """A secret: its versions, oldest first; ``deleted`` once soft-deleted (a Unix time)."""

    name: str
    versions: list[Version] = field(default_factory=list)
    deleted: int | None = None


class VaultData:
    """One vault's secrets and its HTTPS listener."""

    def __init__(self, fake: FakeAzure, name: str) -> None:
        self.fake = fake
        self.name = name
        self.secrets: dict[str, Secret] = {}
        self.listener = Listener(self.answer, fake.ssl_context, f"fake-azure-vault-{name}").start()

    @property
    def url(self) -> str:
        """The vault's ``vaultUri``: ``https://127.0.0.1:PORT/``."""
        return self.listener.url + "/"

    def close(self) -> None:
        """Stops the listener."""
        self.listener.stop()

    def value(self, name: str) -> str | None:
        """The latest value of secret ``name`` (not deleted), or None: for tests."""
        with self.fake.lock:
            secret = self.secrets.get(name.lower())
            if secret is None or secret.deleted is not None or not secret.versions:
                return None
            return secret.versions[-1].value

    # -- requests -----------------------------------------------------------------------------------------

    def answer(
        self, method: str, raw_path: str, headers: dict[str, str], payload: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """Answers one data-plane request."""
        parsed = urllib.parse.urlsplit(raw_path)
        segs = [urllib.parse.unquote(s) for s in parsed.path.split("/") if s]
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        extra: dict[str, str] = {}
        mutating = method in {"PUT", "PATCH", "DELETE", "POST"}
        try:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                extra["WWW-Authenticate"] = (
                    f'Bearer authorization="https://login.microsoftonline.com/{self.fake.tenant}", '
                    'resource="https://vault.azure.net"'
                )
                raise ArmError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
            version = query.get("api-version")
            if version not in API_VERSIONS:
                raise ArmError(
                    400,
                    "BadParameter",
                    f"The specified version ({version}) is not recognized. "
                    f"Consider using the latest supported version ({API_VERSIONS[0]}).",
                )
            with self.fake.lock:
                status, body = self._route(method, segs, payload, query)
        except ArmError as error:
            status, body = error.status, error.envelope()
        # the challenge is a bodiless probe: it asks for no change
        mutating = mutating and status != 401
        self.fake.calls.add(Call("KeyVault/secrets", method, status, mutating, False, parsed.path))
        return status, extra, body

    def _route(self, method: str, segs: list[str], payload: bytes, query: dict[str, str]) -> tuple[int, Any]:
        import json

        body = json.loads(payload) if payload.strip() else None
        if segs == ["secrets"] and method == "GET":
            return 200, self._page(segs, [self._item(s) for s in self._live()], query)
        if segs == ["deletedsecrets"] and method == "GET":
            deleted = [s for s in self.secrets.values() if s.deleted is not None]
            return 200, self._page(segs, [self._deleted(s, item=True) for s in deleted], query)
        if len(segs) >= 2 and segs[0] == "secrets":
            name = segs[1]
            if not SECRET_NAME.match(name):
                raise ArmError(
                    400,
                    "BadParameter",
                    f"The secret name '{name}' is invalid: 1-127 letters, digits and dashes.",
                )
            if len(segs) == 2 and method == "PUT":
                return 200, self._set(name, body)
            if len(segs) == 2 and method == "DELETE":
                secret = self._find(name)
                secret.deleted = int(time.time())
                return 200, self._deleted(secret)
            if len(segs) == 2 and method == "GET":
                return 200, self._bundle(self._find(name), None)
            if len(segs) == 3 and segs[2] == "versions" and method == "GET":
                secret = self._find(name)
                return 200, self._page(segs, [self._item(secret, v) for v in secret.versions], query)
            if len(segs) == 3 and method == "GET":
                return 200, self._bundle(self._find(name), segs[2])
            if len(segs) == 3 and method == "PATCH":
                return 200, self._update(self._find(name), segs[2], body)
        if len(segs) >= 2 and segs[0] == "deletedsecrets":
            secret = self.secrets.get(segs[1].lower())
            if secret is None or secret.deleted is None:
                raise ArmError(404, "SecretNotFound", f"Deleted Secret not found: {segs[1]}")
            if len(segs) == 2 and method == "GET":
                return 200, self._deleted(secret)
            if len(segs) == 2 and method == "DELETE":
                del self.secrets[secret.name.lower()]
                return 204, None
            if len(segs) == 3 and segs[2] == "recover" and method == "POST":
                secret.deleted = None
                return 200, self._bundle(secret, None)
        raise ArmError(404, "NotFound", f"The fake Key Vault does not serve {method} /{'/'.join(segs)}.")

    def _live(self) -> list[Secret]:
        return [s for s in sorted(self.secrets.values(), key=lambda s: s.name) if s.deleted is None]

    def _find(self, name: str) -> Secret:
        secret = self.secrets.get(name.lower())
        if secret is None or secret.deleted is not None or not secret.versions:
            raise ArmError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {name} was not found in this key vault. "
                "If you recently deleted this secret you may be able to recover it using the correct "
                "recovery command.",
            )
        return secret

    def _set(self, name: str, body: Any) -> dict[str, Any]:
        validate(body, load(f"{_MODELS}:SecretSetParameters"))
        secret = self.secrets.get(name.lower())
        if secret is not None and secret.deleted is not None:
            raise ArmError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and "
                "its name cannot be reused; in this state, the secret can only be recovered or purged.",
            )
        if secret is None:
            secret = self.secrets[name.lower()] = Secret(name)
        attributes = body.get("attributes") or {}
        secret.versions.append(
            Version(
                uuid.uuid4().hex,
                body["value"],
                body.get("contentType"),
                body.get("tags"),
                attributes.get("enabled", True),
                attributes.get("nbf"),
                attributes.get("exp"),
            )
        )
        return self._bundle(secret, None)

    def _update(self, secret: Secret, version_id: str, body: Any) -> dict[str, Any]:
        validate(body or {}, load(f"{_MODELS}:SecretUpdateParameters"))
        version = self._version(secret, version_id)
        attributes = body.get("attributes") or {}
        if "enabled" in attributes:
            version.enabled = bool(attributes["enabled"])
        if "contentType" in body:
            version.content_type = body["contentType"]
        if "tags" in body:
            version.tags = body["tags"]
        version.updated = int(time.time())
        return self._bundle(secret, version.version, check_enabled=False, with_value=False)

    def _version(self, secret: Secret, version_id: str | None) -> Version:
        if not version_id:
            return secret.versions[-1]
        for version in secret.versions:
            if version.version == version_id:
                return version
        raise ArmError(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {secret.name}/{version_id} was not found in this key vault.",
        )

    def _id(self, secret: Secret, version: Version | None = None) -> str:
        base = f"{self.listener.url}/secrets/{secret.name}"
        return f"{base}/{version.version}" if version is not None else base

    @staticmethod
    def _attributes(version: Version) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "enabled": version.enabled,
            "created": version.created,
            "updated": version.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": RETENTION_DAYS,
        }
        if version.not_before is not None:
            attributes["nbf"] = version.not_before
        if version.expires is not None:
            attributes["exp"] = version.expires
        return attributes

    def _bundle(
        self, secret: Secret, version_id: str | None, *, check_enabled: bool = True, with_value: bool = True
    ) -> dict[str, Any]:
        version = self._version(secret, version_id)
        if check_enabled and not version.enabled:
            raise ArmError(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
        body: dict[str, Any] = {"id": self._id(secret, version), "attributes": self._attributes(version)}
        if with_value:
            body["value"] = version.value
        if version.content_type is not None:
            body["contentType"] = version.content_type
        if version.tags is not None:
            body["tags"] = version.tags
        return body

    def _item(self, secret: Secret, version: Version | None = None) -> dict[str, Any]:
        shown = version or secret.versions[-1]
        item: dict[str, Any] = {"id": self._id(secret, version), "attributes": self._attributes(shown)}
        if shown.content_type is not None:
            item["contentType"] = shown.content_type
        if shown.tags is not None:
            item["tags"] = shown.tags
        return item

    def _deleted(self, secret: Secret, *, item: bool = False) -> dict[str, Any]:
        body = (
            self._item(secret) if item else self._bundle(secret, None, check_enabled=False, with_value=False)
        )
        deleted = secret.deleted or int(time.time())
        body.update(
            {
                "recoveryId": f"{self.listener.url}/deletedsecrets/{secret.name}",
                "deletedDate": deleted,
                "scheduledPurgeDate": deleted + RETENTION_DAYS * 86400,
            }
        )
        return body

    def _page(self, segs: list[str], items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        size = int(query.get("maxresults") or 25)
        start = int(query.get("$skiptoken") or 0)
        body: dict[str, Any] = {"value": items[start : start + size], "nextLink": None}
        if start + size < len(items):
            params = {**query, "$skiptoken": str(start + size)}
            body["nextLink"] = f"{self.listener.url}/{'/'.join(segs)}?{urllib.parse.urlencode(params)}"
        return body
