"""The shared store suite, against a real PostgreSQL: a fresh schema per test."""

import pytest

from skyrig.state.suite import *  # noqa: F403
from skyrig.state.suite import StoreFactory


@pytest.fixture
def store_factory(tmp_path, postgres_server, schema):
    return StoreFactory(postgres_server.url("state", schema=schema), tmp_path, ttl=0.5)
