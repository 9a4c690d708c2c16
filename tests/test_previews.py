"""skyrig preview on the local provider: a preview seeded from a staging-like environment's real PostgreSQL
(rows copied in foreign-key order, sequences continued, the two databases apart), opened twice without
copying twice, closed with its data."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from skyrig.cli.testing import Result, run_cli

CONFIG = """app = "bank"

[env.staging]
type = "local"
provider = "memory"
sql = "local"

[env.review]
type = "local"
provider = "memory"
sql = "local"

[preview]
template = "review"
"""

MIGRATION = """
CREATE TABLE zones (code text PRIMARY KEY, label text NOT NULL);
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    zone text NOT NULL REFERENCES zones (code),
    cents integer NOT NULL,
    doubled integer GENERATED ALWAYS AS (cents * 2) STORED
);
CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account integer REFERENCES accounts);
"""


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "bank"
    files = {
        "skyrig.toml": CONFIG,
        "ledger/__init__.py": 'from skyrig import Service\nservice = Service("ledger", app="ledger.api:app")\n',
        "ledger/db.py": 'from skyrig import SQLDatabase\ndb = SQLDatabase("ledger", migrations="./migrations")\n',
        "ledger/api.py": "app = None\n",
        "ledger/migrations/0001_accounts.up.sql": MIGRATION,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return root


@pytest.fixture
def skyrig(app: Path, capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> Result:
        return run_cli([*args, "-C", str(app)], capsys)

    return invoke


def _url(app: Path, env: str) -> str:
    from skyrig.cli.db import _provisioned, _url
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    session = Session(load_config(app), env)
    return _url(session, *_provisioned(session, "ledger"))


def test_a_preview_is_seeded_from_staging_kept_apart_opened_twice_once_and_closed(app: Path, skyrig) -> None:
    done = skyrig("apply", "--env", "staging", "--yes")
    assert done.code == 0, done.text
    with psycopg.connect(_url(app, "staging"), autocommit=True) as staging:
        staging.execute("INSERT INTO zones VALUES ('eu', 'Europe'), ('us', 'Americas')")
        staging.execute("INSERT INTO accounts (zone, cents) VALUES ('eu', 10), ('us', 20), ('eu', 30)")
        staging.execute("INSERT INTO audit (account) VALUES (1), (3)")

    opened = skyrig("preview", "open", "--pr", "7", "--seed-from", "staging", "--json")
    assert opened.code == 0, opened.text
    answer = json.loads(opened.out)
    assert answer["environment"] == "pr:7" and answer["template"] == "review" and answer["ok"]
    assert answer["seed"] == {
        "from": "staging",
        "how": "copied",
        "databases": {"ledger": {"seeded": True, "tables": 3, "rows": 7, "sequences": 2}},
    }

    with psycopg.connect(_url(app, "pr:7"), autocommit=True) as preview:
        rows = preview.execute("SELECT id, zone, cents, doubled FROM accounts ORDER BY id").fetchall()
        assert rows == [(1, "eu", 10, 20), (2, "us", 20, 40), (3, "eu", 30, 60)]
        (new,) = preview.execute(
            "INSERT INTO accounts (zone, cents) VALUES ('us', 5) RETURNING id"
        ).fetchone()
        assert new == 4, "the serial continues after the copied rows"
        (logged,) = preview.execute("INSERT INTO audit (account) VALUES (4) RETURNING id").fetchone()
        assert logged == 3, "the identity continues too"
    with psycopg.connect(_url(app, "staging"), autocommit=True) as staging:
        assert staging.execute("SELECT count(*) FROM accounts").fetchone() == (3,), (
            "the preview's write stays"
        )
        (next_id,) = staging.execute(
            "INSERT INTO accounts (zone, cents) VALUES ('eu', 1) RETURNING id"
        ).fetchone()
        assert next_id == 4, "staging's own sequence is untouched"

    again = skyrig("preview", "open", "--pr", "7", "--seed-from", "staging", "--json")
    assert again.code == 0, again.text
    seeded = json.loads(again.out)["seed"]["databases"]["ledger"]
    assert seeded["seeded"] is False and "already has rows" in seeded["reason"]
    with psycopg.connect(_url(app, "pr:7"), autocommit=True) as preview:
        assert preview.execute("SELECT count(*) FROM accounts").fetchone() == (4,), "nothing copied twice"

    listed = skyrig("preview", "list", "--json")
    assert [p["environment"] for p in json.loads(listed.out)["previews"]] == ["pr:7"]
    data = app / ".skyrig"
    assert any((folder / "postgres").exists() for folder in data.rglob("pr-7")), "the preview's cluster"

    # a push re-opens it: an open preview needs its seed no longer
    assert skyrig("destroy", "--env", "staging", "--include-data", "--yes").code == 0
    pushed = skyrig("preview", "open", "--pr", "7", "--seed-from", "staging", "--json")
    assert pushed.code == 0, pushed.text
    assert json.loads(pushed.out)["seed"]["databases"]["ledger"]["seeded"] is False

    closed = skyrig("preview", "close", "--pr", "7", "--json")
    assert closed.code == 0, closed.text
    assert json.loads(closed.out)["existed"] is True
    assert not any((folder / "postgres").exists() for folder in data.rglob("pr-7")), "its data is gone"
    assert json.loads(skyrig("preview", "list", "--json").out)["previews"] == []
    status = skyrig("status", "--env", "pr:7", "--json")
    assert status.code == 0 and json.loads(status.out)["nodes"] == []


def test_a_seed_that_is_not_provisioned_stops_the_open_before_anything_is_made(app: Path, skyrig) -> None:
    refused = skyrig("preview", "open", "--pr", "3", "--seed-from", "staging")
    assert refused.code == 1
    assert "cannot seed from environment 'staging'" in refused.err
    assert "skyrig apply --env staging" in refused.err and "Traceback" not in refused.text
    assert not list((app / ".skyrig").rglob("pr-3")), "no cluster was made for the preview"


HARD = """
CREATE SCHEMA "Sales";
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TABLE "Sales"."Line Items" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent bigint REFERENCES "Sales"."Line Items",
    "order" integer NOT NULL,
    feeling mood NOT NULL,
    extra jsonb
);
CREATE TABLE a (id integer PRIMARY KEY, b integer);
CREATE TABLE b (id integer PRIMARY KEY, a integer REFERENCES a DEFERRABLE);
ALTER TABLE a ADD FOREIGN KEY (b) REFERENCES b DEFERRABLE;
CREATE TABLE orders (id integer PRIMARY KEY);
ALTER TABLE "Sales"."Line Items" ADD FOREIGN KEY ("order") REFERENCES orders;
CREATE SEQUENCE tickets START 100;
"""


def test_seeding_copies_schemas_quoted_names_self_references_cycles_and_sequences(tmp_path: Path) -> None:
    from skyrig.engine.seed import seed
    from skyrig_local import postgres

    data = tmp_path / "cluster"
    try:
        with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE source")
            admin.execute("CREATE DATABASE target")
        urls = {name: postgres.uri(data, name) for name in ("source", "target")}
        for url in urls.values():
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(HARD)
        with psycopg.connect(urls["source"], autocommit=True) as db:
            db.execute("INSERT INTO orders VALUES (1), (2)")
            db.execute(
                """INSERT INTO "Sales"."Line Items" (parent, "order", feeling, extra)
                   VALUES (NULL, 1, 'ok', '{"a": [1, "x\\ty"]}'), (1, 2, 'sad', NULL)"""
            )
            with db.transaction():
                db.execute("SET CONSTRAINTS ALL DEFERRED")
                db.execute("INSERT INTO a VALUES (1, 1)")
                db.execute("INSERT INTO b VALUES (1, 1)")
            db.execute("SELECT nextval('tickets'), nextval('tickets')")

        outcome = seed(lambda: urls["source"], urls["target"])
        assert outcome.skipped is None
        assert outcome.rows == {"public.orders": 2, "Sales.Line Items": 2, "public.a": 1, "public.b": 1}
        with psycopg.connect(urls["target"], autocommit=True) as db:
            items = db.execute('SELECT id, parent, "order", feeling::text, extra FROM "Sales"."Line Items"')
            assert items.fetchall() == [(1, None, 1, "ok", {"a": [1, "x\ty"]}), (2, 1, 2, "sad", None)]
            assert db.execute("SELECT nextval('tickets')").fetchone() == (102,)
            added = db.execute(
                'INSERT INTO "Sales"."Line Items" ("order", feeling) VALUES (2, \'ok\') RETURNING id'
            )
            assert added.fetchone() == (3,)

        called = []
        again = seed(lambda: called.append(1) or urls["source"], urls["target"])
        assert again.skipped == "table Sales.Line Items already has rows: not seeded again"
        assert not called, "a target with rows never reads the source"
    finally:
        postgres.remove(data)
