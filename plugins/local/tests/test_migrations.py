"""Migrations on a real PostgreSQL (issue 12 §4 and §5): an applied migration whose file is gone is
refused, by ``plan`` and ``apply`` and by the runner itself; a failing migration names its line."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from skyrig.cli import main
from skyrig.provider import ProviderError, migrate

CONFIG = 'app = "bank"\n[env.local]\ntype = "local"\nprovider = "memory"\nsql = "local"\n'
FIRST = "ledger/migrations/0001_accounts.up.sql"
SECOND = "ledger/migrations/0002_balance.up.sql"


@pytest.fixture
def app(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "bank"
    files = {
        "skyrig.toml": CONFIG,
        "ledger/__init__.py": 'from skyrig import Service\nservice = Service("ledger", app="ledger.api:app")\n',
        "ledger/db.py": 'from skyrig import SQLDatabase\ndb = SQLDatabase("ledger", migrations="./migrations")\n',
        "ledger/api.py": "app = None\n",
        FIRST: "CREATE TABLE accounts (id serial PRIMARY KEY, owner text NOT NULL);\n",
        SECOND: "ALTER TABLE accounts ADD COLUMN cents int DEFAULT 0;\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@pytest.fixture
def skyrig(app, capsys):
    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([*args, "-C", str(app)])
        except SystemExit as done:
            code = done.code
        captured = capsys.readouterr()
        return code or 0, captured.out, captured.err

    return invoke


def _connect(app: Path) -> psycopg.Connection:
    from skyrig_local import postgres

    data = app / ".skyrig" / "local" / "local" / "postgres"
    return psycopg.connect(postgres.uri(data.resolve(), "ledger"), autocommit=True)


def _ledger(app: Path) -> list[tuple[int, str]]:
    with _connect(app) as connection:
        return connection.execute("SELECT number, name FROM skyrig_migrations ORDER BY number").fetchall()


def test_an_applied_migration_whose_file_is_gone_is_refused_by_plan_and_apply(app, skyrig):
    code, _, err = skyrig("apply", "--env", "local", "--yes")
    assert code == 0, err
    saved = (app / SECOND).read_text()
    (app / SECOND).unlink()

    for command in (("plan",), ("plan", "--json"), ("apply", "--yes")):
        code, out, err = skyrig(*command, "--env", "local")
        assert code == 1, (command, out, err)
        assert f"migration 2 ({SECOND}) was applied to database 'ledger' and its file is gone" in err, err
        assert "restore it" in err and "add a new migration" in err, err
        assert "Traceback" not in err and "done:" not in err, err
    assert _ledger(app) == [(1, "accounts"), (2, "balance")], "nothing was changed"

    (app / SECOND).write_text(saved)
    assert skyrig("plan", "--env", "local", "--detailed-exitcode")[0] == 0, "restored: nothing to do"


def test_the_runner_refuses_an_applied_migration_missing_from_the_files(app, skyrig):
    """The same refusal where every provider applies migrations (AWS's one-off task included)."""
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    model = json.loads(skyrig("model", "--json")[1])
    (database,) = [r for r in model["resources"] if r["kind"] == "sql_database"]
    first = database["migration_files"][0]
    migrations, files = [[first["number"], first["name"], first["sha256"]]], {"1": first["file"]}

    with _connect(app) as connection, pytest.raises(ProviderError) as refused:
        migrate(connection, "ledger", migrations, files, app)

    assert str(refused.value).startswith(
        f"migration 2 ({SECOND}) was applied to database 'ledger' and its file is gone"
    ), refused.value
    assert _ledger(app) == [(1, "accounts"), (2, "balance")]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (  # the server says where: a position in the file's text
            "CREATE TABLE audit (id int);\n\n-- the total of héllo\nSELECT nope\n  FROM accounts;\n",
            4,
            'column "nope" does not exist',
        ),
        (  # the server does not: the failing statement is found
            "CREATE TABLE audit (id int);\n-- a; comment\nINSERT INTO audit VALUES (1);\n"
            "ALTER TABLE nowhere\n  ADD COLUMN x int;\n",
            4,
            'relation "nowhere" does not exist',
        ),
        (  # a string and a dollar-quoted body with semicolons in them
            "INSERT INTO accounts (owner) VALUES ('a;b');\n"
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
            "CREATE TABLE accounts (id int);\n",
            3,
            'relation "accounts" already exists',
        ),
    ],
    ids=["position", "no position", "quoted semicolons"],
)
def test_a_failing_migration_names_its_line(app, skyrig, text, line, message):
    assert skyrig("apply", "--env", "local", "--yes")[0] == 0
    broken = "ledger/migrations/0003_broken.up.sql"
    (app / broken).write_text(text)

    code, _, err = skyrig("apply", "--env", "local", "--yes")

    assert code == 1
    assert f"{broken}: migration failed and was rolled back: {message} (at {broken}:{line})" in err, err
    assert _ledger(app) == [(1, "accounts"), (2, "balance")], "the failed migration left nothing"
    with _connect(app) as connection:
        assert connection.execute("SELECT to_regclass('audit') IS NULL").fetchone()[0]
