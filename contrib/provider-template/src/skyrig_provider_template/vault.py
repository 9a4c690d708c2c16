"""The "cloud" of the template provider: a vault of secret containers and values, one JSON file each.

This is where a real provider calls its service's API (with the SDK imported here, not in
``__init__``). Containers and values are kept apart, as secret services do: skyrig creates the
container; the value is set out of band (``skyrig secret set``) and never passes through state.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class Vault:
    """Secret containers (with ownership tags) and their values, in a folder only the user can read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, kind: str, key: str) -> Path:
        return self.folder / kind / f"{key.replace('/', '--')}.json"

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".write-")  # 0600, replaced whole
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream)
        Path(temporary).replace(path)

    @staticmethod
    def key(app: str, environment: str, name: str) -> str:
        """A container's id: unique per app and environment."""
        return f"{app}/{environment}/{name}"

    def create_container(self, key: str, tags: dict[str, str]) -> dict[str, Any]:
        self._write(self._file("containers", key), {"key": key, "tags": tags})
        return self.container(key)  # type: ignore[return-value]

    def container(self, key: str) -> dict[str, Any] | None:
        path = self._file("containers", key)
        return json.loads(path.read_text()) if path.exists() else None

    def delete_container(self, key: str) -> None:
        self._file("containers", key).unlink(missing_ok=True)
        self._file("values", key).unlink(missing_ok=True)

    def containers(self, app: str, environment: str) -> list[str]:
        """The ids of every container tagged with ``app`` and ``environment``."""
        found = []
        for path in sorted((self.folder / "containers").glob("*.json")):
            data = json.loads(path.read_text())
            if data["tags"].get("skyrig:app") == app and data["tags"].get("skyrig:env") == environment:
                found.append(data["key"])
        return found

    def put_value(self, app: str, environment: str, name: str, value: str) -> None:
        self._write(self._file("values", self.key(app, environment, name)), {"value": value})

    def value(self, app: str, environment: str, name: str) -> str | None:
        path = self._file("values", self.key(app, environment, name))
        return json.loads(path.read_text())["value"] if path.exists() else None
