"""Node types whose whole state is their settings, kept as one JSON file per node on local disk."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from skyrig.provider import Context, Node, NodeType, Observed
from skyrig_local.pids import alive

_TEMPORARY = re.compile(r"\..+\.(\d+)\.tmp")
"""A temporary of :func:`write_atomically`: ``.NAME.PID.tmp``, PID its writer's."""


def environment_folder(context: Context) -> Path:
    """``.skyrig/local/ENV``: where the local provider keeps an environment's data."""
    return context.client.root / context.settings.data / context.environment.name.replace(":", "-")


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a crash mid-write leaves the previous content (or none), and a
    temporary named after the writer (``.NAME.PID.tmp``) that :func:`sweep_temporaries` removes."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(path)


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove what :func:`write_atomically` left in an environment's ``folder`` when its writer died: only
    ``.NAME.PID.tmp`` files, only where skyrig keeps its own files (the folder, its record folders, each
    bucket's settings; not PostgreSQL's data, the broker's store or a bucket's objects), and only when
    process PID is gone: a live process's temporary is a write in progress. Returns what it removed."""
    removed = []
    for directory, subfolders, files in os.walk(folder):
        depth = len(Path(directory).relative_to(folder).parts)
        subfolders[:] = [] if depth >= 2 else [d for d in subfolders if d not in ("postgres", "store")]
        for name in files:
            match = _TEMPORARY.fullmatch(name)
            if match and not alive(int(match[1])):
                path = Path(directory) / name
                with contextlib.suppress(OSError):  # one that cannot go harms nothing: left as it is
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return removed


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
