"""The model cache: an unchanged tree parses nothing, an edit re-parses only the edited file."""

from __future__ import annotations

import os
import shutil

import pytest

import skyrig.analysis
import skyrig.analysis.extract
import skyrig.analysis.link
from skyrig.analysis import AppCodeError, build_model

from .conftest import SHOP


@pytest.fixture
def shop(tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".skyrig"))
    return root


@pytest.fixture
def calls(monkeypatch):
    """Counts the files parsed and the times facts are linked into a model."""
    counted = {"extract": [], "link": 0}
    real_extract, real_link = skyrig.analysis.extract.extract, skyrig.analysis.link.link

    def extract(source, path, *args):
        counted["extract"].append(path)
        return real_extract(source, path, *args)

    def link(*args):
        counted["link"] += 1
        return real_link(*args)

    monkeypatch.setattr(skyrig.analysis.extract, "extract", extract)
    monkeypatch.setattr(skyrig.analysis.link, "link", link)
    return counted


def test_an_unchanged_tree_is_served_without_parsing(shop, calls):
    cold = build_model(shop, "shop")
    assert len(calls["extract"]) == 15 and calls["link"] == 1
    calls["extract"].clear()

    warm = build_model(shop, "shop")

    assert warm == cold
    assert calls["extract"] == [] and calls["link"] == 1


def test_an_edit_reparses_only_the_edited_file(shop, calls):
    build_model(shop, "shop")
    calls["extract"].clear()
    storage = shop / "notifications" / "storage.py"
    storage.write_text(storage.read_text().replace("versioned=True", "versioned=False"))

    model = build_model(shop, "shop")

    assert calls["extract"] == ["notifications/storage.py"]
    assert model.resource("bucket", "receipts").versioned is False


def test_a_touched_but_unchanged_file_is_not_parsed_again(shop, calls):
    build_model(shop, "shop")
    calls["extract"].clear()
    api = shop / "orders" / "api.py"
    stat = api.stat()
    os.utime(api, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    build_model(shop, "shop")

    assert calls["extract"] == [] and calls["link"] == 2


def test_a_new_migration_is_seen(shop):
    assert len(build_model(shop, "shop").resource("sql_database", "orders").migration_files) == 2
    (shop / "orders" / "migrations" / "0003_more.up.sql").write_text("SELECT 1;\n")

    migrations = build_model(shop, "shop").resource("sql_database", "orders").migration_files

    assert [m.name for m in migrations] == ["create_orders", "add_status", "more"]


def test_errors_are_never_served_from_the_cache(shop):
    build_model(shop, "shop")
    db = shop / "orders" / "db.py"
    good = db.read_text()
    db.write_text(good.replace('"orders"', '"Orders"'))
    for _ in range(2):
        with pytest.raises(AppCodeError, match="1 error"):
            build_model(shop, "shop")
    db.write_text(good)
    assert build_model(shop, "shop").resource("sql_database", "orders") is not None


def test_a_corrupt_cache_is_ignored(shop, calls):
    cold = build_model(shop, "shop")
    for path in (shop / ".skyrig" / "cache").iterdir():
        path.write_bytes(b"\x80garbage")
    calls["extract"].clear()

    assert build_model(shop, "shop") == cold
    assert len(calls["extract"]) == 15


def test_the_cache_is_per_app_name(shop, calls):
    build_model(shop, "shop")
    assert build_model(shop, "other-name").app == "other-name"


def test_without_cache_nothing_is_written(shop):
    build_model(shop, "shop", cache=False)
    assert not (shop / ".skyrig").exists()


def test_parallel_extraction_gives_the_same_model(shop, monkeypatch):
    serial = build_model(shop, "shop", cache=False)
    monkeypatch.setattr(skyrig.analysis, "PARALLEL_FROM", 2)
    monkeypatch.setattr(skyrig.analysis, "_can_fork", lambda: True)
    monkeypatch.setattr(skyrig.analysis.os, "cpu_count", lambda: 3)  # two children and this process

    assert build_model(shop, "shop", cache=False) == serial


def test_a_failing_child_is_made_up_for(shop, monkeypatch):
    serial = build_model(shop, "shop", cache=False)
    parent = os.getpid()
    real_extract = skyrig.analysis.extract.extract

    def extract_failing_in_children(*job):
        if os.getpid() != parent:
            raise RuntimeError("a child fails")
        return real_extract(*job)

    monkeypatch.setattr(skyrig.analysis.extract, "extract", extract_failing_in_children)
    monkeypatch.setattr(skyrig.analysis, "PARALLEL_FROM", 2)
    monkeypatch.setattr(skyrig.analysis, "_can_fork", lambda: True)

    assert build_model(shop, "shop", cache=False) == serial


def test_an_edit_that_keeps_size_and_modification_time_is_seen(shop):
    """File times come from a coarse clock: an edit right after a build can keep the same stamp."""
    db = shop / "orders" / "db.py"
    db.write_text(db.read_text())  # modified just now
    build_model(shop, "shop")
    stamp = db.stat()
    db.write_text(db.read_text().replace('SQLDatabase("orders"', 'SQLDatabase("orderz"'))
    os.utime(db, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert db.stat().st_size == stamp.st_size

    assert build_model(shop, "shop").resource("sql_database", "orderz") is not None
