"""The S3 store's tests: moto's server, once per test process (each xdist worker starts its own), and a
bucket on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from skyrig_state_s3.testing import moto_s3

BUCKET = "skyrig-suite"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 server, with the environment pointing boto3 (in this process and in those it starts) at it,
    and the bucket :data:`BUCKET` made."""
    import boto3

    with moto_s3() as endpoint:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
