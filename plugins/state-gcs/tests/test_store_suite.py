"""The store suite (skyrig.state.suite), run against the Cloud Storage store on fake-gcs-server: each test
has a prefix of its own in the bucket."""

from __future__ import annotations

import uuid

import pytest

from skyrig.state.suite import *  # noqa: F403
from skyrig.state.suite import StoreFactory

from .conftest import BUCKET


@pytest.fixture
def store_factory(tmp_path, gcs_server):
    return StoreFactory(f"gs://{BUCKET}/{uuid.uuid4().hex}", tmp_path, ttl=1.0)
