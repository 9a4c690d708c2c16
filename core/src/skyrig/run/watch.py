"""Noticing code changes under an app's folder, for ``skyrig run``'s reload."""

from __future__ import annotations

import os
import time
from pathlib import Path

WATCHED_SUFFIXES = (".py", ".sql", ".toml")
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})


class Watcher:
    """Compares the stamps (size, mtime) of the app's source files with the last look."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stamps = self._look()

    def changed(self) -> bool:
        """Whether a source file was added, removed or changed since the last look."""
        return bool(self.changes())

    def changes(self, settle: float = 0.03) -> set[str]:
        """The source files added, removed or changed since the last look (their paths), once they have
        stopped changing for ``settle`` seconds (a file being written is not taken half-written)."""
        stamps = self._look()
        if stamps == self.stamps:
            return set()
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            time.sleep(settle)
            again = self._look()
            if again == stamps:
                break
            stamps = again
        before, self.stamps = self.stamps, stamps
        return {path for path in before.keys() | stamps.keys() if before.get(path) != stamps.get(path)}

    def _look(self) -> dict[str, tuple[int, int]]:
        stamps: dict[str, tuple[int, int]] = {}
        pending = [str(self.root)]
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith(".") and entry.name not in SKIPPED_FOLDERS:
                        pending.append(entry.path)
                elif entry.name.endswith(WATCHED_SUFFIXES):
                    try:
                        info = entry.stat()
                    except OSError:
                        continue
                    stamps[entry.path] = (info.st_size, info.st_mtime_ns)
        return stamps
