"""The SQLite state store: per-node writes, leases with fencing, schema versions, store URLs."""

from __future__ import annotations

import sqlite3
import time

import pytest

from skyrig.errors import UserError
from skyrig.state import LeaseLost, Locked, NodeRecord, open_store
from skyrig.state.sqlite import SCHEMA_VERSION, SQLiteStore


def _record(node_id: str = "sql.cluster") -> NodeRecord:
    return NodeRecord(node_id, "memory.sql.cluster", "memory", "7", {"size": 1}, {"size": 1}, {"port": 5432})


def test_writes_are_per_node_and_move_the_serial(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")
    fence = store.acquire("dev", "me", ttl=30)
    store.add_intent("dev", fence, "sql.cluster", "create", "token")
    assert store.intents("dev") == {"sql.cluster": "create"}
    store.record("dev", fence, _record())
    assert store.intents("dev") == {}, "recording a node clears its intent"
    assert store.serial("dev") == 1
    store.record("dev", fence, _record("network"))
    assert sorted(store.nodes("dev")) == ["network", "sql.cluster"] and store.serial("dev") == 2
    store.forget("dev", fence, "network")
    assert list(store.nodes("dev")) == ["sql.cluster"] and store.serial("dev") == 3
    assert store.nodes("prod") == {} and store.serial("prod") == 0, "environments are separate"


def test_a_second_holder_is_refused_until_the_lease_expires(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")
    store.acquire("dev", "first@host pid 1", ttl=0.3)
    with pytest.raises(Locked, match="locked by first@host pid 1 since"):
        store.acquire("dev", "second@host pid 2", ttl=30)
    time.sleep(0.35)
    assert store.acquire("dev", "second@host pid 2", ttl=30) == 2, "a dead holder's lease expires by itself"


def test_a_writer_that_lost_its_lease_cannot_write(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")
    stale = store.acquire("dev", "slow", ttl=0.2)
    time.sleep(0.25)
    store.acquire("dev", "new", ttl=30)
    with pytest.raises(LeaseLost):
        store.record("dev", stale, _record())
    assert store.renew("dev", stale, 30) is False
    assert store.nodes("dev") == {}, "fencing: nothing was written"


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
    with pytest.raises(RuntimeError, match="state schema 99"):
        SQLiteStore(path)


def test_store_urls(tmp_path):
    assert open_store("sqlite:///.skyrig/state.db", tmp_path).path == tmp_path / ".skyrig" / "state.db"
    assert open_store(f"sqlite:///{tmp_path}/abs.db", tmp_path).path == tmp_path / "abs.db"
    with pytest.raises(UserError, match="no store for URL scheme 'gs'"):
        open_store("gs://bucket/state", tmp_path)
