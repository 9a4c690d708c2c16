"""skyrig state in PostgreSQL: ``state = "postgresql://user@host:port/dbname?schema=NAME"``.

One schema per app (by default ``skyrig_<app>``, the app named by ``skyrig.toml``), holding every
environment's journal, intents, runtime configs and lease. Each write is one statement, hence one
transaction, that checks the writer's fence against the lease, writes one small record and moves the
serial; leases expire by the server's clock. See this distribution's README for the URL, the permissions
the role needs, how leases and fencing work, and the tables.

psycopg is imported only when a store is opened: naming this plugin costs nothing otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skyrig_state_postgres.store import PostgresStore

__all__ = ["open_postgres"]


def open_postgres(url: str, root: Path) -> PostgresStore:
    """The store for ``url`` (the entry point of the schemes ``postgresql`` and ``postgres`` in the group
    ``skyrig.state``); ``root``, the app's folder, names the default schema (from ``skyrig.toml``'s app)."""
    from skyrig_state_postgres.store import PostgresStore

    return PostgresStore(url, root)
