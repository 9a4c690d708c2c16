"""The Cloud Storage store's tests: fake-gcs-server, once per test process (each xdist worker starts its
own), and a bucket on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from skyrig_state_gcs.testing import create_bucket, fake_gcs

BUCKET = "skyrig-suite"


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """fake-gcs-server, with the environment pointing google-cloud-storage (in this process and in those it
    starts) at it, and the bucket :data:`BUCKET` made."""
    with fake_gcs() as endpoint:
        create_bucket(BUCKET)
        yield endpoint
