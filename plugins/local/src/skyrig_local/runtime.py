"""The local provider's data plane: what the runtime SDK calls in a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DatabaseClient:
    """Connections to one database of the embedded PostgreSQL (started on first use)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.data = Path(entry["data"])
        self.database: str = entry["database"]

    def url(self) -> str:
        from skyrig_local import postgres

        return postgres.uri(self.data, self.database)

    def connect(self, **options: Any) -> Any:
        import psycopg

        return psycopg.connect(self.url(), **options)

    async def connect_async(self, **options: Any) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.url(), **options)
