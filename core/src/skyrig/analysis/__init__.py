"""Reading an app's code statically into its Application Model (no app code is imported or run).

``build_model`` and ``model_json`` are the entry points: discover modules, extract per-file facts
(cached by content hash, in parallel when there are many), link them into an
:class:`~skyrig.model.AppModel`, and cache the result so that an unchanged tree parses nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from skyrig.analysis.cache import ModelCache
from skyrig.analysis.diagnostics import AppCodeError, Diagnostic
from skyrig.analysis.files import SourceFile, discover
from skyrig.collector import paused

if TYPE_CHECKING:
    from skyrig.analysis.extract import ModuleFacts
    from skyrig.model import AppModel

__all__ = ["AppCodeError", "Diagnostic", "build_model", "model_json"]

PARALLEL_FROM = 200
"""Extract in worker processes when at least this many files need parsing (below, it is not worth it)."""


def build_model(root: Path, app: str, *, cache: bool = True) -> AppModel:
    """The Application Model of the app at ``root``, named ``app``.

    Raises :class:`AppCodeError` with every problem found, in file order. With ``cache``, an unchanged
    tree is served from ``.skyrig/cache/`` and only changed files are parsed again.
    """
    from skyrig.model import AppModel

    root = root.resolve()
    store = ModelCache(root, app, enabled=cache)
    files = discover(root)
    cached = store.json_for(files)
    if cached is not None:
        with paused():
            return AppModel.model_validate_json(cached)
    return _build(root, app, files, store)[0]


def model_json(root: Path, app: str, *, cache: bool = True) -> str:
    """The Application Model as JSON; an unchanged tree is served as the cached text, building nothing."""
    root = root.resolve()
    store = ModelCache(root, app, enabled=cache)
    files = discover(root)
    cached = store.json_for(files)
    return cached if cached is not None else _build(root, app, files, store)[1]


def _build(root: Path, app: str, files: list[SourceFile], store: ModelCache) -> tuple[AppModel, str]:
    with paused():
        return _build_now(root, app, files, store)


def _build_now(root: Path, app: str, files: list[SourceFile], store: ModelCache) -> tuple[AppModel, str]:
    from skyrig.analysis.link import link

    roots = frozenset(f.module.partition(".")[0] for f in files)
    store.load_facts(roots)
    facts: dict[str, ModuleFacts] = {}
    pending: list[tuple[SourceFile, bytes]] = []
    for file in files:
        source = (root / file.path).read_bytes()
        known = store.known_facts(file, source)
        if known is None:
            pending.append((file, source))
        else:
            facts[file.path] = known
    for (file, _), found in zip(pending, _extract_all(pending, roots), strict=True):
        store.remember(file, found)
        facts[file.path] = found
    try:
        model = link(app, root, files, facts)
    finally:
        store.save_facts()
    text = model.to_json()
    store.save_model(files, model, text)
    return model, text


def _extract_all(pending: list[tuple[SourceFile, bytes]], roots: frozenset[str]) -> list[ModuleFacts]:
    from skyrig.analysis.extract import extract

    jobs = [(source, file.path, file.module, file.is_package, roots) for file, source in pending]
    shares = min(os.cpu_count() or 1, 8)
    # fork is cheap but unsafe in a process that runs other threads; then (and off Linux) stay serial.
    if len(jobs) < PARALLEL_FROM or shares < 2 or not _can_fork():
        return [extract(*job) for job in jobs]
    size = -(-len(jobs) // shares)
    children = [_fork_extract(jobs[start : start + size]) for start in range(size, len(jobs), size)]
    found = [extract(*job) for job in jobs[:size]]  # this process takes the first share itself
    for (pid, stream), start in zip(children, range(size, len(jobs), size), strict=True):
        found.extend(_collect(pid, stream, jobs[start : start + size]))
    return found


def _fork_extract(jobs: list[tuple]) -> tuple[int, BinaryIO]:
    """Extract ``jobs`` in a forked child, which inherits them (nothing is pickled on the way out) and
    sends the facts back through a pipe as one marshal blob."""
    import marshal

    from skyrig.analysis.extract import extract

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(read_end)
            data = marshal.dumps([extract(*job).to_plain() for job in jobs])
            with os.fdopen(write_end, "wb") as stream:
                stream.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, os.fdopen(read_end, "rb")


def _collect(pid: int, stream: BinaryIO, jobs: list[tuple]) -> list[ModuleFacts]:
    """A child's facts; should the child have failed, its share is extracted here instead."""
    import marshal

    from skyrig.analysis.extract import ModuleFacts, extract

    with stream:
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return [extract(*job) for job in jobs]
    return [ModuleFacts.from_plain(plain) for plain in marshal.loads(data)]


def _can_fork() -> bool:
    return sys.platform.startswith("linux") and threading.active_count() == 1
