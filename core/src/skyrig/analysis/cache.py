"""The model cache under ``.skyrig/cache/``: an unchanged tree is served without parsing anything.

Two levels: the whole model, keyed by a fingerprint of every input's ``(path, mtime_ns, size)``; and
per-file facts, keyed by the file's content hash, so after an edit only the edited files are parsed.
A cache that cannot be read or written is ignored: it only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import skyrig
from skyrig.analysis.files import SourceFile
from skyrig.runtime.migration_files import migrations_folder

if TYPE_CHECKING:
    from skyrig.analysis.extract import ModuleFacts
    from skyrig.model import AppModel


def _code_stamp() -> str:
    """The version and the files of the code that writes caches: an edit to an editable install is a new
    cache format, so no stale model outlives the code that made it."""
    package = Path(skyrig.__file__).parent
    parts = [skyrig.__version__, f"py{sys.version_info[0]}.{sys.version_info[1]}"]
    for folder in ("analysis", "declarations", "model"):
        for path in sorted((package / folder).glob("*.py")):
            stat = path.stat()
            parts.append(f"{folder}/{path.name}:{stat.st_mtime_ns}:{stat.st_size}")
    parts.append(str((package / "values.py").stat().st_mtime_ns))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


_FORMAT = f"skyrig-model-cache v1 {_code_stamp()}"
_RACY_NS = 100_000_000
"""An input modified this close to the start of the build that cached the model may have changed without
changing its stamp (file times come from a coarse clock): such a cache is not trusted (git does the same)."""


class ModelCache:
    """The cache of one app's model. Disabled, it stores nothing and always misses."""

    def __init__(self, root: Path, app: str, *, enabled: bool = True) -> None:
        self.root = root
        self.app = app
        self.enabled = enabled
        self.folder = root / ".skyrig" / "cache"
        self._old_facts: dict[str, tuple[str, str, bool, ModuleFacts]] = {}
        self._new_facts: dict[str, tuple[str, str, bool, ModuleFacts]] = {}
        self._roots: frozenset[str] = frozenset()
        self._digests: dict[str, str] = {}
        self.started_ns = time.time_ns()
        """When this run began to look at the inputs; create the cache before discovering files."""

    # -- the whole model ----------------------------------------------------------------------

    def json_for(self, files: list[SourceFile]) -> str | None:
        """The cached model's JSON if no input changed since it was saved."""
        if not self.enabled:
            return None
        try:
            header, folders, model_json = (self.folder / "model.json").read_text().split("\n", 2)
            key, started = header.split("\t")
            key_now, newest = self._fingerprint(files, folders.split("\t") if folders else [])
            fresh = key == key_now and newest < int(started) - _RACY_NS
        except (OSError, ValueError):
            return None
        return model_json if fresh else None

    def save_model(self, files: list[SourceFile], model: AppModel, text: str) -> None:
        """Remember ``model`` (and ``text``, its JSON) as the model of the inputs as they are now."""
        if not self.enabled:
            return
        folders = sorted(
            os.path.relpath(
                migrations_folder(self.root, r.location.rsplit(":", 2)[0], r.migrations), self.root
            )
            for r in model.resources
            if getattr(r, "migrations", None) is not None
        )
        key, _ = self._fingerprint(files, folders)
        self._write("model.json", f"{key}\t{self.started_ns}\n{chr(9).join(folders)}\n{text}".encode())

    def _fingerprint(self, files: list[SourceFile], folders: list[str]) -> tuple[str, int]:
        """A digest of every input's path, modification time and size, and the newest modification time."""
        digest = hashlib.sha256(f"{_FORMAT}\0{self.app}".encode())
        newest = 0
        for file in files:
            digest.update(f"\0{file.path}\0{file.stat_key[0]}\0{file.stat_key[1]}".encode())
            newest = max(newest, file.stat_key[0])
        for folder in folders:
            digest.update(f"\1{folder}".encode())
            try:
                entries = sorted(os.scandir(self.root / folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                stat = entry.stat()
                digest.update(f"\0{entry.name}\0{stat.st_mtime_ns}\0{stat.st_size}".encode())
                newest = max(newest, stat.st_mtime_ns)
        return digest.hexdigest(), newest

    # -- per-file facts -----------------------------------------------------------------------

    def load_facts(self, roots: frozenset[str]) -> None:
        """Read the facts of the last run; they hold while the app's top-level modules are the same."""
        self._roots = roots
        if not self.enabled:
            return
        import marshal

        from skyrig.analysis.extract import ModuleFacts

        try:
            stored_format, stored_roots, facts = marshal.loads((self.folder / "facts.marshal").read_bytes())
            if (stored_format, stored_roots) == (_FORMAT, roots):
                self._old_facts = {
                    path: (digest, module, is_package, ModuleFacts.from_plain(plain))
                    for path, (digest, module, is_package, plain) in facts.items()
                }
        except Exception:  # an unreadable cache is as good as none
            self._old_facts = {}

    def known_facts(self, file: SourceFile, source: bytes) -> ModuleFacts | None:
        """The facts of ``file`` from the last run if its content is unchanged (then kept for the next)."""
        digest = hashlib.blake2b(source, digest_size=16).hexdigest()
        self._digests[file.path] = digest
        old = self._old_facts.get(file.path)
        if old is None or old[:3] != (digest, file.module, file.is_package):
            return None
        self._new_facts[file.path] = old
        return old[3]

    def remember(self, file: SourceFile, facts: ModuleFacts) -> None:
        """Keep freshly extracted facts of ``file`` for the next run."""
        self._new_facts[file.path] = (self._digests[file.path], file.module, file.is_package, facts)

    def save_facts(self) -> None:
        """Keep the facts of this run for the next one."""
        if self.enabled:
            import marshal

            facts = {path: (*entry[:3], entry[3].to_plain()) for path, entry in self._new_facts.items()}
            self._write("facts.marshal", marshal.dumps((_FORMAT, self._roots, facts)))

    def _write(self, name: str, data: bytes) -> None:
        import tempfile

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            gitignore = self.folder.parent / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n")
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.")
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            Path(temporary).replace(self.folder / name)
        except OSError:
            pass
