"""The Application Model of the shop example: owners, uses and operations, migrations, references."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from skyrig.analysis import build_model
from skyrig.model import AppModel, json_schema

from .conftest import SHOP

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "app-model.schema.json"


@pytest.fixture(scope="module")
def shop() -> AppModel:
    return build_model(SHOP, "shop", cache=False)


def test_services_own_their_packages(shop):
    assert [(s.name, s.package, s.app) for s in shop.services] == [
        ("notifications", "notifications", "notifications.api:app"),
        ("orders", "orders", "orders.api:app"),
        ("payments", "payments", "payments.api:app"),
    ]
    owners = {(r.kind, r.name): r.service for r in shop.resources}
    assert owners == {
        ("bucket", "email-assets"): "notifications",
        ("bucket", "receipts"): "notifications",
        ("cache_cluster", "carts"): "orders",
        ("cron_job", "expire-carts"): "orders",
        ("cron_job", "nightly-digest"): "notifications",
        ("secret", "stripe-api-key"): "payments",
        ("sql_database", "orders"): "orders",
        ("subscription", "charge-order"): "payments",
        ("subscription", "send-receipt"): "notifications",
        ("topic", "order-created"): "orders",
    }


def test_uses_name_each_operation_for_least_privilege(shop):
    uses = {(u.service, u.kind, u.resource): u.operations for u in shop.uses}
    assert uses == {
        ("notifications", "bucket", "email-assets"): ["public_url"],
        ("notifications", "bucket", "receipts"): ["list", "signed_url", "upload"],
        ("notifications", "topic", "order-created"): ["subscribe"],
        ("orders", "cache_cluster", "carts"): ["delete", "get", "set"],
        ("orders", "sql_database", "orders"): ["connect"],
        ("orders", "topic", "order-created"): ["publish"],
        ("payments", "secret", "stripe-api-key"): ["read"],
        ("payments", "sql_database", "orders"): ["connect"],  # cross-service: payments reads orders' db
        ("payments", "topic", "order-created"): ["subscribe"],
    }
    payments_db = next(u for u in shop.uses if u.service == "payments" and u.kind == "sql_database")
    assert [str(where) for where in payments_db.locations] == ["payments/api.py:10:10"]


def test_settings_references_and_migrations(shop):
    topic = shop.resource("topic", "order-created")
    assert (topic.message_type, topic.delivery, topic.ordering_attribute) == (
        "orders.events:OrderCreated",
        "at-least-once",
        "customer_id",
    )
    receipt = shop.resource("subscription", "send-receipt")
    assert (receipt.topic, receipt.handler, receipt.max_concurrency) == (
        "order-created",
        "notifications.receipts:send_receipt",
        20,
    )
    assert (receipt.ack_deadline, receipt.max_retries, receipt.min_backoff) == ("30s", 100, "10s")  # defaults
    assert shop.resource("cron_job", "expire-carts").endpoint == "orders.maintenance:expire_carts"
    cache = shop.resource("cache_cluster", "carts")
    assert [(k.pattern, k.value_type, k.default_expiry) for k in cache.keyspaces] == [
        ("cart/{customer_id}", "orders.carts:Cart", "24h")
    ]
    db = shop.resource("sql_database", "orders")
    assert [(m.number, m.name, m.file) for m in db.migration_files] == [
        (1, "create_orders", "orders/migrations/0001_create_orders.up.sql"),
        (2, "add_status", "orders/migrations/0002_add_status.up.sql"),
    ]
    assert len(db.migration_files[0].sha256) == 64


def test_json_validates_against_the_published_schema(run):
    result = run("model", str(SHOP), "--json", "--no-cache")
    assert result.code == 0, result.err
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(json.loads(result.out), schema)


def test_published_schema_is_current():
    """docs/app-model.schema.json is generated: python -m skyrig.model > docs/app-model.schema.json"""
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


def test_json_is_deterministic_whatever_the_file_order(tmp_path, run):
    first = run("model", str(SHOP), "--json", "--no-cache").out
    copy = tmp_path / "shop"
    shutil.copytree(SHOP, copy, ignore=shutil.ignore_patterns(".skyrig"))
    for path in sorted(copy.rglob("*.py"), reverse=True):  # new inodes and mtimes, another write order
        path.write_text(path.read_text())
    assert run("model", str(copy), "--json", "--no-cache").out == first


def test_human_output_is_a_tree_of_services(run):
    result = run("model", str(SHOP), "--no-cache")
    assert result.code == 0
    assert "shop  3 services, 10 resources" in result.out
    assert "service orders  orders.api:app" in result.out
    assert "sql database orders (of orders): connect" in result.out
    assert "keyspace cart/{customer_id} → Cart, expires after 24h" in result.out


def test_no_app_code_is_imported(write_app, run):
    root = write_app(
        {
            "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
            "svc/api.py": "raise SystemExit('app code ran')\napp = None\n",
        }
    )
    result = run("model", str(root), "--json")
    assert result.code == 0, result.err
    assert "app code ran" not in result.out + result.err


def test_import_forms_resolve_to_the_same_resource(write_app):
    root = write_app(
        {
            "svc/__init__.py": 'import skyrig as sr\nservice = sr.Service("svc", app="svc.api:app")\n',
            "svc/res/__init__.py": "from .buckets import files as exported\n",
            "svc/res/buckets.py": 'from skyrig import Bucket as B\nfiles = B("files")\n',
            "svc/api.py": """
                import svc.res.buckets
                from svc import res
                from .res import exported

                app = None

                def a():
                    svc.res.buckets.files.upload("k", b"")

                def b():
                    res.exported.download("k")

                async def c():
                    from .res.buckets import files as f
                    return [x async for x in f.list()]

                def d(store=exported):
                    return store
            """,
        }
    )
    model = build_model(root, "testapp", cache=False)
    (use,) = model.uses
    assert use.resource == "files"
    # a, b, c call named operations; d passes the bucket around, which needs every operation
    assert use.operations == ["download", "list", "public_url", "remove", "signed_url", "upload"]


def test_metadata_reads_are_not_uses(write_app):
    root = write_app(
        {
            "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
            "svc/api.py": 'from skyrig import Secret\nkey = Secret("key")\napp = None\nNAME = key.name\n',
        }
    )
    assert build_model(root, "testapp", cache=False).uses == []


def test_a_root_service_owns_the_modules_no_other_service_owns(write_app):
    root = write_app(
        {
            "main.py": 'from skyrig import Service, Bucket\nservice = Service("web", app="main:app")\n'
            'files = Bucket("files")\napp = None\n',
            "helpers/storage.py": 'from skyrig import Bucket\nmore = Bucket("more")\n',
            "worker/__init__.py": 'from skyrig import Service, Secret\nw = Service("worker", app="worker:app")\n'
            'key = Secret("key")\napp = None\n',
        }
    )
    model = build_model(root, "testapp", cache=False)
    assert {r.name: r.service for r in model.resources} == {"files": "web", "more": "web", "key": "worker"}


def test_records_built_without_validation_equal_validated_ones(shop):
    """The parser builds records from validated specs without validating again: prove it loses nothing."""
    for record in [*shop.services, *shop.resources, *shop.uses]:
        assert record.model_fields_set == set(type(record).model_fields), type(record).__name__
    assert AppModel.model_validate_json(shop.to_json()) == shop


def test_declarations_imported_from_skyrig_submodules_are_found(write_app):
    root = write_app(
        {
            "svc/__init__.py": "import skyrig.declarations.objects as objects\n"
            "from skyrig.declarations import Secret, Service\n"
            'service = Service("svc", app="svc:app")\napp = None\n'
            'key = Secret("key")\nfiles = objects.Bucket("files")\n',
        }
    )
    model = build_model(root, "testapp", cache=False)
    assert [(r.kind, r.name) for r in model.resources] == [("bucket", "files"), ("secret", "key")]


def test_a_cache_cluster_is_used_through_its_keyspaces(write_app):
    root = write_app(
        {
            "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
            "svc/api.py": """
                from skyrig import CacheCluster
                cluster = CacheCluster("c")
                counters = cluster.keyspace("count/{id}", value=int)
                app = None

                def peek():
                    return counters.get("1")

                def describe():
                    return cluster.keyspace.__doc__  # reading the method is no declaration

                def hand_over(store=cluster):  # passed around: it may do what its keyspaces do
                    return store
            """,
        }
    )
    (use,) = build_model(root, "testapp", cache=False).uses
    assert (use.kind, use.resource, use.operations) == ("cache_cluster", "c", ["delete", "get", "set"])


# -- uses the parser cannot follow (issue 13) --------------------------------------------------------

TWO_SERVICES = {
    "files/__init__.py": 'from skyrig import Service\nservice = Service("files", app="files:app")\napp = None\n',
    "files/storage.py": """
        from skyrig import Bucket, CacheCluster, Secret
        receipts = Bucket("receipts")
        key = Secret("key")
        cluster = CacheCluster("hot")
        counters = cluster.keyspace("count/{id}", value=int)
    """,
    "billing/__init__.py": 'from skyrig import Service\nservice = Service("billing", app="billing.api:app")\n',
    "billing/helpers.py": """
        def archive(bucket, name):
            bucket.upload(name, b"")
    """,
}


def test_a_resource_passed_to_a_helper_is_a_use_of_every_operation_and_says_where(write_app, run):
    """A module of billing imports files' bucket inside a function and only hands it to a helper: the
    parser cannot see the upload, so billing may do all a bucket can, and the model says where."""
    root = write_app(
        {
            **TWO_SERVICES,
            "billing/api.py": """
                from billing.helpers import archive

                app = None

                def close_month(month):
                    from files.storage import receipts
                    archive(receipts, month)
            """,
        }
    )
    model = build_model(root, "testapp", cache=False)
    (use,) = model.uses_by("billing")
    assert (use.kind, use.resource) == ("bucket", "receipts")
    assert use.operations == ["download", "list", "public_url", "remove", "signed_url", "upload"]
    assert use.operations_not_visible == ["billing/api.py:7:13"]

    from skyrig.engine.runtime_config import grants

    assert grants(model)["billing"] == {"bucket/receipts": use.operations}, "its runtime config grants it"
    tree = run("model", str(root), "--no-cache").out
    assert "bucket receipts (of files): download, list, public_url, remove, signed_url, upload" in tree
    assert "operations not visible: all granted  billing/api.py:7:13" in tree, tree


def test_a_module_of_declarations_passed_around_is_a_use_of_all_it_declares(write_app):
    root = write_app(
        {
            **TWO_SERVICES,
            "billing/api.py": """
                from files import storage
                from billing.helpers import archive

                app = None

                def close_month(month):
                    archive(storage, month)
            """,
        }
    )
    uses = {(u.kind, u.resource): u for u in build_model(root, "testapp", cache=False).uses_by("billing")}
    # another service's cache is private: handing its module around is no use of it, and no error
    assert sorted(uses) == [("bucket", "receipts"), ("secret", "key")]
    assert uses[("secret", "key")].operations == ["read"]
    assert all(u.operations_not_visible == ["billing/api.py:7:13"] for u in uses.values())


def test_where_every_operation_is_visible_least_privilege_stays_exact(write_app, run):
    root = write_app(
        {
            **TWO_SERVICES,
            "billing/api.py": """
                from files.storage import receipts, key

                app = None

                def close_month(month):
                    from files.storage import receipts as r
                    r.download(month)
                    receipts.list()
                    return key.value()
            """,
        }
    )
    uses = {u.resource: u for u in build_model(root, "testapp", cache=False).uses_by("billing")}
    assert uses["receipts"].operations == ["download", "list"]
    assert uses["key"].operations == ["read"]
    assert all(u.operations_not_visible == [] for u in uses.values())
    assert "operations not visible" not in run("model", str(root), "--no-cache").out
