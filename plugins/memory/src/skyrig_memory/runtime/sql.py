"""SQL: the shared PostgreSQL client, with the memory cloud's limit said plainly.

The memory cloud records databases but runs no PostgreSQL: the host in a database's runtime entry is a
made-up name under ``.memory.internal``. Connecting to it fails with an error that says so. The
conformance suite wires the entry to a real PostgreSQL instead (its stand-in), and then this client
connects as any provider's does.
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import PostgresClient

FAKE_DOMAIN = ".memory.internal"


class DatabaseClient(PostgresClient):
    """Connections to one database, through :class:`skyrig.provider.PostgresClient` (no password: the
    memory cloud keeps no credentials)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        super().__init__(entry)

    def connect(self, **options: Any) -> Any:
        import psycopg

        try:
            return super().connect(**options)
        except psycopg.OperationalError as error:
            raise self._explained(error) from error

    async def connect_async(self, **options: Any) -> Any:
        import psycopg

        try:
            return await super().connect_async(**options)
        except psycopg.OperationalError as error:
            raise self._explained(error) from error

    def _explained(self, error: Exception) -> Exception:
        import psycopg

        host = str(self.entry.get("host", ""))
        if not host.endswith(FAKE_DOMAIN):
            return error
        return psycopg.OperationalError(
            f"database {self.entry['database']!r} is provisioned by the memory provider, whose simulated "
            f"cloud runs no PostgreSQL server ({host} is not a real host): run the app on a provider with "
            f"real databases (local, aws, ...), or point the runtime entry at a real PostgreSQL"
        )
