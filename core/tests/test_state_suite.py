"""The store test suite (skyrig.state.suite), run against the built-in SQLite store."""

from __future__ import annotations

import pytest

from skyrig.state.suite import *  # noqa: F403
from skyrig.state.suite import StoreFactory


@pytest.fixture
def store_factory(tmp_path):
    return StoreFactory("sqlite:///.skyrig/state.db", tmp_path)
