"""Secrets Manager reads for the data plane, cached (:class:`skyrig.provider.CachedSecrets`: a value set
meanwhile is seen soon after, without a call per use)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

from skyrig.provider import CachedSecrets, SecretClientBase, secret_resolver
from skyrig_aws.runtime import aws

_values = CachedSecrets()


def read(entry: dict[str, Any], secret: str) -> str | None:
    """The current value of Secrets Manager secret ``secret`` (a name or ARN), or None if it has none."""
    return _values.read(secret, partial(_load, entry, secret))


def _load(entry: dict[str, Any], secret: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        return aws("secretsmanager", entry).get_secret_value(SecretId=secret)["SecretString"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def forget() -> None:
    """Drop cached values (tests)."""
    _values.forget()


def resolver(entry: dict[str, Any], field: str) -> Callable[[str], str]:
    """Resolves a password reference (a secret's ARN): RDS keeps ``{"username", "password"}`` JSON in its
    managed secret, skyrig's cache secrets the bare password."""

    def pick(value: str) -> str:
        return json.loads(value)[field] if value.startswith("{") else value

    return secret_resolver(partial(read, entry), pick)


class SecretClient(SecretClientBase):
    """A declared secret's value, from Secrets Manager."""

    def stored(self, name: str) -> str | None:
        """The value of the entry's secret, or None."""
        return read(self.entry, self.entry["secret"])
