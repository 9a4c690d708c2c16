"""What is particular to the SQLite state store (schema versions, store URLs) and the StateStore protocol
against what the core calls. What every store must do is the store suite's (skyrig.state.suite), which
test_state_suite.py runs against SQLite."""

from __future__ import annotations

import ast
import dataclasses
import sqlite3
from pathlib import Path

import pytest

import skyrig
from skyrig.errors import UserError
from skyrig.state import NodeRecord, StateUnusable, open_store
from skyrig.state.sqlite import SCHEMA_VERSION, SQLiteStore
from skyrig.state.store import OPTIONAL_METHODS, STORE_METHODS


def _record(node_id: str = "sql.cluster") -> NodeRecord:
    return NodeRecord(node_id, "memory.sql.cluster", "memory", "7", {"size": 1}, {"size": 1}, {"port": 5432})


def test_the_schema_is_versioned(tmp_path):
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    fence = store.acquire("dev", "me", ttl=30)
    store.record("dev", fence, _record())
    store.close()
    reopened = SQLiteStore(path)
    assert list(reopened.nodes("dev")) == ["sql.cluster"], "opening again migrates nothing and loses nothing"
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StateUnusable, match="state schema version 99, newer than this skyrig's"):
        SQLiteStore(path)


def test_store_urls(tmp_path):
    assert open_store("sqlite:///.skyrig/state.db", tmp_path).path == tmp_path / ".skyrig" / "state.db"
    assert open_store(f"sqlite:///{tmp_path}/abs.db", tmp_path).path == tmp_path / "abs.db"
    with pytest.raises(UserError, match="no store for URL scheme 'ftp'") as unknown:
        open_store("ftp://host/state", tmp_path)
    assert "sqlite:///.skyrig/state.db" in (unknown.value.hint or "")


@pytest.mark.parametrize(("scheme", "distribution"), [("s3", "skyrig-state-s3"), ("gs", "skyrig-state-gcs")])
def test_a_known_store_not_installed_is_named_with_its_distribution(
    tmp_path, monkeypatch, scheme, distribution
):
    from skyrig.plugins import registry

    def missing(group: str, name: str) -> None:
        raise registry.NotInstalled(name)

    monkeypatch.setattr(registry, "named", missing)
    with pytest.raises(UserError, match=f"no store for URL scheme '{scheme}'") as absent:
        open_store(f"{scheme}://bucket/state", tmp_path)
    assert f"pip install {distribution}" in (absent.value.hint or "")


