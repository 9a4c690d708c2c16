"""Node types whose whole state is their settings, kept as one JSON file per node on local disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from skyrig.provider import Context, Node, NodeType, Observed


def environment_folder(context: Context) -> Path:
    """``.skyrig/local/ENV``: where the local provider keeps an environment's data."""
    return context.client.root / context.settings.data / context.environment.name.replace(":", "-")


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a crash mid-write leaves the previous content (or none)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)


class RecordType(NodeType):
    """A node recorded as ``ENV/<folder>/<name>.json``; its outputs are its properties."""

    folder: ClassVar[str]

    def path(self, context: Context, node: Node) -> Path:
        return environment_folder(context) / self.folder / f"{node.id.rpartition('/')[2]}.json"

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        path = Path(provider_id)
        if not path.exists():
            return None
        properties = json.loads(path.read_text())
        return Observed(provider_id, properties, dict(properties))

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, str(self.path(context, node)))

    def create(self, context: Context, node: Node) -> Observed:
        return self.update(context, node, str(self.path(context, node)), dict(node.properties))

    def update(self, context: Context, node: Node, provider_id: str, changes: Any) -> Observed:
        path = Path(provider_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(path.read_text()) if path.exists() else {}
        write_atomically(path, json.dumps({**current, **changes}, sort_keys=True))
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        Path(provider_id).unlink(missing_ok=True)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}
