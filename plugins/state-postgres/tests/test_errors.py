"""What a user sees when the store cannot be used: one line naming the store (user, host, port, database,
schema; never a password) and a hint saying what to do. Each case on a real server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from skyrig.state import StateUnusable, open_store
from skyrig_state_postgres.testing import USER, TestServer

SECRET = "hunter2-never-shown"


def _refused(url: str, root: Path, *expected: str) -> StateUnusable:
    with pytest.raises(StateUnusable) as raised:
        open_store(url, root).close()
    error = raised.value
    for text in (error.message, error.hint or ""):
        assert "\n" not in text, f"not one line: {text!r}"
        assert SECRET not in text, f"the password was shown: {text!r}"
    for text in expected:
        assert text in error.render(), error.render()
    return error


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server(tmp_path):
    port = _closed_port()
    error = _refused(
        f"postgresql://skyrig:{SECRET}@127.0.0.1:{port}/state?schema=app",
        tmp_path,
        f"cannot reach PostgreSQL at 127.0.0.1:{port}",
        f"postgresql://skyrig@127.0.0.1:{port}/state (schema app)",
        "Connection refused",
    )
    assert "check that the server runs" in error.hint


def test_an_unknown_host(tmp_path):
    _refused(
        "postgresql://skyrig@no-such-host.invalid:5432/state?schema=app&connect_timeout=2",
        tmp_path,
        "cannot reach PostgreSQL at no-such-host.invalid:5432",
    )


def test_a_wrong_password(tmp_path, postgres_server, schema, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", SECRET)
    error = _refused(
        postgres_server.url("state", schema),
        tmp_path,
        f"PostgreSQL at 127.0.0.1:{postgres_server.port} refused user 'skyrig' for database 'state'",
        "password authentication failed",
    )
    assert "PGPASSWORD or ~/.pgpass (never in skyrig.toml)" in error.hint and "SKYRIG_STATE" in error.hint


def test_a_wrong_password_in_the_url_is_never_shown(tmp_path, postgres_server, schema):
    url = postgres_server.url("state", schema).replace(f"{USER}@", f"{USER}:{SECRET}@")
    _refused(url, tmp_path, "refused user 'skyrig'")


def test_no_password_at_all(tmp_path, postgres_server, schema, monkeypatch):
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    _refused(postgres_server.url("state", schema), tmp_path, "refused user 'skyrig'", "no password supplied")


def test_the_password_from_a_pgpass_file(tmp_path, postgres_server, schema, monkeypatch):
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres_server.port}:state:{USER}:{postgres_server.password}\n")
    passfile.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    store = open_store(postgres_server.url("state", schema), tmp_path)
    assert store.serial("dev") == 0
    store.close()


def test_tls_required_of_a_server_without_it(tmp_path, postgres_server, schema):
    error = _refused(
        postgres_server.url("state", schema) + "&sslmode=require",
        tmp_path,
        f"cannot connect securely to PostgreSQL at 127.0.0.1:{postgres_server.port}",
        "SSL",
    )
    assert "sslmode and sslrootcert" in error.hint


def test_a_database_that_does_not_exist(tmp_path, postgres_server, schema):
    error = _refused(
        postgres_server.url("nowhere", schema), tmp_path, "database 'nowhere' does not exist on PostgreSQL"
    )
    assert "createdb" in error.hint


@pytest.fixture
def reader(postgres_server) -> str:
    """A role that may log in to ``state``, and nothing more."""
    name = "reader"
    if not postgres_server.admin(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}'"):
        postgres_server.admin(f"CREATE ROLE {name} LOGIN PASSWORD '{postgres_server.password}'")
    return name


def test_no_permission_to_create_the_schema(tmp_path, postgres_server, schema, reader):
    error = _refused(
        postgres_server.url("state", schema, user=reader),
        tmp_path,
        f"user 'reader' may not use schema '{schema}' of postgresql://reader@127.0.0.1:{postgres_server.port}"
        f"/state (schema {schema}) (permission denied for database state)",
    )
    assert f"CREATE SCHEMA {schema} AUTHORIZATION reader" in error.hint
    assert "GRANT CREATE ON DATABASE state TO reader" in error.hint


def test_no_permission_on_an_existing_schema(tmp_path, postgres_server, schema, reader):
    open_store(postgres_server.url("state", schema), tmp_path).close()  # made by its owner
    _refused(
        postgres_server.url("state", schema, user=reader),
        tmp_path,
        f"user 'reader' may not use schema '{schema}'",
        f"permission denied for schema {schema}",
    )


def test_a_role_that_only_reads_opens_and_reads_but_cannot_write(tmp_path, postgres_server, schema, reader):
    owner = open_store(postgres_server.url("state", schema), tmp_path)
    fence = owner.acquire("dev", "owner", 30)
    owner.finish("dev", fence, {"web": {}})
    postgres_server.admin(
        f"GRANT USAGE ON SCHEMA {schema} TO reader",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO reader",
        database="state",
    )
    store = open_store(postgres_server.url("state", schema, user=reader), tmp_path)
    assert store.runtime_configs("dev") == {"web": {}} and store.serial("dev") == 1
    with pytest.raises(
        StateUnusable, match=r"user .reader. may not use schema .*permission denied for table"
    ):
        store.acquire("dev", "reader", 30)
    store.close()
    owner.close()


def test_a_schema_written_by_a_newer_skyrig(tmp_path, postgres_server, schema):
    open_store(postgres_server.url("state", schema), tmp_path).close()
    postgres_server.admin(
        f"UPDATE {schema}.meta SET value = '99' WHERE key = 'schema_version'", database="state"
    )
    error = _refused(
        postgres_server.url("state", schema),
        tmp_path,
        f"(schema {schema}) has state schema version 99, newer than this skyrig-state-postgres's (1)",
    )
    assert "pip install -U skyrig-state-postgres" in error.hint


def test_a_schema_that_is_not_skyrig_state(tmp_path, postgres_server, schema):
    postgres_server.admin(
        f"CREATE SCHEMA {schema} AUTHORIZATION {USER}",
        f"CREATE TABLE {schema}.orders (id int)",
        database="state",
    )
    _refused(postgres_server.url("state", schema), tmp_path, "is not skyrig state (it holds orders")
    assert postgres_server.admin(
        f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'", database="state"
    ) == [(1,)], "nothing was written into it"


def test_an_empty_schema_made_for_skyrig_is_used(tmp_path, postgres_server, schema):
    postgres_server.admin(f"CREATE SCHEMA {schema} AUTHORIZATION {USER}", database="state")
    store = open_store(postgres_server.url("state", schema), tmp_path)
    assert store.acquire("dev", "me", 30) == 1
    store.close()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u@h/db?schema=Bad-Name", "'Bad-Name' (postgresql://u@h:5432/db) is not a schema name"),
        ("postgresql://u@h/db?nonsense=1", "is not a PostgreSQL URL libpq accepts"),
        (f"postgresql://u:{SECRET}@h/db?nonsense=1", "postgresql://u:****@h/db?nonsense=1"),
        ("postgresql://u@h/db", "names no schema, and no app name was found in"),
    ],
)
def test_a_bad_url(tmp_path, url, expected):
    _refused(url, tmp_path, expected)


def test_a_lost_server_while_the_store_is_open(tmp_path):
    with TestServer() as server:
        server.database("state")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PGPASSWORD", server.password)
            store = open_store(server.url("state", "app"), tmp_path)
            fence = store.acquire("dev", "me", 30)
            server.stop()
            assert store.renew("dev", fence, 30) is True, "the heartbeat survives an unreachable server"
            with pytest.raises(StateUnusable) as raised:
                store.nodes("dev")
            assert f"cannot reach PostgreSQL at 127.0.0.1:{server.port}" in raised.value.message
            with pytest.raises(StateUnusable, match="stays until it expires by itself"):
                store.release("dev", fence)
            store.close()
