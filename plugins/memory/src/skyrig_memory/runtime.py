"""The memory provider's data plane: what the runtime SDK calls in a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class SecretClient:
    """Reads secret values from the simulated cloud's secret store (never cached in the process)."""

    def __init__(self, cloud: str, app: str, environment: str) -> None:
        from skyrig_memory.cloud import MemoryCloud
        from skyrig_memory.settings import MemorySettings

        self._cloud = MemoryCloud(Path(cloud), MemorySettings())
        self._owner = (app, environment)

    def value(self, name: str) -> str:
        found = self._cloud.secret_value(*self._owner, name)
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {self._owner[1]!r}: "
                f"set it with skyrig secret set {name} --env {self._owner[1]}"
            )
        return found


def client_for(kind: str, entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane client for one resource."""
    if kind == "secret":
        return SecretClient(entry["cloud"], config["app"], config["environment"])
    raise NotImplementedError(f"the memory provider has no data plane for {kind} yet")
