"""Caches in the memory cloud, through a keyspace of the real SDK: set, get, expiry, delete."""

from __future__ import annotations

import time

import pytest

from .conftest import App, deploy, skyrig

SOURCE = """
from pydantic import BaseModel
from skyrig import CacheCluster, Service

service = Service("web", app="cacheapp:app")
app = None


class Cart(BaseModel):
    items: list[str]


cluster = CacheCluster("carts")
carts = cluster.keyspace("cart/{id}", value=Cart, default_expiry="1h")
other = CacheCluster("other")
notes = other.keyspace("note/{id}", value=str)


def use():
    carts.get(1); carts.set(1, None); carts.delete(1)
    notes.get(1); notes.set(1, None); notes.delete(1)
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    return deploy(tmp_path_factory.mktemp("cache"), "cache", "cacheapp", SOURCE)


@pytest.fixture
def app(deployed, monkeypatch):
    return App(deployed, "cacheapp", monkeypatch)


def test_set_get_and_delete(app):
    carts = app.sdk.carts
    assert carts.get(1) is None
    carts.set(1, app.sdk.Cart(items=["tea"]))
    assert carts.get(1) == app.sdk.Cart(items=["tea"])
    carts.set(1, app.sdk.Cart(items=["tea", "cake"]))
    assert carts.get(id=1).items == ["tea", "cake"]
    carts.delete(1)
    assert carts.get(1) is None
    carts.delete(1)  # no error when absent


def test_expired_keys_read_as_absent(app):
    app.sdk.carts.set(2, app.sdk.Cart(items=["x"]), expiry="1s")
    app.sdk.carts.set(3, app.sdk.Cart(items=["y"]))  # the keyspace's default: 1h
    assert app.sdk.carts.get(2) is not None
    time.sleep(1.1)
    assert app.sdk.carts.get(2) is None
    assert app.sdk.carts.get(3) is not None
    client = app.client("cache_cluster/carts")
    client.set("raw", b"\x00bytes", None)
    assert client.get("raw") == b"\x00bytes"


def test_clusters_do_not_share_keys(app):
    app.sdk.carts.set(4, app.sdk.Cart(items=[]))
    app.client("cache_cluster/other").set("cart/4", b'"elsewhere"', None)
    assert app.sdk.carts.get(4) == app.sdk.Cart(items=[])
    assert app.sdk.notes.get(4) is None


def test_a_destroyed_cluster_takes_its_keys_and_refuses_new_ones(tmp_path, monkeypatch):
    root = deploy(tmp_path, "cache", "cacheapp", SOURCE)
    app = App(root, "cacheapp", monkeypatch)
    app.sdk.notes.set(1, "kept?")
    client = app.client("cache_cluster/other")
    assert skyrig(root, "destroy", "--env", "dev", "--yes") == 0
    assert client.get("note/1") is None
    with pytest.raises(
        LookupError, match="does not exist in the memory cloud: provision it with skyrig apply"
    ):
        app.sdk.notes.set(1, "again")
