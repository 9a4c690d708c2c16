"""Connection pools for SQL databases, one per database and process (asynchronous ones per event loop).

Pools connect through the database's URL from the provider's data plane, so they work the same on every
provider; ``psycopg_pool`` is imported only when app code first asks for a pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_pools: dict[str, Any] = {}
_async_pools: dict[tuple[str, int], Any] = {}


def sync_pool(name: str, url: Callable[[], str], **options: Any) -> Any:
    """The opened ``ConnectionPool`` of database ``name`` in this process, made on first use."""
    with _lock:
        if name not in _pools:
            from psycopg_pool import ConnectionPool

            _pools[name] = ConnectionPool(url(), open=True, name=f"skyrig-{name}", **options)
        return _pools[name]


async def async_pool(name: str, url: Callable[[], str], **options: Any) -> Any:
    """The opened ``AsyncConnectionPool`` of database ``name`` in the running event loop."""
    key = (name, id(asyncio.get_running_loop()))
    if key not in _async_pools:  # tasks asking while it opens wait for the same opening
        _async_pools[key] = asyncio.ensure_future(_open_async(name, url(), options))
    return await asyncio.shield(_async_pools[key])


async def _open_async(name: str, url: str, options: dict[str, Any]) -> Any:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(url, open=False, name=f"skyrig-{name}", **options)
    await pool.open()
    return pool


def close_all() -> None:
    """Close every synchronous pool (asynchronous ones close with their loop)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
        _async_pools.clear()
