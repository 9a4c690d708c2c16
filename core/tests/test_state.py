"""What is particular to the SQLite state store (schema versions, store URLs) and the StateStore protocol
against what the core calls. What every store must do is the store suite's (skyrig.state.suite), which
test_state_suite.py runs against SQLite."""

from __future__ import annotations

import ast
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
    # runtime_configs is the read side of finish (the store suite and a state migration read it back)
    assert STORE_METHODS - called == {"runtime_configs"}, "StateStore has methods nothing calls"


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
