"""The data plane of a database on the host: PostgreSQL as the environment's role.

The runtime config entry names the role's password by reference only (``hosted:APP/ENV/database/NAME``):
it is read from the host's credentials endpoint when a connection is first made, kept in the process, and
read again once after the server refuses it, so that a password the host changed is picked up by the next
connection, a pool's new ones too (pools connect through :meth:`HostedDatabaseClient.connect`).
"""

from __future__ import annotations

from typing import Any

from skyrig.provider import PostgresClient
from skyrig_hosted.runtime import forget, login


def _authentication_failed(error: Exception) -> bool:
    state = getattr(error, "sqlstate", None)
    return state in ("28P01", "28000") or "password authentication failed" in str(error)


class HostedDatabaseClient(PostgresClient):
    """:class:`~skyrig.provider.PostgresClient` whose password is read from the host, and read again once
    when the server refuses it."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry, self._resolve_password)

    def _resolve_password(self, reference: str) -> str:
        return login(self.entry["api"], reference)[1]

    def connect(self, **options: Any) -> Any:
        import psycopg

        try:
            return super().connect(**options)
        except psycopg.OperationalError as error:
            if not _authentication_failed(error):
                raise
        forget()  # changed since it was read: read it again, once
        return super().connect(**options)

    async def connect_async(self, **options: Any) -> Any:
        import psycopg

        try:
            return await super().connect_async(**options)
        except psycopg.OperationalError as error:
            if not _authentication_failed(error):
                raise
        forget()
        return await super().connect_async(**options)


def database(entry: dict[str, Any], config: dict[str, Any]) -> Any:
    """The data plane of a database on the host (``sql_database``)."""
    return HostedDatabaseClient(entry)
