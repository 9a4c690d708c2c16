"""Connection pools for SQL databases, one per database and process (asynchronous ones per event loop).

A pool makes each of its connections through the provider's data plane (its ``connect`` and
``connect_async``), exactly as ``db.connect()`` does: so pools work the same on every provider, and a
password read at connection time (a rotated one, say) is read again for each new pooled connection.
``psycopg_pool`` is imported only when app code first asks for a pool.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

_lock = threading.Lock()
_pools: dict[str, Any] = {}
_async_pools: dict[tuple[str, int], Any] = {}


def sync_pool(name: str, client: Any, **options: Any) -> Any:
    """The opened ``ConnectionPool`` of database ``name`` in this process, made on first use; ``client``
    is the database's data plane (:class:`~skyrig.runtime.dataplane.SQLClient`)."""
    with _lock:
        if name not in _pools:
            import psycopg
            from psycopg_pool import ConnectionPool

            class Connection(psycopg.Connection):  # type: ignore[type-arg]
                @classmethod
                def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:  # type: ignore[override]
                    return client.connect(**kwargs)

            _pools[name] = ConnectionPool(
                open=True, name=f"skyrig-{name}", connection_class=Connection, **options
            )
        return _pools[name]


async def async_pool(name: str, client: Any, **options: Any) -> Any:
    """The opened ``AsyncConnectionPool`` of database ``name`` in the running event loop."""
    key = (name, id(asyncio.get_running_loop()))
    if key not in _async_pools:  # tasks asking while it opens wait for the same opening
        _async_pools[key] = asyncio.ensure_future(_open_async(name, client, options))
    return await asyncio.shield(_async_pools[key])


async def _open_async(name: str, client: Any, options: dict[str, Any]) -> Any:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    class Connection(psycopg.AsyncConnection):  # type: ignore[type-arg]
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:  # type: ignore[override]
            return await client.connect_async(**kwargs)

    pool = AsyncConnectionPool(open=False, name=f"skyrig-{name}", connection_class=Connection, **options)
    await pool.open()
    return pool


def close_all() -> None:
    """Close every synchronous pool (asynchronous ones close with their loop)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
        _async_pools.clear()
