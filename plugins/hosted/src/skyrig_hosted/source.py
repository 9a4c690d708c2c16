"""The app's source archive: what the host runs the services from.

A gzip'd tar of the app's folder, made the same way every time from the same files (entries sorted, mtime
0, owner 0, modes normalised, no gzip timestamp or name), so that its SHA-256 names its content: an apply
whose code did not change makes the same archive, which the host already has (nothing is uploaded, no
service restarts). Left out: skyrig's own folder and what tools make (:data:`EXCLUDED`), and the patterns
of a ``.skyrigignore`` file at the app's root (``fnmatch``, one per line, ``#`` comments), matched against
each path relative to the root and against its name.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

EXCLUDED = (
    ".skyrig",
    ".git",
    "__pycache__",
    "*.pyc",
    ".venv",
    "venv",
    "node_modules",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)
"""Names never packed (a folder's whole content with it)."""
IGNORE_FILE = ".skyrigignore"
MAX_SIZE = 64 * 1024 * 1024
"""The host takes archives up to 64 MiB."""


@dataclass(frozen=True)
class Source:
    """A packed app folder: the archive's bytes and their SHA-256 (hex)."""

    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def ignored_patterns(root: Path) -> tuple[str, ...]:
    """:data:`EXCLUDED` and the patterns of ``root/.skyrigignore`` (if any)."""
    patterns = list(EXCLUDED)
    ignore = root / IGNORE_FILE
    if ignore.is_file():
        for line in ignore.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line.rstrip("/"))
    return tuple(patterns)


def _ignored(relative: str, patterns: tuple[str, ...]) -> bool:
    name = relative.rpartition("/")[2]
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(relative, p) for p in patterns)


def files(root: Path) -> list[str]:
    """The paths packed, relative to ``root`` (POSIX), sorted; symbolic links and special files are left
    out (the host refuses links that lead out of the archive)."""
    patterns = ignored_patterns(root)
    found = []
    for folder, dirs, names in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = [
            d for d in dirs if not _ignored(prefix + d, patterns) and not (Path(folder) / d).is_symlink()
        ]
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or _ignored(prefix + name, patterns):
                continue
            found.append(prefix + name)
    return sorted(found)


def pack(root: Path) -> Source:
    """The archive of the app folder ``root``: the same bytes for the same files, whenever, wherever."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative in files(root):
            path = root / relative
            data = path.read_bytes()
            info = tarfile.TarInfo(relative)
            info.size = len(data)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    return Source(data, hashlib.sha256(data).hexdigest())
