"""Secrets Manager reads for the data plane, cached for :data:`TTL` seconds (a value set meanwhile is seen
soon after, without a call per use)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from skyrig_aws.runtime import aws

TTL = 30.0
_cache: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


def read(entry: dict[str, Any], secret: str) -> str | None:
    """The current value of Secrets Manager secret ``secret`` (a name or ARN), or None if it has none."""
    now = time.monotonic()
    with _lock:
        found = _cache.get(secret)
        if found and now - found[0] < TTL:
            return found[1]
    from botocore.exceptions import ClientError

    try:
        value = aws("secretsmanager", entry).get_secret_value(SecretId=secret)["SecretString"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    with _lock:
        _cache[secret] = (now, value)
    return value


def forget() -> None:
    """Drop cached values (tests)."""
    with _lock:
        _cache.clear()


def resolver(entry: dict[str, Any], field: str) -> Callable[[str], str]:
    """Resolves a password reference (a secret's ARN): RDS keeps ``{"username", "password"}`` JSON in its
    managed secret, skyrig's cache secrets the bare password."""

    def resolve(reference: str) -> str:
        value = read(entry, reference)
        if value is None:
            raise LookupError(f"the secret {reference} has no value yet")
        if value.startswith("{"):
            return json.loads(value)[field]
        return value

    return resolve


class SecretClient:
    """A declared secret's value, from Secrets Manager."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any]) -> None:
        self.entry = entry
        self.environment = config["environment"]

    def value(self, name: str) -> str:
        found = read(self.entry, self.entry["secret"])
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {self.environment!r}: "
                f"set it with skyrig secret set {name} --env {self.environment}"
            )
        return found
