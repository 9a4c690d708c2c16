"""The embedded state store: a SQLite file under ``.skyrig/`` in WAL mode, one row per node.

Writes are per node (O(change)), each in its own transaction that also checks the writer still holds
the environment's lease (fencing), so a process that lost its lock can never overwrite state. It keeps
the contract of :class:`skyrig.state.StateStore`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skyrig.state import LeaseLost, Locked, NodeRecord

SCHEMA_VERSION = 2
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE environments (env TEXT PRIMARY KEY, serial INTEGER NOT NULL DEFAULT 0, applied_at REAL);
    CREATE TABLE nodes (
        env TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, provider TEXT NOT NULL,
        provider_id TEXT NOT NULL, desired TEXT NOT NULL, observed TEXT NOT NULL, outputs TEXT NOT NULL,
        resource TEXT, depends_on TEXT NOT NULL, drift TEXT NOT NULL, updated_at REAL NOT NULL,
        PRIMARY KEY (env, id)
    );
    CREATE TABLE intents (
        env TEXT NOT NULL, id TEXT NOT NULL, action TEXT NOT NULL, token TEXT NOT NULL,
        created_at REAL NOT NULL, PRIMARY KEY (env, id)
    );
    CREATE TABLE leases (
        env TEXT PRIMARY KEY, holder TEXT NOT NULL, fence INTEGER NOT NULL,
        acquired_at REAL NOT NULL, expires_at REAL NOT NULL
    );
    CREATE TABLE runtime (
        env TEXT NOT NULL, service TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (env, service)
    );
    """,
    # the highest fence ever issued per environment: a released lease's row goes, its fence never returns
    2: """
    CREATE TABLE fences (env TEXT PRIMARY KEY, fence INTEGER NOT NULL);
    INSERT INTO fences SELECT env, fence FROM leases;
    """,
}
"""Schema version -> the SQL that upgrades the previous version to it. Add, never edit."""


class SQLiteStore:
    """State of every environment of one app, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; fast
        self._lock = threading.Lock()
        self._migrate()

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has state schema {version}; this skyrig knows {SCHEMA_VERSION}"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # -- reading --------------------------------------------------------------------------------

    def serial(self, env: str) -> int:
        """A counter that moves with every write to the environment's state."""
        with self._lock:
            row = self._db.execute("SELECT serial FROM environments WHERE env = ?", (env,)).fetchone()
        return row[0] if row else 0

    def applied_at(self, env: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT applied_at FROM environments WHERE env = ?", (env,)).fetchone()
        return row[0] if row else None

    def nodes(self, env: str) -> dict[str, NodeRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, type, provider, provider_id, desired, observed, outputs, resource, depends_on, "
                "drift, updated_at FROM nodes WHERE env = ?",
                (env,),
            ).fetchall()
        loads = json.loads
        return {
            row[0]: NodeRecord(
                row[0],
                row[1],
                row[2],
                row[3],
                loads(row[4]),
                loads(row[5]),
                loads(row[6]),
                row[7],
                loads(row[8]),
                loads(row[9]),
                row[10],
            )
            for row in rows
        }

    def intents(self, env: str) -> dict[str, str]:
        """Node id -> action, for operations that began and were never recorded as done."""
        with self._lock:
            return dict(self._db.execute("SELECT id, action FROM intents WHERE env = ?", (env,)).fetchall())

    def runtime_configs(self, env: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT service, config FROM runtime WHERE env = ?", (env,)).fetchall()
        return {service: json.loads(config) for service, config in rows}

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, env: str, holder: str, ttl: float) -> int:
        """Take the environment's lease, or raise :class:`Locked`; returns the fence for later writes."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT holder, fence, acquired_at, expires_at FROM leases WHERE env = ?", (env,)
            ).fetchone()
            if row and row[3] > now:
                raise Locked(env, row[0], row[2], row[3])
            last = db.execute("SELECT fence FROM fences WHERE env = ?", (env,)).fetchone()
            fence = (last[0] if last else 0) + 1
            db.execute("INSERT OR REPLACE INTO fences VALUES (?, ?)", (env, fence))
            db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)", (env, holder, fence, now, now + ttl)
            )
        return fence

    def renew(self, env: str, fence: int, ttl: float) -> bool:
        """Extend the lease held with ``fence``; False if it was lost (expired and taken)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE leases SET expires_at = ? WHERE env = ? AND fence = ?",
                (time.time() + ttl, env, fence),
            )
        return cursor.rowcount == 1

    def release(self, env: str, fence: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE env = ? AND fence = ?", (env, fence))

    def _check_fence(self, db: sqlite3.Connection, env: str, fence: int) -> None:
        row = db.execute("SELECT fence, expires_at FROM leases WHERE env = ?", (env,)).fetchone()
        if row is None or row[0] != fence or row[1] < time.time():
            raise LeaseLost(
                f"the lock on environment {env!r} was lost; nothing more is written",
                "another apply may have taken over: run skyrig status to see where things stand",
            )

    # -- writing (each one a transaction, fenced) -----------------------------------------------

    def _bump(self, db: sqlite3.Connection, env: str) -> None:
        db.execute(
            "INSERT INTO environments (env, serial) VALUES (?, 1) "
            "ON CONFLICT (env) DO UPDATE SET serial = serial + 1",
            (env,),
        )

    def add_intent(self, env: str, fence: int, node_id: str, action: str, token: str) -> None:
        """Record that an operation is about to be called, so a crash after the call is noticed."""
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute(
                "INSERT OR REPLACE INTO intents VALUES (?, ?, ?, ?, ?)",
                (env, node_id, action, token, time.time()),
            )

    def record(self, env: str, fence: int, node: NodeRecord) -> None:
        """Remember ``node`` as provisioned (and clear its intent), the moment it completes."""
        dumps = json.dumps
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute(
                "INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    env,
                    node.id,
                    node.type,
                    node.provider,
                    node.provider_id,
                    dumps(node.desired, sort_keys=True),
                    dumps(node.observed, sort_keys=True),
                    dumps(node.outputs, sort_keys=True),
                    node.resource,
                    dumps(node.depends_on),
                    dumps(node.drift),
                    time.time(),
                ),
            )
            db.execute("DELETE FROM intents WHERE env = ? AND id = ?", (env, node.id))
            self._bump(db, env)

    def forget(self, env: str, fence: int, node_id: str) -> None:
        """Remove a deleted node (and its intent)."""
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute("DELETE FROM nodes WHERE env = ? AND id = ?", (env, node_id))
            db.execute("DELETE FROM intents WHERE env = ? AND id = ?", (env, node_id))
            self._bump(db, env)

    def finish(self, env: str, fence: int, runtime: dict[str, dict[str, Any]]) -> None:
        """Mark an apply complete and store each service's runtime config."""
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute("DELETE FROM runtime WHERE env = ?", (env,))
            db.executemany(
                "INSERT INTO runtime VALUES (?, ?, ?)",
                [(env, service, json.dumps(config, sort_keys=True)) for service, config in runtime.items()],
            )
            self._bump(db, env)  # first: it makes the environment's row, which may not exist yet
            db.execute("UPDATE environments SET applied_at = ? WHERE env = ?", (time.time(), env))