def _store_calls(source: str) -> set[str]:
    """Methods called on a state store in ``source``: on ``<anything>.store`` and on names bound to
    ``open_store(...)`` in the same function."""
    tree = ast.parse(source)
    called: set[str] = set()
    for scope in [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
    ]:
        opened = {
            target.id
            for node in ast.walk(scope)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", getattr(node.value.func, "attr", None)) == "open_store"
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(scope):
            if isinstance(node, ast.Attribute) and (
                (isinstance(node.value, ast.Attribute) and node.value.attr == "store")
                or (isinstance(node.value, ast.Name) and node.value.id in opened)
            ):
                called.add(node.attr)
    return called


def test_the_protocol_is_what_the_core_calls_on_a_store():
    assert _store_calls("s = open_store(u, r)\ns.nodes('dev')\nself.store.acquire()\nother.serial()") == {
        "nodes",
        "acquire",
    }, "the scan finds calls on session.store and on an opened store, and nothing else"
    package = Path(skyrig.__file__).parent
    called: set[str] = set()
    for path in package.rglob("*.py"):
        if path.parent != package / "state":  # the stores and their suite, not callers
            called |= _store_calls(path.read_text())
    # and the optional BatchWrites and Snapshots, each only where the store has it
    assert called <= STORE_METHODS | OPTIONAL_METHODS, (
        f"the core calls store methods that StateStore lacks: {called - STORE_METHODS - OPTIONAL_METHODS}"
    )
    assert STORE_METHODS - called == set(), "StateStore has methods nothing calls"


def test_a_store_plugin_that_makes_no_state_store_is_refused(tmp_path, monkeypatch):
    from skyrig.plugins import registry

    class Half:
        def nodes(self, env):
            return {}

    monkeypatch.setattr(registry, "named", lambda group, name: lambda url, root: Half())
    with pytest.raises(
        UserError, match=r"store plugin for 'half' made a Half, which is not a StateStore \(missing: acquire,"
    ):
        open_store("half://somewhere", tmp_path)


def test_a_version_1_file_is_upgraded_and_its_fences_keep_growing(tmp_path):
    from skyrig.state.sqlite import MIGRATIONS

    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.executescript(MIGRATIONS[1])
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute("INSERT INTO leases VALUES ('dev', 'old skyrig', 5, 0, 1)")  # expired, fence 5
        db.execute(
            "INSERT INTO nodes VALUES ('dev', 'network', 't', 'memory', '1', '{}', '{}', '{}', NULL, '[]', '[]', 0)"
        )
        db.execute("INSERT INTO environments VALUES ('dev', 3, NULL)")
    store = SQLiteStore(path)
    assert list(store.nodes("dev")) == ["network"] and store.serial("dev") == 3
    assert store.acquire("dev", "new skyrig", ttl=30) == 6
    store.close()


def test_a_version_2_file_is_upgraded_and_reads_the_same(tmp_path):
    """Schema 3 keeps intents in a table without rowids and writes '' for observed properties whose text
    is the desired ones'; a file written by schema 2 (JSON with spaces) opens, migrates and reads the same."""
    from skyrig.state.sqlite import MIGRATIONS

    path = tmp_path / "state.db"
    plain = '{"name": "a", "replicas": 1}'
    nested = '{"tags": ["x"], "where": {"zone": "b"}}'
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.executescript(MIGRATIONS[1] + MIGRATIONS[2])
        db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        rows = [
            ("plain", plain, plain),
            ("nested", nested, nested),
            ("changed", plain, '{"name": "a", "replicas": true}'),
        ]
        for node_id, desired, observed in rows:
            db.execute(
                "INSERT INTO nodes VALUES ('dev', ?, 't', 'memory', '1', ?, ?, '{\"port\": 1}', NULL, '[]', "
                "'[]', 0)",
                (node_id, desired, observed),
            )
        db.execute("INSERT INTO intents VALUES ('dev', 'pending', 'create', 'token', 0)")
        db.execute("INSERT INTO environments VALUES ('dev', 4, NULL)")

    store = SQLiteStore(path)
    nodes = store.nodes("dev")
    assert nodes["plain"].observed == nodes["plain"].desired == {"name": "a", "replicas": 1}
    assert nodes["nested"].observed == {"tags": ["x"], "where": {"zone": "b"}}
    assert nodes["nested"].observed["tags"] is not nodes["nested"].desired["tags"], "two values, not one"
    assert nodes["changed"].observed["replicas"] is True and nodes["changed"].desired["replicas"] == 1
    assert nodes["plain"].outputs == {"port": 1}
    assert store.intents("dev") == {"pending": "create"} and store.serial("dev") == 4
    fence = store.acquire("dev", "new skyrig", ttl=30)
    store.write_batch("dev", fence, records=[dataclasses.replace(nodes["plain"], id="pending")])
    assert store.intents("dev") == {}
    assert store.nodes("dev")["pending"].observed == {"name": "a", "replicas": 1}
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        table = db.execute("SELECT sql FROM sqlite_master WHERE name = 'intents'").fetchone()[0]
        assert "WITHOUT ROWID" in table
        observed = dict(db.execute("SELECT id, observed FROM nodes").fetchall())
    assert observed["plain"] == observed["nested"] == observed["pending"] == "", "not kept twice"
    assert observed["changed"] == '{"name": "a", "replicas": true}'


@pytest.mark.parametrize("count", [1, 3, 127, 128, 129, 300])
def test_a_batch_of_any_size_writes_every_row(tmp_path, count):
    """Batches are written as statements of 128 rows and powers of two (statements a connection keeps
    compiled): whatever the count, every row is written and every intent cleared."""
    store = SQLiteStore(tmp_path / "state.db")
    fence = store.acquire("dev", "me", ttl=30)
    ids = [f"bucket-{n}" for n in range(count)]
    store.write_batch("dev", fence, intents=[(node_id, "create", "token") for node_id in ids])
    assert len(store.intents("dev")) == count
    store.write_batch("dev", fence, records=[_record(node_id) for node_id in ids])
    assert sorted(store.nodes("dev")) == sorted(ids) and store.intents("dev") == {}
    store.write_batch("dev", fence, forgotten=ids[1:])
    assert list(store.nodes("dev")) == ids[:1]
    store.close()


def test_observed_properties_keep_their_json_types(tmp_path):
    """Observed properties equal to the desired ones but of other JSON types (1 and true are equal in
    Python) are stored as they are, not as the desired ones' text."""
    store = SQLiteStore(tmp_path / "state.db")
    fence = store.acquire("dev", "me", ttl=30)
    desired = {"count": 1, "ratio": 1, "flag": True}
    observed = {"count": True, "ratio": 1.0, "flag": 1}
    store.write_batch("dev", fence, records=[NodeRecord("n", "t", "memory", "1", desired, observed)])
    read = store.nodes("dev")["n"]
    assert [type(read.observed[key]) for key in ("count", "ratio", "flag")] == [bool, float, int]
    assert [type(read.desired[key]) for key in ("count", "ratio", "flag")] == [int, int, bool]
    store.close()


class _FullDisk:
    """The store's connection on a full disk: reads work, every write fails as SQLite's does."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def execute(self, sql: str, *args):
        if sql.split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "COMMIT"):
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise error
        return self.db.execute(sql, *args)


def test_a_full_disk_changes_nothing_and_says_so(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")
    fence = store.acquire("dev", "me", ttl=30)
    store.record("dev", fence, _record("network"))
    real, store._db = store._db, _FullDisk(store._db)

    with pytest.raises(StateUnusable, match=r"cannot write .*state\.db: database or disk is full") as error:
        store.record("dev", fence, _record("sql.cluster"))
    assert "free space" in (error.value.hint or "")
    assert list(store.nodes("dev")) == ["network"], "what was recorded is there, and nothing half-written"
    assert store.renew("dev", fence, ttl=30), "a heartbeat that cannot be written is no lost lease"
    with pytest.raises(StateUnusable, match="the lock on environment 'dev' stays until it expires, in 30 s"):
        store.release("dev", fence)

    store._db = real  # room again: the same handle goes on
    store.record("dev", fence, _record("sql.cluster"))
    store.release("dev", fence)
    assert sorted(store.nodes("dev")) == ["network", "sql.cluster"]
    store.close()


def test_a_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / ".skyrig").write_text("")
    with pytest.raises(StateUnusable, match=r"\.skyrig is a file, not a folder") as error:
        SQLiteStore(tmp_path / ".skyrig" / "state.db")
    assert "move it away" in (error.value.hint or "")
