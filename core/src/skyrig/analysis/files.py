"""Finding an app's Python modules, and fingerprinting them cheaply."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass(frozen=True)
class SourceFile:
    """One Python module of the app."""

    path: str
    """Relative to the app root, with ``/`` separators."""
    module: str
    """Its dotted module name, as the app imports it (the app root is on ``sys.path``)."""
    is_package: bool
    """True for a package's ``__init__.py``."""
    stat_key: tuple[int, int]
    """``(mtime_ns, size)``: a change here means the content may have changed."""


def discover(root: Path) -> list[SourceFile]:
    """Every importable ``.py`` module under ``root``, sorted by path.

    Hidden folders, virtual environments, ``__pycache__`` and ``node_modules`` are skipped, and so are
    files whose names are not importable module names (``my-script.py``).
    """
    found: list[SourceFile] = []
    _scan(str(root), "", found)
    found.sort(key=lambda f: f.path)
    return found


def _scan(folder: str, prefix: str, found: list[SourceFile]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    if prefix and any(entry.name == "pyvenv.cfg" for entry in entries):
        return
    for entry in entries:
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            if name.startswith(".") or name in SKIPPED_DIRS or not name.isidentifier():
                continue
            _scan(entry.path, f"{prefix}{name}/", found)
        elif name.endswith(".py") and name[:-3].isidentifier():
            stat = entry.stat()
            parts = (prefix + name[:-3]).split("/")
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
                if not parts:  # an __init__.py at the app root is no importable module
                    continue
            found.append(
                SourceFile(
                    path=prefix + name,
                    module=".".join(parts),
                    is_package=is_package,
                    stat_key=(stat.st_mtime_ns, stat.st_size),
                )
            )
