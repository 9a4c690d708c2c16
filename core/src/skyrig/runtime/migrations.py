"""Migrations: the numbered ``NNNN_name.up.sql`` files of a SQL database (named by the rule of
:mod:`skyrig.runtime.migration_files`), applied in order, once.

The same runner serves every provider: the local provider when it creates a database, a cloud
provider's one-off deploy task, the test cluster's templates. Each migration runs in its own transaction
and is recorded in ``skyrig_migrations``; a failing one is rolled back, so the database stays as it was
before it, and the error names the file, the line of the failing statement and the server's message. A
migration changed after it was applied is refused, and so is one applied whose file is gone
(:func:`missing`, which ``skyrig plan`` also checks against what a provider observed).
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
    gone = missing(list(applied.values()), migrations)
    if gone:
        raise ProviderError(": ".join(describe_missing(database, gone, files)))
    for number, name, digest in migrations:
        file = files[str(number)]
        if number in applied:
            if applied[number][2] != digest:
                raise ProviderError(
                    f"{file}: migration {number} changed after it was applied to database "
                    f"{database!r}; add a new migration instead of editing an applied one"
                )
            continue
        text = (root / file).read_text(encoding="utf-8")
        try:
            with connection.transaction():
                connection.execute(text)
                connection.execute(
                    "INSERT INTO skyrig_migrations (number, name, sha256) VALUES (%s, %s, %s)",
                    (number, name, digest),
                )
        except psycopg.Error as error:
            message = str(error).strip().splitlines()[0]
            line = failing_line(connection, text, error)
            where = f" (at {file}:{line})" if line else ""
            raise ProviderError(f"{file}: migration failed and was rolled back: {message}{where}") from None


def missing(applied: list[list[Any]], wanted: list[list[Any]]) -> list[tuple[int, str]]:
    """``(number, name)`` of each migration in ``applied`` (as the ledger lists them: ``[number, name,
    sha256]``) that ``wanted`` (the app's migrations, the same way) no longer has: its file is gone."""
    numbers = {int(entry[0]) for entry in wanted}
    return sorted((int(entry[0]), str(entry[1])) for entry in applied if int(entry[0]) not in numbers)


def describe_missing(database: str, gone: list[tuple[int, str]], files: Mapping[str, str]) -> tuple[str, str]:
    """What is wrong when the migrations ``gone`` were applied to ``database`` and their files are not among
    ``files`` (number -> file) any more, and what to do."""
    named = ", ".join(f"{number} ({_file_of(number, name, files)})" for number, name in gone)
    if len(gone) == 1:
        problem = f"migration {named} was applied to database {database!r} and its file is gone"
    else:
        problem = f"migrations {named} were applied to database {database!r} and their files are gone"
    return problem, (
        "restore it: an applied migration stays in the folder, unchanged; to undo what it did, add a new "
        "migration that reverses it"
    )


def _file_of(number: int, name: str, files: Mapping[str, str]) -> str:
    """The file a migration had: named like the app's other migrations (their folder, their digits)."""
    if not files:
        return f"{number:04d}_{name}.up.sql"
    folder, _, other = next(iter(files.values())).rpartition("/")
    digits = len(other.partition("_")[0])
    return f"{folder + '/' if folder else ''}{number:0{digits}d}_{name}.up.sql"


def failing_line(connection: Any, text: str, error: Any) -> int | None:
    """The line of ``text`` (a migration that failed with ``error``, rolled back) where it failed.

    The server gives the position of most errors in the text; for the others (a missing relation, a
    violated constraint) the statements are run again one by one, in a transaction rolled back at the
    end, until one fails the same way. ``None`` when neither tells.
    """
    import psycopg

    position = _position(error)
    if position is not None:
        return text.count("\n", 0, position - 1) + 1
    if isinstance(error, psycopg.OperationalError) or connection.closed:
        return None  # cancelled, timed out, out of resources, disconnected: not worth running again
    try:
        with connection.transaction(force_rollback=True):
            for start, end in statements(text):
                try:
                    connection.execute(text[start:end])
                except psycopg.Error as again:
                    same = (again.diag.sqlstate, again.diag.message_primary) == (
                        error.diag.sqlstate,
                        error.diag.message_primary,
                    )
                    inner = _position(again)
                    offset = start + inner - 1 if inner is not None else start
                    return text.count("\n", 0, offset) + 1 if same else None
    except psycopg.Error:
        return None
    return None


def _position(error: Any) -> int | None:
    """The 1-based character position in the statement text that the server gave, if it did."""
    position = getattr(getattr(error, "diag", None), "statement_position", None)
    return int(position) if position else None


def statements(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each SQL statement of ``text``: from its first character that is no space or
    comment, to the semicolon that ends it (or the end of the text). Semicolons in strings, quoted
    names, dollar-quoted bodies and comments do not end a statement."""
    found: list[tuple[int, int]] = []
    start: int | None = None
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if text.startswith("--", i):
            newline = text.find("\n", i)
            i = size if newline < 0 else newline + 1
            continue
        if text.startswith("/*", i):
            i = _block_comment_end(text, i)
            continue
        if char.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if char == ";":
            found.append((start, i + 1))
            start = None
            i += 1
        elif char == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _word(text[i - 2]))
            i = _quoted_end(text, i, "'", escapes)
        elif char == '"':
            i = _quoted_end(text, i, '"', False)
        elif char == "$" and not (i > 0 and _word(text[i - 1])):
            tag = _dollar_tag(text, i)
            if tag is None:
                i += 1
            else:
                close = text.find(tag, i + len(tag))
                i = size if close < 0 else close + len(tag)
        else:
            i += 1
    if start is not None:
        found.append((start, size))
    return found


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _quoted_end(text: str, i: int, quote: str, escapes: bool) -> int:
    """The index after the string (or quoted name) that opens at ``text[i]``."""
    i += 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if text.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(text)


def _block_comment_end(text: str, i: int) -> int:
    """The index after the (nested) ``/* */`` comment that opens at ``text[i]``."""
    depth = 0
    while i < len(text):
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _dollar_tag(text: str, i: int) -> str | None:
    """``$tag$`` (or ``$$``) when a dollar quote opens at ``text[i]``."""
    end = i + 1
    if end < len(text) and (text[end].isalpha() or text[end] == "_"):
        while end < len(text) and _word(text[end]):
            end += 1
    return text[i : end + 1] if end < len(text) and text[end] == "$" else None


def plan_of(database: Any) -> tuple[list[list[Any]], dict[str, str]]:
    """A model database's migrations as ``[number, name, sha256]`` and its files by number, the arguments
    :func:`migrate` takes."""
    migrations = [[m.number, m.name, m.sha256] for m in database.migration_files]
    return migrations, {str(m.number): m.file for m in database.migration_files}
