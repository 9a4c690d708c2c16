"""The template provider's data plane: what ``secret.value`` calls in a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SecretClient:
    """Reads a secret's value from the vault when the app asks (never kept in the runtime config)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any]) -> None:
        from skyrig_provider_template.vault import Vault

        self.vault = Vault(Path(entry["vault"]))
        self.key = entry["key"]

    def value(self, name: str) -> str:
        app, environment, _ = self.key.split("/")
        found = self.vault.value(app, environment, name)
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {environment!r}: "
                f"set it with skyrig secret set {name} --env {environment}"
            )
        return found
