"""The simulated cloud: resources in a SQLite file, so they outlive a killed process.

It behaves like a cloud that does not honour idempotency tokens (as moto does not): two creates make two
resources. Every API call can be slowed down, fail transiently (sometimes after doing the work, as a
timed-out call may) or be throttled, and the process can be made to exit hard right before or right
after the Nth mutating call, as a kill -9 would.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from skyrig.provider import ProviderError, ThrottledError, TransientError, UserError

F = TypeVar("F", bound=Callable[..., Any])

CRASH_EXIT_CODE = 137
_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    node TEXT NOT NULL,
    token TEXT NOT NULL,
    properties TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_owner ON resources (app, env, type);
CREATE TABLE IF NOT EXISTS secret_values (
    app TEXT NOT NULL, env TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (app, env, name)
);
"""
# What the data plane keeps: each row belongs to a resource and goes with it (ON DELETE CASCADE).
_DATA_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    ordering_key TEXT,
    data TEXT NOT NULL,
    published REAL NOT NULL,
    visible REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (subscription, visible);
CREATE INDEX IF NOT EXISTS messages_keys ON messages (subscription, ordering_key, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    subscription TEXT NOT NULL,
    message_id TEXT NOT NULL,
    ordering_key TEXT,
    data TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    published REAL NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue, seq);
