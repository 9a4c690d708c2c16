"""The memory provider as the conformance suite sees it: what it claims, what it can list, and the
runtime entries its data plane reads (SQL in the shared PostgreSQL shape, with no server behind it)."""

from __future__ import annotations

import pytest

from skyrig.runtime.servers import PostgresClient
from skyrig_memory import provider

from .conftest import App, deploy, skyrig

SOURCE = """
from pydantic import BaseModel
from skyrig import Bucket, CacheCluster, CronJob, Secret, Service, SQLDatabase, Subscription, Topic

service = Service("web", app="everyapp:app")
app = None


class Event(BaseModel):
    customer: str


def handle(event: Event) -> None:
    pass


def nightly() -> None:
    pass


db = SQLDatabase("main")
events = Topic("events", Event, ordering_attribute="customer", delivery="exactly-once")
Subscription(events, "audit", handler=handle, max_retries=3)
Subscription(events, "forever", handler=handle, max_retries=-1)
cache = CacheCluster("hot")
hits = cache.keyspace("hit/{id}", value=int)
files = Bucket("files", public=True, versioned=True)
token = Secret("token")
CronJob("nightly", every="1h", endpoint=nightly)


def use():
    db.connect(); events.publish(None); hits.get(1); files.upload("k", b""); token.value()
"""


@pytest.fixture
def app(tmp_path, monkeypatch):
    return App(deploy(tmp_path, "every", "everyapp", SOURCE), "everyapp", monkeypatch)


def test_the_manifest_claims_what_the_data_plane_does():
    assert provider.manifest.features == {
        "pubsub.ordering",
        "pubsub.exactly_once",
        "pubsub.dead_letter",
        "bucket.public",
        "bucket.versioning",
        "cron.managed",
    }


def test_inventory_holds_each_node_once_and_nothing_after_destroy_with_data(app):
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    session = Session(load_config(app.root), "dev")
    try:
        recorded = {(record.type, record.provider_id) for record in session.store.nodes("dev").values()}
    finally:
        session.store.close()
    with app.context() as context:
        inventory = provider.inventory(context)
    assert sorted(inventory) == sorted(recorded) and len(inventory) == len(set(inventory))
    assert skyrig(app.root, "plan", "--env", "dev", "--detailed-exitcode") == 0
    assert skyrig(app.root, "destroy", "--env", "dev", "--yes") == 0
    with app.context() as context:
        assert {t for t, _ in provider.inventory(context)} == {"memory.sql.database", "memory.objects.bucket"}
    assert skyrig(app.root, "destroy", "--env", "dev", "--yes", "--include-data") == 0
    with app.context() as context:
        assert provider.inventory(context) == []


def test_dead_letters_of_a_subscription(app):
    with app.context() as context:
        assert provider.dead_letters(context, "audit") == []
        assert provider.dead_letters(context, "forever") == [], "max_retries=-1: nothing is dead-lettered"
        with pytest.raises(LookupError, match="subscription 'nope' does not exist"):
            provider.dead_letters(context, "nope")


def test_runtime_entries_carry_what_the_data_plane_needs(app):
    resources = app.config["resources"]
    subscription = resources["subscription/audit"]
    assert {
        key: subscription[key]
        for key in (
            "name",
            "ack_deadline_seconds",
            "max_retries",
            "max_concurrency",
            "ordered",
            "exactly_once",
        )
    } == {
        "name": "audit",
        "ack_deadline_seconds": 30,
        "max_retries": 3,
        "max_concurrency": 100,
        "ordered": True,
        "exactly_once": True,
    }
    assert subscription["dead_letter"] == "every-audit-dead-letter"
    assert resources["topic/events"]["ordered"] and resources["topic/events"]["exactly_once"]


def test_the_manifest_and_the_docs_say_migrations_are_not_applied():
    from pathlib import Path

    assert "SQL migrations not applied" in provider.manifest.description
    root = Path(__file__).resolve().parents[3]
    assert "does not apply migrations" in (root / "plugins" / "memory" / "README.md").read_text()
    providers = " ".join((root / "docs" / "providers.md").read_text().split())
    assert "the memory provider does not apply a database's migrations" in providers


def test_sql_follows_the_shared_shape_and_says_no_server_runs(app):
    entry = app.config["resources"]["sql_database/main"]
    assert {key: entry[key] for key in ("host", "port", "database", "user", "sslmode", "password")} == {
        "host": "every-dev.sql.memory.internal",
        "port": 5432,
        "database": "main",
        "user": "skyrig",
        "sslmode": "require",
        "password": None,
    }
    client = app.client("sql_database/main")
    assert isinstance(client, PostgresClient)
    assert app.sdk.db.url == "postgresql://skyrig@every-dev.sql.memory.internal:5432/main?sslmode=require"
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="provisioned by the memory provider, whose simulated"):
        app.sdk.db.connect(connect_timeout=2)
