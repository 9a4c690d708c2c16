"""Caches through the runtime SDK: set, get, delete and expiry through a typed keyspace; the declared
eviction policy when claimed."""

from __future__ import annotations

import time

import pytest

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN
from skyrig_conformance.plugin import Suite


class TestCache(Suite):
    """A cache cluster as the app sees it."""

    @pytest.fixture
    def app(self, deployment):
        yield deployment.bind("alpha")
        deployment.unbind()

    @needs.kinds("cache_cluster")
    def test_set_get_delete_through_a_keyspace(self, app):
        session, Session = app.resources.session, app.messages.Session
        session.set("ada", Session(user="ada", visits=3))
        assert session.get("ada") == Session(user="ada", visits=3)
        assert session.get("nobody") is None
        session.delete("ada")
        assert session.get("ada") is None

    @needs.kinds("cache_cluster")
    def test_a_key_expires_after_its_expiry(self, app):
        session, Session = app.resources.session, app.messages.Session
        session.set("brief", Session(user="brief"), expiry="1s")
        assert session.get("brief") is not None
        time.sleep(2.2)
        assert session.get("brief") is None, "the key outlived its 1s expiry"

    @needs.feature("cache.eviction_policy")
    def test_the_declared_eviction_policy_is_the_servers(self, deployment):
        cluster = deployment.read_back("cache_cluster/volatile", MAIN)
        assert cluster is not None and "volatile-lru" in cluster.properties.values(), (
            f"the cluster read back from the backend does not carry its policy: {cluster}"
        )
