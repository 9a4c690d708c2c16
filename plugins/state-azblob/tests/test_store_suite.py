"""The store suite (skyrig.state.suite), run against the Azure Blob Storage store on Azurite: each test has
a prefix of its own in the container."""

from __future__ import annotations

import uuid

import pytest

from skyrig.state.suite import *  # noqa: F403
from skyrig.state.suite import StoreFactory

from .conftest import CONTAINER


@pytest.fixture
def store_factory(tmp_path, azurite_http):
    return StoreFactory(f"azblob://{azurite_http.account}/{CONTAINER}/{uuid.uuid4().hex}", tmp_path, ttl=1.0)
