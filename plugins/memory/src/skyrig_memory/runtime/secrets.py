"""Secrets: values from the memory cloud's secret store, read each time they are asked for."""

from __future__ import annotations

from typing import Any

from skyrig_memory.cloud import open_cloud


class SecretClient:
    """Reads secret values of one environment (never cached in the process: a value set meanwhile is
    seen)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any]) -> None:
        self._cloud = open_cloud(entry["cloud"])
        self._owner = (config["app"], config["environment"])

    def value(self, name: str) -> str:
        """The value of secret ``name``; ``LookupError`` naming ``skyrig secret set`` when none is set."""
        found = self._cloud.secret_value(*self._owner, name)
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {self._owner[1]!r}: "
                f"set it with skyrig secret set {name} --env {self._owner[1]}"
            )
        return found
