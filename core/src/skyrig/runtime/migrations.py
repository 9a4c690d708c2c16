"""Migrations: the numbered ``NNNN_name.up.sql`` files of a SQL database (named by the rule of
:mod:`skyrig.runtime.migration_files`), applied in order, once.

The same runner serves every provider: the local provider when it creates a database, a cloud
provider's one-off deploy task, the test cluster's templates. Each migration runs in its own transaction
and is recorded in ``skyrig_migrations``; a failing one is rolled back, so the database stays as it was
before it, and the error names the file and the server's message. A migration changed after it was
applied is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skyrig.errors import ProviderError

LEDGER = """CREATE TABLE IF NOT EXISTS skyrig_migrations (
    number integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
"""The table that records which migrations a database has."""


def migrate(
    connection: Any, database: str, migrations: list[list[Any]], files: Mapping[str, str], root: Path
) -> None:
    """Apply to ``database`` (through ``connection``, in autocommit) the ``[number, name, sha256]``
    migrations it lacks, each in its own transaction; ``files`` maps each number to its file under
    ``root``. Refuses a migration that changed after it was applied."""
    import psycopg

    connection.execute(LEDGER)
    applied = {
        row[0]: row for row in connection.execute("SELECT number, name, sha256 FROM skyrig_migrations")
    }
    for number, name, digest in migrations:
        file = files[str(number)]
        if number in applied:
            if applied[number][2] != digest:
                raise ProviderError(
                    f"{file}: migration {number} changed after it was applied to database "
                    f"{database!r}; add a new migration instead of editing an applied one"
                )
            continue
        try:
            with connection.transaction():
                connection.execute((root / file).read_text(encoding="utf-8"))
                connection.execute(
                    "INSERT INTO skyrig_migrations (number, name, sha256) VALUES (%s, %s, %s)",
                    (number, name, digest),
                )
        except psycopg.Error as error:
            message = str(error).strip().splitlines()[0]
            raise ProviderError(f"{file}: migration failed and was rolled back: {message}") from None


def plan_of(database: Any) -> tuple[list[list[Any]], dict[str, str]]:
    """A model database's migrations as ``[number, name, sha256]`` and its files by number, the arguments
    :func:`migrate` takes."""
    migrations = [[m.number, m.name, m.sha256] for m in database.migration_files]
    return migrations, {str(m.number): m.file for m in database.migration_files}
