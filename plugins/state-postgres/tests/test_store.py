"""What the PostgreSQL store does beyond the shared suite: the schema it picks, its schema version, the
server's clock for leases, connections that go away, and opening from many processes at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from skyrig.state import LeaseLost, Locked, open_store
from skyrig_state_postgres.store import POOL_SIZE, SCHEMA_VERSION, PostgresStore


def _schemas(server, prefix: str) -> list[str]:
    rows = server.admin(
        f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{prefix}%' ORDER BY 1", database="state"
    )
    return [row[0] for row in rows]


def test_the_schema_is_named_after_the_app_by_default(tmp_path, postgres_server, monkeypatch):
    (tmp_path / "skyrig.toml").write_text('app = "my-shop"\n')
    store = open_store(postgres_server.url("state"), tmp_path)
    assert isinstance(store, PostgresStore) and store.location.schema == "skyrig_my_shop"
    store.close()
    monkeypatch.setenv("SKYRIG_APP", "other-app")  # as the configuration reads it too
    open_store(postgres_server.url("state"), tmp_path).close()
    assert _schemas(postgres_server, "skyrig_") == ["skyrig_my_shop", "skyrig_other_app"]


def test_both_url_schemes_and_libpq_parameters(tmp_path, postgres_server, schema):
    url = postgres_server.url("state", schema).replace("postgresql://", "postgres://")
    store = open_store(f"{url}&application_name=mine&connect_timeout=5", tmp_path)
    fence = store.acquire("dev", "me", 30)
    names = postgres_server.admin(
        "SELECT DISTINCT application_name FROM pg_stat_activity WHERE usename = 'skyrig'"
    )
    assert ("mine",) in names
    store.release("dev", fence)
    store.close()


def test_the_schema_is_versioned_and_opening_it_again_writes_nothing(tmp_path, postgres_server, schema):
    url = postgres_server.url("state", schema)
    open_store(url, tmp_path).close()
    assert postgres_server.admin(f"SELECT value FROM {schema}.meta", database="state") == [
        (str(SCHEMA_VERSION),)
    ]
    tables = postgres_server.admin(
        f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' ORDER BY 1", database="state"
    )
    assert [t for (t,) in tables] == ["environments", "intents", "meta", "nodes", "runtime", "serials"]
    before = postgres_server.admin(f"SELECT xmin::text FROM {schema}.meta", database="state")
    open_store(url, tmp_path).close()
    assert postgres_server.admin(f"SELECT xmin::text FROM {schema}.meta", database="state") == before


def test_many_processes_opening_a_new_schema_at_once_all_get_it(tmp_path, postgres_server, schema):
    url = postgres_server.url("state", schema)
    opener = (
        "import sys; from pathlib import Path; from skyrig.state import open_store; "
        "s = open_store(sys.argv[1], Path(sys.argv[2])); print(s.serial('dev')); s.close()"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", opener, url, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outputs = [child.communicate(timeout=60)[0] for child in children]
    assert [child.returncode for child in children] == [0] * 6 and outputs == ["0\n"] * 6


def test_leases_expire_by_the_servers_clock_whatever_this_machines_says(
    tmp_path, postgres_server, schema, monkeypatch
):
    store = open_store(postgres_server.url("state", schema), tmp_path)
    fence = store.acquire("dev", "first", ttl=30)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # this machine's clock is an hour fast
    with pytest.raises(Locked) as locked:
        store.acquire("dev", "second", ttl=30)
    assert "its lock expires in 30 s" in (locked.value.hint or "")
    store.record("dev", fence, _record())  # still held: the server says so
    monkeypatch.setattr(time, "time", lambda: real() - 3600)  # an hour slow
    short = store.acquire("other", "first", ttl=0.3)
    time.sleep(0.4)
    with pytest.raises(LeaseLost):
        store.record("other", short, _record())
    store.close()


def test_the_fence_survives_release_in_the_table(tmp_path, postgres_server, schema):
    store = open_store(postgres_server.url("state", schema), tmp_path)
    first = store.acquire("dev", "me", 30)
    store.release("dev", first)
    assert postgres_server.admin(f"SELECT fence, holder FROM {schema}.environments", database="state") == [
        (first, None)
    ]
    assert store.acquire("dev", "me", 30) == first + 1
    store.close()


def test_a_connection_the_server_ended_is_replaced_without_the_caller_noticing(
    tmp_path, postgres_server, schema
):
    store = open_store(postgres_server.url("state", schema), tmp_path)
    fence = store.acquire("dev", "me", 30)
    ended = postgres_server.admin(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'skyrig state'"
    )
    assert ended[0][0] >= 1
    store.record("dev", fence, _record())
    assert list(store.nodes("dev")) == ["sql.cluster"] and store.renew("dev", fence, 30)
    postgres_server.admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'skyrig state'"
    )
    assert store.acquire("other", "me", 30) == 1, "the lock too: the lost attempt sent nothing"
    store.close()


def test_threads_share_a_bounded_number_of_connections(tmp_path, postgres_server, schema):
    store = open_store(postgres_server.url("state", schema), tmp_path)
    fence = store.acquire("dev", "me", 60)
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for number in range(20):
                store.add_intent("dev", fence, f"n-{thread}-{number}", "create", "token")
                store.record("dev", fence, _record(f"n-{thread}-{number}"))
                store.renew("dev", fence, 60)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3 * POOL_SIZE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.nodes("dev")) == 20 * 3 * POOL_SIZE and store.serial("dev") == 20 * 3 * POOL_SIZE
    (connections,) = postgres_server.admin(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'skyrig state' AND datname = 'state'"
        " AND usename = 'skyrig'"
    )[0]
    assert connections <= POOL_SIZE
    store.close()


def _record(node_id: str = "sql.cluster"):
    from skyrig.state.suite.base import record

    return record(node_id)


def test_a_batch_is_one_fenced_statement_with_the_net_effect_of_its_writes(tmp_path, postgres_server, schema):
    from skyrig.state.suite.base import record

    store = open_store(postgres_server.url("state", schema), tmp_path)
    fence = store.acquire("dev", "me", 30)
    store.record("dev", fence, record("old"))
    store.add_intent("dev", fence, "pending", "create", "t0")
    serial = store.serial("dev")
    store.write_batch(
        "dev", fence, intents=[("a", "create", "t1"), ("b", "create", "t2"), ("b", "replace", "t3")]
    )
    assert store.intents("dev") == {"pending": "create", "a": "create", "b": "replace"}
    assert store.serial("dev") == serial, "intents alone do not move the serial"
    store.write_batch(
        "dev",
        fence,
        intents=[("c", "create", "t4"), ("d", "create", "t5")],
        records=[record("a", provider_id="1"), record("a", provider_id="2"), record("d"), record("e")],
        forgotten=["old", "e", "pending"],
    )
    nodes = store.nodes("dev")
    assert sorted(nodes) == ["a", "d"] and nodes["a"].provider_id == "2", "the last record of a node wins"
    assert store.intents("dev") == {"b": "replace", "c": "create"}
    assert store.serial("dev") == serial + 1
    before = (store.nodes("dev"), store.intents("dev"), store.serial("dev"))
    store.release("dev", fence)
    with pytest.raises(LeaseLost):
        store.write_batch(
            "dev", fence, intents=[("x", "create", "t")], records=[record("y")], forgotten=["a"]
        )
    assert (store.nodes("dev"), store.intents("dev"), store.serial("dev")) == before
    store.close()


def test_a_snapshot_is_the_serial_and_the_records_at_once(tmp_path, postgres_server, schema):
    import dataclasses

    from skyrig.state.suite.base import record

    store = open_store(postgres_server.url("state", schema), tmp_path)
    assert store.snapshot("dev") == (0, {}) and store.snapshot("dev", lean=True) == (0, {})
    fence = store.acquire("dev", "me", 30)
    store.record("dev", fence, record("a", drift=["size"]))
    store.record("dev", fence, record("b"))
    assert store.snapshot("dev") == (store.serial("dev"), store.nodes("dev"))
    serial, lean = store.snapshot("dev", lean=True)
    assert serial == store.serial("dev") and sorted(lean) == ["a", "b"]
    assert lean["a"] == dataclasses.replace(record("a"), outputs={}, drift=[], updated_at=0.0)
    store.close()
