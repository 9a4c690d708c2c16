"""The local provider's SQL on a real, embedded PostgreSQL 18: databases, migrations, the data plane."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skyrig.cli import main

CONFIG = 'app = "bank"\n[env.local]\ntype = "local"\nprovider = "memory"\nsql = "local"\n'


@pytest.fixture
def app(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "bank"
    files = {
        "skyrig.toml": CONFIG,
        "ledger/__init__.py": 'from skyrig import Service\nservice = Service("ledger", app="ledger.api:app")\n',
        "ledger/db.py": 'from skyrig import SQLDatabase\ndb = SQLDatabase("ledger", migrations="./migrations")\n',
        "ledger/api.py": "from .db import db\napp = None\n\ndef balance():\n    with db.connect() as c:\n"
        "        return c.execute('SELECT 1').fetchone()\n",
        "ledger/migrations/0001_accounts.up.sql": "CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL);\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@pytest.fixture
def skyrig(app, capsys):
    def invoke(*args: str):
        capsys.readouterr()
        try:
            code = main([*args, "-C", str(app)])
        except SystemExit as done:
            code = done.code
        captured = capsys.readouterr()
        return code or 0, captured.out, captured.err

    return invoke


def _service(app: Path, code: str) -> subprocess.CompletedProcess:
    config = app / ".skyrig" / "runtime" / "local" / "ledger.json"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=app,
        capture_output=True,
        text=True,
        env={"SKYRIG_RUNTIME_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def test_a_database_is_created_with_its_migrations_and_reached_by_the_app(app, skyrig):
    code, _, err = skyrig("apply", "--env", "local", "--yes")
    assert code == 0, err
    assert skyrig("plan", "--env", "local", "--detailed-exitcode")[0] == 0, "a second plan has nothing to do"

    wrote = _service(
        app,
        """
        import sys; sys.path.insert(0, ".")
        from ledger.db import db
        with db.connect() as c:
            c.execute("INSERT INTO accounts (owner) VALUES ('ada')")
        with db.connect() as other:  # a second connection sees the committed write
            print(other.execute("SELECT owner FROM accounts").fetchall())
            print(other.execute("SELECT number, name FROM skyrig_migrations").fetchall())
    """,
    )
    assert wrote.returncode == 0, wrote.stderr
    assert wrote.stdout.splitlines() == ["[('ada',)]", "[(1, 'accounts')]"]


def test_pools_sync_and_async_share_connections_per_process(app, skyrig):
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    result = _service(
        app,
        """
        import asyncio, sys; sys.path.insert(0, ".")
        from ledger.db import db
        pool = db.pool(max_size=2)
        assert db.pool() is pool, "one pool per database and process"
        with pool.connection() as c:
            c.execute("INSERT INTO accounts (owner) VALUES ('grace')")
        print(pool.get_stats()["pool_max"])

        async def main():
            shared = await asyncio.gather(db.async_pool(), db.async_pool())
            assert shared[0] is shared[1], "tasks asking at once share one pool"
            async with shared[0].connection() as c:
                cursor = await c.execute("SELECT owner FROM accounts")
                print(await cursor.fetchall())
            await shared[0].close()

        asyncio.run(main())
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["2", "[('grace',)]"]


def test_a_new_migration_is_applied_alone_and_in_order(app, skyrig):
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    (app / "ledger/migrations/0002_balance.up.sql").write_text(
        "ALTER TABLE accounts ADD COLUMN cents int DEFAULT 0;\n"
    )
    plan = json.loads(skyrig("plan", "--env", "local", "--json")[1])
    (change,) = [c for c in plan["changes"] if c["action"] != "noop"]
    assert change["node"] == "sql.database/ledger" and change["action"] == "update"
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    result = _service(
        app,
        """
        import sys; sys.path.insert(0, ".")
        from ledger.db import db
        with db.connect() as c:
            print(c.execute("SELECT number FROM skyrig_migrations ORDER BY number").fetchall())
            print(c.execute("SELECT cents FROM accounts").fetchall())
    """,
    )
    assert result.stdout.splitlines() == ["[(1,), (2,)]", "[]"], result.stderr


def test_a_failing_migration_is_named_and_leaves_the_database_as_it_was(app, skyrig):
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    (app / "ledger/migrations/0002_broken.up.sql").write_text(
        "CREATE TABLE audit (id int);\nALTER TABLE nowhere ADD COLUMN x int;\n"
    )
    code, _, err = skyrig("apply", "--env", "local", "--yes")
    assert code == 1
    assert "ledger/migrations/0002_broken.up.sql: migration failed and was rolled back" in err
    assert 'relation "nowhere" does not exist' in err
    result = _service(
        app,
        """
        import sys; sys.path.insert(0, ".")
        from ledger.db import db
        with db.connect() as c:
            print(c.execute("SELECT to_regclass('audit') IS NULL").fetchone()[0])
            print(c.execute("SELECT count(*) FROM skyrig_migrations").fetchone()[0])
    """,
    )
    assert result.stdout.splitlines() == ["True", "1"], "nothing of the failed migration remains"


def test_an_applied_migration_may_not_change(app, skyrig):
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    (app / "ledger/migrations/0001_accounts.up.sql").write_text("CREATE TABLE accounts (id int);\n")
    code, _, err = skyrig("apply", "--env", "local", "--yes")
    assert code == 1
    assert "migration 1 changed after it was applied to database 'ledger'" in err


def test_destroy_with_data_removes_the_cluster(app, skyrig):
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    data = app / ".skyrig" / "local" / "local" / "postgres"
    assert (data / "PG_VERSION").exists()
    code, _, err = skyrig("destroy", "--env", "local", "--yes", "--include-data")
    assert code == 0, err
    assert not data.exists()


def test_a_cluster_another_process_removed_and_made_again_is_reached_afresh(tmp_path):
    """A long-lived process (the dashboard, skyrig run) keeps a handle on the cluster's server; another
    process's destroy removes the cluster and its apply makes a new one, whose server stops when that
    process exits. The long-lived process reaches the new cluster, not the server it knew."""
    import psycopg

    from skyrig_local import postgres

    data = tmp_path / "postgres"
    with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
        connection.execute("CREATE DATABASE before_the_other_process")
    other = textwrap.dedent(
        f"""
        from pathlib import Path
        import psycopg
        from skyrig_local import postgres
        data = Path({str(data)!r})
        postgres.remove(data)
        with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE made_by_the_other_process")
        """
    )
    subprocess.run([sys.executable, "-c", other], check=True, timeout=120)
    try:
        with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
            names = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        assert "made_by_the_other_process" in names and "before_the_other_process" not in names
    finally:
        postgres.remove(data)
