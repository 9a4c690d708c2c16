"""The embedded state store: a SQLite file under ``.skyrig/`` in WAL mode, one row per node.

Writes are per node (O(change)), each in its own transaction that also checks the writer still holds
the environment's lease (fencing), so a process that lost its lock can never overwrite state. It keeps
the contract of :class:`skyrig.state.StateStore`.

Durability: WAL mode with ``synchronous=NORMAL``. A transaction is in the write-ahead log when its COMMIT
returns, so a killed process (``kill -9``, a crash) loses nothing committed, which is what the store
promises (:mod:`skyrig.state.store`, "Durable writes"); the log is synced to disk at checkpoints, so a
power loss or kernel crash may lose the last transactions but never leaves the file inconsistent.
``FULL`` would sync on every commit (tens of syncs an apply) to guard against power loss too; what such
a loss takes is what a state lost takes, and the next apply looks up every node to create that state does
not record, so it adopts what the lost writes had recorded instead of making it twice.

Writing costs, measured on a 5,000-node apply (``benchmarks/engine_scale.py``): most of it is encoding
records as JSON (compact, the C encoder made once) and SQLite binding and inserting rows; batches go as
statements of at most :data:`_ROWS` rows whose sizes repeat, so they stay compiled. Schema 3 keeps
intents (small rows, inserted and deleted once per create) in a table without rowids, and writes ``''``
for observed properties whose text is the desired ones'. The nodes table keeps its rowid: its rows are
large (hundreds of bytes), and a table without rowids keeps them in its primary key's B-tree, whose
pages then hold few rows and split often (measured: an apply's writes took 1.6x the processor time).

What SQLite reports about the file (damaged, not a database, read-only, disk full, busy) reaches the user
as a :class:`~skyrig.state.StateUnusable` naming the file and what to do, never as a traceback. A write
that fails leaves the file as it was before it (SQLite rolls the transaction back), so a full disk loses
nothing already recorded.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from skyrig.state import EnvironmentState, LeaseLost, Locked, NodeRecord, StateUnusable

SCHEMA_VERSION = 3
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
    # intents without rowids (one B-tree to write, not two); observed '' stands for the desired text
    3: """
    CREATE TABLE intents_new (
        env TEXT NOT NULL, id TEXT NOT NULL, action TEXT NOT NULL, token TEXT NOT NULL,
        created_at REAL NOT NULL, PRIMARY KEY (env, id)
    ) WITHOUT ROWID;
    INSERT INTO intents_new SELECT env, id, action, token, created_at FROM intents;
    DROP TABLE intents;
    ALTER TABLE intents_new RENAME TO intents;
    UPDATE nodes SET observed = '' WHERE observed = desired;
    """,
}
"""Schema version -> the SQL that upgrades the previous version to it. Add, never edit."""

# SQLite's primary result codes (https://sqlite.org/rescode.html) that say something about the file
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 26


class SQLiteStore:
    """State of every environment of one app, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._folder()
        with self._reporting():
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            with self._reporting():
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; fast
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _folder(self) -> None:
        """Make the file's folder, or say plainly why it cannot be."""
        folder = self.path.parent
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise StateUnusable(
                f"state: {blocker} is a file, not a folder: skyrig keeps its state in {self.path}",
                f"move it away (mv {blocker} {blocker}.old) and run the command again",
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise self._unwritable(next(p for p in folder.parents if p.exists())) from None

    def _unwritable(self, folder: Path) -> StateUnusable:
        user = getpass.getuser()
        return StateUnusable(
            f"state: {folder} is not writable by user {user!r}, and skyrig keeps its state in {self.path}",
            f"make it writable (chown -R {user} {folder}, or chmod u+w), or run skyrig as its owner",
        )

    @contextmanager
    def _reporting(self) -> Iterator[None]:
        """Turn what SQLite says about the file into an error a person can act on."""
        try:
            yield
        except sqlite3.Error as error:
            raise self._explained(error) from None

    def _explained(self, error: sqlite3.Error) -> StateUnusable:
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        path, what = self.path, str(error)
        if code == _NOTADB:
            return StateUnusable(
                f"state: {path} is not a skyrig state database (SQLite: {what})",
                f"restore it from a backup, or point state (skyrig.toml, SKYRIG_STATE) at the right file; "
                f"{self._rebuild()}",
            )
        if code == _CORRUPT:
            return self._damaged(f"SQLite: {what}")
        if code in (_READONLY, _CANTOPEN, _PERM, _IOERR) and not os.access(path.parent, os.W_OK):
            return self._unwritable(path.parent)
        if code in (_READONLY, _CANTOPEN, _PERM):
            if path.exists() and not os.access(path, os.R_OK | os.W_OK):
                user = getpass.getuser()
                return StateUnusable(
                    f"state: {path} is not writable by user {user!r} (SQLite: {what})",
                    f"make it writable (chown {user} {path}), or run skyrig as its owner",
                )
            return StateUnusable(
                f"state: cannot open {path} (SQLite: {what})",
                "check that the file and its folder can be read and written, and that the disk is mounted "
                "read-write",
            )
        if code in (_FULL, _IOERR):
            return StateUnusable(
                f"state: cannot write {path}: {what} (the disk is full, or failing)",
                f"free space on the disk of {path.parent} and run the command again: nothing recorded is "
                "lost (a write that fails changes nothing), and operations cut short keep their intents, "
                "so the next apply adopts what they made",
            )
        if code in (_BUSY, _LOCKED):
            return StateUnusable(
                f"state: {path} stayed locked by another process for 30 s ({what})",
                "run the command again; if it lasts, find the process that keeps the file open (fuser)",
            )
        return StateUnusable(f"state: {path}: {what}", f"check the file; {self._rebuild()}")

    def _damaged(self, detail: str) -> StateUnusable:
        return StateUnusable(
            f"state: {self.path} is damaged ({detail})", f"restore it from a backup; {self._rebuild()}"
        )

    def _rebuild(self) -> str:
        return (
            f"without one, move it aside (mv {self.path} {self.path}.damaged) and rebuild state from the "
            "cloud: skyrig state recover --env ENV"
        )

    def _migrate(self) -> None:
        with self._lock, self._reporting():
            found = {
                row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            version: Any = 0
            if "meta" in found:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = row[0] if row else 0
            elif found:
                raise StateUnusable(
                    f"state: {self.path} is not a skyrig state database (it holds the tables "
                    f"{', '.join(sorted(found))}, and no skyrig schema version)",
                    "point state (skyrig.toml, SKYRIG_STATE) at another file: skyrig writes nothing "
                    "into this one",
                )
            try:
                version = int(version)
            except ValueError:
                raise StateUnusable(
                    f"state: {self.path} has state schema version {version!r}, which no skyrig writes",
                    f"restore it from a backup; {self._rebuild()}",
                ) from None
            if version > SCHEMA_VERSION:
                raise StateUnusable(
                    f"state: {self.path} has state schema version {version}, newer than this skyrig's "
                    f"({SCHEMA_VERSION}): a newer skyrig wrote it",
                    "upgrade skyrig (pip install -U skyrig) to the version that wrote it; this one changed "
                    "nothing in the file",
                )
        if version == SCHEMA_VERSION:
            return  # nothing to write: opening state for reading works on a full disk
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0  # again, in the write lock: another process may have migrated
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._reporting():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT (a full disk) may have ended it already
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _decoding(self) -> Iterator[None]:
        try:
            yield
        except (ValueError, TypeError) as error:  # a record that does not decode: the file was tampered with
            raise self._damaged(f"a record does not decode: {error}") from None

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._reporting():
            yield self._db

    def close(self) -> None:
        self._db.close()

    # -- reading --------------------------------------------------------------------------------

    def serial(self, env: str) -> int:
        """A counter that moves with every write to the environment's state."""
        with self._reading() as db:
            row = db.execute("SELECT serial FROM environments WHERE env = ?", (env,)).fetchone()
        return row[0] if row else 0

    def applied_at(self, env: str) -> float | None:
        with self._reading() as db:
            row = db.execute("SELECT applied_at FROM environments WHERE env = ?", (env,)).fetchone()
        return row[0] if row else None

    def nodes(self, env: str) -> dict[str, NodeRecord]:
        with self._reading() as db:
            rows = db.execute(_SELECT_NODES, (env,)).fetchall()
        return self._decoded(rows, lean=False)

    def snapshot(self, env: str, *, lean: bool = False) -> tuple[int, dict[str, NodeRecord]]:
        """The serial and every record, read in one transaction (see :class:`~skyrig.state.store.Snapshots`);
        ``lean`` leaves the columns a plan does not read (outputs, drift, the time of the write) unread."""
        with self._reading() as db:
            db.execute("BEGIN")
            try:
                row = db.execute("SELECT serial FROM environments WHERE env = ?", (env,)).fetchone()
                rows = db.execute(_SELECT_LEAN if lean else _SELECT_NODES, (env,)).fetchall()
            finally:
                db.execute("COMMIT")
        return (row[0] if row else 0), self._decoded(rows, lean=lean)

    def _decoded(self, rows: list[Any], *, lean: bool) -> dict[str, NodeRecord]:
        """Records from rows of :data:`_SELECT_NODES` (or :data:`_SELECT_LEAN`). Most of the time goes to
        decoding JSON, so it is decoded in one call per column, not one per row, and what needs none is
        not decoded: an empty list, and the observed properties when their text is the desired
        properties' and holds only plain values (a copy is the same value)."""
        loads = json.loads
        records = {}
        with self._decoding():
            desired_all = _loads_all([row[4] for row in rows])
            outputs_all = _loads_all([row[8] for row in rows]) if not lean else None
            for index, row in enumerate(rows):
                desired_text, observed_text = row[4], row[5] or row[4]  # '': the same text (schema 3)
                desired = desired_all[index]
                if (
                    observed_text == desired_text
                    and "[" not in desired_text
                    and desired_text.find("{", 1) < 0
                ):
                    observed = dict(desired)  # the same text of plain values: a copy is the same value
                else:
                    observed = loads(observed_text)
                depends_on = [] if row[7] == "[]" else loads(row[7])
                if outputs_all is None:
                    records[row[0]] = NodeRecord(
                        row[0], row[1], row[2], row[3], desired, observed, {}, row[6], depends_on
                    )
                else:
                    records[row[0]] = NodeRecord(
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        desired,
                        observed,
                        outputs_all[index],
                        row[6],
                        depends_on,
                        [] if row[9] == "[]" else loads(row[9]),
                        row[10],
                    )
        return records

    def intents(self, env: str) -> dict[str, str]:
        """Node id -> action, for operations that began and were never recorded as done."""
        with self._reading() as db:
            return dict(db.execute("SELECT id, action FROM intents WHERE env = ?", (env,)).fetchall())

    def runtime_configs(self, env: str) -> dict[str, dict[str, Any]]:
        with self._reading() as db:
            rows = db.execute("SELECT service, config FROM runtime WHERE env = ?", (env,)).fetchall()
        with self._decoding():
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
        """Extend the lease held with ``fence``; False if it was lost (expired and taken).

        A renewal that cannot be written (a full disk) is no loss: unless the lease is seen to be another's,
        True, and the next heartbeat tries again; if none gets through, the lease expires at its time, and
        the holder's fenced writes refuse from then on. (The heartbeat never dies of a full disk.)"""
        try:
            with self._transaction() as db:
                cursor = db.execute(
                    "UPDATE leases SET expires_at = ? WHERE env = ? AND fence = ?",
                    (time.time() + ttl, env, fence),
                )
            return cursor.rowcount == 1
        except StateUnusable:
            try:
                with self._reading() as db:
                    row = db.execute("SELECT fence, expires_at FROM leases WHERE env = ?", (env,)).fetchone()
            except StateUnusable:  # not even readable: nothing says it was lost, and writes stay fenced
                return True
            return row is not None and row[0] == fence and row[1] > time.time()

    def release(self, env: str, fence: int) -> None:
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM leases WHERE env = ? AND fence = ?", (env, fence))
        except StateUnusable as error:
            expires = None
            with suppress(StateUnusable), self._reading() as db:
                row = db.execute("SELECT expires_at FROM leases WHERE env = ? AND fence = ?", (env, fence))
                expires = row.fetchone()
            if not expires:
                raise
            left = max(0, round(expires[0] - time.time()))
            raise StateUnusable(
                f"{error.message}; the lock on environment {env!r} stays until it expires, in {left} s",
                error.hint,
            ) from None

    def _check_fence(self, db: sqlite3.Connection, env: str, fence: int) -> None:
        row = db.execute("SELECT fence, expires_at FROM leases WHERE env = ?", (env,)).fetchone()
        if row is None or row[0] != fence or row[1] < time.time():
            raise LeaseLost(
                f"the lock on environment {env!r} was lost; nothing more is written",
                "another apply may have taken over: run skyrig status to see where things stand",
            )

    # -- writing (each one a transaction, fenced) -----------------------------------------------

    def _bump(self, db: sqlite3.Connection, env: str, by: int = 1) -> None:
        """Move the serial by ``by``: once per change to the journal, as separate writes would."""
        db.execute(
            "INSERT INTO environments (env, serial) VALUES (?, ?) "
            "ON CONFLICT (env) DO UPDATE SET serial = serial + excluded.serial",
            (env, by),
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
        row = _row(env, node, time.time())
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute(_INSERT_NODE, row)
            db.execute("DELETE FROM intents WHERE env = ? AND id = ?", (env, node.id))
            self._bump(db, env)

    def forget(self, env: str, fence: int, node_id: str) -> None:
        """Remove a deleted node (and its intent)."""
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute("DELETE FROM nodes WHERE env = ? AND id = ?", (env, node_id))
            db.execute("DELETE FROM intents WHERE env = ? AND id = ?", (env, node_id))
            self._bump(db, env)

    def write_batch(
        self,
        env: str,
        fence: int,
        *,
        intents: Sequence[tuple[str, str, str]] = (),
        records: Sequence[NodeRecord] = (),
        forgotten: Sequence[str] = (),
    ) -> None:
        """Several per-node writes in one transaction (see :class:`~skyrig.state.store.BatchWrites`): the
        engine's group commit. One fence check and one serial move for the lot, and statements executed
        once for all rows: per node, a small part of a transaction of its own."""
        now = time.time()
        rows = [_row(env, node, now) for node in records]  # encoded before taking the lock
        done = [node.id for node in records] + list(forgotten)
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            if intents:
                _many(
                    db,
                    "INSERT OR REPLACE INTO intents VALUES ",
                    5,
                    [(env, node_id, action, token, now) for node_id, action, token in intents],
                )
            if rows:
                _many(db, _INSERT_MANY, 12, rows)
            if forgotten:
                _many_ids(db, "DELETE FROM nodes", env, list(forgotten))
            if done:
                _many_ids(db, "DELETE FROM intents", env, done)
                self._bump(db, env, len(done))

    def finish(self, env: str, fence: int, runtime: dict[str, dict[str, Any]]) -> None:
        """Mark an apply complete and store each service's runtime config."""
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            db.execute("DELETE FROM runtime WHERE env = ?", (env,))
            db.executemany(
                "INSERT INTO runtime VALUES (?, ?, ?)",
                [(env, service, _encode_config(config)) for service, config in runtime.items()],
            )
            self._bump(db, env)  # first: it makes the environment's row, which may not exist yet
            db.execute("UPDATE environments SET applied_at = ? WHERE env = ?", (time.time(), env))

    # -- moving state between stores, breaking a lease (skyrig.state.StateTransfer) -------------

    def export(self, env: str) -> EnvironmentState:
        """Everything ``env`` holds but its lease (``skyrig state migrate`` reads it under the lease)."""
        nodes, runtime = self.nodes(env), self.runtime_configs(env)
        with self._reading() as db:
            intents = db.execute("SELECT id, action, token FROM intents WHERE env = ?", (env,)).fetchall()
            row = db.execute("SELECT serial, applied_at FROM environments WHERE env = ?", (env,)).fetchone()
            fence = db.execute("SELECT fence FROM fences WHERE env = ?", (env,)).fetchone()
        return EnvironmentState(
            nodes,
            {node_id: (action, token) for node_id, action, token in intents},
            runtime,
            row[1] if row else None,
            row[0] if row else 0,
            fence[0] if fence else 0,
        )

    def load(self, env: str, fence: int, state: EnvironmentState) -> None:
        """Make ``env`` hold exactly ``state`` (:class:`~skyrig.state.StateTransfer`), in one transaction."""
        nodes = [
            (
                *(env, n.id, n.type, n.provider, n.provider_id, _encode(n.desired)),
                *(_observed(_encode(n.desired), _encode(n.observed)), _encode(n.outputs), n.resource),
                *(_encode(n.depends_on), _encode(n.drift), n.updated_at),
            )
            for n in state.nodes.values()
        ]
        now = time.time()
        with self._transaction() as db:
            self._check_fence(db, env, fence)
            for table in ("nodes", "intents", "runtime"):
                db.execute(f"DELETE FROM {table} WHERE env = ?", (env,))  # one of ours, not an input
            db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", nodes)
            db.executemany(
                "INSERT INTO intents VALUES (?, ?, ?, ?, ?)",
                [(env, node, action, token, now) for node, (action, token) in state.intents.items()],
            )
            db.executemany(
                "INSERT INTO runtime VALUES (?, ?, ?)",
                [(env, service, _encode_config(config)) for service, config in state.runtime.items()],
            )
            row = db.execute("SELECT serial FROM environments WHERE env = ?", (env,)).fetchone()
            serial = max(state.serial, (row[0] if row else 0) + 1)
            db.execute(
                "INSERT OR REPLACE INTO environments VALUES (?, ?, ?)", (env, serial, state.applied_at)
            )
            db.execute(
                "INSERT INTO fences VALUES (?, ?) "
                "ON CONFLICT (env) DO UPDATE SET fence = MAX(fence, excluded.fence)",
                (env, state.fence),
            )

    def break_lease(self, env: str) -> None:
        """End ``env``'s lease, whoever holds it (``skyrig state unlock --force``): its fence is never
        issued again (the fences table keeps the highest)."""
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE env = ?", (env,))


_SELECT_NODES = (
    "SELECT id, type, provider, provider_id, desired, observed, resource, depends_on, outputs, drift, "
    "updated_at FROM nodes WHERE env = ?"
)
_SELECT_LEAN = (
    "SELECT id, type, provider, provider_id, desired, observed, resource, depends_on FROM nodes WHERE env = ?"
)
_INSERT_NODE = "INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_MANY = "INSERT OR REPLACE INTO nodes VALUES "
_ROWS = 128
"""Rows a statement of a batch writes, at most: one statement for many rows runs as one step of SQLite,
which releases Python's GIL once for them, not once a row (under a busy GIL, each release costs a wait)."""


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    """(start, size) of the statements that write ``count`` rows: :data:`_ROWS` at a time, then the rest as
    powers of two (99 = 64 + 32 + 2 + 1). So a connection only ever prepares eight statements of each
    kind, which its statement cache keeps: compiling a statement of a hundred rows costs twice what
    running it does, and a rest of any size (one per batch) was a statement compiled anew each time."""
    start = 0
    while count:
        size = _ROWS if count >= _ROWS else 1 << (count.bit_length() - 1)
        yield start, size
        start += size
        count -= size


def _loads_all(texts: list[str]) -> list[Any]:
    """``[json.loads(text) for text in texts]``, in one call for all of them (a JSON array of the texts
    decodes to exactly their values when each is one JSON value; if the count differs, or it does not
    decode, one text is not: decoded one by one, the first such raises)."""
    try:
        values = json.loads("[" + ",".join(texts) + "]")
    except ValueError:
        values = None
    if values is None or len(values) != len(texts):
        values = [json.loads(text) for text in texts]
    return values


def _many(db: sqlite3.Connection, insert: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    """``insert`` (ending in ``VALUES``) of ``rows`` of ``width`` columns (statements: :func:`_chunks`)."""
    one = "(" + ",".join("?" * width) + ")"
    for start, size in _chunks(len(rows)):
        chunk = rows[start : start + size]
        db.execute(insert + ",".join([one] * size), [value for row in chunk for value in row])


def _many_ids(db: sqlite3.Connection, delete: str, env: str, ids: list[str]) -> None:
    """``delete`` (``DELETE FROM table``) of the rows of ``env`` whose id is one of ``ids``."""
    for start, size in _chunks(len(ids)):
        chunk = ids[start : start + size]
        db.execute(f"{delete} WHERE env = ? AND id IN ({','.join('?' * size)})", [env, *chunk])


def _unencodable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder(*, sort_keys: bool) -> Any:
    if c_make_encoder is None:  # pragma: no cover - a Python without the json accelerator
        return None
    return c_make_encoder(None, _unencodable, encode_basestring_ascii, None, ":", ",", sort_keys, False, True)


_encoder = _make_encoder(sort_keys=True)
_config_encoder = _make_encoder(sort_keys=False)


def _encode(value: Any) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))``, with the C encoder made once, not on
    every call. Compact: a tenth less text to encode, store and read back; files written with spaces
    after separators (before schema 3) read the same."""
    if _encoder is None:  # pragma: no cover - a Python without the json accelerator
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "".join(_encoder(value, 0))


def _encode_config(config: dict[str, Any]) -> str:
    """A runtime config as :func:`_encode` would write it, but with its keys in the order they come:
    nothing compares a config's text, and sorting the keys of a large one is a sixth of encoding it."""
    if _config_encoder is None:  # pragma: no cover - a Python without the json accelerator
        return json.dumps(config, separators=(",", ":"))
    return "".join(_config_encoder(config, 0))


_PLAIN = frozenset({str, int, bool, type(None)})


def _observed(desired_text: str, observed_text: str) -> str:
    """What the ``observed`` column holds: ``''`` when the text is the desired properties' (a node as
    applied, most of them), so that it is neither bound, stored nor read twice."""
    return "" if observed_text == desired_text else observed_text


def _row(env: str, node: NodeRecord, now: float) -> tuple[Any, ...]:
    """The columns of ``node``'s row, written at ``now``, JSON encoded as state keeps it."""
    desired, observed = node.desired, node.observed
    desired_text = _encode(desired)
    observed_text = ""  # the same text as the desired properties' (schema 3)
    if observed != desired:
        observed_text = _encode(observed)
    else:  # the same text if the values are plain and of the same types (1 == True == 1.0, not in JSON)
        for key, value in desired.items():
            kind = type(value)
            if kind not in _PLAIN or type(observed[key]) is not kind:
                observed_text = _observed(desired_text, _encode(observed))
                break
    return (
        env,
        node.id,
        node.type,
        node.provider,
        node.provider_id,
        desired_text,
        observed_text,
        _encode(node.outputs),
        node.resource,
        _encode(node.depends_on) if node.depends_on else "[]",
        _encode(node.drift) if node.drift else "[]",
        now,
    )
