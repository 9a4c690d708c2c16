"""The AWS provider's tests: the conformance suite's profile, and a moto server for test_aws.py."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import pytest

from skyrig_aws.conformance import CREDENTIALS, moto_server
from skyrig_conformance import provider_profile

skyrig_profile = provider_profile("aws")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server for this test process (each xdist worker starts its own)."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with moto_server() as endpoint:
            yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def moto(moto_endpoint: str) -> str:
    """moto's server, wiped before the test."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    return moto_endpoint
