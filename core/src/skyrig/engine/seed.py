"""Seeding a fresh database with another's rows: what ``skyrig preview open --seed-from ENV`` does where the
SQL provider does not branch.

Both databases are reached from this machine by URL (each provider's data plane gives it, as ``skyrig db``
uses). The source is read in one read-only, repeatable-read transaction (a consistent snapshot); the target
is written in one transaction: its tables in foreign-key order (referenced tables first), each with
``COPY``, then each of its sequences set to where the source's stands, so that new rows continue after the
copied ones. Only a fresh target is seeded: one whose tables hold no row (the migrations' ledger aside);
one that has rows is left as it is, so seeding twice copies nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skyrig.errors import ProviderError

LEDGER = ("public", "skyrig_migrations")
"""The migrations' ledger: each side has its own, written by its migrations; never copied."""

_TABLES = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""
_REFERENCES = "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f' AND conrelid <> confrelid"
_COLUMNS = """
SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
  AND attgenerated = '' ORDER BY attnum
"""
_SEQUENCES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""


@dataclass
class Seeded:
    """What seeding one database did."""

    skipped: str | None = None
    """Why nothing was copied (the target already had rows), or None."""
    rows: dict[str, int] = field(default_factory=dict)
    """``schema.table`` -> rows copied, in the order copied."""
    sequences: int = 0
    """Sequences set to the source's position."""

    def as_json(self) -> dict[str, Any]:
        """The outcome as ``--json`` shows it."""
        if self.skipped:
            return {"seeded": False, "reason": self.skipped}
        rows = sum(self.rows.values())
        return {"seeded": True, "tables": len(self.rows), "rows": rows, "sequences": self.sequences}


def seed(source: Callable[[], str], target_url: str) -> Seeded:
    """Copy every row of the database at the URL ``source()`` gives into the fresh one at ``target_url``
    (same tables, as both have the same migrations; a column or table only one side has is left out),
    then set the target's sequences. When the target already holds rows, nothing: ``source`` is not even
    called. Failures raise :class:`~skyrig.errors.ProviderError` with the server's message, the target
    left unchanged."""
    import psycopg

    try:
        with psycopg.connect(target_url) as target, target.transaction():
            found = _rows_in(target)
            if found is not None:
                return Seeded(skipped=f"table {found} already has rows: not seeded again")
            with psycopg.connect(source()) as reader:
                reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                reader.read_only = True
                with reader.transaction():
                    return _copy(reader, target)
    except psycopg.Error as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ProviderError(f"seeding failed and was rolled back: {message}") from None


def _rows_in(target: Any) -> str | None:
    """The first table of ``target`` (the ledger aside) that has a row, or None when none has."""
    from psycopg import sql

    for name in _tables(target).values():
        if (
            name != LEDGER
            and target.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(_ident(name))).fetchone()
        ):
            return ".".join(name)
    return None


def _copy(source: Any, target: Any) -> Seeded:
    from psycopg import sql

    tables = _tables(target)
    target.execute("SET CONSTRAINTS ALL DEFERRED")  # those that may be: a cycle of references
    source_tables = {name: oid for oid, name in _tables(source).items()}
    outcome = Seeded()
    for oid in _order(target, tables):
        name = tables[oid]
        if name == LEDGER or name not in source_tables:
            continue
        wanted = _columns(target, oid)
        present = set(_columns(source, source_tables[name]))
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in wanted if c in present)
        table = _ident(name)
        with source.cursor() as reader, target.cursor() as writer:
            with (
                reader.copy(sql.SQL("COPY {} ({}) TO STDOUT").format(table, columns)) as out,
                writer.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as into,
            ):
                for chunk in out:
                    into.write(chunk)
            outcome.rows[".".join(name)] = max(writer.rowcount, 0)
    source_sequences = {tuple(row) for row in source.execute(_SEQUENCES).fetchall()}
    for schema, name in target.execute(_SEQUENCES).fetchall():
        if (schema, name) not in source_sequences:
            continue
        sequence = _ident((schema, name))
        position = sql.SQL("SELECT last_value, is_called FROM {}").format(sequence)
        last, called = source.execute(position).fetchone()
        target.execute("SELECT setval(%s::regclass, %s, %s)", (sequence.as_string(target), last, called))
        outcome.sequences += 1
    return outcome


def _ident(name: tuple[str, str]) -> Any:
    from psycopg import sql

    return sql.Identifier(*name)


def _tables(connection: Any) -> dict[int, tuple[str, str]]:
    return {oid: (schema, name) for oid, schema, name in connection.execute(_TABLES).fetchall()}


def _columns(connection: Any, oid: int) -> list[str]:
    return [row[0] for row in connection.execute(_COLUMNS, (oid,)).fetchall()]


def _order(connection: Any, tables: dict[int, tuple[str, str]]) -> list[int]:
    """The tables, each after those it references (by name where neither references the other); tables
    that reference each other in a cycle come last, by name (their deferrable references allow it)."""
    needs: dict[int, set[int]] = {oid: set() for oid in tables}
    for child, parent in connection.execute(_REFERENCES).fetchall():
        if child in needs and parent in needs:
            needs[child].add(parent)
    ordered: list[int] = []
    done: set[int] = set()
    while len(ordered) < len(needs):
        ready = sorted((oid for oid in needs if oid not in done and needs[oid] <= done), key=tables.get)
        if not ready:
            ordered.extend(sorted((oid for oid in needs if oid not in done), key=tables.get))
            break
        ordered.extend(ready)
        done.update(ready)
    return ordered
