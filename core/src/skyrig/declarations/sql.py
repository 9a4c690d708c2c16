"""SQL databases (PostgreSQL)."""

from __future__ import annotations

from typing import Any

from skyrig.declarations._base import Declaration, Spec
from skyrig.declarations.types import Name


class SQLDatabaseSpec(Spec):
    """Settings of a :class:`SQLDatabase`."""

    name: Name
    migrations: str | None = None
    """Folder of migrations ``NNNN_name.up.sql``, relative to the declaring file; applied in order."""


class SQLDatabase(Declaration):
    """A PostgreSQL database::

    db = SQLDatabase("orders", migrations="./migrations")
    """

    kind = "sql_database"
    spec_model = SQLDatabaseSpec
    operations = {
        "connect": "connect",
        "connect_async": "connect",
        "pool": "connect",
        "async_pool": "connect",
        "url": "connect",
    }

    def __init__(self, name: str, *, migrations: str | None = None) -> None:
        self._declare(name=name, migrations=migrations)

    def connect(self, **options: Any) -> Any:
        """A new psycopg 3 connection to this database (use it as a context manager)."""
        from skyrig.runtime.binding import client

        return client(self, "connect").connect(**options)

    async def connect_async(self, **options: Any) -> Any:
        """A new asynchronous psycopg 3 connection to this database."""
        from skyrig.runtime.binding import client

        return await client(self, "connect").connect_async(**options)

    def pool(self, *, min_size: int = 1, max_size: int = 10, **options: Any) -> Any:
        """This process's connection pool for this database (a ``psycopg_pool.ConnectionPool``, opened
        on the first call and shared by every later one; the sizes of the first call win)::

            with db.pool().connection() as connection:
                connection.execute(...)
        """
        from skyrig.runtime.binding import client
        from skyrig.runtime.pools import sync_pool

        found = client(self, "connect")
        return sync_pool(self.name, found, min_size=min_size, max_size=max_size, **options)

    async def async_pool(self, *, min_size: int = 1, max_size: int = 10, **options: Any) -> Any:
        """This event loop's asynchronous pool for this database (a ``psycopg_pool.AsyncConnectionPool``,
        opened on the first call in the loop)::

            pool = await db.async_pool()
            async with pool.connection() as connection:
                await connection.execute(...)
        """
        from skyrig.runtime.binding import client
        from skyrig.runtime.pools import async_pool

        found = client(self, "connect")
        return await async_pool(self.name, found, min_size=min_size, max_size=max_size, **options)

    @property
    def url(self) -> str:
        """The database's connection URL, for libraries that want one (SQLAlchemy, say)."""
        from skyrig.runtime.binding import client

        return client(self, "connect").url()