CREATE TABLE IF NOT EXISTS published_ids (
    topic INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (topic, message_id)
);
CREATE TABLE IF NOT EXISTS handled_ids (
    subscription INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (subscription, message_id)
);
CREATE TABLE IF NOT EXISTS cache_entries (
    cluster INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires REAL,
    PRIMARY KEY (cluster, key)
);
CREATE TABLE IF NOT EXISTS objects (
    bucket INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    modified REAL NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE TABLE IF NOT EXISTS object_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket INTEGER NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    kept REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS object_versions_key ON object_versions (bucket, key, seq);
CREATE TABLE IF NOT EXISTS account_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class CloudUnusable(UserError, ProviderError):
    """The cloud's file cannot be used: not a database, damaged, not writable, or its disk is full. A user
    error where a command opens the cloud (the CLI prints it, no traceback); a node's failure, shown with
    what to do, where a node's call meets it."""

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


# SQLite's primary result codes about the file itself (https://sqlite.org/rescode.html)
_PERM, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 8, 10, 11, 13, 14, 26


def _reported(method: F) -> F:
    """The control-plane call ``method``, with what SQLite says about the file turned into a
    :class:`CloudUnusable` that names it. (The data plane keeps SQLite's errors: a consumer retries them.)"""

    @functools.wraps(method)
    def call(self: MemoryCloud, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            unusable = self.unusable(error)
            if unusable is None:
                raise
            raise unusable from None

    return call  # type: ignore[return-value]


class MemoryCloud:
    """A cloud account in a SQLite file. Thread-safe: each thread gets its own connection."""

    def __init__(self, path: Path, settings: Any) -> None:
        self.path = path
        self.settings = settings
        self.calls: Counter[str] = Counter()
        self._mutations = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._random = random.Random()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._create_schema()

    @_reported
    def _create_schema(self) -> None:
        self._connection().executescript(_SCHEMA + _DATA_SCHEMA)

    def unusable(self, error: sqlite3.DatabaseError) -> CloudUnusable | None:
        """What ``error`` says about the cloud's file, for the user; None if it is about something else."""
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        path, what = self.path, str(error)
        start_again = (
            "restore it from a backup, or delete it to start from an empty cloud (the next apply creates "
            "every resource again)"
        )
        if code == _NOTADB:
            return CloudUnusable(
                f"memory provider: {path} is not a memory cloud database (SQLite: {what})", start_again
            )
        if code == _CORRUPT:
            return CloudUnusable(f"memory provider: {path} is damaged (SQLite: {what})", start_again)
        if code in (_FULL, _IOERR):
            return CloudUnusable(
                f"memory provider: cannot write {path}: {what} (the disk is full, or failing)",
                "free space on its disk and run the command again",
            )
        if code in (_PERM, _READONLY, _CANTOPEN):
            return CloudUnusable(
                f"memory provider: cannot open {path} for writing (SQLite: {what})",
                "make it and its folder writable by this user, or run skyrig as their owner",
            )
        return None

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
        return connection

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode: for the data plane's reads (no faults)."""
        return self._connection()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (it takes the file's write lock at once, so that a read-then-write, such
        as a consumer leasing messages, is atomic across processes)."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # -- faults ---------------------------------------------------------------------------------

    def _before(self, operation: str, mutating: bool = False) -> tuple[int, bool]:
        """Count, delay and maybe fail the call. Returns the mutating call's number (0 for a read) and
        whether it is to lose its response."""
        sequence = 0
        with self._lock:
            self.calls[operation] += 1
            if mutating:
                self._mutations += 1
                sequence = self._mutations
        crash = mutating and self.settings.crash_before_call == sequence
        if crash:  # a kill -9 after the engine wrote its intent and before the cloud did anything
            os._exit(CRASH_EXIT_CODE)
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)
        roll = self._random.random()
        if roll < self.settings.throttle_rate:
            raise ThrottledError(f"memory cloud: {operation} throttled (rate exceeded)")
        if roll < self.settings.throttle_rate + self.settings.error_rate:
            if mutating and self._random.random() < 0.5:
                return sequence, True  # the work is done, then the response is lost (a timeout, say)
            raise TransientError(f"memory cloud: {operation} failed transiently (injected)")
        return sequence, False

    def _after_mutation(self, call: tuple[int, bool], operation: str) -> None:
        sequence, lose_response = call
        if (
            self.settings.crash_after_call == sequence
        ):  # a kill -9 right after the cloud did the work and before anyone recorded it
            os._exit(CRASH_EXIT_CODE)
        if lose_response:
            raise TransientError(f"memory cloud: {operation} timed out (it may have happened)")

    # -- the API --------------------------------------------------------------------------------

    @_reported
    def create(self, type_: str, owner: dict[str, str], token: str, properties: dict[str, Any]) -> int:
        call = self._before("create", mutating=True)
        cursor = self._connection().execute(
            "INSERT INTO resources (type, app, env, node, token, properties, created) VALUES (?,?,?,?,?,?,?)",
            (
                type_,
                owner["skyrig:app"],
                owner["skyrig:env"],
                owner["skyrig:node"],
                token,
                json.dumps(properties, sort_keys=True),
                time.time(),
            ),
        )
        self._after_mutation(call, "create")
        return int(cursor.lastrowid or 0)

    @_reported
    def get(self, resource_id: int) -> dict[str, Any] | None:
        self._before("get")
        row = (
            self._connection()
            .execute("SELECT properties FROM resources WHERE id = ?", (resource_id,))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    @_reported
    def list(self, type_: str, app: str, env: str) -> dict[int, tuple[str, dict[str, Any]]]:
        """Every resource of ``type_`` owned by the environment: id -> (node, properties)."""
        self._before("list")
        rows = self._connection().execute(
            "SELECT id, node, properties FROM resources WHERE type = ? AND app = ? AND env = ?",
            (type_, app, env),
        )
        return {row[0]: (row[1], json.loads(row[2])) for row in rows}

    @_reported
    def find(self, type_: str, owner: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
        """Resources tagged as ``owner``'s node (by the resource groups tagging API, say)."""
        self._before("find")
        rows = self._connection().execute(
            "SELECT id, properties FROM resources "
            "WHERE type = ? AND app = ? AND env = ? AND node = ? ORDER BY id",
            (type_, owner["skyrig:app"], owner["skyrig:env"], owner["skyrig:node"]),
        )
        return [(row[0], json.loads(row[1])) for row in rows]

    @_reported
    def update(self, resource_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        call = self._before("update", mutating=True)
        connection = self._connection()
        row = connection.execute("SELECT properties FROM resources WHERE id = ?", (resource_id,)).fetchone()
        if row is None:
            raise LookupError(f"memory cloud: resource {resource_id} does not exist")
        properties = {**json.loads(row[0]), **changes}
        connection.execute(
            "UPDATE resources SET properties = ? WHERE id = ?",
            (json.dumps(properties, sort_keys=True), resource_id),
        )
        self._after_mutation(call, "update")
        return properties

    @_reported
    def delete(self, resource_id: int) -> None:
        """Delete a resource, and with it everything it holds (messages, keys, objects)."""
        call = self._before("delete", mutating=True)
        self._connection().execute("DELETE FROM resources WHERE id = ?", (resource_id,))
        self._after_mutation(call, "delete")

    # -- secrets: the cloud holds values, skyrig never does -------------------------------------

    @_reported
    def put_secret(self, app: str, env: str, name: str, value: str) -> None:
        self._before("put_secret")
        self._connection().execute(
            "INSERT INTO secret_values VALUES (?,?,?,?) ON CONFLICT (app, env, name) DO UPDATE SET value = ?",
            (app, env, name, value, value),
        )

    @_reported
    def secret_value(self, app: str, env: str, name: str) -> str | None:
        self._before("get_secret")
        row = (
            self._connection()
            .execute(
                "SELECT value FROM secret_values WHERE app = ? AND env = ? AND name = ?", (app, env, name)
            )
            .fetchone()
        )
        return row[0] if row else None

    @_reported
    def generate_secret(self, app: str, env: str, name: str, value: str) -> None:
        """Store ``value`` unless the secret has one already: a key the cloud generates is made once,
        however often the call is repeated."""
        self._before("generate_secret")
        self._connection().execute(
            "INSERT OR IGNORE INTO secret_values VALUES (?,?,?,?)", (app, env, name, value)
        )

    @_reported
    def delete_secret(self, app: str, env: str, name: str) -> None:
        self._before("delete_secret")
        self._connection().execute(
            "DELETE FROM secret_values WHERE app = ? AND env = ? AND name = ?", (app, env, name)
        )

    # -- for tests: what a person does in the console, and what is really there -----------------

    def console_edit(self, resource_id: int, changes: dict[str, Any]) -> None:
        """Change a resource as a person would in the cloud console (no faults, no counting)."""
        connection = self._connection()
        (properties,) = connection.execute(
            "SELECT properties FROM resources WHERE id = ?", (resource_id,)
        ).fetchone()
        merged = {**json.loads(properties), **changes}
        connection.execute(
            "UPDATE resources SET properties = ? WHERE id = ?", (json.dumps(merged), resource_id)
        )

    @_reported
    def inventory(self, app: str, env: str) -> list[tuple[int, str, str]]:
        """Every resource the environment owns: (id, type, node)."""
        rows = self._connection().execute(
            "SELECT id, type, node FROM resources WHERE app = ? AND env = ? ORDER BY id", (app, env)
        )
        return [tuple(row) for row in rows]


@cache
def open_cloud(path: str) -> MemoryCloud:
    """The cloud at ``path`` as the data plane sees it: one per process, no faults injected (they are for
    the control plane)."""
    from skyrig_memory.settings import MemorySettings

    return MemoryCloud(Path(path), MemorySettings())
