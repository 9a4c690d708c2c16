"""A SQL database's migration files and the one rule for their names: ``NNNN_name.up.sql``.

``SQLDatabase(..., migrations="folder")`` names a folder, relative to the file that declares the
database. Every ``.sql`` file in it is a migration, except ``*.down.sql``; each is named by a number, an
underscore, a name and ``.up.sql``, and no two share a number. :func:`read_migrations` reads the folder
into the model's :class:`~skyrig.model.Migration` records when the app's code is analysed, and
:mod:`skyrig.runtime.migrations` applies those records, in order of their numbers.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from skyrig.model import Migration

FILE_NAME = re.compile(r"^(\d+)_(\w+)\.up\.sql$")
"""The name of a migration file: its number and its name."""


class MigrationProblem(NamedTuple):
    """Why a migrations folder, or a file in it, breaks the rule."""

    file: str | None
    """The file, relative to the app root; ``None`` for the folder the declaration names."""
    message: str
    hint: str


def migrations_folder(root: Path, declared_in: str, folder: str) -> Path:
    """The folder ``migrations=folder`` names, for a database declared in the file ``declared_in``
    (relative to the app ``root``)."""
    return (root / declared_in).parent / folder


def read_migrations(
    root: Path, declared_in: str, folder: str
) -> tuple[list[Migration], list[MigrationProblem]]:
    """The migrations of a database declared in ``declared_in`` (relative to the app ``root``) with
    ``migrations=folder``, in order of their numbers, and what is wrong with the folder or its files."""
    from skyrig.model import Migration

    directory = migrations_folder(root, declared_in, folder)
    if not directory.is_dir():
        missing = MigrationProblem(
            None,
            f"migrations folder {folder!r} does not exist",
            f"create {_relative(directory, root)}/ with files named like 0001_create_tables.up.sql, "
            "or leave migrations out",
        )
        return [], [missing]
    found: dict[int, Migration] = {}
    problems: list[MigrationProblem] = []
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql" or path.name.endswith(".down.sql"):
            continue
        match = FILE_NAME.match(path.name)
        file = _relative(path, root)
        if match is None:
            problems.append(
                MigrationProblem(
                    file,
                    f"migration file {path.name!r} is not named NNNN_name.up.sql",
                    "rename it to a number, an underscore, a name and .up.sql, like 0002_add_index.up.sql",
                )
            )
            continue
        number = int(match.group(1))
        if number in found:
            problems.append(
                MigrationProblem(
                    file,
                    f"migration number {number} is used twice (also {found[number].file})",
                    "give every migration of a database its own number",
                )
            )
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found[number] = Migration(number=number, name=match.group(2), file=file, sha256=digest)
    return [found[n] for n in sorted(found)], problems


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
